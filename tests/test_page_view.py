"""The quote on the page: page images of a PDF with the quoted characters' boxes, checked
by reading back (OCR) what the boxes cover."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sourcier.ingest import ocr
from sourcier.ingest.loaders import load_document
from sourcier.ui.page_view import page_images
from sourcier.ui.render import render_document
from test_ocr import needs_tesseract, scanned_pdf
from test_pages import PAGES, write_pdf

QUOTE = "La présidente du pôle Mer est Marie Curie depuis le mois de mars."


def _covered_text(png: bytes, boxes: tuple[tuple[float, float, float, float], ...]) -> str:
    """What OCR reads inside the boxes (each cropped with a small margin)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    words = []
    for left, top, w, h in boxes:
        crop = image.crop(
            (
                max(0, int((left - 0.005) * width)),
                max(0, int(top * height - 0.4 * h * height)),
                min(width, int((left + w + 0.005) * width)),
                min(height, int((top + 1.4 * h) * height)),
            )
        )
        big = crop.resize((crop.width * 3, crop.height * 3))
        out = io.BytesIO()
        big.save(out, format="PNG")
        words.append(ocr.recognise(out.getvalue()).text)
    return " ".join(" ".join(words).split())


def _words(text: str) -> set[str]:
    return {w.strip(".,;:").lower() for w in text.split() if len(w.strip(".,;:")) > 3}


@needs_tesseract
@pytest.mark.parametrize("make", [write_pdf, scanned_pdf], ids=["text layer", "scan"])
def test_the_boxes_cover_the_quoted_characters(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    doc = load_document(make(tmp_path / "rapport.pdf", PAGES))
    start = doc.text.index(QUOTE)
    (page,) = page_images(doc, start, start + len(QUOTE))
    assert page.page == 2 and page.located and page.boxes
    read = _covered_text(page.png, page.boxes)
    assert _words(QUOTE) <= _words(read), read
    assert "chantiers" not in read  # nothing of page 1, nor the sentence before
    assert "financement" not in read.lower()


@needs_tesseract
def test_a_span_over_a_page_break_is_highlighted_on_both_pages(tmp_path: Path) -> None:
    doc = load_document(write_pdf(tmp_path / "rapport.pdf", PAGES))
    start = doc.text.index("les laboratoires de Marseille")
    end = doc.text.index("atteint 3 millions")
    pages = page_images(doc, start, end)
    assert [p.page for p in pages] == [1, 2] and all(p.located and p.boxes for p in pages)
    assert "laboratoires" in _covered_text(pages[0].png, pages[0].boxes)
    assert "financement" in _covered_text(pages[1].png, pages[1].boxes).lower()


def test_no_page_view_without_a_pdf_file_and_a_note_when_the_file_changed(
    tmp_path: Path,
) -> None:
    path = write_pdf(tmp_path / "rapport.pdf", PAGES)
    doc = load_document(path)
    start = doc.text.index(QUOTE)
    write_pdf(path, ["Un tout autre texte.", "Rien de ce qui fut cité.", "Fin."])
    (page,) = page_images(doc, start, start + len(QUOTE))
    assert not page.located and page.boxes == ()
    html = render_document(doc, start, start + len(QUOTE), [page])
    assert "n’a pas été retrouvée" in html and 'class="page-hl"' not in html
    path.unlink()
    assert page_images(doc, start, start + len(QUOTE)) == []
    text = tmp_path / "note.txt"
    text.write_text("Une note sans pages.")
    assert page_images(load_document(text), 0, 4) == []


def test_the_page_figure_holds_no_document_text(tmp_path: Path) -> None:
    pages = ["<script>alert(1)</script> Premier.", "Le port <b>grandit</b>."]
    doc = load_document(write_pdf(tmp_path / "x<y>.pdf", pages))
    start = doc.text.index("Le port")
    html = render_document(doc, start, start + 7, page_images(doc, start, start + 7))
    figure = html[html.index("<figure") : html.index("</figure>")]
    assert "<script>" not in html and "script" not in figure and "grandit" not in figure
    assert 'class="page-head">p. 2<' in figure
