"""PDF (``.pdf``): pypdf's text extraction, page by page, pages kept
(:class:`~sourcier.ingest.readers.Paged`). A page without a text layer (a scan) is read
by OCR where Tesseract is installed (:mod:`sourcier.ingest.ocr`). Headings are the
short lines set in a font clearly larger than the body text's (:class:`_Sizes`)."""

from __future__ import annotations

import io
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

from ...errors import LoadError
from .. import ocr
from . import Paged

logger = logging.getLogger(__name__)


def read_pdf(data: bytes) -> Paged:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception as err:
                raise LoadError(
                    "PDF is encrypted and cannot be opened", code="pdf_encrypted"
                ) from err
            if not unlocked:
                raise LoadError("PDF is password-protected", code="pdf_encrypted")
        pages: list[str] = []
        unreadable: list[int] = []
        scanned: list[int] = []
        sizes = _Sizes()
        for number, page in enumerate(reader.pages, start=1):
            try:
                text = page.extract_text(visitor_text=sizes.visit) or ""
                sizes.end_page()
            except Exception:  # a broken page: the others are kept, the report names it
                logger.debug("page %d of a PDF could not be read", number, exc_info=True)
                text = ""
                unreadable.append(number)
            pages.append(text)
            few = number not in unreadable and _letters(text) < ocr.MIN_TEXT_CHARS
            if few and _has_images(page):
                scanned.append(number)
    except LoadError:
        raise
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable PDF ({type(err).__name__}: {err})", code="pdf_corrupt"
        ) from err
    notes: list[str] = []
    if scanned:
        notes.append(_read_scans(data, pages, scanned))
    if not any(ch.isalnum() for page in pages for ch in page):
        if scanned and _ocr_missing():
            raise LoadError(
                f"PDF has no text layer (a scan?); {ocr.INSTALL_HINT}", code="ocr_missing"
            )
        raise LoadError("PDF has no extractable text", code="pdf_no_text")
    notes = [n for n in notes if n]
    return Paged(tuple(pages), None, tuple(unreadable), tuple(notes), sizes.headings())


def _letters(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _has_images(page: Any) -> bool:
    """Whether a page draws an image (a scan has one; a blank page none)."""
    try:
        resources = page.get("/Resources")
        objects = resources.get_object().get("/XObject") if resources is not None else None
        if objects is None:
            return False
        return any(
            o.get_object().get("/Subtype") == "/Image" for o in objects.get_object().values()
        )
    except Exception:  # a damaged resource dictionary: not a scan we can tell
        return False


def _ocr_missing() -> str:
    why = ocr.missing()
    if not why and ocr.pdf_renderer_missing():
        why = "pypdfium2 is not installed"
    return why


def _read_scans(data: bytes, pages: list[str], scanned: list[int]) -> str:
    """OCR the ``scanned`` pages into ``pages``; the note for the report."""
    why = _ocr_missing()
    if why:
        which = ocr.pages_text(scanned)
        verbs = ("has", "was") if len(scanned) == 1 else ("have", "were")
        return (
            f"{which} {verbs[0]} no text layer and {verbs[1]} not read ({why}; {ocr.INSTALL_HINT})"
        )
    from tqdm.auto import tqdm

    read: list[int] = []
    confidences: list[float] = []
    # a bar of its own (on a terminal only): a long scan is minutes of one file's read
    with tqdm(total=len(scanned), desc="OCR", unit="page", leave=False, disable=None) as bar:
        for number, page in _recognised(data, scanned):
            logger.info("OCR: page %d, mean confidence %.0f%%", number, page.confidence)
            if page.text.strip():
                pages[number - 1] = page.text
                read.append(number)
                confidences.append(page.confidence)
            bar.update(1)
    return ocr.confidence_note(read, confidences) if read else ""


def _recognised(data: bytes, numbers: list[int]) -> Iterator[tuple[int, ocr.OcrPage]]:
    """OCR of the pages ``numbers``, in order: pages are rendered here one at a time
    (pdfium is not thread-safe) and read by one tesseract process per core, with a few
    pages rendered ahead. An interruption cancels the pages not started."""
    from concurrent.futures import Future, ThreadPoolExecutor

    import pypdfium2

    ahead = 2 * ocr.workers()
    pending: deque[tuple[int, Future[ocr.OcrPage]]] = deque()
    pool = ThreadPoolExecutor(ocr.workers())
    pdf = pypdfium2.PdfDocument(data)  # opened once for every page it renders
    try:
        for number in numbers:
            image = ocr.render_pdf_page(pdf[number - 1])
            pending.append((number, pool.submit(ocr.recognise, image)))
            if len(pending) >= ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        pdf.close()


HEADING_RATIO = 1.2
"""A line whose every letter is set at least this many times the body size is a
heading (the body size: the size most characters of the document are set in)."""


class _Sizes:
    """The font size of every line pypdf extracts, to find the headings."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, float]] = []  # (text, smallest letter size)
        self.chars: dict[float, int] = {}
        self._text: list[str] = []
        self._smallest = float("inf")

    def visit(self, text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        scale = abs(float(tm[3]) * float(cm[3])) or 1.0
        effective = round(float(size) * scale, 1)
        for part, last in _split_lines(text):
            letters = sum(ch.isalnum() for ch in part)
            if letters:
                self.chars[effective] = self.chars.get(effective, 0) + letters
                self._smallest = min(self._smallest, effective)
            self._text.append(part)
            if not last:
                self._close()

    def end_page(self) -> None:
        self._close()

    def _close(self) -> None:
        line = " ".join("".join(self._text).split())
        if line:
            self.lines.append((line, self._smallest))
        self._text, self._smallest = [], float("inf")

    def headings(self) -> tuple[tuple[str, int], ...]:
        if not self.chars:
            return ()
        body = max(self.chars.items(), key=lambda kv: kv[1])[0]
        found = [
            (line, size)
            for line, size in self.lines
            if size >= HEADING_RATIO * body and 2 <= len(line) <= 150
        ]
        largest = max((size for _, size in found), default=0.0)
        return tuple((line, 1 if size == largest else 2) for line, size in found)


def _split_lines(text: str) -> list[tuple[str, bool]]:
    """``text`` cut at its line breaks: each piece, and whether the line goes on after it."""
    pieces = text.split("\n")
    return [(piece, k == len(pieces) - 1) for k, piece in enumerate(pieces)]
