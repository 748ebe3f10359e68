"""Vector stores: what holds a segment's chunk vectors and searches them, by name.

Each segment keeps its chunk vectors in a :class:`VectorIndex` made by the store that
``Settings.index.vector_store`` names (default ``"faiss"``: :class:`~.dense.DenseIndex`,
exact below 200,000 chunks and IVF-HNSW-SQ8 above). A segment records which store wrote
it (when not the default), so any index opens with the stores it was built with.
Another backend is one module with a class like ``DenseIndex`` (``build``, ``load``,
and the methods of :class:`VectorIndex`) and one line: its entry in
:data:`VECTOR_STORES`. Segments stay local folders, written once and renamed into
place; a remote collection would also need generations and tombstones of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..registry import Registry

DEFAULT_STORE = "faiss"


class VectorIndex(Protocol):
    """The chunk vectors of one segment, by int64 id; cosine search (unit vectors)."""

    kind: str
    ids: np.ndarray  # sorted int64

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def vector(self, chunk_id: int) -> np.ndarray:
        """The stored vector of one id, as float32 (``KeyError`` if absent)."""
        ...

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors at these positions of :attr:`ids`."""
        ...

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None, params: Any = None
    ) -> dict[int, float]:
        """The ``k`` best ids (among ``allowed``, when given) with their cosines."""
        ...

    def save(self, folder: Path) -> None:
        """Write it into ``folder`` (a segment's ``dense/``)."""
        ...


class VectorStore(Protocol):
    """Makes :class:`VectorIndex` objects: from vectors (a build, a merge) or a folder."""

    def build(self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray, **options: Any) -> Any:
        """Index ``vectors`` (one row per id; ``flat_below`` may be given)."""
        ...

    def load(self, folder: Path) -> Any:
        """Read what :meth:`VectorIndex.save` wrote (``IndexCorruptError`` if damaged)."""
        ...


VECTOR_STORES: Registry[VectorStore] = Registry(
    "vector store", {DEFAULT_STORE: "sourcier.storage.dense:DenseIndex"}
)
"""Vector stores by name."""
