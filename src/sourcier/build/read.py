"""The read stage of a build: files (and ready-made documents) -> documents.

In a folder sync a file is read only when it changed: every file is stat-ed, and one
whose identity (size, mtime, inode, device) is the one recorded when its live document
was read is taken as it is (:mod:`sourcier.storage.identities`); a changed file whose
bytes hash the same is not parsed again. A file the user removed stays out
(``kept_out``) unless it is named again; a file that cannot be read is skipped with its
reason, and when it has a live document, that document stays; a second file with the
text of one already read is skipped as a duplicate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ..errors import LoadError
from ..ingest.loaders import Limits, load_document, read_bytes, scan
from ..machine import cores
from ..settings import Settings
from ..storage.identities import FileIdentity, FileStat
from ..types import Document, Skipped
from .plan import Reading, Sources
from .progress import Reporter
from .readers_pool import Job, ReaderPool, Result


def read(
    sources: Sources,
    excluded: set[str],
    settings: Settings,
    reporter: Reporter,
    *,
    live: Mapping[str, str] | None = None,
    identities: Mapping[str, FileIdentity] | None = None,
    on_read: Callable[[Document], None] | None = None,
) -> Reading:
    """Read what ``sources`` names, leaving out the ``excluded`` sources.

    Args:
        sources: the files, folders and documents to read.
        excluded: the sources the user removed.
        settings: the size limit of a file.
        reporter: where progress goes.
        live: the live documents by source (``source -> doc_id``).
        identities: the file identities of the live generation.
        on_read: called with each document read from a file, as it is taken
            (:class:`~sourcier.build.prefetch.Prefetch` embeds it meanwhile).

    Raises:
        InputError: a given path does not exist.
    """
    live = live or {}
    identities = identities or {}
    checked_ns = time.time_ns()  # before any file is stat-ed or read
    found, found_skipped = scan(sources.paths) if sources.paths else ([], [])
    kept: set[str] = set()
    skipped = [_keeping(s, live, kept) for s in found_skipped]
    named = (
        {os.path.abspath(Path(p).expanduser()) for p in sources.paths} if sources.readd else set()
    )
    kept_out = [str(f) for f, _ in found if str(f) in excluded and str(f) not in named]
    files = [(f, st) for f, st in found if str(f) not in excluded or str(f) in named]
    fresh: dict[str, Document] = {}
    by_source: dict[str, str] = {}
    seen: dict[str, str] = {}  # doc_id -> the source that gave it (read or known)
    checked: dict[str, FileIdentity] = {}
    limits = Limits.of(settings)
    with reporter.stage("read", len(files), desc="Reading", unit="file") as tick:
        for source, live_id, result in _results(files, live, identities, limits, checked_ns):
            tick(1)
            if isinstance(result, LoadError):
                skipped.append(
                    Skipped(
                        source,
                        str(result),
                        result.code,
                        dict(result.params),
                        kept=live_id is not None,
                    )
                )
                if live_id is not None:
                    kept.add(source)
                continue
            doc_id, doc, identity = result
            if _take(doc_id, source, by_source, seen, skipped):
                if doc is not None:
                    fresh[doc_id] = doc
                    if on_read is not None:
                        on_read(doc)
                if identity is not None:
                    checked[source] = identity
    for doc in sources.documents:
        if doc.source in excluded:
            kept_out.append(doc.source)
        elif _take(doc.doc_id, doc.source, by_source, seen, skipped):
            fresh[doc.doc_id] = doc
    return Reading(fresh, by_source, tuple(skipped), tuple(kept_out), checked, frozenset(kept))


POOL_MIN = 32
"""Fewer files to read than this are read in this process (a reader process costs
about a tenth of a second to start)."""


def reader_processes(files: int) -> int:
    """How many reader processes for ``files`` files to read: none for a few, else half
    the cores (the other half embeds meanwhile), between 1 and 4."""
    n = cores()
    if files < POOL_MIN or n < 2:
        return 0
    return max(1, min(4, n // 2))


def _results(
    files: Sequence[tuple[Path, os.stat_result]],
    live: Mapping[str, str],
    identities: Mapping[str, FileIdentity],
    limits: Limits,
    checked_ns: int,
) -> Iterator[tuple[str, str | None, Result | LoadError]]:
    """Each file's source, its live document's id, and what reading it gave (or why it
    could not be taken), in order. A file whose identity is the one recorded is not
    opened; the others are read by reader processes when they are many
    (:mod:`sourcier.build.readers_pool`), else here."""
    ready: list[tuple[str, str | None, Result | None]] = []
    jobs: list[Job] = []
    for path, st in files:
        source, stat = str(path), FileStat.of(st)
        live_id = live.get(source)
        known = identities.get(source)
        if known is not None and known.doc_id != live_id:
            known = None  # what it recorded is not what is live
        if known is not None and known.unchanged(stat):
            ready.append((source, live_id, (known.doc_id, None, None)))
        else:
            ready.append((source, live_id, None))
            jobs.append((path, stat, known))
    workers = reader_processes(len(jobs))
    pool = ReaderPool(workers, limits=limits, checked_ns=checked_ns) if workers else None
    try:
        answers = pool.read(jobs) if pool else (_here(job, limits, checked_ns) for job in jobs)
        for source, live_id, result in ready:
            yield source, live_id, result if result is not None else next(answers)
    finally:
        if pool is not None:
            pool.close()


def _here(job: Job, limits: Limits, checked_ns: int) -> Result | LoadError:
    try:
        return look(*job, limits, checked_ns)
    except LoadError as err:
        return err


def look(
    path: Path, stat: FileStat, known: FileIdentity | None, limits: Limits, checked_ns: int
) -> Result:
    """What a file holds: its document id, the document when it must be read, and its
    new identity when there is one to record.

    Raises:
        LoadError: the file cannot be read or is not a document.
    """
    if known is not None and known.unchanged(stat):
        return known.doc_id, None, None
    data = read_bytes(path, limits.max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    source = str(path)
    if known is not None and known.sha256 == digest:  # touched, not changed
        return known.doc_id, None, FileIdentity(source, stat, digest, known.doc_id, checked_ns)
    doc = load_document(
        path, max_bytes=limits.max_bytes, data=data, max_image_pixels=limits.max_image_pixels
    )
    return doc.doc_id, doc, FileIdentity(source, stat, digest, doc.doc_id, checked_ns)


_UNREADABLE = frozenset({"permission_denied", "unreadable"})


def _keeping(skip: Skipped, live: Mapping[str, str], kept: set[str]) -> Skipped:
    """A file or folder the walk could not read keeps the live documents read from it
    before (a permission or a disk error is not a removal): they go into ``kept``."""
    if skip.code not in _UNREADABLE:
        return skip
    inside = skip.path.rstrip(os.sep) + os.sep
    found = {s for s in live if s == skip.path or s.startswith(inside)}
    if not found:
        return skip
    kept.update(found)
    return dataclasses.replace(skip, kept=True)


def _take(
    doc_id: str,
    source: str,
    by_source: dict[str, str],
    seen: dict[str, str],
    skipped: list[Skipped],
) -> bool:
    """Take the document ``source`` gave, unless another source gave the same text
    already (then it is skipped as a duplicate)."""
    other = seen.get(doc_id)
    if other is not None:
        skipped.append(Skipped(source, f"same content as {other}", "duplicate", {"other": other}))
        return False
    seen[doc_id] = source
    by_source[source] = doc_id
    return True
