"""Headings: the paragraphs of a cleaned text that are structure, not statements.

A reader that knows its format's headings (:class:`~sourcier.ingest.readers.Structured`,
:class:`~sourcier.ingest.readers.Paged`) gives their texts in order; :func:`mark_headings`
finds each one as a whole paragraph of the cleaned text, in order, and adds the title
line that today's title rules find at the top of any text (a press release's all-caps
first line). Answers never quote a heading as evidence (unless the question asks for a
title), and a chunk's label names the section it is in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .cleaning import clean_text

TITLE_LOOKAHEAD = 3
"""The title line is looked for among this many first paragraphs."""

_PARAGRAPH = re.compile(r"[^\n]+(?:\n[^\n]+)*")


def paragraphs(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each paragraph of a cleaned text (separated by a blank
    line)."""
    return [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text)]


def mark_headings(
    text: str, headings: Sequence[tuple[str, int]], title: str | None
) -> tuple[tuple[int, int, int], ...]:
    """Where the headings are in ``text``: ``(start, end, level)`` each, in order.

    Args:
        text: the cleaned text.
        headings: ``(text, level)`` as the reader found them, in document order; one
            that is not a whole paragraph of ``text`` once cleaned is left out.
        title: the document's title: the first paragraph among the first
            :data:`TITLE_LOOKAHEAD` that reads the same is its title line (level 0).
    """
    spans = paragraphs(text)
    found: dict[int, tuple[int, int, int]] = {}
    cursor = 0
    title_line = " ".join(title.split()) if title else ""
    for raw, level in headings:
        wanted = clean_text(raw)
        if not wanted or "\n\n" in wanted:
            continue
        for k in range(cursor, len(spans)):
            start, end = spans[k]
            if text[start:end] == wanted:
                # the heading that is the document's title opens no section
                level = 0 if " ".join(wanted.split()) == title_line else level
                found.setdefault(start, (start, end, level))
                cursor = k + 1
                break
    if title_line:
        wanted = title_line
        for start, end in spans[:TITLE_LOOKAHEAD]:
            if " ".join(text[start:end].split()) == wanted:
                found.setdefault(start, (start, end, 0))
                break
    return tuple(sorted(found.values()))


def section_at(headings: Sequence[tuple[int, int, int]], offset: int) -> tuple[int, int] | None:
    """The heading of the section ``offset`` is in: the last heading of level 1 or more
    that starts at or before it, as ``(start, end)``; ``None`` before the first."""
    best = None
    for start, end, level in headings:
        if start > offset:
            break
        if level >= 1:
            best = (start, end)
    return best
