"""Word (``.docx``): python-docx, body paragraphs and tables in document order."""

from __future__ import annotations

import io
from collections.abc import Iterator

from ...errors import LoadError


def read_docx(data: bytes) -> tuple[str, str | None]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        title: str | None = None
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = item.text
                blocks.append(text)
                if title is None and text.strip():
                    style = item.style.name if item.style is not None else ""
                    if style and (style == "Title" or style.startswith("Heading 1")):
                        title = text.strip()
            elif isinstance(item, Table):
                blocks.extend(_docx_table(item))
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable .docx file ({type(err).__name__}: {err})",
            code="docx_corrupt",
        ) from err
    return "\n\n".join(blocks), title


def _docx_table(table: object) -> Iterator[str]:
    for row in getattr(table, "rows", ()):
        cells: list[str] = []
        for cell in row.cells:
            text = "\n".join(p.text for p in cell.paragraphs).strip()
            if text and (not cells or cells[-1] != text):  # merged cells repeat
                cells.append(text)
        if not cells:
            continue
        if all(len(c) <= 80 and "\n" not in c for c in cells):
            yield " | ".join(cells)
        else:
            yield from cells
