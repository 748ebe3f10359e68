"""Pages of a paged document (PDF, slides): where each page starts in the cleaned text.

A paged reader gives its pages' raw texts (:class:`~sourcier.ingest.readers.Paged`).
:func:`join_pages` cleans each page on its own and joins them with one blank line, so
the cleaned text is exactly what :func:`~sourcier.ingest.cleaning.clean_text` makes of
it and each page's start is an exact offset into it. A page with no text starts where
the next text starts (it covers no characters). :func:`~sourcier.types.page_span`
turns a span of the text into the pages it sits on, 1-based.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import page_span
from .cleaning import clean_text

PAGE_BREAK = "\n\n"


def join_pages(raw_pages: Sequence[str]) -> tuple[str, tuple[int, ...]]:
    """Clean each page and join them: ``(text, starts)``, ``starts[p - 1]`` being where
    page ``p`` starts in ``text`` (``starts[0] == 0``; ``()`` when there are no pages).

    ``clean_text(text) == text`` and, for every page with text,
    ``text[starts[p - 1]:starts[p - 1] + len(clean_text(raw_pages[p - 1]))]`` is that
    page cleaned.
    """
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for raw in raw_pages:
        cleaned = clean_text(raw)
        if cleaned and parts:
            length += len(PAGE_BREAK)
        starts.append(length if cleaned or not parts else length + len(PAGE_BREAK))
        if cleaned:
            parts.append(cleaned)
            length += len(cleaned)
    text = PAGE_BREAK.join(parts)
    return text, tuple(min(s, len(text)) for s in starts)


def shift_pages(starts: Sequence[int], removed: int, length: int) -> tuple[int, ...]:
    """Page starts once ``removed`` characters were cut from the text's start (a date
    label), the text now ``length`` long."""
    return tuple(min(max(0, s - removed), length) for s in starts)


__all__ = ["PAGE_BREAK", "join_pages", "page_label", "page_span", "shift_pages"]


def page_label(page: int | None, page_end: int | None) -> str:
    """``"p. 17"``, ``"pp. 17-18"``, or ``""`` without a page."""
    if page is None:
        return ""
    if page_end is None or page_end == page:
        return f"p. {page}"
    return f"pp. {page}-{page_end}"
