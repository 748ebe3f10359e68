"""The quote on the page: a PDF page rendered to an image, with the boxes of the quoted
characters to highlight over it.

For a page with a text layer, the characters and their boxes come from pdfium's own
text extraction; the quote is found in it with spacing ignored (pdfium and pypdf, which
read the text for the index, differ only in whitespace). For a page read by OCR, the
page is read again (the same rendering, the same Tesseract: the same words) and the
quote's words are highlighted with their OCR word boxes. When the file is gone, or the
quote cannot be found on the page any more (the file changed since it was indexed), the
page is shown without highlights and says so. Needs pypdfium2 (``sourcier[ocr]``);
without it, or for a format without pages, there is no page view and the text view
stays alone.
"""

from __future__ import annotations

import base64
import io
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ingest import ocr
from ..types import Document

logger = logging.getLogger(__name__)

SCALE = 1.5
"""Pages are shown at 108 dpi (1.5 × 72)."""
MAX_PAGES = 3
"""A quote over more pages shows its first ones."""

Box = tuple[float, float, float, float]
"""``(left, top, width, height)`` as fractions of the page image's width and height."""


@dataclass(frozen=True)
class PageImage:
    """One page of a document as an image, with the boxes to highlight on it.

    ``located`` is false when the quote could not be found on the page (the boxes are
    then empty)."""

    page: int
    png: bytes
    boxes: tuple[Box, ...]
    located: bool

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def page_images(doc: Document, start: int, end: int) -> list[PageImage]:
    """The pages ``doc.text[start:end]`` sits on, rendered, with the span's boxes.

    ``[]`` when there is nothing to show: not a PDF, no pages, the file is gone or
    unreadable, or pypdfium2 is not installed.
    """
    if not 0 <= start < end <= len(doc.text):
        return []
    first, last = doc.page_span(start, end)
    path = Path(doc.source)
    if first is None or last is None or path.suffix.lower() != ".pdf" or not path.is_file():
        return []
    try:
        import pypdfium2
    except ImportError:
        return []
    try:
        pdf = pypdfium2.PdfDocument(path.read_bytes())
    except Exception:  # the file changed into something unreadable since it was indexed
        logger.debug("cannot open %s for its page view", path, exc_info=True)
        return []
    try:
        out = []
        for number in range(first, min(last, first + MAX_PAGES - 1) + 1):
            if number > len(pdf):
                break
            lo, hi = _page_range(doc, number)
            quote = doc.text[max(start, lo) : min(end, hi)]
            out.append(_page(pdf, number, quote))
        return out
    finally:
        pdf.close()


def _page_range(doc: Document, number: int) -> tuple[int, int]:
    lo = doc.pages[number - 1]
    hi = doc.pages[number] if number < len(doc.pages) else len(doc.text)
    return lo, hi


def _page(pdf: Any, number: int, quote: str) -> PageImage:
    page = pdf[number - 1]
    width, height = page.get_size()
    image = page.render(scale=SCALE).to_pil()
    png = io.BytesIO()
    image.save(png, format="PNG")
    textpage = page.get_textpage()
    count = textpage.count_chars()
    chars = [textpage.get_text_range(i, 1) for i in range(count)]
    if sum(c.isalnum() for c in chars) >= ocr.MIN_TEXT_CHARS:
        boxes = _text_boxes(chars, textpage, quote, width, height)
    else:  # a scan: its words were read by OCR
        boxes = _ocr_boxes(page, quote)
    return PageImage(number, png.getvalue(), tuple(boxes or ()), boxes is not None)


def _key(text: str) -> tuple[str, list[int]]:
    """``text`` without spacing, NFKC, and for each kept character its index in ``text``."""
    kept: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for part in unicodedata.normalize("NFKC", ch):
            if not part.isspace() and part not in "\u00ad\ufffe\uffff\x02":
                kept.append(part)
                where.append(i)
    return "".join(kept), where


def _text_boxes(
    chars: list[str], textpage: object, quote: str, width: float, height: float
) -> list[Box] | None:
    """The quote's characters' boxes, merged per line; ``None`` when it is not found."""
    haystack, where = _key("".join(chars))
    needle, _ = _key(quote)
    at = haystack.find(needle) if needle else -1
    if at < 0:
        return None
    indices = sorted({where[k] for k in range(at, at + len(needle))})
    rects = [textpage.get_charbox(i) for i in indices]  # type: ignore[attr-defined]
    return _merge_lines(
        [
            (left / width, 1 - top / height, (right - left) / width, (top - bottom) / height)
            for left, bottom, right, top in rects
        ]
    )


def _ocr_boxes(page: Any, quote: str) -> list[Box] | None:
    if ocr.missing():
        return None
    image = ocr.render_pdf_page(page)
    from PIL import Image

    with Image.open(io.BytesIO(image)) as shown:
        width, height = shown.size
    page = ocr.recognise(image)
    words = [w for w, *_ in page.words]
    haystack, where = _key(" ".join(words))
    starts = _word_starts(words)
    needle, _ = _key(quote)
    at = haystack.find(needle) if needle else -1
    if at < 0:
        return None
    chars = {where[k] for k in range(at, at + len(needle))}
    hit = {i for i, (s, e) in enumerate(starts) if any(s <= c < e for c in chars)}
    return _merge_lines(
        [
            (left / width, top / height, w / width, h / height)
            for i, (_, left, top, w, h) in enumerate(page.words)
            if i in hit
        ]
    )


def _word_starts(words: list[str]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for word in words:
        spans.append((at, at + len(word)))
        at += len(word) + 1
    return spans


def _merge_lines(boxes: list[Box]) -> list[Box]:
    """Character boxes merged into one box per run on a line (fewer elements to draw)."""
    merged: list[list[float]] = []
    for left, top, w, h in boxes:
        if w <= 0 or h <= 0:
            continue
        if merged:
            m = merged[-1]
            same_line = abs(m[1] - top) < 0.5 * max(h, m[3])
            close = left - (m[0] + m[2]) < 3 * h and left >= m[0] - 1e-6
            if same_line and close:
                right = max(m[0] + m[2], left + w)
                bottom = max(m[1] + m[3], top + h)
                m[1] = min(m[1], top)
                m[2], m[3] = right - m[0], bottom - m[1]
                continue
        merged.append([left, top, w, h])
    return [(a, b, c, d) for a, b, c, d in merged]
