"""Sentence offsets and sentence vectors of a snapshot, held as arrays.

Answer selection reads, for each retrieved chunk, its sentences' offsets and vectors:
:class:`SentenceSpans` maps a chunk id to its sentences, :class:`SentenceVectors` turns
a global sentence row into a float32 vector, across every segment of a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..types import Chunk
from .segment import faiss_id_for


class SentenceSpans(Mapping[str, list[tuple[int, int, int]]]):
    """``chunk_id -> [(start, end, row)]`` for the live chunks of a snapshot, held as
    arrays (16 bytes a sentence instead of a tuple each): ``row`` numbers the sentence in
    :class:`SentenceVectors`, ``start``/``end`` are offsets into the document's text."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        positions: Mapping[int, int],
        first: np.ndarray,
        count: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
    ) -> None:
        """Args:
        chunks: the live chunks; ``positions`` maps their FAISS ids to their index.
        first / count: per live chunk, its first global sentence row and how many.
        starts / ends: per global row, the sentence's offsets.
        """
        self._chunks = chunks
        self._positions = positions
        self._first = first
        self._count = count
        self._starts = starts
        self._ends = ends

    def _position(self, chunk_id: str) -> int | None:
        try:
            position = self._positions.get(faiss_id_for(chunk_id))
        except (ValueError, TypeError):
            return None
        if position is None or self._chunks[position].chunk_id != chunk_id:
            return None
        return position if self._count[position] else None

    def __getitem__(self, chunk_id: str) -> list[tuple[int, int, int]]:
        position = self._position(chunk_id)
        if position is None:
            raise KeyError(chunk_id)
        first = int(self._first[position])
        rows = range(first, first + int(self._count[position]))
        return [(int(self._starts[r]), int(self._ends[r]), r) for r in rows]

    def __contains__(self, chunk_id: object) -> bool:
        return isinstance(chunk_id, str) and self._position(chunk_id) is not None

    def __iter__(self) -> Iterator[str]:
        return (c.chunk_id for c, n in zip(self._chunks, self._count, strict=True) if n)

    def __len__(self) -> int:
        return int(np.count_nonzero(self._count))


class SentenceVectors:
    """The sentence vectors of several segments behind one global row number.

    Rows are numbered segment after segment; reading one decodes it to float32.
    """

    def __init__(self, parts: Sequence[tuple[np.ndarray, np.ndarray | None]], dim: int) -> None:
        """Args:
        parts: per segment, ``(int8 codes, float32 scales)`` or ``(float vectors, None)``.
        dim: the vector dimension (for an index without sentences).
        """
        self._parts = list(parts)
        sizes = [len(codes) for codes, _ in self._parts]
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.dim = dim

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def encodings(self) -> set[str]:
        """How the parts are stored on disk (``int8``, ``float16`` ...)."""
        return {"int8" if scales is not None else str(codes.dtype) for codes, scales in self._parts}

    def __getitem__(self, rows: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """One row as a ``(dim,)`` float32 vector, or several as ``(n, dim)``."""
        if isinstance(rows, (int, np.integer)):
            row = int(rows)
            if not 0 <= row < len(self):
                raise IndexError(row)
            part = int(np.searchsorted(self._starts, row, side="right")) - 1
            return self._decode(part, np.array([row - self._starts[part]]))[0]
        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.zeros((len(wanted), self.dim), dtype=np.float32)
        if not len(wanted):
            return out
        if wanted.min() < 0 or wanted.max() >= len(self):
            raise IndexError("sentence row out of range")
        part_of = np.searchsorted(self._starts, wanted, side="right") - 1
        for part in np.unique(part_of):
            at = np.flatnonzero(part_of == part)
            out[at] = self._decode(int(part), wanted[at] - self._starts[part])
        return out

    def _decode(self, part: int, local: np.ndarray) -> np.ndarray:
        codes, scales = self._parts[part]
        block = np.asarray(codes[local], dtype=np.float32)
        if scales is not None:
            block *= scales[local][:, None]
        return block
