"""The index folder: generations of a manifest, published atomically, and the writer lock.

Layout of an index folder (format 4)::

    CURRENT             name of the live generation (replaced atomically)
    LOCK                held by a writer (fcntl) while it builds
    embeddings.sqlite   vectors of a build not yet published (a journal, see
                        :mod:`sourcier.build.vector_cache`)
    gen-000007/
        manifest.json   format version, model, settings, and the segments that make the
                        index, each with the documents deleted from it (tombstones)
    segments/
        seg-000012/     one immutable segment (:mod:`sourcier.storage.segment`):
                        documents, chunks, sentences, dense vectors, BM25 postings

A build writes only its new segment, then a new manifest that lists the old segments
(with new tombstones for removed or edited documents) plus the new one, and switches
``CURRENT`` to it. Merges (:mod:`sourcier.storage.merge`) write one segment from several
and publish a manifest without them. A reader loads the segments one manifest names
(:mod:`sourcier.storage.snapshot`), so it never sees a half-written index; a writer
killed at any moment leaves the previous manifest and all its segments in place. Files
no kept manifest names are removed by the next writer.

Formats 2 and 3 (one generation folder holding everything) are converted once, by the
first write or by ``sourcier index --upgrade`` (:mod:`sourcier.build.upgrade`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from ..files import fsync_dir, write_atomic
from .segment import SEGMENTS

log = logging.getLogger(__name__)

FORMAT_VERSION = 4
READABLE_FORMATS = (2, 3, 4)
"""Formats whose manifest this sourcier reads: 4, and 2 and 3 to upgrade them."""
CURRENT = "CURRENT"
LOCK = "LOCK"
MANIFEST = "manifest.json"
JOURNAL = "embeddings.sqlite"
"""The embedding cache of a build that has not published yet."""


def rebuild_hint(path: Path) -> str:
    """How to fix a damaged index, as the end of an error line."""
    return f"rebuild it with `sourcier index FOLDER --index {path}`"


def corrupt(path: Path, detail: object) -> IndexCorruptError:
    """The error for a damaged index at ``path``: what is wrong and how to fix it."""
    what = " ".join(str(detail).split())  # FAISS and SQLite messages span lines
    if len(what) > 300:
        what = what[:299] + "…"
    return IndexCorruptError(
        f"the index at {path} is damaged ({what}); {rebuild_hint(path)}",
        code="index_corrupt",
        path=str(path),
        detail=what,
    )


def current_generation(path: Path) -> Path | None:
    """The live generation folder of the index at ``path``, or None if there is none.

    Raises:
        IndexCorruptError: ``CURRENT`` exists but cannot be read or names no generation.
    """
    try:
        name = (path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise corrupt(path, f"cannot read {CURRENT}: {err}") from err
    if not name.startswith("gen-") or "/" in name:
        raise corrupt(path, f"{CURRENT} names no generation ({name[:40]!r})")
    return path / name


def index_exists(path: str | Path) -> bool:
    """Whether a complete index lives at ``path``.

    Raises:
        IndexCorruptError: ``CURRENT`` exists but cannot be read or names no generation.
    """
    gen = current_generation(Path(path))
    return gen is not None and (gen / MANIFEST).is_file()


def require_index(path: Path) -> Path:
    """The live generation of ``path``.

    Raises:
        IndexNotFoundError: nothing was ever indexed at ``path`` (no ``CURRENT``).
        IndexCorruptError: ``CURRENT`` points to a generation that is missing or has
            no manifest; the message says how to fix it.
    """
    gen = current_generation(path)
    if gen is None:
        raise IndexNotFoundError(
            f"no index at {path}; build one with `sourcier index FOLDER --index {path}`",
            code="index_not_found",
            path=str(path),
        )
    if not gen.is_dir():
        previous = _complete_generations(path)
        fallback = (
            f", or put {previous[-1].name} (an older complete generation) in {path / CURRENT}"
            if previous
            else ""
        )
        raise IndexCorruptError(
            f"the index at {path} is damaged: {CURRENT} points to {gen.name}, which is "
            f"missing; {rebuild_hint(path)}{fallback}",
            code="index_generation_missing",
            path=str(path),
            generation=gen.name,
        )
    if not (gen / MANIFEST).is_file():
        raise corrupt(path, f"{gen.name} has no {MANIFEST}")
    return gen


def _complete_generations(path: Path) -> list[Path]:
    """The generation folders with a manifest, oldest first."""
    found = [
        p
        for p in path.glob("gen-*")
        if ".tmp-" not in p.name and p.name[4:].isdigit() and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[4:]))


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Serialise writers of one index, across threads and processes."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / LOCK, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_manifest(gen: Path) -> dict[str, Any]:
    """The manifest of one generation, checked for a format this sourcier reads."""
    path = gen.parent
    try:
        manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise corrupt(path, f"cannot read {gen.name}/{MANIFEST}: {err}") from err
    if not isinstance(manifest, dict):
        raise corrupt(path, f"{gen.name}/{MANIFEST} is not a JSON object")
    if manifest.get("format_version") not in READABLE_FORMATS:
        found = manifest.get("format_version")
        raise IndexCorruptError(
            f"the index at {path} has format {found!r}, which this sourcier does not read "
            f"(it reads format {FORMAT_VERSION}); {rebuild_hint(path)}",
            code="index_format",
            path=str(path),
            found=str(found),
            supported=FORMAT_VERSION,
        )
    if manifest["format_version"] >= 4 and not _segments_listed(manifest):
        raise corrupt(path, f"{gen.name}/{MANIFEST} lists no valid segments")
    return manifest


def _segments_listed(manifest: dict[str, Any]) -> bool:
    entries = manifest.get("segments")
    return isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and e["name"].startswith("seg-")
        and "/" not in e["name"]
        and isinstance(e.get("deleted", []), list)
        for e in entries
    )


def require_current_format(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse an index of an older format, saying how to upgrade it.

    Raises:
        IndexMismatchError: the manifest is of format 2 or 3.
    """
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {path} has an older format ({found}); upgrade it once with "
            f"`sourcier index --upgrade --index {path}` (any build upgrades it too)",
            code="index_old_format",
            path=str(path),
        )


def live_segments(path: Path) -> list[Path]:
    """The folders of the segments the live generation lists, oldest first."""
    gen = require_index(path)
    return [path / SEGMENTS / e["name"] for e in read_manifest(gen).get("segments", ())]


def publish(path: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as a new generation and make it the live one. Caller holds the lock.

    The segments it lists must be written already. Generations other than the new and
    the previous one are removed afterwards, with every segment neither of them lists.

    Returns:
        The folder of the new generation.
    """
    path.mkdir(parents=True, exist_ok=True)
    try:
        previous = current_generation(path)
    except IndexCorruptError:  # a damaged CURRENT is being replaced by this build
        previous = None
    # above every generation on disk, so a folder left by a killed build is never reused
    numbers = [int(p.name[4:]) for p in path.glob("gen-*") if p.name[4:].isdigit()]
    if previous is not None and previous.name[4:].isdigit():
        numbers.append(int(previous.name[4:]))
    number = max(numbers, default=0) + 1
    final = path / f"gen-{number:06d}"
    if final.exists():  # left over by a build killed after its rename: never live, drop it
        shutil.rmtree(final)
    tmp = path / f"{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    full_manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(full_manifest, indent=1, ensure_ascii=False))
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, final)
    fsync_dir(path)
    write_atomic(path / CURRENT, final.name + "\n")
    _prune_generations(path, keep={final.name, previous.name if previous else ""})
    log.info(
        "published %s: %d documents, %d chunks in %d segments",
        final.name,
        manifest.get("documents", 0),
        manifest.get("chunks", 0),
        len(manifest.get("segments", ())),
    )
    return final


def remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed writer left behind (caller holds the lock): half-written
    folders, and generations and segments that neither the live generation nor the one
    before it lists (a writer killed before its cleanup)."""
    if path.is_dir():
        _remove_stale_temporaries(path)
    if (path / SEGMENTS).is_dir():
        _remove_stale_temporaries(path / SEGMENTS)
    try:
        live = current_generation(path)
    except IndexCorruptError:
        return  # the build that repairs it cleans up when it publishes
    if live is None or not (live / MANIFEST).is_file():
        return
    older = [g for g in _complete_generations(path) if g.name < live.name]
    _prune(path, keep={live.name, older[-1].name if older else ""})


def _remove_stale_temporaries(path: Path) -> None:
    for entry in path.iterdir():
        if ".tmp-" in entry.name:
            log.info("removing %s, left by an interrupted build", entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _prune_generations(path: Path, *, keep: set[str]) -> None:
    """Keep the live generation and the one before it (a reader may still use it), and
    the segments they list; remove every other generation and segment.

    The last step of :func:`publish`, kept as its own function so that the crash tests
    can kill a writer exactly there; the cleanup at a writer's start calls
    :func:`_prune` itself."""
    _prune(path, keep=keep)


def _prune(path: Path, *, keep: set[str]) -> None:
    used: set[str] = set()
    for name in keep:
        if not name:
            continue
        try:
            manifest = json.loads((path / name / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in manifest.get("segments", ()) if isinstance(manifest, dict) else ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                used.add(entry["name"])
    for entry in path.iterdir():
        if entry.name.startswith("gen-") and entry.name not in keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    folder = path / SEGMENTS
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.startswith("seg-") and ".tmp-" not in entry.name and entry.name not in used:
            shutil.rmtree(entry, ignore_errors=True)


def disk_size(path: Path) -> int:
    """Bytes used by the live generation, its segments and the embedding cache."""
    total = 0
    gen = current_generation(path)
    if gen is not None:
        total += sum(f.stat().st_size for f in gen.rglob("*") if f.is_file())
        try:
            names = [e["name"] for e in read_manifest(gen).get("segments", ())]
        except IndexCorruptError:
            names = []
        for name in names:
            folder = path / SEGMENTS / name
            total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    cache = path / JOURNAL
    if cache.exists():
        total += cache.stat().st_size
    return total
