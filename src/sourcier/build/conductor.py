"""The build: the one write path of sourcier, as named stages.

:func:`update_index` runs, under the index's writer lock:

1. **plan** the live state (:func:`~sourcier.build.plan.live_state`; an older format is
   upgraded first),
2. **read** the files (:func:`~sourcier.build.read.read`),
3. **reconcile** what was read with what is live: what to write, what to tombstone
   (:func:`~sourcier.build.plan.reconcile`),
4. **chunk** the documents to write, each chunk with its sentences
   (:func:`~sourcier.build.chunk.chunk_documents`),
5. **embed** what no cache holds, with an embedding stage: this process or a Ray
   cluster (:mod:`sourcier.build.embed`, :mod:`sourcier.build.ray`),
6. **write** segments of at most :data:`~sourcier.build.write.SEGMENT_CHUNKS` chunks,
7. **publish** a manifest that lists them, then merge segments by the merge policy.

A kill at any moment leaves the previous generation or the new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ingest.loaders import READER_VERSION
from ..settings import Settings
from ..storage import generations
from ..storage.identities import record_identities
from ..storage.merge import MergePolicy, MergeReport, run_merges
from ..types import BuildReport
from . import vector_cache
from .chunk import Passage, chunk_documents
from .embed import EmbeddingStage, LocalEmbedding, vectors_for
from .plan import (
    EXCLUDED,
    LiveState,
    Plan,
    Sources,
    build_settings,
    entries_after,
    excluded_sources,
    live_documents,
    reconcile,
)
from .plan import live_state as read_live_state
from .prefetch import Prefetch
from .progress import Reporter
from .read import read
from .upgrade import upgrade_locked
from .write import SEGMENT_CHUNKS, batches, write

log = logging.getLogger(__name__)

StageFactory = Callable[[Settings], EmbeddingStage]
"""Makes a build's embedding stage once its settings are known."""


def local_embedding(settings: Settings) -> EmbeddingStage:
    """The default stage: the settings' model, in this process."""
    from ..embed.models import load_embedder

    return LocalEmbedding(load_embedder(settings.model), batch_size=settings.model.batch_size)


def update_index(
    path: str | Path,
    sources: Sources,
    *,
    settings: Settings | None = None,
    embedding: StageFactory | None = None,
    reporter: Reporter | None = None,
    merge: MergePolicy | None = MergePolicy(),  # noqa: B008 (frozen, so shared safely)
) -> BuildReport:
    """Create or update the index at ``path`` with ``sources``.

    Args:
        path: the index folder (created if missing).
        sources: what to read, what to remove (:class:`~sourcier.build.plan.Sources`).
        settings: index settings for a new index; ``None`` reuses the existing index's
            (or the defaults). They must agree with an existing index.
        embedding: makes the embedding stage (default: the model, in this process).
        reporter: where progress goes (default: bars when stderr is a terminal).
        merge: when to merge segments after the build (``None``: never).

    Returns:
        What changed.

    Raises:
        InputError: a path does not exist, or a new index would hold nothing.
        IndexMismatchError: ``settings`` disagree with the existing index.
        IndexCorruptError: the live index is damaged and this is not a full build.
    """
    t0 = time.perf_counter()
    path, reporter = Path(path), reporter or Reporter()
    with generations.writer_lock(path):
        generations.remove_stale_temporaries(path)
        old, recorded = read_live_state(path, rebuild=sources.full_build)
        settings = build_settings(old, recorded, settings, path)
        excluded = excluded_sources(recorded)
        make = embedding or local_embedding
        plan, ahead = _plan(path, old, sources, excluded, settings, reporter, make)
        if not plan.changed:
            log.info("nothing changed in %s", path)
            _record_files(path, plan)  # the files touched, if any
            return _report(path, plan, t0)
        if not plan.to_write and old is not None:  # removals only: no model to load
            passages, entries, embedded, precision = [], entries_after(plan), 0, ""
            model = ModelFields.of_manifest(old.manifest)
        else:
            stage = ahead.stage or make(settings)
            try:
                passages = chunk_documents(
                    plan.to_write.values(), settings, stage.count_tokens, known=ahead.passages
                )
                entries, embedded = _write_segments(path, plan, passages, stage, reporter, settings)
            finally:
                stage.close()
            embedded += ahead.embedded
            model = ModelFields.of_stage(stage)
            precision = stage.precision if embedded else ""
        manifest = _manifest(model, settings, plan.excluded, entries)
        generations.publish(path, manifest)
        _record_files(path, plan)
        vector_cache.drop(path)
        merges = run_merges(path, manifest, merge) if merge is not None else None
        return _report(path, plan, t0, passages, entries, embedded, merges, precision)


def _plan(
    path: Path,
    old: LiveState | None,
    sources: Sources,
    excluded: set[str],
    settings: Settings,
    reporter: Reporter,
    make: StageFactory,
) -> tuple[Plan, Prefetch]:
    """Read what changed and decide what to write (stages 2 and 3). New documents are
    chunked and embedded while the rest is read (:mod:`sourcier.build.prefetch`) when
    the live documents are known before reading (a sync, a new index)."""
    old_docs = live_documents(old, sources)
    identities = old.identities() if old is not None else {}
    live = {d.source: i for i, d in old_docs.items()} if old_docs else {}
    live_ids = set(old_docs) if old_docs is not None else None
    ahead = Prefetch(path, settings, lambda: make(settings), live_ids)
    try:
        reading = read(
            sources,
            excluded,
            settings,
            reporter,
            live=live,
            identities=identities,
            on_read=ahead.offer,
        )
        ahead.finish()
    finally:
        ahead.close()
    plan = reconcile(old, reading, sources, excluded, old_docs=old_docs, identities=identities)
    return plan, ahead


def _record_files(path: Path, plan: Plan) -> None:
    """Note the identities of the files read or checked, and forget the removed ones."""
    if plan.changed_files or plan.removed_files or plan.old is None:
        record_identities(
            path,
            plan.changed_files,
            plan.removed_files,
            version=READER_VERSION,
            fresh=plan.old is None,
        )


def _write_segments(
    path: Path,
    plan: Plan,
    passages: Sequence[Passage],
    stage: EmbeddingStage,
    reporter: Reporter,
    settings: Settings,
) -> tuple[list[dict[str, Any]], int]:
    """Embed and write the plan's documents as new segments (whole documents, at most
    :data:`SEGMENT_CHUNKS` chunks each, so memory stays bounded); return the manifest's
    entries (the live ones with their new tombstones, then the new ones) and the number
    of passages embedded."""
    entries = entries_after(plan)
    embedded = 0
    chunkless = set(plan.to_write) - {p.chunk.doc_id for p in passages}  # in the last one
    cuts = batches(passages, SEGMENT_CHUNKS) or ([(0, 0)] if plan.to_write else [])
    for n, (lo, hi) in enumerate(cuts):
        part = passages[lo:hi]
        doc_ids = {p.chunk.doc_id for p in part} | (chunkless if n == len(cuts) - 1 else set())
        vectors, sentence_vectors, count = vectors_for(
            path, part, stage, reporter, offset=lo, overall=len(passages)
        )
        documents = [plan.to_write[i] for i in doc_ids]
        entries.append(
            write(
                path,
                documents,
                part,
                vectors,
                sentence_vectors,
                dimension=stage.dim,
                vector_store=settings.index.vector_store,
            )
        )
        embedded += count
    return entries, embedded


@dataclass(frozen=True)
class ModelFields:
    """What a manifest records of the embedding model."""

    model_id: str
    dim: int
    query_prefix: str
    passage_prefix: str

    @classmethod
    def of_stage(cls, stage: EmbeddingStage) -> ModelFields:
        """From the build's embedding stage (its model is loaded for ``dim``)."""
        return cls(stage.model_id, stage.dim, stage.query_prefix, stage.passage_prefix)

    @classmethod
    def of_manifest(cls, manifest: dict[str, Any]) -> ModelFields:
        """From the live manifest: a build that only removes documents embeds nothing,
        so it keeps the live model's fields instead of loading the model."""
        return cls(
            str(manifest["model"]),
            int(manifest["dimension"]),
            str(manifest.get("query_prefix", "")),
            str(manifest.get("passage_prefix", "")),
        )


def _manifest(
    model: ModelFields, settings: Settings, excluded: set[str], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """The new generation's manifest (the removed sources go in it too: in or out with
    the generation)."""
    return {
        "model": model.model_id,
        "dimension": model.dim,
        "query_prefix": model.query_prefix,
        "passage_prefix": model.passage_prefix,
        "settings": {**settings.index_fields(), "model": model.model_id},
        EXCLUDED: sorted(excluded),
        "documents": sum(int(e["documents"]) - len(e["deleted"]) for e in entries),
        "chunks": sum(int(e["chunks"]) - int(e["deleted_chunks"]) for e in entries),
        "segments": entries,
    }


def _report(
    path: Path,
    plan: Plan,
    t0: float,
    passages: Sequence[Passage] = (),
    entries: Sequence[dict[str, Any]] = (),
    embedded: int = 0,
    merges: MergeReport | None = None,
    precision: str = "",
) -> BuildReport:
    old = plan.old
    if not plan.changed:
        assert old is not None
        return BuildReport(
            index_path=str(path),
            unchanged=plan.unchanged,
            skipped=plan.skipped,
            kept_out=plan.kept_out,
            chunks_unchanged=old.chunk_count,
            seconds=time.perf_counter() - t0,
            segments=len(old.manifest.get("segments", ())),
        )
    moved_chunks = sum(plan.old_docs[i].chunks for i in plan.moved)
    dropped = sum(plan.old_docs[i].chunks for i in plan.tombstoned) - moved_chunks
    return BuildReport(
        index_path=str(path),
        indexed=plan.indexed,
        edited=plan.edited,
        unchanged=plan.unchanged,
        removed=plan.removed,
        skipped=plan.skipped,
        kept_out=plan.kept_out,
        moved=tuple(sorted((plan.old_docs[i].source, plan.to_write[i].source) for i in plan.moved)),
        notes=tuple((d.source, note) for d in plan.to_write.values() for note in d.notes),
        chunks_added=len(passages) - moved_chunks,
        chunks_removed=dropped,
        chunks_unchanged=(old.chunk_count if old else 0) - dropped,
        embedded=embedded,
        precision=precision,
        seconds=time.perf_counter() - t0,
        segments=len(entries) if merges is None else merges.segments_after,
        merged=0 if merges is None else merges.merged,
    )


def optimize_index(path: str | Path) -> MergeReport:
    """Merge every segment of the index at ``path`` into one, without deleted chunks
    (an index of an older format is upgraded first).

    Raises:
        IndexNotFoundError: nothing is indexed at ``path``.
        IndexCorruptError: the index is damaged.
    """
    path = Path(path)
    with generations.writer_lock(path):
        generations.remove_stale_temporaries(path)
        generations.require_index(path)
        upgrade_locked(path)
        manifest = generations.read_manifest(generations.require_index(path))
        return run_merges(path, manifest, None, optimize=True)
