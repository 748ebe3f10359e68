"""Uploaded files: a safe name, the checks made before reading one, and storing the copy.

The accepted types and the size limit are the core's (``loaders.SUPPORTED_EXTENSIONS``,
``Settings.index.max_file_mb``), so the upload box and ``sourcier index`` never disagree.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..ingest.readers import SUPPORTED_EXTENSIONS
from ..messages import say_reason
from ..settings import Settings

_ORDER = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
ALLOWED_EXTENSIONS: tuple[str, ...] = tuple(
    [e for e in _ORDER if e in SUPPORTED_EXTENSIONS]
    + sorted(SUPPORTED_EXTENSIONS.difference(_ORDER))
)
"""What the upload accepts: the core's ``loaders.SUPPORTED_EXTENSIONS``, in display order."""

MAX_UPLOAD_MB: float = Settings().index.max_file_mb
"""Upload size limit per file, in megabytes (the core's ``Settings.index.max_file_mb``)."""


def sanitize_filename(name: str, *, max_length: int = 120) -> str:
    """A safe file name for an upload: no folders, no hidden or reserved names.

    Only the last path component is kept (``../../etc/passwd`` → ``passwd``; both ``/``
    and ``\\`` count as separators), characters other than letters, digits, ``.``,
    ``-``, ``_``, spaces and parentheses become ``_``, leading dots and spaces are
    dropped, and the name is shortened to ``max_length`` keeping its extension.
    An empty result becomes ``document``.
    """
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/")
    name = name.rstrip("/ ").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"[^\w.\- ()]", "_", name)
    name = re.sub(r"\s+", " ", name)
    name = re.sub(r"\.{2,}", ".", name).strip(" ._-") or "document"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    ext = ext[:10]
    suffix = f".{ext}" if ext else ""
    stem = stem[: max(1, max_length - len(suffix))].rstrip(" .") or "document"
    return stem + suffix


_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


def check_upload(name: str, size: int, *, max_mb: float = MAX_UPLOAD_MB) -> str | None:
    """Why an upload is refused before reading it (one French sentence), or None.

    The reasons are the core's (the skip reasons of ``sourcier index``, said in French by
    :func:`~sourcier.messages.say_reason`), so the two never disagree.
    """
    refusal = upload_refusal(name, size, max_mb=max_mb)
    if refusal is None:
        return None
    return say_reason(refusal.code, refusal.reason, "fr", **refusal.params)


@dataclass(frozen=True)
class Refusal:
    """Why an upload is refused: a skip-reason code, the English reason, its values."""

    code: str
    reason: str
    params: dict[str, object] = field(default_factory=dict)


def upload_refusal(name: str, size: int, *, max_mb: float = MAX_UPLOAD_MB) -> Refusal | None:
    """Why an upload named ``name`` of ``size`` bytes is refused before reading it, or None
    (no extension, a type sourcier does not read, too large, empty)."""
    suffix = Path(sanitize_filename(name)).suffix.lower()
    if not suffix:
        return Refusal("no_extension", "file has no extension")
    if suffix not in ALLOWED_EXTENSIONS:
        return Refusal("unsupported_type", f"unsupported file type {suffix}", {"suffix": suffix})
    limit = int(max_mb * 1024 * 1024)
    if size > limit:
        return Refusal(
            "too_large", "file too large", {"size_bytes": int(size), "limit_bytes": limit}
        )
    if size == 0:
        return Refusal("empty", "file is empty")
    return None


def guard_messages(*, max_mb: float = MAX_UPLOAD_MB) -> dict[str, str]:
    """The French reasons of :func:`check_upload` for the page's own check, made before a
    file is sent (``§SIZE§`` and ``§EXT§`` are filled in by the script)."""
    limit = int(max_mb * 1024 * 1024)
    return {
        "too_large": say_reason("too_large", "", "fr", size_bytes="§SIZE§", limit_bytes=limit),
        "unsupported_type": say_reason("unsupported_type", "", "fr", suffix="§EXT§"),
        "no_extension": say_reason("no_extension", "", "fr"),
        "empty": say_reason("empty", "", "fr"),
    }


def store_upload(src: str | Path, name: str, upload_dir: str | Path) -> Path:
    """Copy an uploaded file into ``upload_dir`` under a sanitised name; return the copy.

    The target is always directly inside ``upload_dir``, whatever ``name`` says. The
    bytes go to a hidden temporary file first, renamed into place when complete, so an
    interrupted copy never leaves a partial document (:func:`remove_stale_copies`
    clears such leftovers). A file already there with the same name is replaced: the
    caller decides (see :func:`free_name`).
    """
    folder = Path(upload_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / sanitize_filename(name)).resolve()
    if target.parent != folder:  # cannot happen after sanitising; kept as a guard
        raise InputError(f"unsafe upload name {name!r}")
    tmp = folder / f"{_TMP_PREFIX}{threading.get_ident()}-{time.monotonic_ns()}"
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


_TMP_PREFIX = ".upload-"


def free_name(folder: Path, name: str) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext`` … : the first not taken in ``folder``."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


def remove_stale_copies(upload_dir: Path) -> int:
    """Delete the temporary files of copies a crash interrupted; how many there were."""
    removed = 0
    if not upload_dir.is_dir():
        return 0
    for leftover in upload_dir.glob(f"{_TMP_PREFIX}*"):
        try:
            leftover.unlink()
            removed += 1
        except OSError:  # pragma: no cover - best effort
            continue
    return removed
