"""Word (``.docx``): python-docx, body paragraphs and tables in document order."""

from __future__ import annotations

import io

from ...errors import LoadError
from . import Structured
from .office_xml import cells_as_lines


def read_docx(data: bytes) -> Structured:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        title: str | None = None
        headings: list[tuple[str, int]] = []
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = item.text
                blocks.append(text)
                level = _level(item.style.name if item.style is not None else "")
                if level is not None and text.strip():
                    headings.append((text, level))
                    if title is None and level <= 1:
                        title = text.strip()
            elif isinstance(item, Table):
                blocks.extend(_docx_table(item))
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable .docx file ({type(err).__name__}: {err})",
            code="docx_corrupt",
        ) from err
    return Structured("\n\n".join(blocks), title, tuple(headings))


def _level(style: str) -> int | None:
    """A paragraph style's heading level: 0 for "Title", N for "Heading N"."""
    if style == "Title":
        return 0
    if style.startswith("Heading "):
        number = style.removeprefix("Heading ").strip()
        return int(number) if number.isdigit() else None
    return None


def _docx_table(table: object) -> list[str]:
    return cells_as_lines(
        [
            ["\n".join(p.text for p in cell.paragraphs) for cell in row.cells]
            for row in getattr(table, "rows", ())
        ]
    )
