"""The Gradio chat UI: streamed cited answers, sources, document viewer, corpus and settings.

Layout: the chat on the left; on the right, tabs for the sources of the last answer
(each ``[n]`` with its passage and the quoted span highlighted), a viewer for the whole
cleaned document, the corpus (list, upload, removal) and the query settings.

Modules: :mod:`~.layout` (the app and its wiring), :mod:`~.handlers` (what each event
does), :mod:`~.library` (the shared index, uploads and removals), :mod:`~.render` (HTML
and markdown, every document text escaped), :mod:`~.uploads` (upload names and checks),
:mod:`~.style` (CSS and panel scripts). Serving the page with the APIs is
:mod:`sourcier.server` (``serve()``); the commands are in :mod:`sourcier.cli.serve`.

gradio is imported inside the functions that need it; importing this package is cheap.
"""

from __future__ import annotations

from .access import Access
from .client import connect
from .handlers import MAX_HISTORY_TURNS, Handlers, parse_filters, question_problem
from .layout import EXAMPLES, MODES, build_app
from .library import Library
from .limits import ClientLimiter
from .render import (
    CONTEXT_CHARS,
    UploadOutcome,
    answer_footer,
    answer_markdown,
    escape_html,
    escape_markdown,
    format_date,
    render_corpus,
    render_document,
    render_report,
    render_sources,
    stream_steps,
)
from .uploads import (
    ALLOWED_EXTENSIONS,
    MAX_UPLOAD_MB,
    check_upload,
    sanitize_filename,
    store_upload,
)

__all__ = [
    "ALLOWED_EXTENSIONS",
    "Access",
    "ClientLimiter",
    "CONTEXT_CHARS",
    "EXAMPLES",
    "MAX_HISTORY_TURNS",
    "MAX_UPLOAD_MB",
    "MODES",
    "Handlers",
    "Library",
    "UploadOutcome",
    "answer_footer",
    "answer_markdown",
    "build_app",
    "check_upload",
    "connect",
    "escape_html",
    "escape_markdown",
    "format_date",
    "parse_filters",
    "question_problem",
    "render_corpus",
    "render_document",
    "render_report",
    "render_sources",
    "sanitize_filename",
    "store_upload",
    "stream_steps",
]
