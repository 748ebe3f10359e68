"""Files written so that a crash leaves the old version or the new one, never a torn one.

Every write of sourcier that others read (the index's ``CURRENT``, a model folder, a
cached language model) goes through here: the content is written to a temporary
sibling whose name holds ``.tmp-<pid>``, flushed to disk, then renamed over the target.
A leftover temporary names the process that made it, so a cleanup can tell a dead
writer's leftover from a live writer's work (:func:`owner_alive`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Content = str | bytes | Callable[[BinaryIO], object]
"""What :func:`write_atomic` writes: text (UTF-8), bytes, or a function that writes
into the open binary file."""


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_files(folder: Path) -> None:
    """Flush every file under ``folder`` to disk (before the folder is renamed into place)."""
    for f in folder.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def write_atomic(path: Path, content: Content, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``content`` in one rename, flushed to disk, with ``mode``.

    Readers see the old file or the new one. A write that fails leaves no temporary.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, str):
                fh.write(content.encode("utf-8"))
            elif isinstance(content, bytes):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def temporary_folder(target: Path) -> Path:
    """A new, empty folder beside ``target`` to build it in (its name holds this pid)."""
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))


def publish_folder(tmp: Path, target: Path, *, complete: Callable[[Path], bool]) -> bool:
    """Move the finished folder ``tmp`` to ``target`` in one rename.

    Files are made readable by all (a temporary folder is private) and flushed first.
    When another process published ``target`` first and it is ``complete``, its copy is
    kept and ``tmp`` is left for the caller to remove.

    Returns:
        Whether this call's folder became ``target``.

    Raises:
        OSError: ``target`` exists, is not complete, and cannot be replaced.
    """
    tmp.chmod(0o755)
    for path in tmp.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    fsync_files(tmp)
    for _attempt in range(3):
        try:
            os.rename(tmp, target)
            fsync_dir(target.parent)
            return True
        except OSError:
            if complete(target):
                return False
            if not target.exists():
                continue
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            with contextlib.suppress(FileNotFoundError):
                os.rename(target, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
    raise OSError(f"could not move {tmp.name} to {target}")


def owner_alive(name: str) -> bool:
    """Whether the process whose pid a temporary's name holds (``….tmp-<pid>-…``) runs.

    This process counts as alive: another of its threads may be writing right now.
    """
    try:
        pid = int(name.split(".tmp-", 1)[1].split("-", 1)[0].split(".", 1)[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
