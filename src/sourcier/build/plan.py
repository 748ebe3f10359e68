"""The plan stage of a build: what the live index holds, and what the build will change.

A writer never loads the live index: :class:`LiveState` reads the segments' catalogues
(document ids, sources and chunk counts; no text, no vectors), and for an update of a
few files only the rows it looks up, so an update costs what changed. :func:`reconcile`
then decides, from the documents read, which to write, which to tombstone, and what the
build report will say.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, InputError, SourcierError
from ..ingest.loaders import READER_VERSION
from ..settings import Settings
from ..storage import generations
from ..storage.identities import FileIdentity, read_identities
from ..storage.reader import settings_for
from ..storage.segment import catalogue, find
from ..storage.snapshot import check_generation
from ..types import Document, Skipped

log = logging.getLogger(__name__)

EXCLUDED = "excluded"
"""The manifest key listing the sources the user removed (kept out of later builds)."""


@dataclass(frozen=True)
class Sources:
    """What a build reads and what it removes.

    Attributes:
        paths: files and folders to read. With ``sync``, documents previously read from
            under these paths and no longer found there are removed.
        documents: ready-made documents (data sets given as records). With ``sync``,
            previous documents whose source starts with ``"record:"`` and is not among
            them are removed.
        remove_ids: document ids to remove (and keep out of later builds).
        sync: remove documents under ``paths`` (or records) that no longer exist.
        readd: a file named directly in ``paths`` (not found by walking a folder) is
            indexed even if the user removed it before; ``False`` keeps it out too (the
            bundled corpus, which is given as a list of files).
    """

    paths: tuple[Path, ...] = ()
    documents: tuple[Document, ...] = ()
    remove_ids: frozenset[str] = frozenset()
    sync: bool = True
    readd: bool = True

    @property
    def full_build(self) -> bool:
        """A sync of something to read with nothing to remove: a damaged live index is
        then built again instead of failing."""
        return self.sync and bool(self.paths or self.documents) and not self.remove_ids

    @property
    def roots(self) -> list[Path]:
        return [Path(os.path.abspath(p)) for p in self.paths]


@dataclass(frozen=True)
class LiveDocument:
    """What a writer knows of a live document without reading its text."""

    source: str
    segment: str
    chunks: int


class LiveState:
    """What a writer reads of the live index: its manifest, its file identities, and
    its documents' ids, sources and chunk counts as far as it asks (no text, no
    vectors)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    def identities(self) -> dict[str, FileIdentity]:
        """The identities of the files the live documents were read from."""
        return read_identities(self.path, version=READER_VERSION)

    @property
    def chunk_count(self) -> int:
        return int(self.manifest.get("chunks", 0))

    def all_documents(self) -> dict[str, LiveDocument]:
        """Every live document (reads each segment's catalogue)."""
        return self._collect(lambda name: catalogue(self.path, name))

    def find(self, doc_ids: set[str], sources: set[str]) -> dict[str, LiveDocument]:
        """The live documents with one of these ids or sources."""
        if not doc_ids and not sources:
            return {}
        return self._collect(lambda name: find(self.path, name, sorted(doc_ids), sorted(sources)))

    def _collect(
        self, rows_of: Callable[[str], list[tuple[str, str, int]]]
    ) -> dict[str, LiveDocument]:
        docs: dict[str, LiveDocument] = {}
        for entry in self.manifest["segments"]:
            dead = set(entry.get("deleted", ()))
            try:
                rows = rows_of(entry["name"])
            except IndexCorruptError as err:
                raise generations.corrupt(self.path, str(err)) from err
            for doc_id, source, n in rows:
                if doc_id not in dead:
                    docs[doc_id] = LiveDocument(source, entry["name"], n)
        return docs


def live_state(path: Path, *, rebuild: bool) -> tuple[LiveState | None, dict[str, Any]]:
    """The live index as a writer needs it (None for a new one) and its manifest as far
    as readable. The caller holds the writer lock.

    An index of an older format is upgraded first (:mod:`sourcier.build.upgrade`). A
    full build (``rebuild``) opens every segment, so that a damaged one is found: it is
    logged and the index is built again; otherwise its IndexCorruptError is raised.
    """
    from .upgrade import upgrade_locked

    try:
        if generations.current_generation(path) is None:
            return None, {}
        upgrade_locked(path)
        gen = generations.require_index(path)
        manifest = generations.read_manifest(gen)
        if rebuild:
            check_generation(gen)  # every part of every segment opens
        return LiveState(path, manifest), manifest
    except IndexCorruptError as err:
        if not rebuild:
            raise
        log.warning("the index at %s is damaged (%s); building it again", path, err)
        return None, _readable_manifest(path)


def _readable_manifest(path: Path) -> dict[str, Any]:
    """The live manifest of a damaged index, if it can still be read (else ``{}``)."""
    try:
        gen = generations.current_generation(path)
        data = json.loads((gen / generations.MANIFEST).read_text(encoding="utf-8")) if gen else {}
    except (OSError, ValueError, IndexCorruptError):
        return {}
    return data if isinstance(data, dict) else {}


def build_settings(
    old: LiveState | None, recorded: dict[str, Any], settings: Settings | None, path: Path
) -> Settings:
    """The settings a build writes with: the live index's (checked against ``settings``),
    else ``settings``, else those a damaged index recorded, else the defaults."""
    if old is not None:
        return settings_for(old.manifest, settings, path)
    if settings is not None:
        return settings
    value = recorded.get("settings")
    if isinstance(value, dict):
        try:
            return Settings().with_(value)
        except (SourcierError, TypeError):
            pass
    return Settings()


def excluded_sources(manifest: dict[str, Any]) -> set[str]:
    """The sources the user removed, as the manifest lists them."""
    value = manifest.get(EXCLUDED, [])
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


@dataclass(frozen=True)
class Reading:
    """What the read stage found.

    Attributes:
        fresh: the documents read, by id.
        by_source: every source taken -> its document id (read, or known unchanged).
        skipped: what could not be taken, each with its reason.
        kept_out: the sources the user removed, found again.
        checked: the new identities of the files read or checked.
        kept: the sources that could not be read and keep their live document.
    """

    fresh: dict[str, Document]
    by_source: dict[str, str]
    skipped: tuple[Skipped, ...]
    kept_out: tuple[str, ...]
    checked: dict[str, FileIdentity] = field(default_factory=dict)
    kept: frozenset[str] = frozenset()


@dataclass
class Plan:
    """What a build changes, and what its report says.

    Attributes:
        old: the live index (None for a new one).
        old_docs: the live documents the build looked at.
        to_write: new, edited and moved documents: they go into new segments.
        tombstoned: live documents that get a tombstone (removed, edited, moved).
        moved: documents whose text is unchanged but whose source changed.
        excluded / old_excluded: the sources the user removed, after and before.
    """

    old: LiveState | None
    old_docs: dict[str, LiveDocument]
    to_write: dict[str, Document]
    tombstoned: set[str]
    moved: set[str]
    excluded: set[str]
    old_excluded: set[str]
    indexed: tuple[str, ...]
    edited: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    kept_out: tuple[str, ...]
    changed: bool = field(default=True)
    changed_files: tuple[FileIdentity, ...] = ()
    removed_files: frozenset[str] = frozenset()


def live_documents(old: LiveState | None, sources: Sources) -> dict[str, LiveDocument] | None:
    """Every live document, when files may have disappeared (a folder or record sync);
    ``None`` otherwise (the few that matter are looked up after reading)."""
    if old is None:
        return {}
    if sources.sync and (sources.roots or sources.documents):
        return old.all_documents()
    return None


def reconcile(
    old: LiveState | None,
    reading: Reading,
    sources: Sources,
    excluded: set[str],
    *,
    old_docs: dict[str, LiveDocument] | None = None,
    identities: Mapping[str, FileIdentity] | None = None,
) -> Plan:
    """Decide the new document set from what was read and what is live.

    Args:
        old: the live index (None for a new one).
        reading: what the read stage found.
        sources: what the build was asked to read and remove.
        excluded: the sources the user removed, before this build.
        old_docs: the live documents (:func:`live_documents`); ``None``: the few a
            lookup finds by the ids and sources read.
        identities: the live generation's file identities.

    Raises:
        InputError: a new index would hold no document (the message says why).
    """
    fresh, by_source = reading.fresh, reading.by_source
    old_excluded = set(excluded)
    excluded = (excluded - set(by_source)) if by_source else set(excluded)  # named again: in
    roots = sources.roots
    record_sync = bool(sources.documents) and sources.sync
    if old is None:
        old_docs = {}
    elif old_docs is None:
        old_docs = old.find(set(fresh) | set(sources.remove_ids), set(by_source))
    keep: set[str] = set()
    for doc_id, live_doc in old_docs.items():
        if doc_id in sources.remove_ids:
            excluded.add(live_doc.source)
            continue
        if live_doc.source in reading.kept:  # unreadable now: the version indexed stays
            keep.add(doc_id)
            continue
        if live_doc.source in by_source:
            continue
        if sources.sync and roots and _within(live_doc.source, roots):
            continue
        if record_sync and live_doc.source.startswith("record:"):
            continue
        keep.add(doc_id)
    new_ids = keep | set(by_source.values())
    old_sources = {d.source for d in old_docs.values()}
    new_files = [d for d in fresh.values() if d.doc_id not in old_docs]
    edited = tuple(d.source for d in new_files if d.source in old_sources)
    if old is None and not new_ids:
        given = ", ".join(str(p) for p in sources.paths) or "the given records"
        raise InputError(
            f"no document could be indexed from {given}{skip_summary(reading.skipped)}",
            code="nothing_indexed",
            sources=given,
            skipped=len(reading.skipped),
        )
    moved = {i for i, d in fresh.items() if i in old_docs and old_docs[i].source != d.source}
    tombstoned = {i for i in old_docs if i not in new_ids or i in moved}
    known = identities or {}
    return Plan(
        old=old,
        old_docs=old_docs,
        to_write={i: d for i, d in fresh.items() if i not in old_docs or i in moved},
        tombstoned=tombstoned,
        moved=moved,
        excluded=excluded,
        old_excluded=old_excluded,
        indexed=tuple(d.source for d in new_files if d.source not in old_sources),
        edited=edited,
        unchanged=tuple(s for s, i in by_source.items() if i in old_docs and i not in moved),
        removed=tuple(
            d.source for i, d in old_docs.items() if i not in new_ids and d.source not in edited
        ),
        skipped=reading.skipped,
        kept_out=reading.kept_out,
        changed=not (
            old is not None and new_ids == set(old_docs) and not moved and excluded == old_excluded
        ),
        changed_files=tuple(i for s, i in reading.checked.items() if _news(known.get(s), i)),
        removed_files=frozenset(
            s
            for s in (old_docs[i].source for i in tombstoned)
            if s not in by_source and s not in reading.kept
        ),
    )


def _news(known: FileIdentity | None, checked: FileIdentity) -> bool:
    """Whether a file's new identity is worth recording: it differs from the one known,
    or the one known was too close to its check to be trusted."""
    if known is None or not known.unchanged(checked.stat):
        return True
    return (known.sha256, known.doc_id) != (checked.sha256, checked.doc_id)


def entries_after(plan: Plan) -> list[dict[str, Any]]:
    """The live manifest's segments with the plan's tombstones; fully deleted segments
    dropped."""
    if plan.old is None:
        return []
    by_segment: dict[str, set[str]] = {}
    for doc_id in plan.tombstoned:
        by_segment.setdefault(plan.old_docs[doc_id].segment, set()).add(doc_id)
    entries = []
    for entry in plan.old.manifest["segments"]:
        new_dead = by_segment.get(entry["name"], set())
        if not new_dead:
            entries.append(entry)
            continue
        deleted = sorted(set(entry.get("deleted", ())) | new_dead)
        if len(deleted) >= int(entry["documents"]):
            continue  # nothing live left in it
        dead_chunks = int(entry.get("deleted_chunks", 0)) + sum(
            plan.old_docs[d].chunks for d in new_dead
        )
        entries.append({**entry, "deleted": deleted, "deleted_chunks": dead_chunks})
    return entries


def _within(source: str, roots: Iterable[Path]) -> bool:
    p = Path(source)
    return any(p == root or root in p.parents for root in roots)


def skip_summary(skipped: Sequence[Skipped]) -> str:
    """Why nothing was indexed, in a few words."""
    if not skipped:
        from ..ingest.readers import SUPPORTED_EXTENSIONS

        kinds = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        return f": no supported file ({kinds}) was found"
    reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return f": every file was skipped ({reasons}{more})"
