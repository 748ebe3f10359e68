"""Cleaning extracted text: word-processor debris removed, NFC text whose paragraphs are
separated by exactly one blank line."""

from __future__ import annotations

import re
import unicodedata

_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FIELD_HYPERLINK = re.compile(
    r"\ufffd?[ \t]*\bHYPERLINK[ \t]+(?:\\[a-z][ \t]+)*(?:\"[^\"\n]*\"|[^\s\ufffd]+)"
    r"(?:[ \t]*\\[a-z](?:[ \t]+\"[^\"\n]*\")?)*[ \t]*\ufffd?"
)
_BARE_HYPERLINK = re.compile(r"\bHYPERLINK\b")
_IMAGE_MARK = re.compile(r"\[image:[^\]\n]*\]", re.IGNORECASE)
_SUPERSCRIPT = re.compile(r"\^\{([^{}\n]*)\}")
_INVISIBLE = re.compile("[\ufffd\u200b\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t]+")
_BULLET = re.compile(r"^(?:[-•*·–—▪◦●]\s|\d{1,3}[.)]\s|[a-z][.)]\s)")


def clean_text(raw: str) -> str:
    """Clean extracted text so that it reads naturally and cites well.

    Removes word-processor debris (``[image: image1.emf]``, ``HYPERLINK "..."`` field
    codes while keeping the visible link text, U+FFFD, zero-width characters, ``**``
    bold markers, ``^{ème}`` superscript markup), turns every Unicode space
    (no-break spaces included) and tab into a plain space, drops control
    characters, strips and collapses spaces, applies NFC, and lays the text out as
    paragraphs separated by exactly one blank line. Inside a block, each line is a
    paragraph, except lines that look hard-wrapped (a text editor's or a PDF's
    line width), which are joined back.

    The function is idempotent: ``clean_text(clean_text(x)) == clean_text(x)``.

    Args:
        raw: extracted text.

    Returns:
        The cleaned text, ``""`` when nothing is left.
    """
    text = raw
    for _ in range(10):
        cleaned = _clean_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def _clean_once(raw: str) -> str:
    text = _LINE_BREAKS.sub("\n", raw)
    text = _FIELD_HYPERLINK.sub(" ", text)
    text = _BARE_HYPERLINK.sub(" ", text)
    text = _IMAGE_MARK.sub(" ", text)
    text = _SUPERSCRIPT.sub(r"\1", text)
    text = text.replace("**", "")
    text = _INVISIBLE.sub("", text)
    text = text.translate(_CHAR_TABLE)
    text = unicodedata.normalize("NFC", text)
    paragraphs: list[str] = []
    block: list[str] = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            block.append(line)
        elif block:
            paragraphs.extend(_unwrap(block))
            block = []
    if block:
        paragraphs.extend(_unwrap(block))
    return "\n\n".join(paragraphs)


def _char_table() -> dict[int, str | None]:
    """Every Unicode space separator (Zs) and tab -> " "; controls and lone surrogates -> gone."""
    spaces = [0x09, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
    table: dict[int, str | None] = {cp: " " for cp in spaces}
    for cp in [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]:
        if cp not in (0x09, 0x0A):
            table[cp] = None
    return table


_CHAR_TABLE = _char_table()


def _unwrap(lines: list[str]) -> list[str]:
    """Lines of one block -> paragraphs: each line alone unless it looks hard-wrapped."""
    width = max(len(line) for line in lines)
    if len(lines) == 1 or width < 50 or width > 120:
        return lines
    paragraphs: list[str] = []
    current = lines[0]
    previous = lines[0]
    for line in lines[1:]:
        wrapped = (
            len(previous) >= max(40, 0.7 * width)
            and not _BULLET.match(line)
            and " | " not in line  # table rows stay one per line
            and (line[0].islower() or previous[-1].islower() or previous[-1] in ",;(-–'’")
        )
        if wrapped:
            if previous.endswith("-") and len(previous) > 1 and previous[-2].isalpha():
                current += line  # a word cut at the line end keeps its hyphen
            else:
                current += " " + line
        else:
            paragraphs.append(current)
            current = line
        previous = line
    paragraphs.append(current)
    return paragraphs
