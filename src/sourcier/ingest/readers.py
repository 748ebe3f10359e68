"""Format readers: a file's bytes -> its text (and a title when the format names one).

- ``.txt``: bytes decoded with BOM / strict UTF-8 / a Western (cp1252) guess checked
  against charset-normalizer, so French text in UTF-8, cp1252 or latin-1 reads right.
- ``.md``: the same decoding, then Markdown syntax is removed (headings, emphasis,
  links, code fences) and the words are kept.
- ``.html`` / ``.htm``: BeautifulSoup with the standard library ``html.parser``;
  ``script``, ``style`` and ``nav`` are dropped and block elements become paragraphs.
- ``.pdf``: pypdf text extraction, page by page.
- ``.docx``: python-docx, body paragraphs and tables in document order.

Every reader's text then goes through :func:`sourcier.cleaning.clean_text`.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

from ..errors import LoadError

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
        return _check_not_binary(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    good = sum(1 for ch in lenient if ord(ch) > 127 and ch != "\ufffd")
    if good >= 3 and bad * 20 <= good:
        logger.debug("nearly valid UTF-8 (%d bad sequence(s)); decoding leniently", bad)
        return _check_not_binary(lenient)

    western: str | None = None
    if _C1_BYTES.search(data) and not _CP1252_UNDEFINED.search(data):
        western = data.decode("cp1252")
    elif not _C1_BYTES.search(data):
        western = data.decode("iso8859-15" if _LATIN9_HINT.search(data) else "latin-1")
    if western is not None and _looks_western(western):
        return _check_not_binary(western)

    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        return _check_not_binary(str(best))
    if western is not None:
        return _check_not_binary(western)
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


def _check_not_binary(text: str) -> str:
    if not text:
        return text
    controls = len(_BINARY_CONTROLS.findall(text))
    if controls > max(2, len(text) // 100):
        raise LoadError("binary file, not text (it is full of control characters)", code="binary")
    return text


# --------------------------------------------------------------------------- readers


def _read_text(data: bytes) -> tuple[str, str | None]:
    return decode_bytes(data), None


def _read_markdown(data: bytes) -> tuple[str, str | None]:
    return markdown_to_text(decode_bytes(data))


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)[ \t]*$")
_HRULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE = re.compile(r"^\s{0,3}(?:>[ \t]?)+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$")
_BULLET_MD = re.compile(r"^(\s*)[*+][ \t]+")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def markdown_to_text(markdown: str) -> tuple[str, str | None]:
    """Remove Markdown syntax and keep the words.

    Args:
        markdown: Markdown source.

    Returns:
        ``(text, title)``: the plain text, and the front-matter ``title:`` or the
        first heading (level 1 preferred), or ``None``.
    """
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    title: str | None = None
    fm = _FRONT_MATTER.match(text)
    if fm:
        for line in fm.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
        text = text[fm.end() :]
    text = _HTML_COMMENT.sub("", text)
    headings: list[tuple[int, str]] = []
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            out.append("")
            continue
        if in_code:
            out.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            heading = strip_markup(atx.group(2) or "")
            headings.append((len(atx.group(1)), heading))
            out.extend(["", heading, ""])
            continue
        if _SETEXT.match(line) and out and out[-1].strip():  # "Title\n=====" underline
            level = 1 if line.strip().startswith("=") else 2
            headings.append((level, strip_markup(out[-1])))
            out.append("")
            continue
        if _TABLE_RULE.match(line) and "-" in line:
            continue  # the |---|---| line under a table header
        if _HRULE.match(line) or _REF_DEF.match(line):
            out.append("")
            continue
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            line = stripped[1:-1].strip()  # table row: keep the inner "a | b" cells
        line = _QUOTE.sub("", line)
        line = _BULLET_MD.sub(r"\1- ", line)
        out.append(strip_markup(line))
    if title is None and headings:
        level_one = [h for level, h in headings if level == 1 and h]
        any_heading = [h for _, h in headings if h]
        candidates = level_one or any_heading
        title = candidates[0] if candidates else None
    return "\n".join(out), title


_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
_MD_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_MD_CODE = re.compile(r"`+([^`\n]+?)`+")
_MD_EMPHASIS = re.compile(r"(\*\*\*|\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1")
_MD_UNDERSCORE = re.compile(r"(?<!\w)(___|__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def strip_markup(text: str) -> str:
    """Remove inline Markdown and HTML tags from a short piece of text, keeping the words.

    ``[text](url)`` becomes ``text``, ``**bold**`` becomes ``bold``, ``<b>x</b>``
    becomes ``x``.

    Args:
        text: a line or title.

    Returns:
        The text without markup (not otherwise cleaned; see :func:`clean_text`).
    """
    text = _HTML_TAG.sub("", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = _MD_CODE.sub(r"\1", text)
    for _ in range(3):  # nested emphasis
        new = _MD_UNDERSCORE.sub(r"\2", _MD_EMPHASIS.sub(r"\2", text))
        if new == text:
            break
        text = new
    return text


_HTML_DROP = frozenset(
    {"script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "head"}
)
_HTML_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "li",
        "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _read_html(data: bytes) -> tuple[str, str | None]:
    import codecs

    from bs4 import BeautifulSoup

    text: str | None = None
    declared = _META_CHARSET.search(data[:4096])
    if declared and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            codec = None
        if codec is not None and b"\x00" not in data:
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                text = None
    if text is None:
        text = decode_bytes(data)
    soup = BeautifulSoup(text, "html.parser")
    title: str | None = None
    h1 = soup.find("h1")
    if h1 is not None:
        title = " ".join(h1.get_text(" ").split()) or None
    if title is None and soup.title is not None:
        title = " ".join(soup.title.get_text(" ").split()) or None
    return _html_text(soup), title


def _html_text(node: object) -> str:
    from bs4 import Comment, NavigableString, Tag
    from bs4.element import PreformattedString

    parts: list[str] = []
    children = getattr(node, "children", ())
    for child in children:
        if isinstance(child, (Comment, PreformattedString)):
            continue
        if isinstance(child, NavigableString):
            parts.append(re.sub(r"\s+", " ", str(child)))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _HTML_DROP:
            continue
        if name == "br":
            parts.append("\n")
        elif name == "pre":
            parts.append("\n\n" + child.get_text() + "\n\n")
        elif name == "tr":
            cells = [
                " ".join(_html_text(cell).split())
                for cell in child.find_all(["td", "th"], recursive=False)
            ]
            parts.append("\n\n" + " | ".join(c for c in cells if c) + "\n\n")
        elif name in _HTML_BLOCKS:
            parts.append("\n\n" + _html_text(child) + "\n\n")
        elif name in ("td", "th"):
            parts.append(" " + _html_text(child) + " ")
        else:
            parts.append(_html_text(child))
    return "".join(parts)


def _read_pdf(data: bytes) -> tuple[str, str | None]:
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


def _read_docx(data: bytes) -> tuple[str, str | None]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        title: str | None = None
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = item.text
                blocks.append(text)
                if title is None and text.strip():
                    style = item.style.name if item.style is not None else ""
                    if style and (style == "Title" or style.startswith("Heading 1")):
                        title = text.strip()
            elif isinstance(item, Table):
                blocks.extend(_docx_table(item))
    except Exception as err:
        raise LoadError(
            f"corrupt or unreadable .docx file ({type(err).__name__}: {err})",
            code="docx_corrupt",
        ) from err
    return "\n\n".join(blocks), title


def _docx_table(table: object) -> Iterator[str]:
    for row in getattr(table, "rows", ()):
        cells: list[str] = []
        for cell in row.cells:
            text = "\n".join(p.text for p in cell.paragraphs).strip()
            if text and (not cells or cells[-1] != text):  # merged cells repeat
                cells.append(text)
        if not cells:
            continue
        if all(len(c) <= 80 and "\n" not in c for c in cells):
            yield " | ".join(cells)
        else:
            yield from cells


READERS = {
    ".txt": _read_text,
    ".md": _read_markdown,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
}
