"""Reading scans by OCR, offline: the system's Tesseract in French and English.

Tesseract is a program, not a Python package: ``apt install tesseract-ocr
tesseract-ocr-fra`` (Debian, Ubuntu) puts it and its French data on the machine, and
``pip install 'sourcier[ocr]'`` adds pypdfium2, which renders a PDF's pages to images.
:func:`missing` and :func:`pdf_renderer_missing` say whether both are there; without
them a scan is skipped with :data:`INSTALL_HINT` and nothing else changes.

Each page image goes to ``tesseract - - -l fra+eng tsv`` on a pipe (no temporary
files); its TSV gives the words, their boxes and confidences. Words are joined into
lines, lines into paragraphs by Tesseract's own layout (block and paragraph numbers).
Each tesseract runs on one thread (``OMP_THREAD_LIMIT=1``), and a document's pages are
read by one process per core (:func:`workers`): on 2 cores Tesseract's own OpenMP
threads took 11.9 s for a page that one thread reads in 1.9 s.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ..errors import LoadError
from ..machine import cores

logger = logging.getLogger(__name__)

LANGUAGES = "fra+eng"
DPI = 300
"""Pages are rendered at this resolution for OCR (Tesseract's recommendation)."""
MAX_PIXELS = 60_000_000
"""A PDF page rendered for OCR larger than this (60 megapixels; an A4 page at 300 dpi is
8.7) is refused; an image file's limit is the setting ``index.max_image_mp``."""
PAGE_TIMEOUT_S = 300
INSTALL_HINT = (
    "install Tesseract to read it by OCR: apt install tesseract-ocr tesseract-ocr-fra, "
    "then pip install 'sourcier[ocr]'"
)
MIN_TEXT_CHARS = 20
"""A PDF page whose text layer has fewer letters and digits than this is read by OCR."""


@dataclass(frozen=True)
class OcrPage:
    """What OCR read on one page: its text, the mean confidence of its words (0-100),
    and each word with its box in the image's pixels ``(text, left, top, width,
    height)``."""

    text: str
    confidence: float
    words: tuple[tuple[str, int, int, int, int], ...] = ()


@functools.cache
def _tesseract() -> tuple[str | None, str]:
    """The tesseract binary, and why it cannot be used ("" when it can)."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None, "Tesseract is not installed"
    try:
        listed = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"Tesseract does not run ({err})"
    missing = [lang for lang in LANGUAGES.split("+") if lang not in listed]
    if missing:
        return None, f"Tesseract has no {'+'.join(missing)} language data"
    return binary, ""


def missing() -> str:
    """Why OCR cannot run here ("" when it can): Tesseract, its languages, pypdfium2."""
    _, why = _tesseract()
    return why


def workers() -> int:
    """How many pages to OCR at once: one per core, at most 4."""
    return min(4, cores())


def pdf_renderer_missing() -> bool:
    try:
        import pypdfium2  # noqa: F401
    except ImportError:
        return True
    return False


def recognise(image: bytes) -> OcrPage:
    """OCR of one image (PNG, JPEG or TIFF bytes).

    Raises:
        LoadError: Tesseract is missing or failed on the image.
    """
    binary, why = _tesseract()
    if binary is None:
        raise LoadError(f"{why}; {INSTALL_HINT}", code="ocr_missing")
    try:
        done = subprocess.run(
            [binary, "-", "-", "-l", LANGUAGES, "tsv"],
            input=image,
            capture_output=True,
            timeout=PAGE_TIMEOUT_S,
            check=False,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
    except subprocess.TimeoutExpired as err:
        raise LoadError(f"OCR took over {PAGE_TIMEOUT_S} s on one page", code="ocr_failed") from err
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise LoadError(
            f"OCR failed ({reason[-1] if reason else f'exit {done.returncode}'})",
            code="ocr_failed",
        )
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> OcrPage:
    """Tesseract's TSV as text: words of a line joined by spaces, lines by a line break,
    paragraphs and blocks by a blank line; the mean confidence of the words read."""
    paragraphs: list[list[str]] = []
    lines: list[str] = []
    words: list[tuple[str, int, int, int, int]] = []
    confidences: list[float] = []
    current: tuple[str, ...] | None = None
    paragraph: tuple[str, ...] | None = None
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        word = cells[11].strip()
        line_key, par_key = tuple(cells[1:5]), tuple(cells[1:4])
        if par_key != paragraph:
            if lines:
                paragraphs.append(lines)
            lines, paragraph, current = [], par_key, None
        if line_key != current:
            lines.append(word)
            current = line_key
        else:
            lines[-1] += " " + word
        left, top, width, height = (int(c) for c in cells[6:10])
        words.append((word, left, top, width, height))
        conf = float(cells[10])
        if conf >= 0:
            confidences.append(conf)
    if lines:
        paragraphs.append(lines)
    text = "\n\n".join("\n".join(p) for p in paragraphs)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return OcrPage(text, mean, tuple(words))


def check_size(width: int, height: int, max_pixels: int | None = None) -> None:
    """Refuse an image over ``max_pixels`` (default :data:`MAX_PIXELS`), with its size."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        raise LoadError(
            f"image is {width}×{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"{limit / 1e6:g} MP limit for OCR",
            code="image_too_large",
            width=width,
            height=height,
        )


def render_pdf_page(page: Any) -> bytes:
    """A page of a PDF opened with pypdfium2 (``pypdfium2.PdfDocument(data)[index]``) as
    a PNG at :data:`DPI`, for OCR. The caller opens the document once for all its pages
    (and on one thread: pdfium is not thread-safe)."""
    import io

    width, height = page.get_size()
    scale = DPI / 72
    check_size(int(width * scale), int(height * scale))
    image = page.render(scale=scale, grayscale=True).to_pil()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def confidence_note(pages: list[int], confidences: list[float]) -> str:
    """``"pages 1-3 read by OCR (mean confidence 91%)"``."""
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return f"{pages_text(pages)} read by OCR (mean confidence {mean:.0f}%)"


def pages_text(pages: list[int]) -> str:
    """``"page 3"``, ``"pages 1-3, 7"``."""
    runs: list[str] = []
    start = prev = pages[0]
    for p in [*pages[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ("page " if len(pages) == 1 else "pages ") + ", ".join(runs)
