"""Plain text (``.txt``): bytes decoded with a byte-order mark, strict UTF-8, or a
Western (cp1252) guess checked against charset-normalizer, so French text in UTF-8,
cp1252 or latin-1 reads right."""

from __future__ import annotations

import logging
import re

from ...errors import LoadError

logger = logging.getLogger(__name__)


_WESTERN_CHARS = frozenset(
    "àâäáãåçéèêëíìîïñóòôöõúùûüýÿœæßÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸŒÆ"
    "«»‘’‚“”„…–—•€°§©®™·¿¡ªº±×÷¹²³¼½¾\u00a0"
)


_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
_LATIN9_HINT = re.compile(rb"[A-Za-z][\xbc\xbd][A-Za-z]")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode_bytes(data: bytes) -> str:
    """Decode the bytes of a text file, guessing the encoding.

    Order: a byte-order mark; strict UTF-8 (and nearly-valid UTF-8, whose few bad
    bytes become U+FFFD and are cleaned away later); a Western single-byte reading
    (cp1252, which agrees with latin-1 on every printable latin-1 byte and also
    maps 0x80-0x9F to ’ œ … etc.; ISO-8859-15 when œ/Œ sit between letters) when its
    non-ASCII characters look like French or another Western language; otherwise
    charset-normalizer's best guess.

    Args:
        data: raw file content.

    Returns:
        The decoded text.

    Raises:
        LoadError: the bytes are binary (NUL bytes, control characters) or no
            encoding fits.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as err:
                raise LoadError(
                    f"not valid {codec} text despite its byte-order mark", code="not_text"
                ) from err
    if b"\x00" in data:
        raise LoadError("binary file, not text (it contains NUL bytes)", code="binary")
    try:
        return check_not_binary(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    good = sum(1 for ch in lenient if ord(ch) > 127 and ch != "\ufffd")
    if good >= 3 and bad * 20 <= good:
        logger.debug("nearly valid UTF-8 (%d bad sequence(s)); decoding leniently", bad)
        return check_not_binary(lenient)

    western: str | None = None
    if _C1_BYTES.search(data) and not _CP1252_UNDEFINED.search(data):
        western = data.decode("cp1252")
    elif not _C1_BYTES.search(data):
        western = data.decode("iso8859-15" if _LATIN9_HINT.search(data) else "latin-1")
    if western is not None and _looks_western(western):
        return check_not_binary(western)

    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        return check_not_binary(str(best))
    if western is not None:
        return check_not_binary(western)
    raise LoadError(
        "not a text file (its character encoding could not be recognised)", code="not_text"
    )


def _looks_western(text: str) -> bool:
    non_ascii = [ch for ch in text if ord(ch) > 127]
    if not non_ascii:
        return True
    familiar = sum(1 for ch in non_ascii if ch in _WESTERN_CHARS)
    return familiar >= 0.9 * len(non_ascii)


_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def check_not_binary(text: str) -> str:
    if not text:
        return text
    controls = len(_BINARY_CONTROLS.findall(text))
    if controls > max(2, len(text) // 100):
        raise LoadError("binary file, not text (it is full of control characters)", code="binary")
    return text


def read_text(data: bytes) -> tuple[str, str | None]:
    return decode_bytes(data), None
