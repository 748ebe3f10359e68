"""The reference BM25 the product's segmented BM25 is checked against.

This is the BM25 sourcier used before segments (``bm25s``, rebuilt on every change):
``SegmentedBM25`` must rank exactly as it does over the same live chunks, in any
segmentation and with any deletions (tests/test_bm25_growth.py). It is test code only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence

import numpy as np

from sourcier.analysis import analyze
from sourcier.errors import InputError

logger = logging.getLogger(__name__)


class BM25Index:
    """A BM25 (Lucene variant) index over analysed texts, keyed by arbitrary int64 ids.

    Build it with :meth:`build`, query it with :meth:`search`. The term weights live
    in a sparse term-by-document matrix (CSC arrays) that bm25s computes, so a query
    costs a few array slices and one ``bincount``.
    """

    def __init__(
        self,
        *,
        ids: np.ndarray,
        vocab: Sequence[str],
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        k1: float,
        b: float,
    ) -> None:
        """Wrap prepared arrays; use :meth:`build` instead.

        Args:
            ids: the id of each document position (int64).
            vocab: the term of each matrix column.
            data: BM25 weights, column after column.
            indices: the document position of each weight.
            indptr: where each term's column starts in ``data`` (length ``len(vocab) + 1``).
            k1: the BM25 term-frequency saturation used to build the weights.
            b: the BM25 length normalisation used to build the weights.
        """
        self._ids = ids
        self._vocab = {term: col for col, term in enumerate(vocab)}
        self._terms = list(vocab)
        self._by_prefix: dict[str, list[str]] | None = None
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self.k1 = k1
        self.b = b
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]

    # -- building -------------------------------------------------------------------

    @classmethod
    def build(
        cls, texts: Sequence[str], ids: Sequence[int], *, k1: float = 1.2, b: float = 0.75
    ) -> BM25Index:
        """Analyse and index texts.

        Args:
            texts: the documents (chunks) to index.
            ids: one distinct integer id per text (FAISS ids: any int64).
            k1: term-frequency saturation.
            b: document-length normalisation (0 = none, 1 = full).

        Returns:
            The index; an empty one when ``texts`` is empty.

        Raises:
            InputError: when ids and texts differ in number or ids repeat.
        """
        if len(texts) != len(ids):
            raise InputError(f"BM25 needs one id per text: {len(texts)} texts, {len(ids)} ids")
        id_array = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        if len(np.unique(id_array)) != len(id_array):
            raise InputError("BM25 ids must be distinct")
        corpus = [analyze(t) for t in texts]
        if not any(corpus):
            empty_f = np.zeros(0, dtype=np.float32)
            empty_i = np.zeros(0, dtype=np.int32)
            return cls(
                ids=id_array,
                vocab=[],
                data=empty_f,
                indices=empty_i,
                indptr=np.zeros(1, dtype=np.int64),
                k1=k1,
                b=b,
            )
        import bm25s

        # bm25s sets its logger to DEBUG when imported ("Building index from IDs" on
        # every build): library logs stay quiet unless the application asks for debug
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("bm25s").setLevel(logging.WARNING)

        # Columns in order of first appearance, so that a build is reproducible
        # (bm25s would number terms in set order, which varies between runs).
        vocab_dict: dict[str, int] = {}
        token_ids = [[vocab_dict.setdefault(t, len(vocab_dict)) for t in doc] for doc in corpus]
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index((token_ids, vocab_dict), create_empty_token=False, show_progress=False)
        vocab = list(vocab_dict)
        scores = model.scores
        logger.debug("BM25 built: %d texts, %d terms", len(texts), len(vocab))
        return cls(
            ids=id_array,
            vocab=vocab,
            data=np.asarray(scores["data"], dtype=np.float32),
            indices=np.asarray(scores["indices"], dtype=np.int32),
            indptr=np.asarray(scores["indptr"], dtype=np.int64),
            k1=k1,
            b=b,
        )

    # -- querying -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[int]:
        """The indexed ids, in build order."""
        return [int(i) for i in self._ids]

    def idf(self, term: str) -> float:
        """The Lucene idf of an analysed term: ``log(1 + (N - df + 0.5) / (df + 0.5))``.

        Args:
            term: a term as :func:`analyze` returns it (stemmed, without accents).

        Returns:
            The idf, or 0.0 for a term that no indexed text contains.
        """
        col = self._vocab.get(term)
        if col is None:
            return 0.0
        df = int(self._indptr[col + 1] - self._indptr[col])
        n = len(self._ids)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def related_term(self, term: str) -> str | None:
        """An indexed term that is very likely the same word stemmed differently.

        Snowball leaves "inscrire" as "inscrir" but "inscription" as "inscript"; an
        unseen term of 5+ letters matches an indexed one that shares its first five
        letters and either extends it, is extended by it, or shares six letters.

        Args:
            term: an analysed term.

        Returns:
            The indexed term, or None (also when ``term`` itself is indexed).
        """
        if len(term) < 5 or term in self._vocab:
            return None
        if self._by_prefix is None:
            by_prefix: dict[str, list[str]] = {}
            for t in self._terms:
                if len(t) >= 5:
                    by_prefix.setdefault(t[:5], []).append(t)
            self._by_prefix = by_prefix
        for other in self._by_prefix.get(term[:5], ()):
            if other.startswith(term) or term.startswith(other) or other[:6] == term[:6]:
                return other
        return None

    def search(
        self, query: str, *, k: int, allowed: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """The best-scoring ids for a query.

        Args:
            query: free text; it goes through :func:`analyze`. A repeated term counts
                once per occurrence.
            k: the most results to return.
            allowed: when given, only these ids can be returned.

        Returns:
            ``(id, score)`` pairs, best first (ties by build order), scores above zero.
        """
        if k <= 0 or not len(self._ids):
            return []
        cols = [self._vocab[t] for t in analyze(query) if t in self._vocab]
        if not cols:
            return []
        starts = self._indptr[cols]
        ends = self._indptr[np.asarray(cols) + 1]
        if len(cols) == 1:
            docs = self._indices[starts[0] : ends[0]]
            weights = self._data[starts[0] : ends[0]]
        else:
            docs = np.concatenate([self._indices[s:e] for s, e in zip(starts, ends, strict=True)])
            weights = np.concatenate([self._data[s:e] for s, e in zip(starts, ends, strict=True)])
        scores = np.bincount(docs, weights=weights, minlength=len(self._ids))
        if allowed is not None:
            keep = self._positions(allowed)
            masked = np.zeros_like(scores)
            masked[keep] = scores[keep]
            scores = masked
        hits = np.flatnonzero(scores > 0)  # in build order
        if len(hits) > k:
            found = scores[hits]
            kth = np.partition(found, len(found) - k)[len(found) - k]
            better, tied = hits[found > kth], hits[found == kth]
            hits = np.concatenate([better, tied[: k - len(better)]])
        hits = hits[np.lexsort((hits, -scores[hits]))]
        return [(int(self._ids[p]), float(scores[p])) for p in hits]

    def _positions(self, allowed: Collection[int]) -> np.ndarray:
        """The positions of those ``allowed`` ids that are in the index."""
        wanted = np.fromiter((int(i) for i in allowed), dtype=np.int64, count=len(allowed))
        if not len(wanted):
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self._sorted_ids, wanted)
        at = at[at < len(self._sorted_ids)]
        found = at[np.isin(self._sorted_ids[at], wanted)]
        return self._order[found]
