"""Files -> cleaned documents: discovery of the files to index, and loading one.

:func:`load_document` reads a file with the reader for its format
(:mod:`sourcier.readers`), cleans the text (:mod:`sourcier.cleaning`) and finds its
title (:mod:`sourcier.titles`), date (:mod:`sourcier.dates`) and language. A bad file
raises :class:`~sourcier.errors.LoadError` with one readable reason; no other exception
type escapes :func:`load_document` for a bad file.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, InputError, LoadError
from ..types import Document, Skipped
from .cleaning import clean_text
from .dates import find_date
from .headings import mark_headings
from .language import detect_language
from .ocr import pages_text
from .pages import join_pages, shift_pages
from .readers import READERS, Paged, Structured
from .readers.image import IMAGE_SUFFIXES, check_image
from .titles import drop_date_label, find_title, title_from_hint

if TYPE_CHECKING:
    from ..settings import Settings

logger = logging.getLogger(__name__)


READER_VERSION = "2"
"""The version of what reading a file gives. Bump it when a reader, the cleaning, the
title, date or language rules change the document a file gives: an index's next sync
then reads every file again (:mod:`sourcier.storage.identities`), instead of trusting
files it read with the older rules. (2: PDF pages are kept, ``.odt`` and ``.pptx`` read.)"""

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 60_000_000
_MIB = 1024 * 1024
_MAX_DEPTH = 64

_Seen = dict[tuple[int, int] | str, list[str]]
"""The files a walk listed, by (device, inode) (by real path where the OS has none)."""


# --------------------------------------------------------------------------- discovery


def discover(paths: Sequence[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Expand files and folders into the list of files sourcier can read (see
    :func:`scan`, which also gives each file's stat)."""
    found, skipped = scan(paths)
    return [path for path, _ in found], skipped


def scan(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, os.stat_result]], list[Skipped]]:
    """Expand files and folders into the files sourcier can read, with their stat.

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
        ``(files, skipped)``: absolute paths of supported files with their stat (links
        followed), de-duplicated (two routes to the same file count once), and the
        entries that were left out, each with its reason (for example
        ``"unsupported file type .xlsx"``).

    Raises:
        InputError: a given path does not exist.
    """
    files: list[tuple[Path, os.stat_result]] = []
    skipped: list[Skipped] = []
    seen_files: _Seen = {}
    seen_dirs: set[str] = set()
    for given in paths:
        path = Path(given).expanduser()
        if not os.path.lexists(path):
            kind = "file" if path.suffix.lower() in READERS else "folder"
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
    files: list[tuple[Path, os.stat_result]],
    skipped: list[Skipped],
    seen_files: _Seen,
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
    files: list[tuple[Path, os.stat_result]],
    skipped: list[Skipped],
    seen_files: _Seen,
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
    path: Path,
    st: os.stat_result,
    files: list[tuple[Path, os.stat_result]],
    skipped: list[Skipped],
    seen: _Seen,
) -> None:
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(str(path), "not a regular file", "not_regular"))
        return
    suffix = path.suffix.lower()
    if suffix not in READERS:
        err = _unsupported(suffix)
        skipped.append(Skipped(str(path), str(err), err.code, dict(err.params)))
        return
    if _listed(path, st, seen):
        logger.debug("%s already listed through another path", path)
        return
    files.append((path, st))


def _listed(path: Path, st: os.stat_result, seen: _Seen) -> bool:
    """Whether ``path`` is a file listed already through another route (a link, a
    folder reached twice); record it if not. Only files sharing an inode (two routes,
    or hard links, which are listed each) cost a real path."""
    key: tuple[int, int] | str = (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)
    routes = seen.setdefault(key, [])
    if routes:
        real = os.path.realpath(path)
        if any(os.path.realpath(r) == real for r in routes):
            return True
    routes.append(str(path))
    return False


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


@dataclass(frozen=True)
class Limits:
    """What a file may weigh to be read: bytes, and pixels for an image read by OCR
    (``Settings.index.max_file_mb`` and ``max_image_mp``)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            int(settings.index.max_file_mb * 1024 * 1024),
            int(settings.index.max_image_mp * 1_000_000),
        )


def load_document(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    source: str | None = None,
    data: bytes | None = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Document:
    """Read one file into a cleaned :class:`Document`.

    The size is checked from the file's metadata before any content is read.

    Args:
        path: a file of a supported type (:data:`~sourcier.ingest.readers.READERS`).
        max_bytes: larger files are refused.
        source: recorded as ``Document.source``; defaults to ``str(path)``.
        data: the file's bytes, when the caller has read them already
            (:func:`read_bytes`).
        max_image_pixels: a larger image is refused, with its size.

    Returns:
        The document: ``doc_id`` is the sha256 of the cleaned text (and pages,
        :func:`document_id`).

    Raises:
        LoadError: the file cannot become a document; the message is the reason
            (empty, binary, corrupt, too large, unreadable, no text...).
        ConfigError: ``max_bytes`` is not positive.
    """
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes ({max_bytes}) must be positive")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in READERS:
        raise _unsupported(suffix)
    if data is None:
        data = read_bytes(p, max_bytes)
    if suffix in IMAGE_SUFFIXES:
        check_image(data, max_image_pixels)
    try:
        read = READERS.get(suffix)(data)
    except LoadError:
        raise
    except Exception as err:  # a reader library failed in a way we did not foresee
        logger.debug("reader for %s failed", p, exc_info=True)
        raise LoadError(
            f"could not read {suffix} file: {type(err).__name__}: {err}",
            code="reader_failed",
            suffix=suffix,
        ) from err
    headings: Sequence[tuple[str, int]] = ()
    if isinstance(read, Paged):
        raw, title_hint, headings = "".join(read.pages), read.title, read.headings
    elif isinstance(read, Structured):
        raw, title_hint, headings = read.text, read.title, read.headings
    else:
        raw, title_hint = read
    if not raw.strip():
        if suffix in (".txt", ".md"):
            raise LoadError("file contains only whitespace", code="empty")
        raise LoadError("no text found in the file", code="no_text")
    pages: tuple[int, ...] = ()
    if isinstance(read, Paged):
        text, pages = join_pages(read.pages)
    else:
        text = clean_text(raw)
    if not any(ch.isalnum() for ch in text):
        raise LoadError("no text left after cleaning", code="no_text")
    title = title_from_hint(title_hint) if title_hint else ""
    if not title:
        title = find_title(text)
    if not title:
        title = re.sub(r"[-_]+", " ", p.stem).strip() or p.name
    date_raw, date_iso = find_date(text)
    undated = drop_date_label(text)
    pages = shift_pages(pages, len(text) - len(undated), len(undated))
    text = undated
    marked = mark_headings(text, headings, title)
    doc = Document(
        doc_id=document_id(text, pages),
        source=source if source is not None else str(path),
        title=title,
        text=text,
        date_raw=date_raw,
        date_iso=date_iso,
        language=detect_language(text),
        pages=pages,
        headings=marked,
        notes=_notes(read),
    )
    logger.debug("loaded %s: %d chars, title %r, date %r", p, len(text), title, date_iso)
    return doc


def _notes(read: object) -> tuple[str, ...]:
    """What the build report says of how a file was read."""
    if not isinstance(read, Paged):
        return ()
    if not read.unreadable:
        return read.notes
    which = pages_text(list(read.unreadable))
    return (f"{which} could not be read; the other pages are indexed", *read.notes)


def document_id(text: str, pages: Sequence[int] = ()) -> str:
    """A document's id: the sha256 of its cleaned text (hex), so indexing the same text
    twice is a no-op and an edited file replaces exactly its own chunks. A paged
    document's page starts are hashed after its text: the same text paged otherwise is
    another document (and a PDF indexed before pages were kept is written again)."""
    digest = hashlib.sha256(text.encode("utf-8"))
    if pages:
        digest.update(("\0pages:" + ",".join(map(str, pages))).encode("ascii"))
    return digest.hexdigest()


def document_from_record(record: Mapping[str, str]) -> Document | None:
    """A ready-made passage ``{"id", "title", "text"}`` (an evaluation data set) as a
    document whose source is ``record:<id>``; ``None`` when no text is left once cleaned.
    """
    text = clean_text(record["text"])
    if not text:
        return None
    from .readers.markdown import strip_markup

    title = clean_text(strip_markup(record.get("title") or "")) or text[:80]
    return Document(
        doc_id=document_id(text),
        source=f"record:{record['id']}",
        title=title,
        text=text,
        language=detect_language(text),
    )


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


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A file's bytes: stat, check the size, then read at most ``max_bytes + 1`` bytes.

    Raises:
        LoadError: the file is missing, not a regular file, empty, too large or unreadable.
    """
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
