"""Word (``.docx``): python-docx, body paragraphs and tables in document order."""

from __future__ import annotations

import io

from ...errors import LoadError
from .office_xml import cells_as_lines


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


def _docx_table(table: object) -> list[str]:
    return cells_as_lines(
        [
            ["\n".join(p.text for p in cell.paragraphs) for cell in row.cells]
            for row in getattr(table, "rows", ())
        ]
    )
