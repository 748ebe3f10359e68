"""Format readers: a file's bytes -> its text, and a title when the format names one.

:data:`READERS` maps each supported extension to its reader, one module per format:
``.txt`` (:mod:`.text`), ``.md`` (:mod:`.markdown`), ``.html``/``.htm`` (:mod:`.html`),
``.pdf`` (:mod:`.pdf`) and ``.docx`` (:mod:`.docx`). A reader is a function
``(data: bytes) -> (text, title_hint or None)`` that raises
:class:`~sourcier.errors.LoadError` with one readable reason for a bad file. A new
format is one module plus one line here; :data:`SUPPORTED_EXTENSIONS`, the folder walk
and the UI's upload check follow. Every reader's text then goes through
:func:`sourcier.ingest.cleaning.clean_text`.
"""

from __future__ import annotations

from collections.abc import Callable

from ...registry import Registry

Reader = Callable[[bytes], tuple[str, "str | None"]]

READERS: Registry[Reader] = Registry(
    "file reader",
    {
        ".txt": "sourcier.ingest.readers.text:read_text",
        ".md": "sourcier.ingest.readers.markdown:read_markdown",
        ".html": "sourcier.ingest.readers.html:read_html",
        ".htm": "sourcier.ingest.readers.html:read_html",
        ".pdf": "sourcier.ingest.readers.pdf:read_pdf",
        ".docx": "sourcier.ingest.readers.docx:read_docx",
    },
)


def supported_extensions() -> frozenset[str]:
    """The extensions a reader is registered for (``.txt``, ``.pdf`` ...)."""
    return frozenset(READERS.names())


SUPPORTED_EXTENSIONS: frozenset[str] = supported_extensions()
"""The extensions of the readers that ship with sourcier."""
