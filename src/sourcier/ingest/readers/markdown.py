"""Markdown (``.md``): decoded as plain text, then the syntax is removed (headings,
emphasis, links, code fences) and the words are kept."""

from __future__ import annotations

import re

from . import Structured
from .text import decode_bytes


def read_markdown(data: bytes) -> Structured:
    return markdown_to_text(decode_bytes(data))


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)[ \t]*$")
_HRULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE = re.compile(r"^\s{0,3}(?:>[ \t]?)+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$")
_BULLET_MD = re.compile(r"^(\s*)[*+][ \t]+")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def markdown_to_text(markdown: str) -> Structured:
    """Remove Markdown syntax and keep the words.

    Args:
        markdown: Markdown source.

    Returns:
        The plain text; the front-matter ``title:`` or the first heading (level 1
        preferred), or ``None``; and the headings (``#`` and underlined lines).
    """
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    title: str | None = None
    fm = _FRONT_MATTER.match(text)
    if fm:
        for line in fm.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
        text = text[fm.end() :]
    text = _HTML_COMMENT.sub("", text)
    headings: list[tuple[int, str]] = []
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            out.append("")
            continue
        if in_code:
            out.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            heading = strip_markup(atx.group(2) or "")
            headings.append((len(atx.group(1)), heading))
            out.extend(["", heading, ""])
            continue
        if _SETEXT.match(line) and out and out[-1].strip():  # "Title\n=====" underline
            level = 1 if line.strip().startswith("=") else 2
            headings.append((level, strip_markup(out[-1])))
            out.append("")
            continue
        if _TABLE_RULE.match(line) and "-" in line:
            continue  # the |---|---| line under a table header
        if _HRULE.match(line) or _REF_DEF.match(line):
            out.append("")
            continue
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            line = stripped[1:-1].strip()  # table row: keep the inner "a | b" cells
        line = _QUOTE.sub("", line)
        line = _BULLET_MD.sub(r"\1- ", line)
        out.append(strip_markup(line))
    if title is None and headings:
        level_one = [h for level, h in headings if level == 1 and h]
        any_heading = [h for _, h in headings if h]
        candidates = level_one or any_heading
        title = candidates[0] if candidates else None
    marked = tuple((h, level) for level, h in headings if h)
    return Structured("\n".join(out), title, marked)


_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
_MD_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_MD_CODE = re.compile(r"`+([^`\n]+?)`+")
_MD_EMPHASIS = re.compile(r"(\*\*\*|\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1")
_MD_UNDERSCORE = re.compile(r"(?<!\w)(___|__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def strip_markup(text: str) -> str:
    """Remove inline Markdown and HTML tags from a short piece of text, keeping the words.

    ``[text](url)`` becomes ``text``, ``**bold**`` becomes ``bold``, ``<b>x</b>``
    becomes ``x``.

    Args:
        text: a line or title.

    Returns:
        The text without markup (not otherwise cleaned; see :func:`clean_text`).
    """
    text = _HTML_TAG.sub("", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = _MD_CODE.sub(r"\1", text)
    for _ in range(3):  # nested emphasis
        new = _MD_UNDERSCORE.sub(r"\2", _MD_EMPHASIS.sub(r"\2", text))
        if new == text:
            break
        text = new
    return text
