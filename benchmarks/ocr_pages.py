"""OCR on this machine: seconds per page and character accuracy, on pages made here.

The bundled corpus's five press releases are typeset as A4 pages (Liberation Serif or
DejaVu Serif, 11 pt, when the system has one; fpdf's Times otherwise, with the
characters it lacks replaced), each page rendered to an image at the OCR resolution
(300 dpi, grey), and the images read back one at a time with
:func:`sourcier.ingest.ocr.recognise` (seconds per page, one tesseract thread); then the
same images as a scanned PDF read by ``load_document``, as a build reads it (one
tesseract process per core). Character accuracy is ``1 - edit distance / reference
length`` on the texts with whitespace collapsed (so line breaks do not count). The
render of each page is timed apart from the OCR.

    python benchmarks/ocr_pages.py                 # all pages of the five releases
    python benchmarks/ocr_pages.py --pages 3 --json out.json

Needs Tesseract with French data and pypdfium2 (``make ocr-deps``, ``sourcier[ocr]``).
Run it alone: another job on the machine makes every figure wrong.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FONTS = (
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
)


def typeset(texts: list[str]) -> tuple[bytes, list[str]]:
    """The texts as a PDF with text, and each page's text as typeset (the reference)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    font = next((f for f in FONTS if Path(f).is_file()), None)
    if font:
        pdf.add_font("serif", "", font)
        pdf.set_font("serif", size=11)
    else:
        pdf.set_font("Times", size=11)
    references: list[str] = []
    for text in texts:
        if not font:
            text = text.encode("latin-1", "replace").decode("latin-1")
        pdf.add_page()
        pdf.multi_cell(0, 5.5, text)
    raw = bytes(pdf.output())
    import io

    from pypdf import PdfReader

    for page in PdfReader(io.BytesIO(raw)).pages:
        references.append(page.extract_text() or "")
    return raw, references


def accuracy(reference: str, read: str) -> float:
    a, b = _flat(reference), _flat(read)
    if not a:
        return 1.0 if not b else 0.0
    return max(0.0, 1 - _distance(a, b) / len(a))


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def main() -> None:
    import pypdfium2
    from scale_index import platform as cpu_name

    from sourcier.ingest import ocr
    from sourcier.paths import bundled_corpus_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=0, help="at most this many pages (0: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if ocr.missing() or ocr.pdf_renderer_missing():
        sys.exit(f"OCR is not available here: {ocr.missing() or 'pypdfium2 is missing'}")
    texts = [p.read_text(encoding="utf-8") for p in sorted(bundled_corpus_dir().glob("*.txt"))]
    raw, references = typeset(texts)
    count = len(references) if not args.pages else min(args.pages, len(references))
    rows: list[dict[str, Any]] = []
    images: list[bytes] = []
    document = pypdfium2.PdfDocument(raw)
    for index in range(count):
        t = time.perf_counter()
        image = ocr.render_pdf_page(document[index])
        render_s = time.perf_counter() - t
        images.append(image)
        t = time.perf_counter()
        page = ocr.recognise(image)
        ocr_s = time.perf_counter() - t
        rows.append(
            {
                "page": index + 1,
                "chars": len(_flat(references[index])),
                "render_s": round(render_s, 3),
                "ocr_s": round(ocr_s, 3),
                "confidence": round(page.confidence, 1),
                "accuracy": round(accuracy(references[index], page.text), 4),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    document.close()
    scan_s = _scanned_pdf_read(images)
    chars = sum(r["chars"] for r in rows)
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_name(),
        "pages": len(rows),
        "dpi": ocr.DPI,
        "languages": ocr.LANGUAGES,
        "ocr_s_per_page_median": statistics.median(r["ocr_s"] for r in rows),
        "render_s_per_page_median": statistics.median(r["render_s"] for r in rows),
        "scanned_pdf_s_per_page": scan_s / count,
        "ocr_workers": ocr.workers(),
        "accuracy_weighted": sum(r["accuracy"] * r["chars"] for r in rows) / chars,
        "accuracy_min": min(r["accuracy"] for r in rows),
        "confidence_mean": statistics.mean(r["confidence"] for r in rows),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "pages": rows}, indent=1))


def _scanned_pdf_read(images: list[bytes]) -> float:
    """Seconds to read, as a build does (``load_document``), a PDF whose pages are only
    ``images`` (the typeset pages rendered: a scan): OCR with one process per core."""
    import io
    import tempfile

    from fpdf import FPDF

    from sourcier.ingest.loaders import load_document

    pdf = FPDF(format="A4")
    for image in images:
        pdf.add_page()
        pdf.image(io.BytesIO(image), x=0, y=0, w=210, h=297)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        pdf.output(str(path))
        t = time.perf_counter()
        load_document(path)
        return time.perf_counter() - t


if __name__ == "__main__":
    main()
