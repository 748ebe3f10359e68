"""PowerPoint slides (``.pptx``): each slide's text, in the deck's order, one page per
slide (the slide number is the page), read with the standard library.

A slide's text is its shapes' paragraphs in the order the slide lists them (groups and
tables included); speaker notes are left out. The first slide's title placeholder gives
the title.
"""

from __future__ import annotations

import posixpath
import zipfile
from xml.etree.ElementTree import Element

from ...errors import LoadError
from . import Paged
from .office_xml import PackageError, cells_as_lines, local, open_package, read_xml

_KIND = ".pptx"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_DRAWING_NS = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def read_pptx(data: bytes) -> Paged:
    try:
        with open_package(data, _KIND) as package:
            names = _slide_names(package)
            slides = [_slide(read_xml(package, name, _KIND)) for name in names]
    except PackageError as err:
        raise LoadError(str(err), code="pptx_corrupt") from err
    title = next((t for _, t in slides[:1] if t), None)
    headings = tuple((t, 1) for _, t in slides if t)  # each slide's title
    return Paged(tuple(text for text, _ in slides), title, headings=headings)


def _slide_names(package: zipfile.ZipFile) -> list[str]:
    """The slides' part names in the deck's order (presentation.xml's slide list)."""
    presentation = read_xml(package, "ppt/presentation.xml", _KIND)
    rels = read_xml(package, "ppt/_rels/presentation.xml.rels", _KIND)
    targets = {
        r.get("Id"): r.get("Target", "")
        for r in rels
        if local(r.tag) == "Relationship" and r.get("Type", "").endswith("/slide")
    }
    names: list[str] = []
    for element in presentation.iter():
        if local(element.tag) != "sldId":
            continue
        target = targets.get(element.get(f"{{{_REL_NS}}}id"))
        if target is None:
            raise PackageError("corrupt .pptx file: a slide is listed but missing")
        relative = target.lstrip("/").removeprefix("ppt/")
        names.append(posixpath.normpath(posixpath.join("ppt", relative)))
    return names


def _slide(root: Element) -> tuple[str, str | None]:
    lines: list[str] = []
    title: str | None = None
    tree = next((e for e in root.iter() if local(e.tag) == "spTree"), None)
    for shape in _shapes(tree) if tree is not None else ():
        if local(shape.tag) == "graphicFrame":
            lines.extend(cells_as_lines(_table_rows(shape)))
            continue
        text = "\n".join(_paragraphs(shape))
        lines.append(text)
        if title is None and text.strip() and _is_title(shape):
            title = text.strip()
    return "\n\n".join(lines), title


def _shapes(tree: Element) -> list[Element]:
    shapes: list[Element] = []
    for child in tree:
        name = local(child.tag)
        if name == "grpSp":
            shapes.extend(_shapes(child))
        elif name in ("sp", "graphicFrame"):
            shapes.append(child)
    return shapes


def _is_title(shape: Element) -> bool:
    return any(
        local(e.tag) == "ph" and e.get("type") in ("title", "ctrTitle") for e in shape.iter()
    )


def _paragraphs(element: Element) -> list[str]:
    """The ``a:p`` paragraphs under ``element``: runs and fields read, ``a:br`` a line
    break."""
    out: list[str] = []
    for p in element.iter():
        if p.tag != f"{_DRAWING_NS}p":
            continue
        parts: list[str] = []
        for child in p:
            name = local(child.tag)
            if name in ("r", "fld"):
                parts.extend(t.text or "" for t in child if local(t.tag) == "t")
            elif name == "br":
                parts.append("\n")
        out.append("".join(parts))
    return out


def _table_rows(frame: Element) -> list[list[str]]:
    return [
        ["\n".join(_paragraphs(cell)) for cell in row if local(cell.tag) == "tc"]
        for row in frame.iter()
        if local(row.tag) == "tr"
    ]
