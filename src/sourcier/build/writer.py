"""A loaded index, and the incremental update that writes new generations of it."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import store
from ..storage.bm25 import BM25Segment
from ..ingest.chunking import chunk_document, sentence_spans
from ..embed.embedders import Embedder, make_embedder
from ..errors import IndexCorruptError, IndexMismatchError, InputError, LoadError, SourcierError
from ..ingest.loaders import discover, load_document
from ..storage.merge import MergePolicy, MergeReport, run_merges
from ..embed.pooling import embed_with_sentences
from ..storage.segment import SegmentData, catalogue, find, quantize, write_segment
from ..settings import Settings
from ..types import BuildReport, Chunk, Document, Skipped

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a build runs (stage: "read", "embed")."""


@dataclass(frozen=True)
class DocumentInfo:
    """What the corpus panel and ``sourcier documents`` show about one document."""

    doc_id: str
    title: str
    source: str
    date_raw: str | None
    date_iso: str | None
    language: str
    chunks: int
    chars: int


def passage_text(chunk: Chunk, title: str, *, embed_title: bool) -> str:
    """The text embedded for a chunk (before the model's passage prefix)."""
    return f"{title}\n{chunk.text}" if embed_title and title else chunk.text


def lexical_text(chunk: Chunk, title: str) -> str:
    """The text BM25 indexes for a chunk: the title helps lexical matching."""
    return f"{title}\n{chunk.text}"


class Index:
    """An open index: documents, chunks, dense and lexical indexes, and its embedder.

    Reads are served from an immutable snapshot, so searches never see a half update.
    Writes (``add_files``, ``remove``; ``build_index`` for whole folders) are serialised
    by a lock file and publish a new generation atomically; this object then switches
    to it.
    """

    def __init__(
        self, path: Path, snapshot: store.Snapshot, settings: Settings, *, cache_dir: Path | None
    ) -> None:
        self.path = path
        self._snapshot = snapshot
        self.settings = settings
        self._cache_dir = cache_dir
        # shared with the views made by configure(), so the model loads once for all
        self._model_slot: list[Embedder] = []

    # ----- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, *, settings: Settings | None = None, cache_dir: Path | None = None
    ) -> Index:
        """Open the index at ``path``.

        Args:
            path: the index folder.
            settings: query settings; its index fields (model, chunking) must match the
                index. ``None`` takes the index's own fields with default query settings.
            cache_dir: where converted models are cached.

        Raises:
            IndexNotFoundError: nothing is indexed at ``path``.
            IndexMismatchError: ``settings`` name another model or chunking.
            IndexCorruptError: the files are damaged.
        """
        path = Path(path)
        snapshot = store.open_live(path)
        effective = _settings_for(snapshot.manifest, settings, path)
        return cls(path, snapshot, effective, cache_dir=cache_dir)

    def configure(self, **query_settings: Any) -> Index:
        """A view of this index with other query settings (k, mode, fusion, ...)."""
        changed = self.settings.with_(**query_settings)
        if changed.index_fields() != self.settings.index_fields():
            raise IndexMismatchError("configure() changes query settings only; rebuild instead")
        view = Index(self.path, self._snapshot, changed, cache_dir=self._cache_dir)
        view._model_slot = self._model_slot
        return view

    # ----- reading -------------------------------------------------------------

    @property
    def snapshot(self) -> store.Snapshot:
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._snapshot.manifest)

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if not self._model_slot:
            self._model_slot.append(make_embedder(self.settings, cache_dir=self._cache_dir))
        return self._model_slot[0]

    def __len__(self) -> int:
        return len(self._snapshot.chunks)

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document, sorted by title."""
        snap = self._snapshot
        counts: dict[str, int] = {}
        for c in snap.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        infos = [
            DocumentInfo(
                d.doc_id,
                d.title,
                d.source,
                d.date_raw,
                d.date_iso,
                d.language,
                counts.get(d.doc_id, 0),
                len(d.text),
            )
            for d in snap.documents.values()
        ]
        return sorted(infos, key=lambda i: (i.title.lower(), i.source))

    def document(self, doc_id: str) -> Document:
        """The document with this id (its ``text`` is what every offset refers to).

        Raises:
            InputError: no such document in this index.
        """
        try:
            return self._snapshot.documents[doc_id]
        except KeyError:
            raise InputError(
                f"no document {doc_id!r} in the index at {self.path}",
                code="document_not_found",
                doc_id=doc_id,
                path=str(self.path),
            ) from None

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id."""
        try:
            return self._snapshot.by_chunk_id[chunk_id]
        except KeyError:
            raise InputError(
                f"no chunk {chunk_id!r} in the index at {self.path}",
                code="chunk_not_found",
                chunk_id=chunk_id,
                path=str(self.path),
            ) from None

    # ----- writing -------------------------------------------------------------

    def add_files(
        self,
        paths: Sequence[str | Path],
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> BuildReport:
        """Add or update single files without removing anything else.

        A file the user removed earlier (:meth:`remove`) is added back.
        """
        return self._write(paths=paths, progress=progress, show_progress=show_progress, prune=False)

    def remove(self, doc_id: str) -> BuildReport:
        """Remove one document (by id) from the index, for good.

        The removal sticks: a later build of the folder it came from leaves the file
        out and lists it in :attr:`BuildReport.kept_out`, until the file is named
        again (``sourcier index FILE``, :meth:`add_files`). The list of removed
        sources lives in the generation's manifest, so it is written as atomically
        as the rest of the index.

        Raises:
            InputError: no such document in this index.
        """
        self.document(doc_id)  # raises InputError if unknown
        return self._write(remove_ids=(doc_id,))

    def _write(self, **changes: Any) -> BuildReport:
        """Run one update with this index's settings and model, then switch to its result."""
        report = update_index(
            self.path,
            settings=self.settings,
            cache_dir=self._cache_dir,
            embedder=self._model_slot[0] if self._model_slot else None,
            **changes,
        )
        self.reload()
        return report

    def reload(self) -> None:
        """Switch to the live generation on disk (after a write by anyone)."""
        snapshot = store.open_live(self.path, loaded=self._snapshot.segments)
        _settings_for(snapshot.manifest, self.settings, self.path)
        self._snapshot = snapshot


def _settings_for(manifest: dict[str, Any], settings: Settings | None, path: Path) -> Settings:
    recorded = manifest.get("settings", {})
    if settings is None:
        return Settings().with_(**recorded)
    mine = settings.index_fields()
    if recorded.get("model") != mine["model"]:
        raise IndexMismatchError(
            f"the index at {path} was built with model {recorded.get('model')!r}, "
            f"not {mine['model']!r}; use another --index or rebuild it",
            code="index_mismatch_model",
            path=str(path),
            built=str(recorded.get("model")),
            wanted=str(mine["model"]),
        )
    differing = sorted(k for k, v in mine.items() if recorded.get(k, v) != v)
    if differing:
        fields = ", ".join(f"{k}={recorded.get(k)!r}" for k in differing)
        raise IndexMismatchError(
            f"the index at {path} was built with other {', '.join(differing)} "
            f"({fields}); rebuild it to change them",
            code="index_mismatch_settings",
            path=str(path),
            fields=fields,
        )
    return settings


def _within(source: str, roots: Iterable[Path]) -> bool:
    p = Path(source)
    return any(p == root or root in p.parents for root in roots)


def update_index(
    path: str | Path,
    *,
    paths: Sequence[str | Path] = (),
    documents: Sequence[Document] = (),
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    prune: bool = True,
    remove_ids: Sequence[str] = (),
    readd: bool = True,
    progress: ProgressCallback | None = None,
    show_progress: bool | None = None,
    embedder: Embedder | None = None,
    merge: MergePolicy | None = MergePolicy(),  # noqa: B008 (frozen, so shared safely)
) -> BuildReport:
    """Create or update the index at ``path``; the single write path of sourcier.

    Documents removed with ``remove_ids`` stay out: their sources are recorded in the
    manifest, and later builds leave those files (and records) out and report them in
    ``kept_out``, unless the file itself is named in ``paths`` (with ``readd``).

    A live generation that cannot be read is rebuilt from ``paths`` / ``documents``
    when this is a full build (``prune``, something to read, nothing to remove);
    otherwise its IndexCorruptError is raised.

    Args:
        path: the index folder (created if missing).
        paths: files and folders to read. With ``prune``, documents previously read
            from under these paths and no longer found there are removed.
        documents: ready-made documents (for data sets given as records).
            With ``prune``, previous documents whose source starts with ``"record:"``
            and is not among them are removed.
        settings: index settings for a new index; ``None`` reuses the existing
            index's settings (or the defaults for a new one).
        cache_dir: where converted models are cached.
        prune: remove documents under ``paths`` that no longer exist.
        remove_ids: document ids to remove (and keep out of later builds).
        readd: a file named directly in ``paths`` (not found by walking a folder) is
            indexed even if it was removed before; ``False`` keeps it out too (the
            bundled corpus, which is given as a list of files).
        progress: callback ``(stage, done, total)``.
        show_progress: tqdm bars on stderr (``None``: only when stderr is a terminal).
        embedder: an already loaded embedder to reuse.
        merge: when to merge segments after the build (``None``: never; see
            :mod:`sourcier.merge`).

    Returns:
        What changed.
    """
    t0 = time.perf_counter()
    path = Path(path)
    with store.writer_lock(path):
        store.remove_stale_temporaries(path)
        full_build = prune and bool(paths or documents) and not remove_ids
        old, recorded = _live_state(path, rebuild=full_build)
        if old is not None:
            settings = _settings_for(old.manifest, settings, path)
        elif settings is None:
            settings = _recorded_settings(recorded) or Settings()
        old_excluded = _excluded(recorded)
        excluded = set(old_excluded)

        # 1. read the files; a file the user removed stays out unless it is named again
        files, skipped = discover(paths) if paths else ([], [])
        skipped = list(skipped)
        named = {os.path.abspath(Path(p).expanduser()) for p in paths} if readd else set()
        kept_out = [str(f) for f in files if str(f) in excluded and str(f) not in named]
        files = [f for f in files if str(f) not in excluded or str(f) in named]
        fresh: dict[str, Document] = {}
        by_source: dict[str, str] = {}
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        for i, file in enumerate(_bar(files, "Reading", show_progress, unit="file")):
            try:
                doc = load_document(file, max_bytes=max_bytes)
            except LoadError as err:
                skipped.append(Skipped(str(file), str(err), err.code, dict(err.params)))
                continue
            finally:
                if progress:
                    progress("read", i + 1, len(files))
            _accept(doc, fresh, by_source, skipped)
        for doc in documents:
            if doc.source in excluded:
                kept_out.append(doc.source)
            else:
                _accept(doc, fresh, by_source, skipped)
        excluded -= set(by_source)  # named again: back in

        # 2. decide the new document set: from every live document when files may have
        #    disappeared (a folder or record sync), else from the few a lookup finds
        roots = [Path(os.path.abspath(p)) for p in paths]
        record_sync = bool(documents) and prune
        if old is None:
            old_docs: dict[str, LiveDocument] = {}
        elif old.legacy is not None or (prune and (roots or record_sync)):
            old_docs = old.all_documents()  # (an older format is rewritten whole)
        else:
            old_docs = old.find(set(fresh) | set(remove_ids), set(by_source))
        keep: set[str] = set()
        for doc_id, live_doc in old_docs.items():
            if doc_id in remove_ids:
                excluded.add(live_doc.source)
                continue
            if live_doc.source in by_source:
                continue
            if prune and roots and _within(live_doc.source, roots):
                continue
            if record_sync and live_doc.source.startswith("record:"):
                continue
            keep.add(doc_id)
        new_ids_set = keep | set(fresh)
        old_sources = {d.source for d in old_docs.values()}
        new_files = [d for d in fresh.values() if d.doc_id not in old_docs]
        indexed = tuple(d.source for d in new_files if d.source not in old_sources)
        edited = tuple(d.source for d in new_files if d.source in old_sources)
        unchanged = tuple(d.source for d in fresh.values() if d.doc_id in old_docs)
        removed = tuple(
            d.source for i, d in old_docs.items() if i not in new_ids_set and d.source not in edited
        )

        if old is None and not new_ids_set:
            sources = ", ".join(str(p) for p in paths) or "the given records"
            raise InputError(
                f"no document could be indexed from {sources}{skip_summary(skipped)}",
                code="nothing_indexed",
                sources=sources,
                skipped=len(skipped),
            )
        moved = {i for i, d in fresh.items() if i in old_docs and old_docs[i].source != d.source}
        if (
            old is not None
            and new_ids_set == set(old_docs)
            and not moved
            and excluded == old_excluded
        ):
            log.info("nothing changed in %s", path)
            return BuildReport(
                index_path=str(path),
                unchanged=unchanged,
                skipped=tuple(skipped),
                kept_out=tuple(kept_out),
                chunks_unchanged=old.chunk_count,
                seconds=time.perf_counter() - t0,
                segments=len(old.manifest.get("segments", ())),
            )

        # 3. what to write: new, edited and moved documents go into one new segment;
        #    the live copies of removed, edited and moved ones get tombstones. An index
        #    of an older format is rewritten whole, as one segment.
        legacy = old.legacy if old else None
        if legacy is not None:
            to_write = {**{i: legacy.documents[i] for i in keep}, **fresh}
            tombstoned: set[str] = set()
        else:
            to_write = {i: d for i, d in fresh.items() if i not in old_docs or i in moved}
            tombstoned = {i for i in old_docs if i not in new_ids_set or i in moved}
        if embedder is None:
            embedder = make_embedder(settings, cache_dir=cache_dir)
        old_chunks: dict[str, list[Chunk]] = {}
        for c in legacy.chunks if legacy else ():
            old_chunks.setdefault(c.doc_id, []).append(c)
        chunks: list[Chunk] = []
        titles: list[str] = []
        for doc in sorted(to_write.values(), key=lambda d: d.source):
            doc_chunks = old_chunks.get(doc.doc_id) or chunk_document(
                doc,
                chunk_tokens=settings.chunk_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
                count_tokens=embedder.count_tokens,
            )
            chunks.extend(doc_chunks)
            titles.extend([doc.title] * len(doc_chunks))

        # 4-5. embed what no cache knows and write the segments (whole documents, at
        #      most SEGMENT_CHUNKS chunks each, so memory stays bounded), then publish
        #      a manifest that lists them (the removed sources go in it too: in or out
        #      with the generation)
        entries = _entries_after(old, old_docs, tombstoned)
        embedded = 0
        chunkless = set(to_write) - {c.doc_id for c in chunks}  # they go in the last one
        batches = _batches(chunks, SEGMENT_CHUNKS) or ([(0, 0)] if to_write else [])
        for n, (lo, hi) in enumerate(batches):
            doc_ids = {c.doc_id for c in chunks[lo:hi]}
            entry, count = _write_segment(
                path,
                embedder,
                settings,
                {i: to_write[i] for i in doc_ids | (chunkless if n == len(batches) - 1 else set())},
                chunks[lo:hi],
                titles[lo:hi],
                legacy,
                _offset_progress(progress, lo, len(chunks)),
                show_progress,
            )
            entries.append(entry)
            embedded += count
        manifest = {
            "model": embedder.model_id,
            "dimension": embedder.dim,
            "query_prefix": embedder.query_prefix,
            "passage_prefix": embedder.passage_prefix,
            "settings": {**settings.index_fields(), "model": embedder.model_id},
            EXCLUDED: sorted(excluded),
            "documents": sum(int(e["documents"]) - len(e["deleted"]) for e in entries),
            "chunks": sum(int(e["chunks"]) - int(e["deleted_chunks"]) for e in entries),
            "segments": entries,
        }
        store.publish(path, manifest)
        _drop_cache(path)
        merges = run_merges(path, manifest, merge) if merge is not None else None
        if legacy is not None:
            old_ids = {c.chunk_id for c in legacy.chunks}
            new_ids = {c.chunk_id for c in chunks}
            added, dropped = len(new_ids - old_ids), len(old_ids - new_ids)
            kept = len(new_ids & old_ids)
        else:
            moved_chunks = sum(old_docs[i].chunks for i in moved)
            dropped = sum(old_docs[i].chunks for i in tombstoned) - moved_chunks
            added = len(chunks) - moved_chunks
            kept = (old.chunk_count if old else 0) - dropped
        return BuildReport(
            index_path=str(path),
            indexed=indexed,
            edited=edited,
            unchanged=unchanged,
            removed=removed,
            skipped=tuple(skipped),
            kept_out=tuple(kept_out),
            chunks_added=added,
            chunks_removed=dropped,
            chunks_unchanged=kept,
            embedded=embedded,
            seconds=time.perf_counter() - t0,
            segments=len(entries) if merges is None else merges.segments_after,
            merged=0 if merges is None else merges.merged,
        )


def optimize_index(path: str | Path) -> MergeReport:
    """Merge every segment of the index at ``path`` into one, without deleted chunks.

    Raises:
        IndexNotFoundError: nothing is indexed at ``path``.
        IndexCorruptError: the index is damaged.
    """
    path = Path(path)
    with store.writer_lock(path):
        store.remove_stale_temporaries(path)
        gen = store.require_index(path)
        manifest = store.read_manifest(gen)
        if manifest["format_version"] < store.FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index at {path} has an older format; any build rewrites it as one "
                f"segment (`sourcier index FOLDER --index {path}`)",
                code="index_old_format",
                path=str(path),
            )
        return run_merges(path, manifest, None, optimize=True)


@dataclass(frozen=True)
class LiveDocument:
    """What a writer knows of a live document without reading its text."""

    source: str
    segment: str | None  # None in an index of an older format
    chunks: int


class LiveState:
    """What a writer reads of the live index: its manifest, and its documents' ids,
    sources and chunk counts as far as it asks (no text, no vectors).

    ``legacy`` is the whole snapshot of a format 2 or 3 index (which is rewritten).
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        legacy: store.Snapshot | None = None,
        legacy_documents: dict[str, LiveDocument] | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.legacy = legacy
        self._legacy_documents = legacy_documents

    @property
    def chunk_count(self) -> int:
        if self._legacy_documents is not None:
            return sum(d.chunks for d in self._legacy_documents.values())
        return int(self.manifest.get("chunks", 0))

    def all_documents(self) -> dict[str, LiveDocument]:
        """Every live document (reads each segment's catalogue)."""
        if self._legacy_documents is not None:
            return dict(self._legacy_documents)
        return self._collect(lambda name: catalogue(self.path, name))

    def find(self, doc_ids: set[str], sources: set[str]) -> dict[str, LiveDocument]:
        """The live documents with one of these ids or sources."""
        if self._legacy_documents is not None:
            return {
                i: d
                for i, d in self._legacy_documents.items()
                if i in doc_ids or d.source in sources
            }
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
                raise store.corrupt(self.path, str(err)) from err
            for doc_id, source, n in rows:
                if doc_id not in dead:
                    docs[doc_id] = LiveDocument(source, entry["name"], n)
        return docs


def _entries_after(
    old: LiveState | None, old_docs: dict[str, LiveDocument], tombstoned: set[str]
) -> list[dict[str, Any]]:
    """The live manifest's segments with new tombstones; fully deleted segments dropped."""
    if old is None or old.legacy is not None:
        return []
    by_segment: dict[str, set[str]] = {}
    for doc_id in tombstoned:
        seg = old_docs[doc_id].segment
        if seg is not None:
            by_segment.setdefault(seg, set()).add(doc_id)
    entries = []
    for entry in old.manifest["segments"]:
        new_dead = by_segment.get(entry["name"], set())
        if not new_dead:
            entries.append(entry)
            continue
        deleted = sorted(set(entry.get("deleted", ())) | new_dead)
        if len(deleted) >= int(entry["documents"]):
            continue  # nothing live left in it
        dead_chunks = int(entry.get("deleted_chunks", 0)) + sum(
            old_docs[d].chunks for d in new_dead
        )
        entries.append({**entry, "deleted": deleted, "deleted_chunks": dead_chunks})
    return entries


EXCLUDED = "excluded"
"""The manifest key listing the sources the user removed (kept out of later builds)."""


SEGMENT_CHUNKS = 100_000
"""The most chunks one build writes into one segment (bigger builds write several):
about 1.2 GB of vectors in memory at a time with 512-d vectors."""


def _batches(chunks: Sequence[Chunk], limit: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``chunks`` of at most ``limit`` (a document bigger
    than that is one slice), cut between documents."""
    ends = [
        i
        for i in range(1, len(chunks) + 1)
        if i == len(chunks) or chunks[i].doc_id != chunks[i - 1].doc_id
    ]
    cuts: list[tuple[int, int]] = []
    lo = prev = 0
    for end in ends:  # each document ends a slice, or the next one would make it too big
        if end - lo > limit and prev > lo:
            cuts.append((lo, prev))
            lo = prev
        prev = end
    if prev > lo:
        cuts.append((lo, prev))
    return cuts


def _offset_progress(
    progress: ProgressCallback | None, offset: int, total: int
) -> ProgressCallback | None:
    """Progress of one segment's chunks, reported over the whole build's."""
    if progress is None:
        return None
    return lambda stage, done, _n: progress(stage, offset + done, total)


def _write_segment(
    path: Path,
    embedder: Embedder,
    settings: Settings,
    documents: dict[str, Document],
    chunks: Sequence[Chunk],
    titles: Sequence[str],
    legacy: store.Snapshot | None,
    progress: ProgressCallback | None,
    show_progress: bool | None,
) -> tuple[dict[str, Any], int]:
    """Embed what no cache knows of ``chunks`` and write them with ``documents`` (theirs,
    plus any without a chunk) as a new segment. Returns its manifest entry and the number
    of passages embedded."""
    chunks, titles = list(chunks), list(titles)
    texts = [
        passage_text(c, t, embed_title=settings.embed_title)
        for c, t in zip(chunks, titles, strict=True)
    ]
    doc_spans = [sentence_spans(documents[c.doc_id].text, c.start, c.end) for c in chunks]
    shifts = [len(t) - len(c.text) - c.start for c, t in zip(chunks, texts, strict=True)]
    passage_spans = [
        [(s + d, e + d) for s, e in spans] for spans, d in zip(doc_spans, shifts, strict=True)
    ]
    reusable = _reusable_vectors(legacy, embedder, settings, chunks, doc_spans)
    vectors, sentence_vectors, embedded = _vectors_for(
        path, embedder, texts, passage_spans, settings, progress, show_progress, reusable
    )
    codes, scales = quantize(sentence_vectors.reshape(-1, embedder.dim))
    ids = [store.faiss_id_for(c.chunk_id) for c in chunks]
    lexical = [lexical_text(c, t) for c, t in zip(chunks, titles, strict=True)]
    docs = sorted(documents.values(), key=lambda d: d.source)
    data = SegmentData(
        documents=docs,
        chunks=chunks,
        vectors=vectors,
        sentence_spans=doc_spans,
        sentence_codes=codes,
        sentence_scales=scales,
        bm25=BM25Segment.build(lexical, ids),
    )
    return write_segment(path, data, dimension=embedder.dim), embedded


def _live_state(path: Path, *, rebuild: bool) -> tuple[LiveState | None, dict[str, Any]]:
    """The live index as a writer needs it (None for a new one) and its manifest as far as
    readable.

    A writer reads only the segments' catalogues (no text, no vectors), and for an
    update of a few files only the rows it looks up, so an update costs what changed.
    A full build (``rebuild``) opens every segment instead, so that
    a damaged one is found: it is logged and the index is built again; otherwise its
    IndexCorruptError is raised.
    """
    try:
        if store.current_generation(path) is None:
            return None, {}
        gen = store.require_index(path)
        manifest = store.read_manifest(gen)
        if manifest["format_version"] < store.FORMAT_VERSION:
            snap = store.read_snapshot(gen)
            counts: dict[str, int] = {}
            for c in snap.chunks:
                counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
            docs = {
                i: LiveDocument(d.source, None, counts.get(i, 0)) for i, d in snap.documents.items()
            }
            return LiveState(path, manifest, snap, docs), manifest
        if rebuild:
            store.read_snapshot(gen)  # every part of every segment opens
        return LiveState(path, manifest), manifest
    except IndexCorruptError as err:
        if not rebuild:
            raise
        log.warning("the index at %s is damaged (%s); building it again", path, err)
        return None, _readable_manifest(path)


def _readable_manifest(path: Path) -> dict[str, Any]:
    """The live manifest of a damaged index, if it can still be read (else ``{}``)."""
    try:
        gen = store.current_generation(path)
        data = json.loads((gen / store.MANIFEST).read_text(encoding="utf-8")) if gen else {}
    except (OSError, ValueError, IndexCorruptError):
        return {}
    return data if isinstance(data, dict) else {}


def _recorded_settings(manifest: dict[str, Any]) -> Settings | None:
    recorded = manifest.get("settings")
    if not isinstance(recorded, dict):
        return None
    try:
        return Settings().with_(**recorded)
    except (SourcierError, TypeError):
        return None


def _excluded(manifest: dict[str, Any]) -> set[str]:
    value = manifest.get(EXCLUDED, [])
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def skip_summary(skipped: Sequence[Skipped]) -> str:
    """Why nothing was indexed, in a few words."""
    if not skipped:
        return ": no supported file (.txt, .md, .html, .pdf, .docx) was found"
    reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return f": every file was skipped ({reasons}{more})"


def _accept(
    doc: Document, fresh: dict[str, Document], by_source: dict[str, str], skipped: list[Skipped]
) -> None:
    if doc.doc_id in fresh:
        other = fresh[doc.doc_id].source
        skipped.append(
            Skipped(doc.source, f"same content as {other}", "duplicate", {"other": other})
        )
        return
    fresh[doc.doc_id] = doc
    by_source[doc.source] = doc.doc_id


def _vectors_for(
    path: Path,
    embedder: Embedder,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    settings: Settings,
    progress: ProgressCallback | None,
    show_progress: bool | None,
    reusable: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Passage and sentence vectors for ``texts``: those of unchanged chunks from the live
    generation (``reusable``, by position), the rest from the cache or freshly embedded.

    Returns:
        ``(passage_vectors, sentence_vectors stacked in order, number embedded)``.
    """
    reusable = reusable or {}
    cache = store.EmbeddingCache(path / store.CACHE, embedder.model_id, embedder.dim)
    try:
        keys = [cache.key(t) for t in texts]
        where = {k: i for i, k in enumerate(keys)}
        known = {keys[i]: v for i, v in reusable.items()}
        wanted = [k for k in keys if k not in known]
        known.update(  # a cached entry is only usable if it has one vector per sentence
            {k: v for k, v in cache.get_many(wanted).items() if len(v[1]) == len(spans[where[k]])}
        )
        todo_at: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in known and k not in todo_at:
                todo_at[k] = i
        # by length, so each batch pads to similar lengths (the forward pass is the cost)
        todo = sorted(todo_at.items(), key=lambda kv: (len(texts[kv[1]]), kv[0]))
        if todo:
            bar = _bar(None, "Embedding", show_progress, total=len(todo), unit="chunk")
            done = 0
            step = max(settings.batch_size * 4, 64)
            for i in range(0, len(todo), step):
                part = todo[i : i + step]

                def tick(n: int) -> None:
                    nonlocal done
                    done += n
                    bar.update(n)
                    if progress:
                        progress("embed", done, len(todo))

                vecs, sents = embed_with_sentences(
                    embedder,
                    [texts[j] for _, j in part],
                    [spans[j] for _, j in part],
                    batch_size=settings.batch_size,
                    progress=tick,
                )
                rows = [(k, v, sv) for (k, _), v, sv in zip(part, vecs, sents, strict=True)]
                cache.put_many(rows)
                known.update({k: (v, sv) for k, v, sv in rows})
            bar.close()
        dim = embedder.dim
        vectors = (
            np.stack([known[k][0] for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, dim), dtype=np.float32)
        )
        sentence_parts = [known[k][1] for k in keys]
        sentence_vectors = (
            np.concatenate(sentence_parts).astype(np.float32)
            if sentence_parts
            else np.zeros((0, dim), dtype=np.float32)
        )
        return vectors, sentence_vectors, len(todo)
    finally:
        cache.close()


def _reusable_vectors(
    old: store.Snapshot | None,
    embedder: Embedder,
    settings: Settings,
    chunks: list[Chunk],
    spans: list[list[tuple[int, int]]],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The vectors of chunks the live generation already holds, by position in ``chunks``.

    A chunk id is a hash of its document's text and offsets, so the same id embedded by
    the same model with the same prompts and title setting gives the same vectors: they
    are read from the generation instead of being kept twice (once more in the cache).
    """
    if old is None or old.manifest.get("model") != embedder.model_id:
        return {}
    recorded = old.manifest.get("settings", {})
    same_input = (
        old.manifest.get("query_prefix") == embedder.query_prefix
        and old.manifest.get("passage_prefix") == embedder.passage_prefix
        and recorded.get("embed_title", True) == settings.embed_title
    )
    if not same_input:
        return {}
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, (chunk, chunk_spans) in enumerate(zip(chunks, spans, strict=True)):
        rows = old.sentences.get(chunk.chunk_id)
        if chunk.chunk_id not in old.by_chunk_id or rows is None or len(rows) != len(chunk_spans):
            continue
        try:
            vector = old.dense.vector(store.faiss_id_for(chunk.chunk_id))
        except KeyError:
            continue
        sentence_rows = [row for _, _, row in rows]
        found[i] = (vector, np.asarray(old.sentence_vectors[sentence_rows], dtype=np.float32))
    return found


def _drop_cache(path: Path) -> None:
    """Once a generation is live its segments hold every vector, so the cache is dropped:
    it only keeps the work of a build that was interrupted before it could publish.
    (Deleting the file under the writer's lock costs nothing; emptying it row by row took
    minutes at a million chunks.)"""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (path / f"{store.CACHE}{suffix}").unlink(missing_ok=True)


def _bar(iterable: Any, desc: str, show: bool | None, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=(None if show is None else not show), **kwargs)
