"""Files -> cleaned documents: discovery, format readers, cleaning, title and date.

Readers by format:

- ``.txt``: bytes decoded with BOM / strict UTF-8 / a Western (cp1252) guess checked
  against charset-normalizer, so French text in UTF-8, cp1252 or latin-1 reads right.
- ``.md``: the same decoding, then Markdown syntax is removed (headings, emphasis,
  links, code fences) and the words are kept.
- ``.html`` / ``.htm``: BeautifulSoup with the standard library ``html.parser``;
  ``script``, ``style`` and ``nav`` are dropped and block elements become paragraphs.
- ``.pdf``: pypdf text extraction, page by page.
- ``.docx``: python-docx, body paragraphs and tables in document order.

Every reader feeds :func:`clean_text`, which removes word-processor debris and
returns NFC text whose paragraphs are separated by exactly one blank line.
A bad file raises :class:`~sourcier.errors.LoadError` with one readable reason;
no other exception type escapes :func:`load_document` for a bad file.
"""

from __future__ import annotations

import calendar
import errno
import hashlib
import io
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, InputError, LoadError
from .language import detect_language
from .types import Document, Skipped

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".txt", ".md", ".html", ".htm", ".pdf", ".docx"})

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_MIB = 1024 * 1024
_MAX_DEPTH = 64
_TITLE_MAX_CHARS = 200
_PROSE_TITLE_MAX_CHARS = 150
_DATELINE_WINDOW = 500


# --------------------------------------------------------------------------- discovery


def discover(paths: Sequence[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Expand files and folders into the list of files sourcier can read.

    Folders are walked recursively in sorted order. What a walk leaves out, each as a
    :class:`Skipped` entry with its reason:

    - hidden files and folders (a name starting with ``.``; code ``hidden_file`` /
      ``hidden_folder``; a hidden folder is not walked);
    - a folder's README: a file whose name, up to its first dot, is ``readme`` in any
      case (``README``, ``README.md``, ``readme.txt``, ``Readme.fr.md``; code
      ``readme``), because it describes the folder rather than being a document;
    - unsupported types, link loops and broken links (instead of an endless walk or
      a crash).

    A file named directly in ``paths`` is always taken, hidden or README alike: that
    is how to index one. Office lock files (``~$...``) are passed over silently.

    Args:
        paths: files and/or folders, in the order to report them.

    Returns:
        ``(files, skipped)``: absolute paths of supported files, de-duplicated (two
        routes to the same file count once), and the entries that were left out,
        each with its reason (for example ``"unsupported file type .xlsx"``).

    Raises:
        InputError: a given path does not exist.
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    for given in paths:
        path = Path(given).expanduser()
        if not os.path.lexists(path):
            kind = "file" if path.suffix.lower() in SUPPORTED_EXTENSIONS else "folder"
            raise InputError(
                f"{kind} not found: {given}", code="path_not_found", kind=kind, path=str(given)
            )
        absolute = Path(os.path.abspath(path))
        _visit(absolute, (), files, skipped, seen_files, seen_dirs)
    logger.debug("discovered %d file(s), skipped %d", len(files), len(skipped))
    return files, skipped


def _walk(
    directory: Path,
    ancestors: tuple[str, ...],
    files: list[Path],
    skipped: list[Skipped],
    seen_files: set[str],
    seen_dirs: set[str],
) -> None:
    """Depth-first, sorted walk; ``ancestors`` holds the real paths above ``directory``."""
    if ancestors[-1] in seen_dirs:
        logger.debug("folder %s already walked through another path", directory)
        return
    seen_dirs.add(ancestors[-1])
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError:
        skipped.append(Skipped(str(directory), "permission denied", "permission_denied"))
        return
    except OSError as err:
        skipped.append(
            Skipped(str(directory), f"cannot read folder: {err.strerror or err}", "unreadable")
        )
        return
    for entry in entries:
        if entry.name.startswith("~$"):  # an Office lock file, not a document
            continue
        if entry.name.startswith("."):
            skipped.append(_hidden(entry))
        elif is_readme(entry.name) and not entry.is_dir():
            skipped.append(
                Skipped(
                    entry.path,
                    "a folder's README, not a document; name the file itself to index it",
                    "readme",
                )
            )
        else:
            _visit(Path(entry.path), ancestors, files, skipped, seen_files, seen_dirs)


def is_readme(name: str) -> bool:
    """Whether a file name is a README: up to its first dot, ``readme`` in any case."""
    return name.split(".", 1)[0].lower() == "readme"


def _hidden(entry: os.DirEntry[str]) -> Skipped:
    if entry.is_dir():
        return Skipped(
            entry.path,
            "hidden folder (its name starts with a dot); name it to index what it holds",
            "hidden_folder",
        )
    return Skipped(
        entry.path, "hidden file (its name starts with a dot); name it to index it", "hidden_file"
    )


def _visit(
    path: Path,
    ancestors: tuple[str, ...],
    files: list[Path],
    skipped: list[Skipped],
    seen_files: set[str],
    seen_dirs: set[str],
) -> None:
    """Take in one path: walk a folder (guarding loops and depth) or consider a file."""
    try:
        st = os.stat(path)
    except OSError as err:
        failure = _stat_failure(err, path)
        skipped.append(Skipped(str(path), str(failure), failure.code, dict(failure.params)))
        return
    if not stat.S_ISDIR(st.st_mode):
        _consider_file(path, st, files, skipped, seen_files)
        return
    real = os.path.realpath(path)
    if real in ancestors:
        skipped.append(
            Skipped(str(path), "symbolic link loop (points to a parent folder)", "symlink_loop")
        )
    elif len(ancestors) >= _MAX_DEPTH:
        skipped.append(
            Skipped(
                str(path),
                f"folder nested more than {_MAX_DEPTH} deep",
                "too_deep",
                {"depth": _MAX_DEPTH},
            )
        )
    else:
        _walk(path, (*ancestors, real), files, skipped, seen_files, seen_dirs)


def _consider_file(
    path: Path, st: os.stat_result, files: list[Path], skipped: list[Skipped], seen: set[str]
) -> None:
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(str(path), "not a regular file", "not_regular"))
        return
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        err = _unsupported(suffix)
        skipped.append(Skipped(str(path), str(err), err.code, dict(err.params)))
        return
    key = os.path.realpath(path)
    if key in seen:
        logger.debug("%s already listed through another path", path)
        return
    seen.add(key)
    files.append(path)


def _stat_failure(err: OSError, path: Path) -> LoadError:
    """Why a path that cannot be stat-ed is left out."""
    if err.errno == errno.ELOOP:
        return LoadError("symbolic link loop", code="symlink_loop")
    if err.errno == errno.ENOENT and path.is_symlink():
        return LoadError("broken symbolic link (its target does not exist)", code="symlink_broken")
    if isinstance(err, PermissionError):
        return LoadError("permission denied", code="permission_denied")
    return LoadError(f"cannot read: {err.strerror or err}", code="unreadable")


def _unsupported(suffix: str) -> LoadError:
    if not suffix:
        return LoadError("unsupported file type (no extension)", code="no_extension")
    return LoadError(f"unsupported file type {suffix}", code="unsupported_type", suffix=suffix)


# --------------------------------------------------------------------------- loading


def load_document(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, source: str | None = None
) -> Document:
    """Read one file into a cleaned :class:`Document`.

    The size is checked from the file's metadata before any content is read.

    Args:
        path: a ``.txt``, ``.md``, ``.html``, ``.htm``, ``.pdf`` or ``.docx`` file.
        max_bytes: larger files are refused.
        source: recorded as ``Document.source``; defaults to ``str(path)``.

    Returns:
        The document: ``doc_id`` is the sha256 of the cleaned text.

    Raises:
        LoadError: the file cannot become a document; the message is the reason
            (empty, binary, corrupt, too large, unreadable, no text...).
        ConfigError: ``max_bytes`` is not positive.
    """
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes ({max_bytes}) must be positive")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise _unsupported(suffix)
    data = _read_bytes(p, max_bytes)
    try:
        raw, title_hint = _READERS[suffix](data)
    except LoadError:
        raise
    except Exception as err:  # a reader library failed in a way we did not foresee
        logger.debug("reader for %s failed", p, exc_info=True)
        raise LoadError(
            f"could not read {suffix} file: {type(err).__name__}: {err}",
            code="reader_failed",
            suffix=suffix,
        ) from err
    if not raw.strip():
        if suffix in (".txt", ".md"):
            raise LoadError("file contains only whitespace", code="empty")
        raise LoadError("no text found in the file", code="no_text")
    text = clean_text(raw)
    if not any(ch.isalnum() for ch in text):
        raise LoadError("no text left after cleaning", code="no_text")
    title = ""
    if title_hint:
        title = _shorten(_tidy_title(clean_text(title_hint)), _TITLE_MAX_CHARS)
        if _is_boilerplate_line(title):
            title = ""
    if not title:
        title = find_title(text)
    if not title:
        title = re.sub(r"[-_]+", " ", p.stem).strip() or p.name
    date_raw, date_iso = find_date(text)
    text = _drop_date_label(text)
    doc = Document(
        doc_id=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source=source if source is not None else str(path),
        title=title,
        text=text,
        date_raw=date_raw,
        date_iso=date_iso,
        language=detect_language(text),
    )
    logger.debug("loaded %s: %d chars, title %r, date %r", p, len(text), title, date_iso)
    return doc


def _drop_date_label(text: str) -> str:
    """Remove a date label that opens the text ("date 2017-11 Les membres…").

    The date stays the document's date (``find_date`` reads it first); without the
    label no quote starts with it. A label followed by nothing is left as it is.
    """
    stripped = text.lstrip()
    m = _LEADING_DATE_LABEL.match(stripped)
    if not m:
        return text
    rest = stripped[m.end() :]
    return rest if any(ch.isalnum() for ch in rest) else text


def _format_size(n: int) -> str:
    if n >= _MIB:
        return f"{n / _MIB:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _format_limit(n: int) -> str:
    if n >= _MIB:
        return f"{round(n / _MIB, 2):g} MB"
    if n >= 1024:
        return f"{round(n / 1024, 2):g} KB"
    return f"{n} bytes"


def _too_large(size: int, max_bytes: int) -> LoadError:
    return LoadError(
        f"file is {_format_size(size)}, over the {_format_limit(max_bytes)} limit",
        code="too_large",
        size_bytes=size,
        limit_bytes=max_bytes,
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """Stat, check the size, then read at most ``max_bytes + 1`` bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError as err:
        if path.is_symlink():
            raise LoadError(
                "broken symbolic link (its target does not exist)", code="symlink_broken"
            ) from err
        raise LoadError("file not found", code="file_not_found") from err
    except PermissionError as err:
        raise LoadError("permission denied", code="permission_denied") from err
    except OSError as err:
        raise _stat_failure(err, path) from err
    if stat.S_ISDIR(st.st_mode):
        raise LoadError("is a folder, not a file", code="is_folder")
    if not stat.S_ISREG(st.st_mode):
        raise LoadError("not a regular file", code="not_regular")
    if st.st_size == 0:
        raise LoadError("file is empty", code="empty")
    if st.st_size > max_bytes:
        raise _too_large(st.st_size, max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError as err:
        raise LoadError("permission denied", code="permission_denied") from err
    except OSError as err:
        raise LoadError(f"cannot read file: {err.strerror or err}", code="unreadable") from err
    if len(data) > max_bytes:  # the file grew after stat
        raise _too_large(len(data), max_bytes)
    if not data:
        raise LoadError("file is empty", code="empty")
    return data


# --------------------------------------------------------------------------- decoding

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


_READERS = {
    ".txt": _read_text,
    ".md": _read_markdown,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
}


# --------------------------------------------------------------------------- cleaning

_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FIELD_HYPERLINK = re.compile(
    r"\ufffd?[ \t]*\bHYPERLINK[ \t]+(?:\\[a-z][ \t]+)*(?:\"[^\"\n]*\"|[^\s\ufffd]+)"
    r"(?:[ \t]*\\[a-z](?:[ \t]+\"[^\"\n]*\")?)*[ \t]*\ufffd?"
)
_BARE_HYPERLINK = re.compile(r"\bHYPERLINK\b")
_IMAGE_MARK = re.compile(r"\[image:[^\]\n]*\]", re.IGNORECASE)
_SUPERSCRIPT = re.compile(r"\^\{([^{}\n]*)\}")
_INVISIBLE = re.compile("[\ufffd\u200b\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t]+")
_BULLET = re.compile(r"^(?:[-•*·–—▪◦●]\s|\d{1,3}[.)]\s|[a-z][.)]\s)")


def clean_text(raw: str) -> str:
    """Clean extracted text so that it reads naturally and cites well.

    Removes word-processor debris (``[image: image1.emf]``, ``HYPERLINK "..."`` field
    codes while keeping the visible link text, U+FFFD, zero-width characters, ``**``
    bold markers, ``^{ème}`` superscript markup), turns every Unicode space
    (no-break spaces included) and tab into a plain space, drops control
    characters, strips and collapses spaces, applies NFC, and lays the text out as
    paragraphs separated by exactly one blank line. Inside a block, each line is a
    paragraph, except lines that look hard-wrapped (a text editor's or a PDF's
    line width), which are joined back.

    The function is idempotent: ``clean_text(clean_text(x)) == clean_text(x)``.

    Args:
        raw: extracted text.

    Returns:
        The cleaned text, ``""`` when nothing is left.
    """
    text = raw
    for _ in range(10):
        cleaned = _clean_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def _clean_once(raw: str) -> str:
    text = _LINE_BREAKS.sub("\n", raw)
    text = _FIELD_HYPERLINK.sub(" ", text)
    text = _BARE_HYPERLINK.sub(" ", text)
    text = _IMAGE_MARK.sub(" ", text)
    text = _SUPERSCRIPT.sub(r"\1", text)
    text = text.replace("**", "")
    text = _INVISIBLE.sub("", text)
    text = text.translate(_CHAR_TABLE)
    text = unicodedata.normalize("NFC", text)
    paragraphs: list[str] = []
    block: list[str] = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            block.append(line)
        elif block:
            paragraphs.extend(_unwrap(block))
            block = []
    if block:
        paragraphs.extend(_unwrap(block))
    return "\n\n".join(paragraphs)


def _char_table() -> dict[int, str | None]:
    """Every Unicode space separator (Zs) and tab -> " "; controls and lone surrogates -> gone."""
    spaces = [0x09, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
    table: dict[int, str | None] = {cp: " " for cp in spaces}
    for cp in [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]:
        if cp not in (0x09, 0x0A):
            table[cp] = None
    return table


_CHAR_TABLE = _char_table()


def _unwrap(lines: list[str]) -> list[str]:
    """Lines of one block -> paragraphs: each line alone unless it looks hard-wrapped."""
    width = max(len(line) for line in lines)
    if len(lines) == 1 or width < 50 or width > 120:
        return lines
    paragraphs: list[str] = []
    current = lines[0]
    previous = lines[0]
    for line in lines[1:]:
        wrapped = (
            len(previous) >= max(40, 0.7 * width)
            and not _BULLET.match(line)
            and " | " not in line  # table rows stay one per line
            and (line[0].islower() or previous[-1].islower() or previous[-1] in ",;(-–'’")
        )
        if wrapped:
            if previous.endswith("-") and len(previous) > 1 and previous[-2].isalpha():
                current += line  # a word cut at the line end keeps its hyphen
            else:
                current += " " + line
        else:
            paragraphs.append(current)
            current = line
        previous = line
    paragraphs.append(current)
    return paragraphs


# --------------------------------------------------------------------------- dates

_MONTHS_FR = {
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "août": 8,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12,
    "decembre": 12, "déc": 12,
}  # fmt: skip
_MONTHS_EN = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_MONTHS = {**_MONTHS_EN, **_MONTHS_FR}


def _alternation(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


_M_ANY = rf"(?:{_alternation(list(_MONTHS))})\.?(?!\w)"
_M_EN = rf"(?:{_alternation(list(_MONTHS_EN))})\.?(?!\w)"
_ORD = r"(?:er|ère|re|e|st|nd|rd|th)?"
_DAY = rf"(?:[12]\d|3[01]|0?[1-9]){_ORD}"
_RANGE = r"\s*(?:&|et|and|au|to|-|–)\s*"
_YEAR = r"(?:1[89]\d\d|20\d\d)"

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "dmy",
        re.compile(
            rf"(?<![\w/.,])(?P<d>{_DAY})(?:{_RANGE}{_DAY})?\s+(?:de\s+|of\s+)?"
            rf"(?P<m>{_M_ANY})(?:,?\s+(?P<y>{_YEAR}))?(?!\d)",
            re.IGNORECASE,
        ),
    ),
    (
        "mdy",
        re.compile(
            rf"(?<![\w/.])(?P<m>{_M_EN})\s+(?P<d>{_DAY})(?:{_RANGE}{_DAY})?"
            rf"(?:,?\s+(?P<y>{_YEAR}))?(?![\d\w])",
            re.IGNORECASE,
        ),
    ),
    (
        "my",
        re.compile(rf"(?<![\w/.])(?P<m>{_M_ANY}),?\s+(?P<y>{_YEAR})(?!\d)", re.IGNORECASE),
    ),
    (
        "iso",
        re.compile(
            rf"(?<![\d/.\-])(?P<y>{_YEAR})(?P<s>[-/])(?P<m>0?[1-9]|1[0-2])"
            r"(?:(?P=s)(?P<d>[0-3]?\d))?(?![\d\-/])"
        ),
    ),
    (
        "num",
        re.compile(
            r"(?<![\d/.\-])(?P<d>[0-3]?\d)(?P<s>[/.\-])(?P<m>[01]?\d)"
            rf"(?:(?P=s)(?P<y>{_YEAR}|\d\d))?(?![\d/]|[.\-]\d)"
        ),
    ),
    ("year", re.compile(rf"(?i:\bdate\b)\s*:?\s*(?P<y>{_YEAR})(?![\d\-/])")),
)
_DATE_LABEL_BEFORE = re.compile(r"(?i:\b(?:date|dated|le|du|on))\s*:?\s*$")
_NEARBY_YEAR = re.compile(rf"(?<!\d){_YEAR}(?!\d)")
_WEEKDAYS = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
]  # fmt: skip
_FILLER_WORDS = frozenset(["le", "the", "on", "date", "du", "dated", "en", "in", *_WEEKDAYS])
_PLACE_PARTICLES = frozenset(["de", "des", "la", "les", "lès", "sur", "sous", "aux", "d", "l"])


@dataclass(frozen=True)
class _DateMatch:
    start: int
    end: int
    raw: str
    iso: str | None
    has_year: bool
    needs_context: bool  # year-less or year-month-only forms: accept on a dateline only


def find_date(text: str) -> tuple[str | None, str | None]:
    """Find the date a document states, preferring its header or dateline.

    A date in the first ~500 characters wins; otherwise the first complete date
    (with a year) anywhere. Dates without a year ("27/06", "12 décembre") count
    only when they stand on a dateline (a short line of their own, such as
    "Marseille, le 27/06") near the top; they get an ISO form only if a year is
    written right next to them.

    Args:
        text: cleaned text.

    Returns:
        ``(raw, iso)``: the date as written (``"6 juin 2011"``, ``"17 & 18
        Novembre 2011"``, ``"2017-11"``) and its ISO form (``YYYY-MM-DD``,
        ``YYYY-MM`` or ``YYYY``) or ``None`` when it cannot be completed;
        ``(None, None)`` when no date is found.
    """
    # The header: the window plus the rest of its last line, so no date is cut in two.
    line_end = text.find("\n", _DATELINE_WINDOW)
    head = text[: min(len(text) if line_end < 0 else line_end, _DATELINE_WINDOW + 200)]
    for m in _date_matches(head):
        if m.start >= _DATELINE_WINDOW:
            break
        if not m.needs_context or _is_dateline(text, m):
            return m.raw, m.iso
    # Elsewhere: the first complete date, each pattern scanned only up to its first one.
    best: _DateMatch | None = None
    for kind, pattern in _DATE_PATTERNS:
        for found in pattern.finditer(text):
            date = _parse_date(kind, found, text)
            if date is not None and date.has_year and not date.needs_context:
                if best is None or (date.start, -date.end) < (best.start, -best.end):
                    best = date
                break
    return (best.raw, best.iso) if best is not None else (None, None)


def _date_matches(text: str) -> list[_DateMatch]:
    found: list[_DateMatch] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            parsed = _parse_date(kind, m, text)
            if parsed is not None:
                found.append(parsed)
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    chosen: list[_DateMatch] = []
    for d in found:
        if chosen and d.start < chosen[-1].end:
            continue
        chosen.append(d)
    return chosen


def _parse_date(kind: str, m: re.Match[str], text: str) -> _DateMatch | None:
    groups = m.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    if year is not None and year < 100:
        year += 2000 if year < 50 else 1900
    if kind == "year":
        start = m.start("y")
        return _DateMatch(start, m.end(), m.group("y"), f"{year:04d}", True, False)
    if kind in ("dmy", "mdy", "my"):
        month = _MONTHS[m.group("m").lower().rstrip(".")]
    else:
        month = int(groups["m"])
    day_text = groups.get("d")
    day = int(re.match(r"\d+", day_text).group()) if day_text else None  # type: ignore[union-attr]
    if not 1 <= month <= 12:
        return None
    if day is not None:
        last = calendar.monthrange(year if year else 2000, month)[1]
        if not 1 <= day <= last:
            return None
    if kind == "num" and year is None and groups["s"] != "/":
        return None  # "1.5" or "3-4" are not dates
    raw = m.group(0).strip()
    needs_context = False
    if year is None:
        needs_context = True
        year = _year_nearby(text, m.start(), m.end())
    elif kind == "iso" and day is None:
        before = text[max(0, m.start() - 12) : m.start()]
        needs_context = not _DATE_LABEL_BEFORE.search(before)
    if year is None:
        iso = None
    elif day is None:
        iso = f"{year:04d}-{month:02d}"
    else:
        iso = f"{year:04d}-{month:02d}-{day:02d}"
    return _DateMatch(m.start(), m.end(), raw, iso, m.group("y") is not None, needs_context)


def _year_nearby(text: str, start: int, end: int) -> int | None:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    after = _NEARBY_YEAR.search(text, end, min(line_end, end + 40))
    if after:
        return int(after.group())
    before = list(_NEARBY_YEAR.finditer(text, max(line_start, start - 40), start))
    return int(before[-1].group()) if before else None


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end < 0 else line_end


def _is_dateline(text: str, m: _DateMatch) -> bool:
    """A short line that holds the date plus at most a place and filler words."""
    line_start, line_end = _line_bounds(text, m.start, m.end)
    if line_end - line_start > 80:
        return False
    return _place_and_date(text[line_start : m.start], text[m.end : line_end])


def _place_and_date(before: str, after: str) -> bool:
    """True when what surrounds a date on its line is at most a place and filler words.

    "Sophia-Antipolis le | 6 juin 2011 |" and "| 27/06 |" qualify; "réuni le |
    12 décembre | , le conseil a approuvé" does not.
    """
    word = r"[^\W\d_][\w'’-]*"
    if any(w.lower() not in _FILLER_WORDS for w in re.findall(word, after)):
        return False
    place = [w for w in re.findall(word, before) if w.lower() not in _FILLER_WORDS]
    if len(place) > 5:
        return False
    return all(w[0].isupper() or w.lower() in _PLACE_PARTICLES for w in place)


# --------------------------------------------------------------------------- titles

_BOILERPLATE = re.compile(
    r"^(?:communiques?(?: de presse)?|press releases?|news releases?|"
    r"pour diffusion immediate|for immediate release|information presse|"
    r"dossier de presse|contacts? presse|press contacts?|embargo.*)$"
)
_LEADING_DATE_LABEL = re.compile(
    rf"^(?i:date)\s*:?\s*(?:{_YEAR}(?:[-/]\d{{1,2}}){{0,2}}|\d{{1,2}}[/.\-]\d{{1,2}}[/.\-]\d{{2,4}})"
    r"\s*[-–—:,]?\s*"
)
_OPEN_QUOTES = "«“„‘\"'"
_CLOSE_QUOTES = "»”“’\"'"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-ÖØ-Þ«“\"])")
_TRAILING_STOPWORDS = frozenset(
    [
        "de", "du", "des", "la", "le", "les", "l’", "l'", "d’", "d'", "à", "au", "aux", "et",
        "ou", "en", "un", "une", "pour", "par", "sur", "dans", "avec", "of", "the", "a", "an",
        "and", "or", "to", "in", "on", "for", "with", "by", "at", "from",
    ]
)  # fmt: skip


def find_title(text: str) -> str:
    """The first meaningful line of a cleaned text, tidied into a title.

    Skips press-release labels ("COMMUNIQUE DE PRESSE"), bare date lines and
    place-and-date datelines ("Sophia-Antipolis le 6 juin 2011"), and a leading
    "date 2017-11" label. A heading that ends with ":" takes the short line after it
    as its subtitle. When the first meaningful line is a long paragraph, its first
    sentence is used, shortened on a word boundary.

    Args:
        text: cleaned text (see :func:`clean_text`).

    Returns:
        The title (at most about 200 characters), or ``""`` if no line qualifies.
    """
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        line = re.sub(r"^#{1,6}\s+", "", line)
        line = _LEADING_DATE_LABEL.sub("", line)
        if not _is_title_candidate(line):
            continue
        if len(line) > _TITLE_MAX_CHARS or (len(line) > 120 and _SENTENCE_END.search(line)):
            first = _SENTENCE_END.split(line, maxsplit=1)[0]
            return _shorten(_tidy_title(first), _PROSE_TITLE_MAX_CHARS)
        if line.endswith(":") and i + 1 < len(lines):
            nxt = lines[i + 1]
            if len(nxt) <= 120 and not nxt.endswith(".") and _is_title_candidate(nxt):
                line = line.rstrip(" :") + " : " + nxt
        return _shorten(_tidy_title(line), _TITLE_MAX_CHARS)
    return ""


def _is_title_candidate(line: str) -> bool:
    if not any(ch.isalpha() for ch in line):
        return False
    if _is_boilerplate_line(line):
        return False
    if re.fullmatch(r"(?:https?://|www\.|mailto:)\S+|\S+@\S+\.\S+", line):
        return False
    if len(line) <= 80:
        for m in _date_matches(line):
            if _place_and_date(line[: m.start], line[m.end :]):
                return False
    return True


def _is_boilerplate_line(line: str) -> bool:
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", line.lower()) if not unicodedata.combining(ch)
    )
    folded = " ".join(re.findall(r"[a-z0-9]+", folded))
    return bool(_BOILERPLATE.match(folded))


def _tidy_title(title: str) -> str:
    title = " ".join(title.split())
    # “Quoted title“ prochainement -> the quoted part, when little follows the quote.
    if title[:1] in _OPEN_QUOTES:
        close = max((title.rfind(q, 1) for q in _CLOSE_QUOTES), default=-1)
        if close > 1:
            tail = title[close + 1 :].split()
            if len(tail) <= 2:
                title = title[1:close]
    title = title.strip(" " + _OPEN_QUOTES + _CLOSE_QUOTES)
    title = re.sub(r"\s*[:;,\-–—]+$", "", title)
    if title.endswith(".") and not title.endswith(".."):
        title = title[:-1]
    return title.strip()


def _shorten(title: str, limit: int) -> str:
    if len(title) <= limit:
        return title
    words = title[: limit + 1].split()
    if len(title) > limit and not title[limit].isspace():
        words = words[:-1]  # the last word was cut
    while len(words) > 1 and words[-1].lower().strip(",;:") in _TRAILING_STOPWORDS:
        words.pop()
    return " ".join(words).rstrip(" ,;:-–—") + "…"
