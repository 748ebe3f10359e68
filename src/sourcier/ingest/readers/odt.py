"""OpenDocument text (``.odt``, LibreOffice's format): ``content.xml`` read with the
standard library, headings, paragraphs, lists and tables in document order.

Footnotes and comments are left out (they are not in the reading order); a heading of
outline level 1, or a paragraph styled "Title", gives the title.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ...errors import LoadError
from . import Structured
from .office_xml import PackageError, cells_as_lines, local, open_package, read_xml

_KIND = ".odt"
_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_SKIPPED = frozenset({"note", "annotation", "tracked-changes", "bookmark-ref", "sequence-decls"})
_BLOCKS = frozenset({"section", "list", "list-item", "list-header", "index-body", "deletion"})


def read_odt(data: bytes) -> Structured:
    try:
        with open_package(data, _KIND) as package:
            root = read_xml(package, "content.xml", _KIND)
    except PackageError as err:
        raise LoadError(str(err), code="odt_corrupt") from err
    body = root.find(f"{{{_OFFICE_NS}}}body/{{{_OFFICE_NS}}}text")
    if body is None:
        return Structured("")
    reading = _Reading()
    reading.blocks(body)
    return Structured("\n\n".join(reading.lines), reading.title, tuple(reading.headings))


class _Reading:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.title: str | None = None
        self.headings: list[tuple[str, int]] = []

    def blocks(self, parent: Element) -> None:
        for child in parent:
            name = local(child.tag)
            if name in ("p", "h"):
                text = inline(child).strip()
                self.lines.append(text)
                level = _level(child, name)
                if level is not None and text:
                    self.headings.append((text, level))
                    if self.title is None and level <= 1:
                        self.title = text
            elif name == "table":
                self.lines.extend(cells_as_lines(_rows(child)))
            elif name in _BLOCKS:
                self.blocks(child)


def _level(element: Element, name: str) -> int | None:
    """A heading's level (``text:h``'s outline level; 0 for a paragraph styled "Title"),
    ``None`` for a paragraph."""
    if name == "h":
        level = element.get(f"{{{_TEXT_NS}}}outline-level", "1")
        return int(level) if level.isdigit() else 1
    return 0 if element.get(f"{{{_TEXT_NS}}}style-name", "") in ("Title", "Titre") else None


def _rows(table: Element) -> list[list[str]]:
    rows: list[list[str]] = []
    for row in table.iter():
        if local(row.tag) != "table-row":
            continue
        cells = [c for c in row if local(c.tag) == "table-cell"]
        rows.append([_cell(cell) for cell in cells])
    return rows


def _cell(cell: Element) -> str:
    return "\n".join(inline(p).strip() for p in cell if local(p.tag) in ("p", "h"))


def inline(element: Element) -> str:
    """The text of a paragraph: spans and links read through, ``text:s`` as its count
    of spaces, tabs and line breaks as whitespace, notes and comments left out."""
    parts: list[str] = [element.text or ""]
    for child in element:
        name = local(child.tag)
        if name == "s":
            parts.append(" " * int(child.get(f"{{{_TEXT_NS}}}c", "1") or 1))
        elif name == "tab":
            parts.append("\t")
        elif name == "line-break":
            parts.append("\n")
        elif name not in _SKIPPED and name != "frame":
            parts.append(inline(child))
        parts.append(child.tail or "")
    return "".join(parts)
