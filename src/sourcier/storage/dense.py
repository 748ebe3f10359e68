"""The dense side of the index: chunk vectors behind one small interface, with FAISS
choosing the structure by size.

- Below ``flat_below`` chunks: exact search (a flat inner-product index over the vectors,
  float32 in memory, 1.5 KB per chunk at 384-d; float16 on disk).
- From ``flat_below`` on: ``IVF{nlist}_HNSW32,SQ8`` (the faiss wiki's choice for 1M–10M
  vectors on a CPU: an HNSW graph over the IVF centroids, 8-bit codes, 0.38 KB per chunk
  at 384-d in memory), ``nlist`` about ``4·sqrt(n)``. Its candidates are re-scored
  exactly against float16 copies of the vectors kept on disk and memory-mapped, so
  the scores callers see are true cosines.
- A filter (documents, dates) never loses hits: a selective one is searched exactly over
  the allowed vectors; a broad one through the ANN index with an id selector, falling
  back to exact search if the probed lists hold fewer than ``k`` allowed chunks.

Files in the folder (no pickle): ``ids.npy`` (int64, sorted), ``vectors.npy`` (rows
aligned with ``ids``: float16, read into float32 memory for flat, which moves cosines by
less than 1e-3; memory-mapped for ANN and read only for the candidates it re-scores),
``ann.faiss`` (ANN only) and ``dense.json`` (kind, dimension, nlist, encoding). Folders
written before (float32 flat vectors) are read as they are.

Why not int8 copies for re-scoring, at half the bytes: their cosines are off by about
1e-3, enough to reorder near neighbours. Measured at 100k chunks (benchmarks/dense_ann.py),
recall@10 against exact search fell from .997 with float16 copies to .964.

faiss is imported inside the functions that use it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError

FLAT_BELOW = 200_000
"""Chunks below which search is exact. Measured (benchmarks/dense_ann.py, 384-d e5
vectors, one thread): a flat search takes 7.5 ms at 100k and 66 ms at 1M, so about
13 ms here; the ANN one 0.6–2.5 ms with recall@10 ≥ 0.98 against it."""

EXACT_FILTER_BELOW = 50_000
"""Allowed chunks below which a filtered search is exact over them (a few ms)."""

META = "dense.json"
IDS = "ids.npy"
VECTORS = "vectors.npy"
ANN = "ann.faiss"


@dataclass(frozen=True)
class DenseSearch:
    """Query-time settings of an ANN search (ignored by an exact one).

    Attributes:
        nprobe: IVF lists visited per query (``None``: an eighth of the lists, at least
            32; measured recall@10 against exact search: 0.997 at 100k chunks, 0.984 at
            1M, with a p50 of 1.2 and 7.1 ms; see the README).
        ef_search: HNSW breadth when finding those lists among the centroids.
        refine: candidates taken from the 8-bit codes per hit asked, re-scored exactly.
        threads: OpenMP threads of one search (set for the calling thread only). One by
            default: a single query gains nothing from a second thread, and on a busy
            machine two threads spin-wait for each other (measured: a flat search of
            10k × 384 took 0.42 ms with one thread and 16 ms with two, while another
            process used a core).
    """

    nprobe: int | None = None
    ef_search: int = 64
    refine: int = 4
    threads: int = 1


class DenseIndex:
    """Chunk vectors by int64 id; cosine (inner product of unit vectors) search.

    Build with :meth:`build`, persist with :meth:`save`, open with :meth:`load`.
    Read-only once built, so one instance serves concurrent searches.
    """

    def __init__(
        self, ids: np.ndarray, vectors: np.ndarray, *, kind: str, index: Any, nlist: int = 0
    ) -> None:
        self.ids = ids
        self.vectors = vectors  # float32 (flat) or float16 (ANN, memory-mapped)
        self.kind = kind
        self._index = index
        self.nlist = nlist

    # ---- building and storage ----

    @classmethod
    def build(
        cls, vectors: np.ndarray, ids: np.ndarray, *, flat_below: int = FLAT_BELOW
    ) -> DenseIndex:
        """Index ``vectors`` (unit rows) under ``ids``; ANN from ``flat_below`` rows on."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            vectors = vectors.reshape(len(ids), -1)
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], np.ascontiguousarray(vectors[order])
        if len(np.unique(ids)) != len(ids):
            raise ValueError("dense ids must be unique")
        if len(ids) < max(flat_below, 1):
            # float16 on disk: searched as it will be after a save and a load
            vectors = vectors.astype(np.float16).astype(np.float32)
            index, stored = _flat(vectors, ids)
            return cls(ids, stored, kind="flat", index=index)
        nlist = _nlist(len(ids))
        return cls(
            ids,
            vectors.astype(np.float16),
            kind="ivf-hnsw-sq8",
            index=_ann(vectors, ids, nlist),
            nlist=nlist,
        )

    def save(self, folder: Path) -> None:
        """Write the index into ``folder`` (which must exist)."""
        import faiss

        np.save(folder / IDS, self.ids, allow_pickle=False)
        stored = self.vectors.astype(np.float16) if self.kind == "flat" else self.vectors
        np.save(folder / VECTORS, np.ascontiguousarray(stored), allow_pickle=False)
        if self.kind != "flat":
            faiss.write_index(self._index, str(folder / ANN))
        meta = {
            "kind": self.kind,
            "dimension": self.dim,
            "count": len(self),
            "nlist": self.nlist,
            "encoding": str(stored.dtype),
        }
        (folder / META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> DenseIndex:
        """Open an index written by :meth:`save`; ANN vectors are memory-mapped.

        Raises:
            IndexCorruptError: a file is missing, damaged or inconsistent.
        """
        import faiss

        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            ids = np.load(folder / IDS, allow_pickle=False)
            kind = meta["kind"]
            if kind == "flat":
                vectors = np.load(folder / VECTORS, allow_pickle=False).astype(np.float32)
                index, vectors = _flat(vectors, ids)
            elif kind == "ivf-hnsw-sq8":
                vectors = np.load(folder / VECTORS, mmap_mode="r", allow_pickle=False)
                index = faiss.read_index(str(folder / ANN))
            else:
                raise ValueError(f"unknown dense index kind {kind!r}")
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise IndexCorruptError(f"dense index in {folder.name}: {err}") from err
        if len(ids) != len(vectors) or index.ntotal != len(ids):
            raise IndexCorruptError(
                f"dense index in {folder.name} is inconsistent: {len(ids)} ids, "
                f"{len(vectors)} vectors, {index.ntotal} indexed"
            )
        return cls(ids, vectors, kind=kind, index=index, nlist=int(meta.get("nlist", 0)))

    @classmethod
    def from_faiss(cls, index: Any) -> DenseIndex:
        """Wrap a flat ``IndexIDMap2`` (format-2 indexes stored one as ``dense.faiss``)."""
        import faiss

        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        flat = faiss.downcast_index(index.index)
        vectors = flat.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d))
        return cls.build(vectors, ids, flat_below=len(ids) + 1)

    # ---- reading ----

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def vector(self, chunk_id: int) -> np.ndarray:
        """The stored vector of one id, as float32.

        Raises:
            KeyError: no such id.
        """
        row = int(np.searchsorted(self.ids, chunk_id))
        if row >= len(self.ids) or self.ids[row] != chunk_id:
            raise KeyError(chunk_id)
        return self.rows(np.array([row]))[0]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors at these row positions, decoded to float32."""
        return np.asarray(self.vectors[rows], dtype=np.float32).reshape(len(rows), -1)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        params: DenseSearch | None = None,
    ) -> dict[int, float]:
        """The ``k`` best ids for the unit vector ``query``, with their cosines.

        Args:
            query: ``(dim,)`` or ``(1, dim)``.
            k: hits wanted (fewer only when fewer chunks are allowed).
            allowed: only these ids (``None``: all).
            params: ANN settings.
        """
        if len(self) == 0 or k <= 0:
            return {}
        import faiss

        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        params = params or DenseSearch()
        faiss.omp_set_num_threads(params.threads)  # this thread's OpenMP setting only
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if len(allowed) == 0:
                return {}
            if self.kind == "flat" or len(allowed) <= EXACT_FILTER_BELOW:
                return self._exact(q[0], k, allowed)
        if self.kind == "flat":
            return self._flat_search(q, k)
        found = self._ann_search(q, k, allowed, params)
        if allowed is not None and len(found) < min(k, len(allowed)):
            return self._exact(q[0], k, allowed)
        return found

    # ---- internals ----

    def _flat_search(self, q: np.ndarray, n: int) -> dict[int, float]:
        scores, ids = self._index.search(q, min(n, len(self)))
        return {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0}

    def _ann_search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None, p: DenseSearch
    ) -> dict[int, float]:
        import faiss

        nprobe = p.nprobe or max(32, self.nlist // 8)
        quantizer = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
            efSearch=max(p.ef_search, nprobe)
        )
        kwargs: dict[str, Any] = {"nprobe": nprobe, "quantizer_params": quantizer}
        if allowed is not None:
            kwargs["sel"] = faiss.IDSelectorBatch(allowed)
        params = faiss.SearchParametersIVF(**kwargs)  # type: ignore[call-arg]
        n = min(len(self), max(k, k * p.refine))
        _, ids = self._index.search(q, n, params=params)
        candidates = ids[0][ids[0] >= 0]
        if len(candidates) == 0:
            return {}
        return self._rescore(q[0], candidates, k)

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray) -> dict[int, float]:
        rows = np.searchsorted(self.ids, allowed)
        inside = rows < len(self.ids)
        rows, wanted = rows[inside], allowed[inside]
        return self._top(q, np.unique(rows[self.ids[rows] == wanted]), k)

    def _rescore(self, q: np.ndarray, candidates: np.ndarray, k: int) -> dict[int, float]:
        rows = np.searchsorted(self.ids, candidates)
        return self._top(q, np.sort(rows), k)

    def _top(self, q: np.ndarray, rows: np.ndarray, k: int) -> dict[int, float]:
        if len(rows) == 0:
            return {}
        scores = self.rows(rows) @ q
        best = np.argsort(-scores, kind="stable")[:k]
        return {int(self.ids[rows[i]]): float(scores[i]) for i in best}


def _nlist(n: int) -> int:
    """IVF lists: about 4·sqrt(n), a power of two, at least 64 (faiss wiki guidance)."""
    return max(64, 2 ** round(math.log2(4 * math.sqrt(n))))


def _flat(vectors: np.ndarray, ids: np.ndarray) -> tuple[Any, np.ndarray]:
    """A flat index of ``vectors`` and a read-only view of the copy FAISS holds, so that
    the vectors are in memory once (the caller's array can be dropped)."""
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
    inner = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(inner)  # keeps ``inner`` alive (referenced_objects)
    if not len(ids):
        return index, np.zeros((0, dim), dtype=np.float32)
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    view = faiss.rev_swig_ptr(inner.get_xb(), len(ids) * dim).reshape(len(ids), dim)
    view.flags.writeable = False
    return index, view


def _ann(vectors: np.ndarray, ids: np.ndarray, nlist: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training uses every core
    dim = vectors.shape[1]
    inner = faiss.index_factory(dim, f"IVF{nlist}_HNSW32,SQ8", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 64 * nlist), False))]
    inner.train(np.ascontiguousarray(sample, dtype=np.float32))
    index = faiss.IndexIDMap2(inner)
    for lo in range(0, len(ids), 65536):
        hi = lo + 65536
        index.add_with_ids(np.ascontiguousarray(vectors[lo:hi], dtype=np.float32), ids[lo:hi])
    return index


class DenseSegments:
    """The dense indexes of several segments, each with its deleted ids, as one index.

    A search asks every segment for its best hits among its live ids and keeps the
    overall best; an id is live in one segment at most. One segment without deletions
    answers exactly as its :class:`DenseIndex` does.
    """

    def __init__(self, parts: list[tuple[DenseIndex, np.ndarray]]) -> None:
        """Args:
        parts: per segment, its index and the sorted int64 ids deleted from it.
        """
        self._parts = [(index, np.asarray(dead, dtype=np.int64)) for index, dead in parts]
        self._live = sum(len(index) - len(dead) for index, dead in self._parts)

    def __len__(self) -> int:
        return self._live

    @property
    def dim(self) -> int:
        return next((index.dim for index, _ in self._parts if len(index)), 0)

    @property
    def kinds(self) -> list[str]:
        """Each segment's structure (``flat``, ``ivf-hnsw-sq8``)."""
        return [index.kind for index, _ in self._parts]

    def vector(self, chunk_id: int) -> np.ndarray:
        """The stored vector of one live id, as float32.

        Raises:
            KeyError: no live chunk has this id.
        """
        for index, dead in self._parts:
            if _member(dead, np.array([chunk_id]))[0]:
                continue
            try:
                return index.vector(chunk_id)
            except KeyError:
                continue
        raise KeyError(chunk_id)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        params: DenseSearch | None = None,
    ) -> dict[int, float]:
        """The ``k`` best live ids for ``query``, as :meth:`DenseIndex.search` gives them."""
        if k <= 0:
            return {}
        if len(self._parts) == 1 and not len(self._parts[0][1]):
            return self._parts[0][0].search(query, k, allowed=allowed, params=params)
        wanted = None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64))
        found: dict[int, float] = {}
        for index, dead in self._parts:
            if wanted is not None:
                here = wanted[_member(index.ids, wanted)]
                here = here[~_member(dead, here)]
                if len(here):
                    found.update(index.search(query, k, allowed=here, params=params))
                continue
            if not len(dead):
                found.update(index.search(query, k, params=params))
                continue
            live = len(index) - len(dead)
            hits = {}
            if len(dead) <= _OVERFETCH_DEAD:  # ask for more, drop the deleted ones
                hits = index.search(query, k + len(dead), params=params)
                dead_hit = _member(dead, np.fromiter(hits, dtype=np.int64, count=len(hits)))
                hits = {i: s for (i, s), d in zip(hits.items(), dead_hit, strict=True) if not d}
            if len(hits) < min(k, live):
                ids = index.ids[~_member(dead, index.ids)]
                hits = index.search(query, k, allowed=ids, params=params)
            found.update(hits)
        best = sorted(found.items(), key=lambda kv: -kv[1])[:k]
        return dict(best)


_OVERFETCH_DEAD = 1000
"""Deleted ids of a segment up to which a search over-fetches instead of filtering."""


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in the sorted array ``sorted_ids``."""
    if not len(sorted_ids):
        return np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(sorted_ids, ids)
    at[at >= len(sorted_ids)] = 0
    return sorted_ids[at] == ids
