"""PDF (``.pdf``): pypdf's text extraction, page by page."""

from __future__ import annotations

import io
import logging

from ...errors import LoadError

logger = logging.getLogger(__name__)


def read_pdf(data: bytes) -> tuple[str, str | None]:
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
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable PDF ({type(err).__name__}: {err})", code="pdf_corrupt"
        ) from err
    text = "\n\n".join(p for p in pages if p.strip())
    if not any(ch.isalnum() for ch in text):
        raise LoadError(
            "PDF has no extractable text (scanned images? run OCR on it first)",
            code="pdf_no_text",
        )
    return text, None
