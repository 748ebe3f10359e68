"""Merging segments: which ones (a size-tiered policy) and how (without re-embedding).

The policy is size-tiered (Cassandra's STCS, close to Lucene's log merge policy), in
live chunks:

- segments are put in buckets of similar size: in order of size, a segment joins the
  current bucket while it is at most ``spread`` (1.5) times the bucket's mean size;
  every segment under ``floor`` chunks shares the lowest bucket;
- when a bucket holds ``factor`` (10) segments, the oldest ``factor`` of them are merged
  into one, about ``factor`` times bigger (it can fill a bucket in turn);
- a segment whose deleted share exceeds ``expunge`` (30%) is rewritten alone, so
  tombstones never cost more than that share of a segment's space.

Buckets by ratio, not fixed tiers by ``log10(size)``: with fixed tiers, segments of
99,999 and 100,000 chunks (a build's size cap) fell in two tiers and never merged.

So an index of ``N`` chunks has at most ``factor - 1`` segments per size class, about
``(factor - 1) · log_factor(N / floor)`` in all, and each chunk is rewritten about
``log_factor(N / floor)`` times over its life: updates stay O(change), amortised.
``sourcier index --optimize`` merges every segment into one. No merge writes more than
``max_chunks`` (1M) live chunks: a merge holds its segments in memory (16.6 GB measured
at 1M chunks, 512-d), so a bigger index keeps segments of about 1M.

A merge copies what its segments hold: vectors, int8 sentence vectors and BM25
postings (:meth:`~sourcier.bm25_segments.BM25Segment.merge`); nothing is analysed or
embedded again. It writes one new segment, then a manifest without the merged ones,
exactly as a build does, so a merge killed at any moment leaves the index as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Chunk, Document
from . import generations
from .bm25 import BM25Segment
from .dense import FLAT_BELOW
from .segment import Segment, SegmentData, write_segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergePolicy:
    """When segments are merged (see the module's doc).

    Attributes:
        factor: segments of one size class that trigger a merge (>= 2).
        floor: live chunks under which every segment is in the lowest class.
        spread: how much bigger than its bucket's mean a segment may be to join it.
        expunge: deleted share above which a segment is rewritten alone.
        max_chunks: live chunks a merge may write into one segment at most. A merge
            holds its segments in memory: 16.6 GB at 1M chunks (512-d) on the 24 GiB
            machine this was measured on, so bigger indexes keep several segments.
    """

    factor: int = 10
    floor: int = 1000
    spread: float = 1.5
    expunge: float = 0.3
    max_chunks: int = 1_000_000

    def buckets(self, entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The entries in buckets of similar live size, smallest first."""
        found: list[list[dict[str, Any]]] = []
        total = 0
        for entry in sorted(entries, key=live_chunks):
            n = live_chunks(entry)
            if found:
                mean = total / len(found[-1])
                if (n < self.floor and mean < self.floor) or n <= self.spread * mean:
                    found[-1].append(entry)
                    total += n
                    continue
            found.append([entry])
            total = n
        return found


def live_chunks(entry: dict[str, Any]) -> int:
    return int(entry.get("chunks", 0)) - int(entry.get("deleted_chunks", 0))


def plan(entries: Sequence[dict[str, Any]], policy: MergePolicy) -> list[list[str]]:
    """The groups of segment names to merge now, each group in manifest order."""
    order = {e["name"]: i for i, e in enumerate(entries)}
    groups: list[list[str]] = []
    for bucket in policy.buckets(entries):
        members = sorted((e["name"] for e in bucket), key=order.__getitem__)
        size = {e["name"]: live_chunks(e) for e in bucket}
        while len(members) >= policy.factor:
            group, members = members[: policy.factor], members[policy.factor :]
            if sum(size[n] for n in group) <= policy.max_chunks:
                groups.append(group)
    grouped = {name for group in groups for name in group}
    for entry in entries:
        chunks = int(entry.get("chunks", 0))
        dead = int(entry.get("deleted_chunks", 0))
        if entry["name"] not in grouped and chunks and dead / chunks > policy.expunge:
            groups.append([entry["name"]])
    return groups


def optimize_plan(entries: Sequence[dict[str, Any]], max_chunks: int) -> list[list[str]]:
    """``--optimize``: runs of adjacent segments of at most ``max_chunks`` live chunks
    each (every segment when they fit), merged into one segment per run; a run of one
    segment is rewritten only if it has deletions."""
    runs: list[list[dict[str, Any]]] = []
    total = 0
    for entry in entries:
        n = live_chunks(entry)
        if runs and total + n <= max_chunks:
            runs[-1].append(entry)
            total += n
        else:
            runs.append([entry])
            total = n
    return [
        [e["name"] for e in run]
        for run in runs
        if len(run) > 1 or any(e.get("deleted") or e.get("deleted_chunks") for e in run)
    ]


@dataclass(frozen=True)
class MergeReport:
    """What merging did: segments before and after, chunks rewritten, seconds."""

    segments_before: int
    segments_after: int
    merged: int
    chunks_written: int
    seconds: float


def merge_segments(
    path: Path,
    manifest: dict[str, Any],
    names: Sequence[str],
    *,
    flat_below: int = FLAT_BELOW,
) -> tuple[dict[str, Any], int]:
    """Write one segment holding the live chunks of ``names`` and publish a manifest
    that lists it in their place. Caller holds the writer lock.

    Returns:
        The published manifest and the number of chunks written.
    """
    entries = manifest["segments"]
    wanted = set(names)
    group = [e for e in entries if e["name"] in wanted]
    documents: list[Document] = []
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    spans: list[np.ndarray] = []  # per chunk, its sentences' (start, end) rows
    row_ranges: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    scales: list[np.ndarray] = []
    bm25_parts: list[tuple[BM25Segment, set[int]]] = []
    stores: list[str] = []
    for entry in group:
        segment = Segment(path, entry["name"])
        stores.append(segment.vector_store)
        dead_docs = set(entry.get("deleted", ()))
        documents += [d for i, d in segment.documents.items() if i not in dead_docs]
        keep: list[int] = []
        dead_ids: set[int] = set()
        for position, (fid, chunk_id, doc_id, ordinal, start, end, label) in enumerate(
            segment.chunk_rows
        ):
            if doc_id in dead_docs:
                dead_ids.add(int(fid))
                continue
            keep.append(position)
            chunks.append(Chunk(chunk_id, doc_id, ordinal, start, end, "", label))  # no text
            first = int(segment.sentence_first[position])
            rows = slice(first, first + int(segment.sentence_count[position]))
            spans.append(np.stack([segment.sentence_starts[rows], segment.sentence_ends[rows]], 1))
            row_ranges.append(np.arange(rows.start, rows.stop))
        vectors.append(segment.chunk_vectors(np.array(keep, dtype=np.int64)))
        taken = np.concatenate(row_ranges) if row_ranges else np.zeros(0, dtype=np.int64)
        codes.append(np.asarray(segment.codes[taken]))
        scales.append(np.asarray(segment.scales[taken]))
        row_ranges.clear()
        bm25_parts.append((segment.bm25, dead_ids))
    dim = int(manifest["dimension"])
    data = SegmentData(
        documents=documents,
        chunks=chunks,
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
        sentence_spans=spans,
        sentence_codes=np.concatenate(codes) if codes else np.zeros((0, dim), np.int8),
        sentence_scales=np.concatenate(scales) if scales else np.zeros(0, np.float32),
        bm25=BM25Segment.merge(bm25_parts),
    )
    new_entries: list[dict[str, Any]] = []
    merged_entry = (
        # the merged segment keeps the vector store of the segments (of the newest, if mixed)
        write_segment(path, data, dimension=dim, flat_below=flat_below, vector_store=stores[-1])
        if chunks or documents
        else None
    )
    for entry in entries:
        if entry["name"] not in wanted:
            new_entries.append(entry)
        elif entry["name"] == group[0]["name"] and merged_entry is not None:
            new_entries.append(merged_entry)
    new_manifest = {**manifest, "segments": new_entries}
    generations.publish(path, new_manifest)
    return new_manifest, len(chunks)


def run_merges(
    path: Path,
    manifest: dict[str, Any],
    policy: MergePolicy | None,
    *,
    optimize: bool = False,
    flat_below: int = FLAT_BELOW,
) -> MergeReport:
    """Merge what ``policy`` asks for (``optimize``: everything into as few segments as
    ``max_chunks`` allows, one below it), round after round until nothing is left to
    merge. Caller holds the writer lock."""
    t0 = time.perf_counter()
    before = len(manifest.get("segments", ()))
    merged = written = 0
    for _ in range(64):  # each round removes at least one segment; this only bounds a bug
        entries = manifest.get("segments", [])
        if optimize:
            groups = optimize_plan(entries, (policy or MergePolicy()).max_chunks)
        else:
            groups = plan(entries, policy) if policy is not None else []
        if not groups:
            break
        for group in groups:
            log.info("merging %d segments (%s)", len(group), ", ".join(group))
            manifest, n = merge_segments(path, manifest, group, flat_below=flat_below)
            merged += len(group)
            written += n
        if optimize:
            break
    return MergeReport(
        segments_before=before,
        segments_after=len(manifest.get("segments", ())),
        merged=merged,
        chunks_written=written,
        seconds=time.perf_counter() - t0,
    )
