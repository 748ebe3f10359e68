"""BM25 that grows: immutable segments of postings, scored with global statistics.

A :class:`BM25Segment` holds the postings of one batch of chunks (term -> positions and
term frequencies, plus each chunk's length in terms), never the weights: weights depend
on the document frequencies and the average length of the whole collection, which change
whenever a segment is added or a chunk deleted. :class:`SegmentedBM25` is an immutable
set of segments and their tombstones (deleted chunks); it scores a query on every
segment with the :class:`GlobalStats` of all live chunks, so one segment or many, built
in any batches, rank exactly as the single BM25 of earlier versions (``bm25s``, kept
by the tests as their reference) over the same live chunks in the same order: same
terms (the same French analyser), the same Lucene BM25, the same float32 weights, the
same ties (collection order).

Adding a segment analyses only its own texts; deleting is a mask; merging segments
reuses their postings without analysing anything again. Everything is saved as JSON
plus NumPy ``.npz`` and loads without pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import analyze
from ..errors import IndexCorruptError, InputError
from ..files import file_sha256, write_atomic

__all__ = ["BM25Segment", "GlobalStats", "SegmentedBM25"]

_SEGMENT_FORMAT = "sourcier-bm25-segment"
_SET_FORMAT = "sourcier-bm25-segments"
_FORMAT_VERSION = 1
_SEGMENT_META = "postings.json"
_SEGMENT_ARRAYS = "postings.npz"
_SET_META = "segments.json"
_TOMBSTONES = "tombstones.npz"
_SEGMENT_ARRAY_NAMES = ("ids", "lengths", "indptr", "positions", "tfs")


@dataclass(frozen=True)
class GlobalStats:
    """The collection statistics BM25 scores with: live chunks only.

    Args:
        documents: the number of live chunks (deleted ones excluded).
        total_length: the sum of their lengths, in analysed terms.
    """

    documents: int
    total_length: int

    @property
    def average_length(self) -> float:
        """The mean length of a live chunk (0.0 for an empty collection)."""
        return self.total_length / self.documents if self.documents else 0.0


class BM25Segment:
    """The postings of one batch of chunks; immutable once built.

    Build it with :meth:`build` (analyses texts) or :meth:`merge` (reuses postings),
    persist it with :meth:`save` / :meth:`load` (``postings.npz`` + ``postings.json``).
    """

    def __init__(
        self,
        *,
        ids: np.ndarray,
        lengths: np.ndarray,
        vocab: Sequence[str],
        indptr: np.ndarray,
        positions: np.ndarray,
        tfs: np.ndarray,
    ) -> None:
        """Wrap prepared arrays; use :meth:`build`, :meth:`merge` or :meth:`load` instead.

        Args:
            ids: the id of each chunk position (int64, distinct).
            lengths: the number of analysed terms of each chunk (int32).
            vocab: the term of each postings list.
            indptr: where each term's postings start (length ``len(vocab) + 1``).
            positions: the chunk position of each posting, ascending within a term (int32).
            tfs: the term frequency of each posting (the smallest integer type that fits).
        """
        self.ids = ids
        self.lengths = lengths
        self.terms = tuple(vocab)
        self.vocab = {term: col for col, term in enumerate(self.terms)}
        self.indptr = indptr
        self.positions = positions
        self.tfs = tfs
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]
        self.total_length = int(lengths.sum(dtype=np.int64))
        self._digest: str | None = None

    # -- building -------------------------------------------------------------------

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[int]) -> BM25Segment:
        """Analyse texts (with :func:`~sourcier.analysis.analyze`) into a segment.

        Args:
            texts: the chunks' lexical texts.
            ids: one distinct int64 id per text.

        Returns:
            The segment (an empty one when ``texts`` is empty).

        Raises:
            InputError: when ids and texts differ in number or ids repeat.
        """
        if len(texts) != len(ids):
            raise InputError(f"BM25 needs one id per text: {len(texts)} texts, {len(ids)} ids")
        return cls.from_terms([analyze(t) for t in texts], ids)

    @classmethod
    def from_terms(cls, terms: Sequence[Sequence[str]], ids: Sequence[int]) -> BM25Segment:
        """A segment from texts already analysed (each text's terms, repeats kept).

        Raises:
            InputError: when ids and texts differ in number or ids repeat.
        """
        if len(terms) != len(ids):
            raise InputError(f"BM25 needs one id per text: {len(terms)} texts, {len(ids)} ids")
        id_array = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        if len(np.unique(id_array)) != len(id_array):
            raise InputError("BM25 ids must be distinct")
        vocab: dict[str, int] = {}
        lengths = np.zeros(len(terms), dtype=np.int32)
        per_doc = np.zeros(len(terms), dtype=np.int64)
        cols: list[int] = []
        tfs: list[int] = []
        for pos, doc in enumerate(terms):
            lengths[pos] = len(doc)
            counts = Counter(doc)
            per_doc[pos] = len(counts)
            cols.extend(vocab.setdefault(term, len(vocab)) for term in counts)
            tfs.extend(counts.values())
        docs = np.repeat(np.arange(len(terms), dtype=np.int32), per_doc)
        return cls._from_triplets(
            ids=id_array,
            lengths=lengths,
            vocab=list(vocab),
            cols=np.asarray(cols, dtype=np.int64),
            docs=docs,
            tfs=np.asarray(tfs, dtype=np.int32),
        )

    @classmethod
    def merge(cls, parts: Sequence[tuple[BM25Segment, Collection[int]]]) -> BM25Segment:
        """One segment with the live chunks of several, in order, without re-analysing.

        Args:
            parts: ``(segment, deleted ids)`` pairs; deleted chunks are left out.

        Returns:
            The merged segment: the same postings as :meth:`build` over the live
            chunks' texts in the same order.

        Raises:
            InputError: when a live id occurs in two parts.
        """
        vocab: dict[str, int] = {}
        ids, lengths, cols, docs, tfs = [], [], [], [], []
        offset = 0
        for segment, deleted in parts:
            live = segment._live_mask(deleted)
            new_pos = np.cumsum(live, dtype=np.int64) - 1 + offset
            remap = np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in segment.terms),
                dtype=np.int64,
                count=len(segment.terms),
            )
            seg_cols = np.repeat(remap, np.diff(segment.indptr))
            keep = live[segment.positions]
            ids.append(segment.ids[live])
            lengths.append(segment.lengths[live])
            cols.append(seg_cols[keep])
            docs.append(new_pos[segment.positions[keep]])
            tfs.append(segment.tfs[keep])
            offset += int(live.sum())
        id_array = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        if len(np.unique(id_array)) != len(id_array):
            raise InputError("BM25 segments to merge share a live id")
        # Each part's postings ascend by position within a term and the parts follow
        # each other, so a stable sort by term keeps every postings list ascending.
        doc_array = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
        used = np.zeros(len(vocab), dtype=bool)
        col_array = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        used[col_array] = True
        terms = list(vocab)
        if not used.all():  # terms only deleted chunks had
            renumber = np.cumsum(used) - 1
            col_array = renumber[col_array]
            terms = [t for t, u in zip(terms, used, strict=True) if u]
        return cls._from_triplets(
            ids=id_array,
            lengths=np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32),
            vocab=terms,
            cols=col_array,
            docs=doc_array,
            tfs=np.concatenate(tfs) if tfs else np.zeros(0, dtype=np.int32),
        )

    @classmethod
    def _from_triplets(
        cls,
        *,
        ids: np.ndarray,
        lengths: np.ndarray,
        vocab: list[str],
        cols: np.ndarray,
        docs: np.ndarray,
        tfs: np.ndarray,
    ) -> BM25Segment:
        """Sort (term, position, tf) postings given in position order by term."""
        order = np.argsort(cols, kind="stable")
        counts = np.bincount(cols, minlength=len(vocab)) if len(cols) else np.zeros(len(vocab))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            ids=ids,
            lengths=lengths.astype(np.int32, copy=False),
            vocab=vocab,
            indptr=indptr,
            positions=docs[order].astype(np.int32, copy=False),
            tfs=tfs[order].astype(_tf_dtype(tfs), copy=False),
        )

    # -- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def digest(self) -> str:
        """A content hash of the segment: its folder name in a saved :class:`SegmentedBM25`."""
        if self._digest is None:
            h = hashlib.sha256(json.dumps(self.terms, ensure_ascii=False).encode("utf-8"))
            for name in _SEGMENT_ARRAY_NAMES:
                h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
            self._digest = h.hexdigest()[:32]
        return self._digest

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunk positions containing an analysed term, and its frequency in each."""
        col = self.vocab.get(term)
        if col is None:
            return self.positions[:0], self.tfs[:0]
        start, end = self.indptr[col], self.indptr[col + 1]
        return self.positions[start:end], self.tfs[start:end]

    def positions_of(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """The positions of those ids that are in this segment (others are ignored)."""
        wanted = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
        if not len(wanted) or not len(self.ids):
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self._sorted_ids, wanted)
        inside = at < len(self._sorted_ids)
        at = at[inside]
        return self._order[at[self._sorted_ids[at] == wanted[inside]]]

    def _live_mask(self, deleted: Collection[int]) -> np.ndarray:
        live = np.ones(len(self.ids), dtype=bool)
        if len(deleted):
            live[self.positions_of(np.fromiter(deleted, dtype=np.int64, count=len(deleted)))] = (
                False
            )
        return live

    # -- persistence ----------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write ``postings.npz`` then ``postings.json`` (with the arrays' checksum).

        Args:
            folder: the destination folder (created if needed).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays_path = folder / _SEGMENT_ARRAYS
        arrays = {name: getattr(self, name) for name in _SEGMENT_ARRAY_NAMES}
        write_atomic(arrays_path, lambda f: np.savez(f, **arrays))
        meta = {
            "format": _SEGMENT_FORMAT,
            "format_version": _FORMAT_VERSION,
            "documents": len(self.ids),
            "terms": len(self.terms),
            "arrays_sha256": file_sha256(arrays_path),
            "vocab": list(self.terms),
        }
        payload = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        write_atomic(folder / _SEGMENT_META, lambda f: f.write(payload))

    @classmethod
    def load(cls, folder: Path) -> BM25Segment:
        """Read a segment written by :meth:`save`.

        Raises:
            IndexCorruptError: when a file is missing, damaged or inconsistent.
        """
        folder = Path(folder)
        meta_path, arrays_path = folder / _SEGMENT_META, folder / _SEGMENT_ARRAYS
        try:
            meta = _read_meta(meta_path, _SEGMENT_FORMAT)
            if file_sha256(arrays_path) != meta["arrays_sha256"]:
                raise IndexCorruptError(f"{arrays_path} does not match {meta_path}")
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in _SEGMENT_ARRAY_NAMES}
            vocab = meta["vocab"]
            if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
                raise IndexCorruptError(f"{meta_path} has no valid vocabulary")
            segment = cls(
                ids=arrays["ids"].astype(np.int64, copy=False),
                lengths=arrays["lengths"].astype(np.int32, copy=False),
                vocab=vocab,
                indptr=arrays["indptr"].astype(np.int64, copy=False),
                positions=arrays["positions"].astype(np.int32, copy=False),
                tfs=arrays["tfs"],
            )
            documents = int(meta["documents"])
        except IndexCorruptError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise IndexCorruptError(f"the BM25 segment in {folder} is damaged: {err}") from err
        segment._check(documents, folder)
        return segment

    def _check(self, documents: int, folder: Path) -> None:
        """Raise IndexCorruptError unless the arrays agree with each other."""
        n_terms, n_docs = len(self.terms), len(self.ids)
        problems = []
        if n_docs != documents or len(self.lengths) != n_docs:
            problems.append(f"{n_docs} ids and {len(self.lengths)} lengths for {documents}")
        if len(self.vocab) != n_terms:
            problems.append("repeated terms in the vocabulary")
        pointers = pointer_problem(self.indptr, n_terms, len(self.positions), "term")
        if pointers:
            problems.append(pointers)
        if self.tfs.dtype.kind not in "ui":
            problems.append(f"term frequencies of type {self.tfs.dtype}")
        elif len(self.tfs) != len(self.positions):
            problems.append("frequencies and positions differ in number")
        elif len(self.positions) and (
            self.positions.min() < 0 or self.positions.max() >= n_docs or self.tfs.min() < 1
        ):
            problems.append("a posting points past the last chunk or counts nothing")
        if len(np.unique(self.ids)) != n_docs:
            problems.append("repeated ids")
        if problems:
            raise IndexCorruptError(
                f"the BM25 segment in {folder} is damaged: {'; '.join(problems)}"
            )


class SegmentedBM25:
    """Segments plus tombstones, scored with global statistics; immutable.

    :meth:`add`, :meth:`delete` and :meth:`merge` return a new set and leave this one
    as it was, so a reader's snapshot never changes under it. The query surface is the
    one of the single BM25 of earlier versions (the tests' reference): ``search``,
    ``idf``, ``related_term``, ``ids``, ``len``.
    """

    def __init__(
        self,
        segments: Sequence[BM25Segment] = (),
        *,
        deleted: Sequence[Collection[int]] | None = None,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        """Args:
            segments: the segments, oldest first (their order breaks score ties).
            deleted: for each segment, the ids deleted from it (default: none).
            k1: term-frequency saturation (>= 0).
            b: document-length normalisation, 0 to 1.

        Raises:
            InputError: on a bad k1 or b, a ``deleted`` of another length than
                ``segments``, or an id live in two segments.
        """
        if not (k1 >= 0 and math.isfinite(k1)):
            raise InputError(f"k1 ({k1}) must be a finite number >= 0")
        if not 0 <= b <= 1:
            raise InputError(f"b ({b}) must be between 0 and 1")
        if deleted is not None and len(deleted) != len(segments):
            raise InputError(
                f"deleted ({len(deleted)} sets) must have one set per segment ({len(segments)})"
            )
        dead = [
            np.flatnonzero(~s._live_mask(d)) if len(d) else np.zeros(0, dtype=np.int64)
            for s, d in zip(segments, deleted or [()] * len(segments), strict=True)
        ]
        self._setup(tuple(segments), tuple(dead), k1=k1, b=b)
        if len(self.segments) > 1:
            ids = np.concatenate([self._live_ids(i) for i in range(len(self.segments))])
            if len(np.unique(ids)) != len(ids):
                raise InputError("an id is live in two BM25 segments: delete it first")

    def _setup(
        self,
        segments: tuple[BM25Segment, ...],
        dead: tuple[np.ndarray, ...],
        *,
        k1: float,
        b: float,
    ) -> None:
        self.segments = segments
        self.k1 = k1
        self.b = b
        self._dead = dead
        self._live: tuple[np.ndarray | None, ...] = tuple(
            _mask(len(s), d) if len(d) else None for s, d in zip(segments, dead, strict=True)
        )
        documents = total = 0
        for segment, live in zip(segments, self._live, strict=True):
            if live is None:
                documents += len(segment)
                total += segment.total_length
            else:
                documents += int(live.sum())
                total += int(segment.lengths[live].sum(dtype=np.int64))
        self.stats = GlobalStats(documents=documents, total_length=total)
        self._norms: list[np.ndarray | None] = [None] * len(segments)
        self._by_prefix: dict[str, list[str]] | None = None

    @classmethod
    def _assemble(
        cls,
        segments: tuple[BM25Segment, ...],
        dead: tuple[np.ndarray, ...],
        *,
        k1: float,
        b: float,
    ) -> SegmentedBM25:
        """A set from checked parts, without the constructor's checks."""
        new = cls.__new__(cls)
        new._setup(segments, dead, k1=k1, b=b)
        return new

    # -- changing (each returns a new set) --------------------------------------------

    def add(self, segment: BM25Segment) -> SegmentedBM25:
        """This set with one more segment, newest last.

        Raises:
            InputError: when one of its ids is live already (delete it first).
        """
        for index, old in enumerate(self.segments):
            at = old.positions_of(segment.ids)
            live = self._live[index]
            if len(at) and (live is None or live[at].any()):
                raise InputError("an id is live in two BM25 segments: delete it first")
        return self._assemble(
            (*self.segments, segment),
            (*self._dead, np.zeros(0, dtype=np.int64)),
            k1=self.k1,
            b=self.b,
        )

    def delete(self, ids: Collection[int]) -> SegmentedBM25:
        """This set with these ids deleted from the segments that hold them (others ignored)."""
        wanted = _id_array(ids)
        dead = tuple(
            np.union1d(old, s.positions_of(wanted)) if len(wanted) else old
            for s, old in zip(self.segments, self._dead, strict=True)
        )
        return self._assemble(self.segments, dead, k1=self.k1, b=self.b)

    def merge(self, start: int = 0, stop: int | None = None) -> SegmentedBM25:
        """This set with segments ``start:stop`` merged into one, deleted chunks dropped.

        Adjacent segments only, so that the collection order (ties) is kept.

        Raises:
            InputError: when ``start:stop`` is not a non-empty range of segments.
        """
        stop = len(self.segments) if stop is None else stop
        if not 0 <= start < stop <= len(self.segments):
            raise InputError(f"cannot merge segments {start}:{stop} of {len(self.segments)}")
        deleted = self.deleted_ids()
        merged = BM25Segment.merge([(self.segments[i], deleted[i]) for i in range(start, stop)])
        return self._assemble(
            (*self.segments[:start], merged, *self.segments[stop:]),
            (*self._dead[:start], np.zeros(0, dtype=np.int64), *self._dead[stop:]),
            k1=self.k1,
            b=self.b,
        )

    def deleted_ids(self) -> list[set[int]]:
        """For each segment, the ids deleted from it."""
        return [
            {int(i) for i in s.ids[dead]} for s, dead in zip(self.segments, self._dead, strict=True)
        ]

    # -- querying -------------------------------------------------------------------

    def __len__(self) -> int:
        return self.stats.documents

    @property
    def ids(self) -> list[int]:
        """The live ids, in collection order (segment after segment)."""
        return [int(i) for k in range(len(self.segments)) for i in self._live_ids(k)]

    def document_frequency(self, term: str) -> int:
        """How many live chunks contain an analysed term."""
        df = 0
        for segment, live in zip(self.segments, self._live, strict=True):
            positions, _ = segment.postings(term)
            df += len(positions) if live is None else int(np.count_nonzero(live[positions]))
        return df

    def idf(self, term: str) -> float:
        """The Lucene idf over the live chunks: ``log(1 + (N - df + 0.5) / (df + 0.5))``.

        Returns:
            The idf, or 0.0 for a term no live chunk contains.
        """
        df = self.document_frequency(term)
        return _idf(df, self.stats.documents) if df else 0.0

    def related_term(self, term: str) -> str | None:
        """A live indexed term that is very likely the same word stemmed differently.

        The rule of the reference BM25's ``related_term``, over all segments.
        """
        if len(term) < 5 or self.document_frequency(term):
            return None
        if self._by_prefix is None:
            by_prefix: dict[str, list[str]] = {}
            for segment in self.segments:
                for t in segment.terms:
                    if len(t) >= 5:
                        by_prefix.setdefault(t[:5], []).append(t)
            self._by_prefix = {p: list(dict.fromkeys(ts)) for p, ts in by_prefix.items()}
        for other in self._by_prefix.get(term[:5], ()):
            if (
                other.startswith(term) or term.startswith(other) or other[:6] == term[:6]
            ) and self.document_frequency(other):
                return other
        return None

    def search(
        self, query: str, *, k: int, allowed: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """The best-scoring live ids for a query, as the reference BM25's ``search`` gives them.

        Args:
            query: free text, analysed; a repeated term counts once per occurrence.
            k: the most results to return.
            allowed: when given, only these ids can be returned.

        Returns:
            ``(id, score)`` pairs, best first (ties in collection order), scores above 0.
        """
        n = self.stats.documents
        if k <= 0 or not n:
            return []
        terms = analyze(query)
        idf32 = {}
        for term in dict.fromkeys(terms):
            df = self.document_frequency(term)
            if df:
                idf32[term] = np.float32(_idf(df, n))
        terms = [t for t in terms if t in idf32]
        if not terms:
            return []
        wanted = None if allowed is None else _Allowed(_id_array(allowed))
        found_scores, found_rank, found_ids = [], [], []
        offset = 0
        for index, segment in enumerate(self.segments):
            hits, scores = self._segment_top(index, terms, idf32, k, wanted)
            found_scores.append(scores)
            found_rank.append(hits + offset)
            found_ids.append(segment.ids[hits])
            offset += len(segment)
        scores = np.concatenate(found_scores)
        rank = np.concatenate(found_rank)
        order = np.lexsort((rank, -scores))[:k]
        ids = np.concatenate(found_ids)
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _segment_top(
        self,
        index: int,
        terms: list[str],
        idf32: dict[str, np.float32],
        k: int,
        wanted: _Allowed | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One segment's best k positions for the query, with their scores."""
        segment = self.segments[index]
        postings = [segment.postings(t) for t in terms]
        present = [i for i, (p, _) in enumerate(postings) if len(p)]
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        if not present or (wanted is not None and not len(wanted.ids)):
            return empty
        norm = self._norm(index)
        docs = np.concatenate([postings[i][0] for i in present])
        tfs = np.concatenate([postings[i][1] for i in present]).astype(np.float64)
        idfs = np.repeat(
            np.array([idf32[terms[i]] for i in present], dtype=np.float32),
            [len(postings[i][0]) for i in present],
        )
        # bm25s' Lucene weight, in its precision: float32 idf times a float64 tf part,
        # stored as float32, summed in float64 (in place: the same operations, fewer copies)
        part = norm[docs]
        part += tfs
        np.divide(tfs, part, out=part)
        part *= idfs
        weights = part.astype(np.float32)
        scores = np.bincount(docs, weights=weights, minlength=len(segment))
        if len(self._dead[index]):
            scores[self._dead[index]] = 0.0
        hits = np.flatnonzero(scores > 0)
        if wanted is not None:
            # look up whichever is fewer: the allowed ids here, or the hits among them
            if len(wanted.ids) < len(hits):
                allowed_here = np.zeros(len(segment), dtype=bool)
                allowed_here[segment.positions_of(wanted.ids)] = True
                hits = hits[allowed_here[hits]]
            else:
                hits = hits[_contains(wanted.sorted(), segment.ids[hits])]
        if len(hits) > k:
            found = scores[hits]
            kth = np.partition(found, len(found) - k)[len(found) - k]
            better, tied = hits[found > kth], hits[found == kth]
            hits = np.concatenate([better, tied[: k - len(better)]])
        return hits, scores[hits]

    def _norm(self, index: int) -> np.ndarray:
        """``k1 * (1 - b + b * length / average length)`` per chunk of a segment."""
        norm = self._norms[index]
        if norm is None:
            lengths = self.segments[index].lengths.astype(np.float64)
            norm = self.k1 * ((1 - self.b) + self.b * lengths / self.stats.average_length)
            self._norms[index] = norm
        return norm

    def _live_ids(self, index: int) -> np.ndarray:
        live = self._live[index]
        ids = self.segments[index].ids
        return ids if live is None else ids[live]

    # -- persistence ----------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write new segments, then the tombstones, then ``segments.json`` last.

        Each segment goes into a folder named by its :attr:`BM25Segment.digest`, written
        only when missing: saving after an update writes just the new segments. Folders
        the manifest no longer names are left for the caller to remove once no reader
        holds them.

        Args:
            folder: the destination folder (created if needed).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = [s.digest for s in self.segments]
        for name, segment in zip(names, self.segments, strict=True):
            if not (folder / name / _SEGMENT_META).exists():
                segment.save(folder / name)
        tomb_path = folder / _TOMBSTONES
        tombs: dict[str, Any] = {
            name: np.asarray(sorted(d), dtype=np.int64)
            for name, d in zip(names, self.deleted_ids(), strict=True)
        }
        write_atomic(tomb_path, lambda f: np.savez(f, **tombs))
        meta = {
            "format": _SET_FORMAT,
            "format_version": _FORMAT_VERSION,
            "method": "lucene",
            "k1": self.k1,
            "b": self.b,
            "segments": names,
            "documents": self.stats.documents,
            "tombstones_sha256": file_sha256(tomb_path),
        }
        payload = json.dumps(meta, indent=1).encode("utf-8")
        write_atomic(folder / _SET_META, lambda f: f.write(payload))

    @classmethod
    def load(cls, folder: Path) -> SegmentedBM25:
        """Read a set written by :meth:`save`.

        Raises:
            IndexCorruptError: when a file is missing, damaged or inconsistent.
        """
        folder = Path(folder)
        meta_path, tomb_path = folder / _SET_META, folder / _TOMBSTONES
        try:
            meta = _read_meta(meta_path, _SET_FORMAT)
            if file_sha256(tomb_path) != meta["tombstones_sha256"]:
                raise IndexCorruptError(f"{tomb_path} does not match {meta_path}")
            names = [str(n) for n in meta["segments"]]
            with np.load(tomb_path, allow_pickle=False) as npz:
                deleted = [{int(i) for i in npz[name]} for name in names]
            segments = [BM25Segment.load(folder / name) for name in names]
            index = cls(segments, deleted=deleted, k1=float(meta["k1"]), b=float(meta["b"]))
            documents = int(meta["documents"])
        except IndexCorruptError:
            raise
        except (OSError, ValueError, KeyError, TypeError, InputError, zipfile.BadZipFile) as err:
            raise IndexCorruptError(f"the BM25 segments in {folder} are damaged: {err}") from err
        if index.stats.documents != documents:
            raise IndexCorruptError(
                f"the BM25 segments in {folder} are damaged: "
                f"{index.stats.documents} live chunks for {documents}"
            )
        return index


def _tf_dtype(tfs: np.ndarray) -> type[np.integer]:
    """The smallest integer type for these term frequencies: most postings count 1 to 3."""
    top = int(tfs.max()) if len(tfs) else 0
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int32


def _idf(df: int, n: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _id_array(ids: Collection[int]) -> np.ndarray:
    if isinstance(ids, np.ndarray):
        return ids.astype(np.int64, copy=False).reshape(-1)
    return np.fromiter(iter(ids), dtype=np.int64, count=len(ids))


class _Allowed:
    """A query's allowed ids, sorted only if a segment needs them sorted."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._sorted: np.ndarray | None = None

    def sorted(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self.ids)  # repeats are harmless to _contains
        return self._sorted


def _contains(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids`` (sorted; repeats allowed)."""
    if not len(sorted_ids):
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[at] == ids


def _mask(size: int, dead: np.ndarray) -> np.ndarray:
    live = np.ones(size, dtype=bool)
    live[dead] = False
    return live


def _read_meta(path: Path, expected: str) -> dict:
    """A JSON metadata file of the expected format and version."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != expected:
        raise IndexCorruptError(f"{path} is not a {expected} file")
    if meta.get("format_version") != _FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has format version {meta.get('format_version')!r}, expected {_FORMAT_VERSION}"
        )
    return meta


def pointer_problem(indptr: np.ndarray, n_terms: int, n_values: int, what: str) -> str | None:
    """What is wrong with the per-term pointers of a sparse layout, or None.

    ``indptr`` must hold ``n_terms + 1`` non-decreasing offsets from 0 to ``n_values``.
    """
    if indptr.shape != (n_terms + 1,):
        return f"the {what} pointers do not match the vocabulary"
    if indptr[0] != 0 or indptr[-1] != n_values or np.any(np.diff(indptr) < 0):
        return f"the {what} pointers are out of order"
    return None
