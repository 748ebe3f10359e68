"""OpenDocument text and PowerPoint slides, written by independent libraries (odfpy,
python-pptx): text in reading order, titles, slides as pages, bad files in one line."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from sourcier import Settings, ask, build_index
from sourcier.errors import LoadError
from sourcier.ingest.loaders import discover, load_document
from sourcier.ingest.readers import SUPPORTED_EXTENSIONS

HASHING = Settings(model="sourcier/hashing-bow")


def write_odt(path: Path) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, Note, NoteBody, NoteCitation, P, S, Span

    doc = OpenDocumentText()
    bold = Style(name="Gras", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
    doc.text.addElement(P(text="Communiqué de presse"))
    doc.text.addElement(H(outlinelevel=1, text="Le pôle Mer signe avec Toulon"))
    para = P(text="Le pôle Mer réunit ")
    para.addElement(Span(stylename=bold, text="les chantiers navals"))
    para.addText(" de Toulon.")
    para.addElement(S(c=3))
    para.addText("Fin.")
    note = Note(noteclass="footnote")
    note.addElement(NoteCitation(text="1"))
    body = NoteBody()
    body.addElement(P(text="Une note de bas de page."))
    note.addElement(body)
    para.addElement(note)
    doc.text.addElement(para)
    items = List()
    for text in ("Premier point du programme.", "Second point du programme."):
        item = ListItem()
        item.addElement(P(text=text))
        items.addElement(item)
    doc.text.addElement(items)
    table = Table(name="Contacts")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for row_texts in (("Contact", "Téléphone"), ("Audrey", "04 92 96 79 65")):
        row = TableRow()
        for text in row_texts:
            cell = TableCell()
            cell.addElement(P(text=text))
            row.addElement(cell)
        table.addElement(row)
    doc.text.addElement(table)
    doc.text.addElement(H(outlinelevel=2, text="Financement"))
    doc.text.addElement(P(text="Le budget atteint 3 millions d'euros."))
    doc.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Bilan du port de Marseille"
    slide.placeholders[1].text = "Réunion du conseil, mars 2024"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Trafic"
    body = slide.placeholders[1].text_frame
    body.text = "Le trafic de conteneurs progresse de 12 %."
    body.add_paragraph().text = "Le port emploie 40 000 personnes."
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Chiffres"
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for (r, c), text in {
        (0, 0): "Année",
        (0, 1): "Conteneurs",
        (1, 0): "2023",
        (1, 1): "1,5 million",
    }.items():
        rows.cell(r, c).text = text
    deck.save(str(path))
    return path


def test_the_new_formats_are_supported() -> None:
    assert {".odt", ".pptx"} <= SUPPORTED_EXTENSIONS


def test_odt_paragraphs_headings_lists_and_tables_in_order(tmp_path: Path) -> None:
    doc = load_document(write_odt(tmp_path / "communique.odt"))
    assert doc.title == "Le pôle Mer signe avec Toulon"
    assert doc.text.split("\n\n") == [
        "Communiqué de presse",
        "Le pôle Mer signe avec Toulon",
        "Le pôle Mer réunit les chantiers navals de Toulon. Fin.",
        "Premier point du programme.",
        "Second point du programme.",
        "Contact | Téléphone",
        "Audrey | 04 92 96 79 65",
        "Financement",
        "Le budget atteint 3 millions d'euros.",
    ]
    assert doc.pages == ()  # a flowing text format has no pages


def test_pptx_slides_are_pages(tmp_path: Path) -> None:
    doc = load_document(write_pptx(tmp_path / "bilan.pptx"))
    assert doc.title == "Bilan du port de Marseille"
    assert len(doc.pages) == 3
    trafic = doc.text.index("Le trafic de conteneurs")
    assert doc.page_span(trafic, trafic + 20) == (2, 2)
    table = doc.text.index("2023 | 1,5 million")
    assert doc.page_span(table, table + 5) == (3, 3)
    assert doc.text[doc.pages[1] :].startswith(
        "Trafic\n\nLe trafic de conteneurs progresse de 12 %."
    )


def test_a_slide_is_the_cited_page(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pptx(folder / "bilan.pptx")
    write_odt(folder / "communique.odt")
    assert sorted(p.name for p in discover([folder])[0]) == ["bilan.pptx", "communique.odt"]
    build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
    answer = ask("Combien de personnes le port emploie-t-il ?", index=tmp_path / "index")
    cited = next(c for c in answer.citations if "40 000" in c.quote)
    assert cited.page == 2 and cited.source.endswith("bilan.pptx")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.odt", os.urandom(2048), "corrupt or unreadable .odt file"),
        ("b.odt", _zip({"mimetype": b"x"}), "corrupt .odt file: content.xml is missing"),
        ("c.odt", _zip({"content.xml": b"<office:document"}), "corrupt .odt file: content.xml"),
        ("d.pptx", os.urandom(2048), "corrupt or unreadable .pptx file"),
        ("e.pptx", _zip({"ppt/presentation.xml": b"<p/>"}), "corrupt .pptx file"),
    ],
)
def test_bad_office_files_are_one_line_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as caught:
        load_document(path)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_zip_bomb_part_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sourcier.ingest.readers import office_xml

    monkeypatch.setattr(office_xml, "MAX_PART_BYTES", 1000)
    big = b"<office:document-content>" + b" " * 5000 + b"</office:document-content>"
    path = tmp_path / "bomb.odt"
    path.write_bytes(_zip({"content.xml": big}))
    with pytest.raises(LoadError, match="too large to read: content.xml"):
        load_document(path)
