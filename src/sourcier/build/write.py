"""The write stage of a build: passages and their vectors -> an immutable segment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..storage.bm25 import BM25Segment
from ..storage.segment import SegmentData, faiss_id_for, quantize, write_segment
from ..storage.vectors import DEFAULT_STORE
from ..types import Document
from .chunk import Passage

SEGMENT_CHUNKS = 100_000
"""The most chunks one build writes into one segment (bigger builds write several):
about 1.2 GB of vectors in memory at a time with 512-d vectors."""


def batches(passages: Sequence[Passage], limit: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``passages`` of at most ``limit`` (a document bigger
    than that is one slice), cut between documents."""
    ends = [
        i
        for i in range(1, len(passages) + 1)
        if i == len(passages) or passages[i].chunk.doc_id != passages[i - 1].chunk.doc_id
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


def write(
    path: Path,
    documents: Sequence[Document],
    passages: Sequence[Passage],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    *,
    dimension: int,
    vector_store: str = DEFAULT_STORE,
) -> dict[str, Any]:
    """Write ``documents`` (theirs and any without a chunk) with their passages and
    vectors as a new segment; return its manifest entry.

    Args:
        path: the index folder (the caller holds its writer lock).
        documents: the documents the segment holds.
        passages: their passages, in segment order.
        vectors: one vector per passage.
        sentence_vectors: one vector per sentence, passage after passage.
        dimension: the vectors' size.
        vector_store: the store of the segment's chunk vectors, by name.
    """
    codes, scales = quantize(sentence_vectors.reshape(-1, dimension))
    chunks = [p.chunk for p in passages]
    data = SegmentData(
        documents=sorted(documents, key=lambda d: d.source),
        chunks=chunks,
        vectors=vectors,
        sentence_spans=[p.sentences for p in passages],
        sentence_codes=codes,
        sentence_scales=scales,
        bm25=BM25Segment.build(
            [p.lexical for p in passages], [faiss_id_for(c.chunk_id) for c in chunks]
        ),
    )
    return write_segment(path, data, dimension=dimension, vector_store=vector_store)
