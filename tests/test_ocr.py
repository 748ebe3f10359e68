"""Scans and images read by OCR (the system's Tesseract, fra+eng): a scanned PDF made
here from rendered text is indexed, and the answer's quote names page 2; without
Tesseract a scan is skipped with one line that says how to install it."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sourcier import Settings, ask, build_index, load_index
from sourcier.errors import LoadError
from sourcier.ingest import ocr
from sourcier.ingest.loaders import load_document
from sourcier.messages import say_skipped

HASHING = Settings(model="sourcier/hashing-bow")

PAGES = [
    "Rapport annuel du port de Marseille.\n"
    "Le conseil de surveillance s'est reuni trois fois cette annee.",
    "Le trafic de conteneurs progresse de douze pour cent.\n"
    "Le directeur du port est Paul Martin depuis le mois de mars.",
]

needs_tesseract = pytest.mark.skipif(
    bool(ocr.missing()) or ocr.pdf_renderer_missing(),
    reason="Tesseract with French data, or pypdfium2, is not installed (make ocr-deps)",
)


def page_images(pages: list[str], dpi: int = 200) -> list[bytes]:
    """Each text rendered as a page image (a PDF made with text, rendered by pdfium)."""
    import pypdfium2
    from fpdf import FPDF

    pdf = FPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=14)
        pdf.multi_cell(0, 9, text)
    pdf_doc = pypdfium2.PdfDocument(bytes(pdf.output()))
    images = []
    for page in pdf_doc:
        out = io.BytesIO()
        page.render(scale=dpi / 72, grayscale=True).to_pil().save(out, format="PNG")
        images.append(out.getvalue())
    pdf_doc.close()
    return images


def scanned_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF whose pages are only images of text: no text layer, as from a scanner."""
    from fpdf import FPDF

    pdf = FPDF()
    for image in page_images(pages):
        pdf.add_page()
        pdf.image(io.BytesIO(image), x=0, y=0, w=210, h=297)
    pdf.output(str(path))
    return path


@needs_tesseract
def test_a_scanned_pdf_is_read_by_ocr_and_cited_with_its_page(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    path = scanned_pdf(folder / "rapport-scan.pdf", PAGES)
    assert path.stat().st_size < 200_000
    report = build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
    assert report.indexed == (str(path),)
    ((source, note),) = report.notes
    assert source == str(path) and note.startswith("pages 1-2 read by OCR (mean confidence ")
    answer = ask("Qui est le directeur du port ?", index=tmp_path / "index")
    assert not answer.refused
    cited = next(c for c in answer.citations if "Paul Martin" in c.quote)
    assert cited.page == 2 and cited.page_end == 2


@needs_tesseract
def test_an_image_is_read_and_a_photo_without_text_is_skipped(tmp_path: Path) -> None:
    from PIL import Image

    scan = tmp_path / "page.png"
    scan.write_bytes(page_images(PAGES[1:])[0])
    doc = load_document(scan)
    assert "Paul Martin" in doc.text and doc.pages == ()
    blank = tmp_path / "photo.jpg"
    Image.new("RGB", (400, 300), (40, 120, 200)).save(blank)
    with pytest.raises(LoadError, match="no text found in the image"):
        load_document(blank)


def test_an_image_over_the_configured_limit_is_refused_with_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from sourcier.settings import IndexSettings

    monkeypatch.setattr(ocr, "_tesseract", lambda: ("tesseract", ""))
    folder = tmp_path / "docs"
    folder.mkdir()
    Image.new("L", (500, 400), 255).save(folder / "poster.png")
    (folder / "note.txt").write_text("Le port de Marseille emploie 40 000 personnes.")
    settings = Settings(model="sourcier/hashing-bow", index=IndexSettings(max_image_mp=0.1))
    report = build_index(folder, index=tmp_path / "index", settings=settings, show_progress=False)
    (skipped,) = report.skipped
    assert skipped.code == "image_too_large"
    assert skipped.reason == "image is 500×400 pixels (0 MP), over the 0.1 MP limit for OCR"
    with pytest.raises(LoadError, match="over the 0.15 MP limit"):
        load_document(folder / "poster.png", max_image_pixels=150_000)


def test_without_tesseract_a_scan_is_skipped_with_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fpdf import FPDF
    from PIL import Image

    monkeypatch.setattr(ocr, "_tesseract", lambda: (None, "Tesseract is not installed"))
    folder = tmp_path / "docs"
    folder.mkdir()
    pdf = FPDF()
    pdf.add_page()
    image = io.BytesIO()
    Image.new("L", (200, 100), 128).save(image, format="PNG")
    pdf.image(image, x=10, y=10, w=100)
    pdf.output(str(folder / "scan.pdf"))
    (folder / "note.txt").write_text("Le port de Marseille emploie 40 000 personnes.")
    report = build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
    assert report.indexed == (str(folder / "note.txt"),)
    (skipped,) = report.skipped
    assert skipped.path == str(folder / "scan.pdf") and skipped.code == "ocr_missing"
    assert say_skipped(skipped) == (
        "PDF has no text layer (a scan?); install Tesseract to read it by OCR: "
        "apt install tesseract-ocr tesseract-ocr-fra, then pip install 'sourcier[ocr]'"
    )
    assert "apt install tesseract-ocr tesseract-ocr-fra" in say_skipped(skipped, "fr")


def test_tesseract_tsv_becomes_lines_and_paragraphs() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\t" + (
        "left\ttop\twidth\theight\tconf\ttext"
    )
    rows = [
        "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tLe",
        "5\t1\t1\t1\t1\t2\t70\t10\t50\t20\t93.5\tport",
        "5\t1\t1\t1\t2\t1\t10\t40\t50\t20\t90\tde",
        "4\t1\t1\t1\t2\t0\t10\t40\t50\t20\t-1\t",
        "5\t1\t2\t1\t1\t1\t10\t90\t50\t20\t80\tMarseille",
    ]
    page = ocr.parse_tsv("\n".join([header, *rows]))
    assert page.text == "Le port\nde\n\nMarseille"
    assert page.confidence == pytest.approx((96.5 + 93.5 + 90 + 80) / 4)
    assert page.words[1] == ("port", 70, 10, 50, 20)
    assert ocr.pages_text([1, 2, 3, 7]) == "pages 1-3, 7" and ocr.pages_text([4]) == "page 4"


def _wait_for_tesseract(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Return once ``proc`` (a build) runs tesseract on a page."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-500:]
        children = psutil.Process(proc.pid).children(recursive=True)
        if any(c.name() == "tesseract" for c in children):
            return
        time.sleep(0.05)
    raise AssertionError("the build never ran tesseract")


@needs_tesseract
@pytest.mark.slow
def test_a_long_ocr_can_be_interrupted_or_killed_and_the_index_stays_as_it_was(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("Le port de Marseille emploie 40 000 personnes.")
    index = tmp_path / "index"
    build_index(folder, index=index, settings=HASHING, show_progress=False)
    before = sorted(d.source for d in load_index(index).documents())
    scanned_pdf(folder / "scan.pdf", PAGES * 3)  # six pages of OCR
    command = [sys.executable, "-m", "sourcier.cli", "index", str(folder), "--index", str(index)]
    for signal_name in ("SIGINT", "SIGKILL"):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_tesseract(proc)
        start = time.monotonic()
        proc.send_signal(getattr(signal, signal_name))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and time.monotonic() - start < 10
        if signal_name == "SIGINT":  # stopped at once, in one line, no traceback
            assert "Traceback" not in err
        assert sorted(d.source for d in load_index(index).documents()) == before
        assert ask("Combien de personnes le port emploie-t-il ?", index=index).citations
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    assert "pages 1-6 read by OCR" in done.stdout
    assert sorted(d.source for d in load_index(index).documents()) == sorted(
        [*before, str(folder / "scan.pdf")]
    )
