"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused, filtered."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import InputError
from ..types import Document, Hit
from .question import Question, parse_question

if TYPE_CHECKING:
    from ..build.writer import Index

_ISO = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?")


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some documents.

    Attributes:
        doc_ids: only these document ids.
        sources: only documents whose source equals, or ends with, one of these
            (so a bare file name works).
        date_from / date_to: ISO ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` bounds, inclusive.
            A document matches when its own date (at its own precision) overlaps the
            range; undated documents are excluded as soon as a bound is given.

    Raises:
        InputError: a date that is malformed or not in the calendar (``2011-13``,
            ``2011-02-30``), dates in the wrong order, or ids/sources that are not a
            list of strings. Each error has a ``code`` (see :mod:`sourcier.messages`).
    """

    doc_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("doc_ids", "sources"):
            object.__setattr__(self, name, _strings(name, getattr(self, name)))
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                _check_date(name, value)
        if self.date_from and self.date_to and _low(self.date_from) > _high(self.date_to):
            raise InputError(
                f"date_from ({self.date_from}) is after date_to ({self.date_to})",
                code="filter_date_order",
                date_from=self.date_from,
                date_to=self.date_to,
            )

    @classmethod
    def coerce(cls, value: Filters | Mapping[str, Any] | None) -> Filters | None:
        """Accept a Filters, a plain dict with the same keys, or None.

        Raises:
            InputError: not a mapping, an unknown key, or a bad value (see the class).
        """
        if value is None or isinstance(value, Filters):
            return value
        if not isinstance(value, Mapping):
            kind = type(value).__name__
            raise InputError(
                f"filters must be a mapping, not {kind}", code="filters_type", type=kind
            )
        unknown = set(value) - {"doc_ids", "sources", "date_from", "date_to"}
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise InputError(f"unknown filter(s): {names}", code="filters_unknown", names=names)
        return cls(
            doc_ids=value.get("doc_ids") or (),
            sources=value.get("sources") or (),
            date_from=value.get("date_from") or None,
            date_to=value.get("date_to") or None,
        )

    @property
    def active(self) -> bool:
        return bool(self.doc_ids or self.sources or self.date_from or self.date_to)

    def allows(self, doc: Document) -> bool:
        if self.doc_ids and doc.doc_id not in self.doc_ids:
            return False
        if self.sources and not any(
            doc.source == s or doc.source.endswith("/" + s.lstrip("/")) for s in self.sources
        ):
            return False
        if self.date_from or self.date_to:
            if not doc.date_iso:
                return False
            if self.date_from and _high(doc.date_iso) < _low(self.date_from):
                return False
            if self.date_to and _low(doc.date_iso) > _high(self.date_to):
                return False
        return True


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list of texts as a tuple; a bare string or anything else is refused."""
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    kind = type(value).__name__
    raise InputError(
        f"{name} must be a list of strings, not {kind}: {value!r}"[:200],
        code="filter_list_type",
        name=name,
        type=kind,
    )


def _check_date(name: str, value: Any) -> None:
    """A ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` date that exists in the calendar."""
    if not isinstance(value, str) or not _ISO.fullmatch(value):
        raise InputError(
            f"{name} ({value!r}) must look like 2011, 2011-06 or 2011-06-06",
            code="filter_date_format",
            name=name,
            value=str(value),
        )
    parts = [int(p) for p in value.split("-")]
    problem = None
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        problem = f"there is no month {parts[1]:02d}"
    elif len(parts) > 2:
        days = calendar.monthrange(parts[0], parts[1])[1]
        if not 1 <= parts[2] <= days:
            month = calendar.month_name[parts[1]]
            problem = f"{month} {parts[0]} has {days} days"
    if problem:
        raise InputError(
            f"{name} ({value!r}) is not a date in the calendar: {problem}",
            code="filter_date_invalid",
            name=name,
            value=value,
        )


def _low(iso: str) -> str:
    return (iso + "-01-01")[:10] if len(iso) == 4 else (iso + "-01")[:10]


def _high(iso: str) -> str:
    return (iso + "-12-31")[:10] if len(iso) == 4 else (iso + "-31")[:10]


class SecondStage(Protocol):
    """A second-stage scorer: re-orders the fused first-stage hits.

    ``depth`` first-stage hits are passed in, best first; the ones returned, best
    first, are cut to ``k``. The same slot serves ``search()`` and ``ask()``.
    """

    depth: int

    def rescore(self, question: Question, hits: list[Hit], index: Index) -> list[Hit]: ...


def retrieve(
    index: Index,
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
        index: an open index.
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
        index,
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
    reordered = second_stage.rescore(parsed, hits, index)[:k]
    if timings is not None:
        timings["second_stage"] = _ms(t)
    return [replace(h, rank=rank) for rank, h in enumerate(reordered, start=1)]


def _first_stage(
    index: Index,
    query: str,
    *,
    k: int,
    mode: str,
    filters: Filters | None,
    timings: dict[str, float],
    query_vector: np.ndarray | None,
) -> list[Hit]:
    settings = index.settings
    snap = index.snapshot
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
            query_vector = index.embedder.embed_queries([query])[0]
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
        hits.append(Hit(rank, float(score), chunk, doc.title, doc.source, doc.date_iso, scores))
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
