"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused, filtered, and
optionally re-ordered by a second stage (:mod:`sourcier.answer.second_stage`)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..types import Hit
from .filters import Filters
from .question import Question, parse_question

if TYPE_CHECKING:
    from .protocol import Context
    from .second_stage import SecondStage


def retrieve(
    context: Context,
    question: Question | str,
    *,
    k: int,
    mode: str,
    filters: Filters | None = None,
    timings: dict[str, float] | None = None,
    query_vector: np.ndarray | None = None,
    second_stage: SecondStage | None = None,
) -> list[Hit]:
    """The ``k`` best chunks for a question.

    Args:
        context: the index snapshot, its embedder and the settings (fusion, candidates).
        question: the parsed question (its ``query`` is searched), or a plain query.
        k: how many hits.
        mode: "hybrid", "dense" or "bm25".
        filters: optional restriction to some documents.
        timings: if given, receives milliseconds per stage.
        query_vector: the query's embedding, if the caller has it already.
        second_stage: re-orders the best ``second_stage.depth`` fused hits.

    Returns:
        Hits, best first, ranks from 1. ``Hit.scores`` holds the raw "dense" cosine and
        "bm25" score where the chunk was a candidate, and the "fused" score.
    """
    query = question if isinstance(question, str) else question.query
    hits = _first_stage(
        context,
        query,
        k=max(k, second_stage.depth) if second_stage is not None else k,
        mode=mode,
        filters=filters,
        timings=timings if timings is not None else {},
        query_vector=query_vector,
    )
    if second_stage is None or not hits:
        return hits
    parsed = parse_question(question) if isinstance(question, str) else question
    t = time.perf_counter()
    reordered = second_stage.rescore(parsed, hits, context)[:k]
    if timings is not None:
        timings["second_stage"] = _ms(t)
    return [replace(h, rank=rank) for rank, h in enumerate(reordered, start=1)]


def _first_stage(
    context: Context,
    query: str,
    *,
    k: int,
    mode: str,
    filters: Filters | None,
    timings: dict[str, float],
    query_vector: np.ndarray | None,
) -> list[Hit]:
    settings = context.settings.retrieval
    snap = context.snapshot
    n_total = len(snap.chunks)
    if n_total == 0:
        return []
    allowed_ids: np.ndarray | None = None
    if filters is not None and filters.active:
        allowed_docs = {d for d, doc in snap.documents.items() if filters.allows(doc)}
        mask = np.fromiter((c.doc_id in allowed_docs for c in snap.chunks), bool, n_total)
        allowed_ids = snap.faiss_ids[mask]
        if len(allowed_ids) == 0:
            return []
    n_cand = min(settings.candidates, n_total if allowed_ids is None else len(allowed_ids))

    dense: dict[int, float] = {}
    lexical: dict[int, float] = {}
    if mode in ("hybrid", "dense"):
        if query_vector is None:
            t = time.perf_counter()
            query_vector = context.embedder.embed_queries([query])[0]
            timings["embed_query"] = _ms(t)
        qvec = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        t = time.perf_counter()
        dense = snap.dense.search(qvec, n_cand, allowed=allowed_ids)
        timings["dense"] = _ms(t)
    if mode in ("hybrid", "bm25"):
        t = time.perf_counter()
        allowed = None if allowed_ids is None else set(allowed_ids.tolist())
        lexical = dict(snap.bm25.search(query, k=n_cand, allowed=allowed))
        timings["bm25"] = _ms(t)

    t = time.perf_counter()
    if mode == "dense":
        fused = dense
    elif mode == "bm25":
        fused = lexical
    elif settings.fusion == "rrf":
        fused = _rrf(dense, lexical, settings.rrf_k)
    else:
        fused = _weighted(dense, lexical, settings.dense_weight)
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    hits = []
    for rank, (fid, score) in enumerate(best, start=1):
        chunk = snap.chunks[snap.positions[fid]]
        doc = snap.documents[chunk.doc_id]
        scores = {"fused": float(score)}
        if fid in dense:
            scores["dense"] = dense[fid]
        if fid in lexical:
            scores["bm25"] = lexical[fid]
        hits.append(
            Hit(rank, float(score), chunk, doc.title, doc.source, doc.date_iso, scores, doc.pages)
        )
    timings["fusion"] = _ms(t)
    return hits


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000.0


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {i: 1.0 for i in scores}
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


def _weighted(dense: dict[int, float], lexical: dict[int, float], w: float) -> dict[int, float]:
    """Weighted sum of per-query min-max normalised scores (absent from a list: 0)."""
    d, b = _minmax(dense), _minmax(lexical)
    return {i: w * d.get(i, 0.0) + (1.0 - w) * b.get(i, 0.0) for i in set(d) | set(b)}


def _rrf(dense: dict[int, float], lexical: dict[int, float], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for scores in (dense, lexical):
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        for rank, (i, _) in enumerate(ranked, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + rank)
    return fused
