"""Format readers: a file's bytes -> its text, and a title when the format names one.

:data:`READERS` maps each supported extension to its reader, one module per format:
``.txt`` (:mod:`.text`), ``.md`` (:mod:`.markdown`), ``.html``/``.htm`` (:mod:`.html`),
``.pdf`` (:mod:`.pdf`), ``.docx`` (:mod:`.docx`), ``.odt`` (:mod:`.odt`), ``.pptx``
(:mod:`.pptx`) and images by OCR (:mod:`.image`). A reader is a function ``(data:
bytes) -> (text, title_hint or None)``, or, for a paged format, ``-> Paged`` (each
page's text, so that citations can name their page); it raises
:class:`~sourcier.errors.LoadError` with one readable reason for a bad file. A new
format is one module plus one line here; :data:`SUPPORTED_EXTENSIONS`, the folder walk
and the UI's upload check follow. Every reader's text then goes through
:func:`sourcier.ingest.cleaning.clean_text` (a page at a time,
:mod:`sourcier.ingest.pages`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...registry import Registry

Heading = tuple[str, int]
"""A heading's text as the reader gave it, and its level: 0 for the document's title
line, 1-6 for sections (``h1``-``h6``, ``#``, Word's "Heading N")."""


@dataclass(frozen=True)
class Structured:
    """What a reader gives when the format marks its headings: the raw text, a title
    when the format names one, and the headings in document order (each one a line of
    the text), which answers never quote and chunk labels name."""

    text: str
    title: str | None = None
    headings: tuple[Heading, ...] = ()


@dataclass(frozen=True)
class Paged:
    """What a paged format's reader gives: each page's raw text, in order (a page may be
    empty), a title when the format names one, the pages it could not read (1-based),
    notes on how it was read (pages read by OCR), which the build report gives, and the
    headings, as :class:`Structured` has them."""

    pages: tuple[str, ...]
    title: str | None = None
    unreadable: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    headings: tuple[Heading, ...] = ()


Reader = Callable[[bytes], "tuple[str, str | None] | Structured | Paged"]

READERS: Registry[Reader] = Registry(
    "file reader",
    {
        ".txt": "sourcier.ingest.readers.text:read_text",
        ".md": "sourcier.ingest.readers.markdown:read_markdown",
        ".html": "sourcier.ingest.readers.html:read_html",
        ".htm": "sourcier.ingest.readers.html:read_html",
        ".pdf": "sourcier.ingest.readers.pdf:read_pdf",
        ".docx": "sourcier.ingest.readers.docx:read_docx",
        ".odt": "sourcier.ingest.readers.odt:read_odt",
        ".pptx": "sourcier.ingest.readers.pptx:read_pptx",
        ".png": "sourcier.ingest.readers.image:read_image",
        ".jpg": "sourcier.ingest.readers.image:read_image",
        ".jpeg": "sourcier.ingest.readers.image:read_image",
        ".tif": "sourcier.ingest.readers.image:read_image",
        ".tiff": "sourcier.ingest.readers.image:read_image",
    },
)


def supported_extensions() -> frozenset[str]:
    """The extensions a reader is registered for (``.txt``, ``.pdf`` ...)."""
    return frozenset(READERS.names())


SUPPORTED_EXTENSIONS: frozenset[str] = supported_extensions()
"""The extensions of the readers that ship with sourcier."""
