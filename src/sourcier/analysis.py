"""BM25 with a French analyser: elisions, stopwords, Snowball stemming, accent folding.

The analyser turns text into index terms; :class:`BM25Index` scores chunks with the
Lucene variant of BM25. ``bm25s`` computes the per-document term weights at build
time; a query then only sums a few columns of that sparse matrix. The index is saved
as JSON plus a NumPy ``.npz`` archive and loads without pickle.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
import unicodedata
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import IndexCorruptError, InputError
from .files import file_sha256, write_atomic
from .words import MORE_STOPWORDS_FR, SNOWBALL_STOPWORDS_FR, STOPWORDS_EN

logger = logging.getLogger(__name__)

__all__ = ["BM25Index", "FRENCH_STOPWORDS", "ENGLISH_STOPWORDS", "STOPWORDS", "analyze"]


FRENCH_STOPWORDS = SNOWBALL_STOPWORDS_FR
ENGLISH_STOPWORDS = STOPWORDS_EN


def _fold(term: str) -> str:
    """Remove accents and expand ligatures: "pôle" -> "pole", "œuvr" -> "oeuvr".

    Compatibility forms are folded too ("ﬁ" -> "fi", "𝓐" -> "a"), and whatever is not
    a letter or digit afterwards is dropped, so a term is always a clean word.
    """
    if term.isascii():
        return term
    decomposed = unicodedata.normalize("NFKD", term).translate(_LIGATURES).lower()
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l"})

STOPWORDS = frozenset(
    FRENCH_STOPWORDS
    | MORE_STOPWORDS_FR
    | ENGLISH_STOPWORDS
    | {_fold(w) for w in FRENCH_STOPWORDS | MORE_STOPWORDS_FR}
)
"""Every word the analyser drops, with and without accents."""

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'"})
# l'innovation, qu'il, jusqu'au, lorsqu'on: the elided word is dropped.
_ELISION = re.compile(r"\b(?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'")
# "6 800", "1 000 000": digit groups separated by a (narrow) space are one number.
_DIGIT_GROUPS = re.compile(r"\b(\d{1,3})((?:[ \u00a0\u202f]\d{3})+)\b")
_WORD = re.compile(r"[^\W_]+")

_local = threading.local()


def _stemmer() -> Any:
    """This thread's French Snowball stemmer (PyStemmer objects are not thread-safe)."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = Stemmer.Stemmer("french")
        _local.stemmer = stemmer
    return stemmer


@functools.lru_cache(maxsize=100_000)
def _term(token: str) -> str | None:
    """The index term of a lower-cased token, or ``None`` for a stopword."""
    if token in STOPWORDS:
        return None
    stem = _stemmer().stemWord(token)
    # Snowball keeps the "-ent" of nouns made from "-ider" verbs, so "président" would
    # not meet "préside": questions ("qui préside ...?") ask with the verb.
    if stem.endswith("ident") and len(stem) >= 7:
        stem = stem[:-3]
    return _fold(stem) or None


def fold_text(text: str) -> str:
    """Lower-case, strip accents and write ’ as ': for matching names and words of a
    question in a document ("Métropole" meets "metropole")."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def analyze(text: str) -> list[str]:
    """Turn French (or English) text into BM25 terms.

    Lower-cases, drops elisions ("l'", "qu'", "jusqu'", with ' or ’), joins digit
    groups ("6 800" -> "6800"), splits into words (letters and digits), drops
    stopwords, stems with the Snowball French stemmer (plus one rule: "président",
    "résident" lose their "-ent" to meet "présider", "résider"), then removes
    accents, so "l’innovation" and "innovations" both give "innov", "pôles" and
    "pole" both give "pol", "présidente" and "préside" both give "presid".

    Args:
        text: any text.

    Returns:
        The terms, in order, repeats kept.
    """
    text = unicodedata.normalize("NFC", text).lower().translate(_APOSTROPHES)
    text = _ELISION.sub(" ", text)
    text = _DIGIT_GROUPS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    terms = []
    for token in _WORD.findall(text):
        term = _term(token)
        if term:
            terms.append(term)
    return terms


_FORMAT = "sourcier-bm25"
_FORMAT_VERSION = 1
_META = "bm25.json"
_ARRAYS = "bm25.npz"


class TermStatistics(Protocol):
    """What answer scoring reads of a BM25 index, one segment or many: the number of
    chunks, a term's idf, and the indexed term a question's term stands for."""

    def __len__(self) -> int: ...

    def idf(self, term: str) -> float: ...

    def related_term(self, term: str) -> str | None: ...


class BM25Index:
    """A BM25 (Lucene variant) index over analysed texts, keyed by arbitrary int64 ids.

    Build it with :meth:`build`, query it with :meth:`search`, persist it with
    :meth:`save` and :meth:`load`. The term weights live in a sparse term-by-document
    matrix (CSC arrays), so a query costs a few array slices and one ``bincount``.
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
        """Wrap prepared arrays; use :meth:`build` or :meth:`load` instead.

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

    # -- persistence ----------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index into ``folder`` (created if needed): ``bm25.npz`` and ``bm25.json``.

        The arrays go first; the JSON, written last, records their checksum, so a
        half-written or mismatched pair is detected on load. No pickle is involved.

        Args:
            folder: the destination folder.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays_path = folder / _ARRAYS
        write_atomic(
            arrays_path,
            lambda f: np.savez(
                f, ids=self._ids, data=self._data, indices=self._indices, indptr=self._indptr
            ),
        )
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "method": "lucene",
            "k1": self.k1,
            "b": self.b,
            "documents": len(self._ids),
            "terms": len(self._terms),
            "arrays_sha256": file_sha256(arrays_path),
            "vocab": self._terms,
        }
        payload = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        write_atomic(folder / _META, lambda f: f.write(payload))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read an index written by :meth:`save`.

        Args:
            folder: the folder given to :meth:`save`.

        Returns:
            The index.

        Raises:
            IndexCorruptError: when a file is missing, damaged or inconsistent.
        """
        folder = Path(folder)
        meta_path, arrays_path = folder / _META, folder / _ARRAYS
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise IndexCorruptError(f"{meta_path} is not a sourcier BM25 index")
            if meta.get("format_version") != _FORMAT_VERSION:
                raise IndexCorruptError(
                    f"{meta_path} has format version {meta.get('format_version')!r}, "
                    f"expected {_FORMAT_VERSION}"
                )
            if file_sha256(arrays_path) != meta["arrays_sha256"]:
                raise IndexCorruptError(f"{arrays_path} does not match {meta_path}")
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in ("ids", "data", "indices", "indptr")}
            vocab = meta["vocab"]
            if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
                raise IndexCorruptError(f"{meta_path} has no valid vocabulary")
            documents = int(meta["documents"])
            index = cls(
                ids=arrays["ids"].astype(np.int64, copy=False),
                vocab=vocab,
                data=arrays["data"].astype(np.float32, copy=False),
                indices=arrays["indices"].astype(np.int32, copy=False),
                indptr=arrays["indptr"].astype(np.int64, copy=False),
                k1=float(meta["k1"]),
                b=float(meta["b"]),
            )
        except IndexCorruptError:
            raise
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            zipfile.BadZipFile,
        ) as err:
            raise IndexCorruptError(f"the BM25 index in {folder} is damaged: {err}") from err
        index._check(documents, folder)
        return index

    def _check(self, documents: int, folder: Path) -> None:
        """Raise IndexCorruptError unless the arrays are consistent with each other."""
        n_terms = len(self._terms)
        problems = []
        if len(self._ids) != documents:
            problems.append(f"{len(self._ids)} ids for {documents} documents")
        if len(self._vocab) != n_terms:
            problems.append("repeated terms in the vocabulary")
        pointers = pointer_problem(self._indptr, n_terms, len(self._data), "column")
        if pointers:
            problems.append(pointers)
        if len(self._indices) != len(self._data):
            problems.append("weights and positions differ in number")
        elif len(self._indices) and (
            self._indices.min() < 0 or self._indices.max() >= len(self._ids)
        ):
            problems.append("a weight points past the last document")
        if len(np.unique(self._ids)) != len(self._ids):
            problems.append("repeated ids")
        if problems:
            raise IndexCorruptError(f"the BM25 index in {folder} is damaged: {'; '.join(problems)}")


def pointer_problem(indptr: np.ndarray, n_terms: int, n_values: int, what: str) -> str | None:
    """What is wrong with the per-term pointers of a sparse layout, or None.

    ``indptr`` must hold ``n_terms + 1`` non-decreasing offsets from 0 to ``n_values``.
    """
    if indptr.shape != (n_terms + 1,):
        return f"the {what} pointers do not match the vocabulary"
    if indptr[0] != 0 or indptr[-1] != n_values or np.any(np.diff(indptr) < 0):
        return f"the {what} pointers are out of order"
    return None
