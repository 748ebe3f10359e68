"""A generation loaded for reading: every live document and chunk, searchable.

:func:`open_live` loads the live generation of an index folder as a :class:`Snapshot`,
reusing the segments a previous snapshot loaded (segments never change); the dense
index, BM25 and sentence vectors answer across all its segments and skip deleted
chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError
from ..types import Chunk, Document
from .bm25 import SegmentedBM25
from .dense import DenseIndex, DenseSegments
from .generations import (
    corrupt,
    current_generation,
    read_manifest,
    require_current_format,
    require_index,
)
from .segment import Segment, faiss_id_for
from .sentences import SentenceSpans, SentenceVectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything one generation holds, in memory (sentence vectors stay on disk).

    ``dense``, ``bm25`` and ``sentence_vectors`` answer across all segments and skip
    deleted chunks; ``documents`` and ``chunks`` hold only live ones.
    """

    manifest: dict[str, Any]
    generation: str  # the generation folder's name ("gen-000007")
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    faiss_ids: np.ndarray  # int64, aligned with chunks
    dense: DenseSegments
    bm25: SegmentedBM25
    positions: dict[int, int]  # FAISS id -> position in chunks
    by_chunk_id: dict[str, Chunk]
    sentence_vectors: SentenceVectors  # global row -> float32 vector
    sentences: Mapping[str, list[tuple[int, int, int]]]  # chunk_id -> [(start, end, row)]
    segments: dict[str, Segment]  # the loaded segments by name (reused by a reload)


def read_snapshot(gen: Path, *, loaded: dict[str, Segment] | None = None) -> Snapshot:
    """Load one generation; raise IndexCorruptError if any part is missing or damaged.

    Args:
        gen: the generation folder.
        loaded: segments already in memory (a previous snapshot's), reused by name:
            segments never change, so a reload reads only the new ones.
    """
    path = gen.parent
    manifest = read_manifest(gen)
    require_current_format(path, manifest)
    loaded = loaded or {}
    segments: dict[str, Segment] = {}
    deleted: list[set[str]] = []
    try:
        for entry in manifest["segments"]:
            name = entry["name"]
            segments[name] = loaded.get(name) or Segment(path, name)
            deleted.append({str(d) for d in entry.get("deleted", [])})
    except IndexCorruptError as err:
        raise corrupt(path, f"{gen.name}: {err}") from err
    return _assemble(gen.name, manifest, list(segments.values()), deleted, segments)


def check_generation(gen: Path) -> None:
    """Open every part of every segment of a generation, as :func:`read_snapshot`
    does, without reading the documents' texts (a writer's check that the live index
    is whole).

    Raises:
        IndexCorruptError: a part is missing, damaged or inconsistent.
    """
    path = gen.parent
    manifest = read_manifest(gen)
    require_current_format(path, manifest)
    try:
        for entry in manifest["segments"]:
            Segment(path, entry["name"], texts=False)
    except (IndexCorruptError, KeyError, TypeError) as err:
        raise corrupt(path, f"{gen.name}: {err}") from err


def open_live(path: Path, *, loaded: dict[str, Segment] | None = None) -> Snapshot:
    """The live generation of ``path``, loaded.

    A writer removes the segments only two generations back, so a reader that read an
    old ``CURRENT`` just before two writes finished can find a segment gone: it then
    reads the new ``CURRENT`` again (up to three times) instead of failing.
    """
    for attempt in range(3):
        gen = require_index(path)
        try:
            return read_snapshot(gen, loaded=loaded)
        except IndexCorruptError:
            if attempt == 2 or current_generation(path) == gen:
                raise
            log.info("%s changed while it was read; reading it again", path)
    raise AssertionError("unreachable")


def _assemble(
    generation: str,
    manifest: dict[str, Any],
    parts: list[Segment],
    deleted: list[set[str]],
    by_name: dict[str, Segment],
) -> Snapshot:
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    firsts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    dense_parts: list[tuple[DenseIndex, np.ndarray]] = []
    bm25_dead: list[set[int]] = []
    vector_parts: list[tuple[np.ndarray, np.ndarray | None]] = []
    row_offset = 0
    for segment, dead_docs in zip(parts, deleted, strict=True):
        docs = segment.documents
        documents.update({d: doc for d, doc in docs.items() if d not in dead_docs})
        dead_ids: list[int] = []
        live = np.ones(len(segment), dtype=bool)
        for position, (fid, chunk_id, doc_id, ordinal, start, end, label) in enumerate(
            segment.chunk_rows
        ):
            if doc_id in dead_docs:
                dead_ids.append(int(fid))
                live[position] = False
                continue
            doc = docs[doc_id]
            text = doc.text[start:end]
            chunks.append(Chunk(chunk_id, doc.doc_id, ordinal, start, end, text, label))
        firsts.append(segment.sentence_first[live] + row_offset)
        counts.append(segment.sentence_count[live])
        row_offset += len(segment.codes)
        dead = np.array(sorted(dead_ids), dtype=np.int64)
        dense_parts.append((segment.dense, dead))
        bm25_dead.append(set(dead_ids))
        vector_parts.append((segment.codes, segment.scales))
    faiss_ids = np.array([faiss_id_for(c.chunk_id) for c in chunks], dtype=np.int64)
    positions = {int(f): i for i, f in enumerate(faiss_ids)}
    if len(positions) != len(chunks):
        raise IndexCorruptError("a chunk is live in two segments; rebuild the index")
    dim = int(manifest.get("dimension", 0))
    chunk_tuple = tuple(chunks)
    sentences = SentenceSpans(
        chunk_tuple,
        positions,
        _joined(firsts, np.int64),
        _joined(counts, np.int32),
        _joined([s.sentence_starts for s in parts], np.int32),
        _joined([s.sentence_ends for s in parts], np.int32),
    )
    return Snapshot(
        manifest=manifest,
        generation=generation,
        documents=dict(sorted(documents.items(), key=lambda kv: kv[1].source)),
        chunks=chunk_tuple,
        faiss_ids=faiss_ids,
        dense=DenseSegments(dense_parts),
        bm25=SegmentedBM25([s.bm25 for s in parts], deleted=bm25_dead),
        positions=positions,
        by_chunk_id={c.chunk_id: c for c in chunks},
        sentence_vectors=SentenceVectors(vector_parts, dim),
        sentences=sentences,
        segments=by_name,
    )


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
