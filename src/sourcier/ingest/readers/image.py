"""Images (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``): read by OCR
(:mod:`sourcier.ingest.ocr`), when Tesseract is installed. Their size in pixels is
checked first (:func:`check_image`, by ``load_document`` with the configured limit).

An image whose OCR finds fewer than :data:`MIN_WORDS` words, or reads them with a mean
confidence under :data:`MIN_CONFIDENCE`, is a photo or a logo, not a document: it is
skipped as having no text.
"""

from __future__ import annotations

import io

from ...errors import LoadError
from .. import ocr

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
MIN_WORDS = 5
MIN_CONFIDENCE = 50.0


def read_image(data: bytes) -> tuple[str, str | None]:
    why = ocr.missing()
    if why:
        raise LoadError(f"an image is read by OCR: {why}; {ocr.INSTALL_HINT}", code="ocr_missing")
    page = ocr.recognise(data)
    if len(page.words) < MIN_WORDS or page.confidence < MIN_CONFIDENCE:
        raise LoadError(
            f"no text found in the image (OCR read {len(page.words)} word(s), mean "
            f"confidence {page.confidence:.0f}%)",
            code="image_no_text",
            words=len(page.words),
        )
    return page.text, None


def check_image(data: bytes, max_pixels: int) -> None:
    """Refuse an image over ``max_pixels``, with its size, or one that does not open.

    Raises:
        LoadError: too large (``image_too_large``) or damaged (``image_corrupt``).
    """
    try:
        from PIL import Image
    except ImportError:  # Tesseract reads the image itself; only the size check is lost
        return
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable image ({type(err).__name__})", code="image_corrupt"
        ) from err
    ocr.check_size(width, height, max_pixels)
