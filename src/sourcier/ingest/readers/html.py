"""HTML (``.html``, ``.htm``): BeautifulSoup with the standard library's ``html.parser``;
``script``, ``style`` and ``nav`` are dropped and block elements become paragraphs."""

from __future__ import annotations

import re

from . import Structured
from .text import decode_bytes

_HTML_DROP = frozenset(
    {"script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "head"}
)


_HTML_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "li",
        "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def read_html(data: bytes) -> Structured:
    import codecs

    from bs4 import BeautifulSoup

    text: str | None = None
    declared = _META_CHARSET.search(data[:4096])
    if declared and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            codec = None
        if codec is not None and b"\x00" not in data:
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                text = None
    if text is None:
        text = decode_bytes(data)
    soup = BeautifulSoup(text, "html.parser")
    title: str | None = None
    h1 = soup.find("h1")
    if h1 is not None:
        title = " ".join(h1.get_text(" ").split()) or None
    if title is None and soup.title is not None:
        title = " ".join(soup.title.get_text(" ").split()) or None
    headings = tuple(
        (" ".join(h.get_text(" ").split()), int(h.name[1]))
        for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])
        if h.get_text(" ").strip()
    )
    return Structured(_html_text(soup), title, headings)


def _html_text(node: object) -> str:
    from bs4 import Comment, NavigableString, Tag
    from bs4.element import PreformattedString

    parts: list[str] = []
    children = getattr(node, "children", ())
    for child in children:
        if isinstance(child, (Comment, PreformattedString)):
            continue
        if isinstance(child, NavigableString):
            parts.append(re.sub(r"\s+", " ", str(child)))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _HTML_DROP:
            continue
        if name == "br":
            parts.append("\n")
        elif name == "pre":
            parts.append("\n\n" + child.get_text() + "\n\n")
        elif name == "tr":
            cells = [
                " ".join(_html_text(cell).split())
                for cell in child.find_all(["td", "th"], recursive=False)
            ]
            parts.append("\n\n" + " | ".join(c for c in cells if c) + "\n\n")
        elif name in _HTML_BLOCKS:
            parts.append("\n\n" + _html_text(child) + "\n\n")
        elif name in ("td", "th"):
            parts.append(" " + _html_text(child) + " ")
        else:
            parts.append(_html_text(child))
    return "".join(parts)
