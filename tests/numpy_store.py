"""A vector store in one module: exact search with numpy, no FAISS.

The test of the vector-store extension point registers it with one line
(``VECTOR_STORES.register("numpy", "numpy_store:NumpyVectors")``) and builds an index
on it; the architecture page shows the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sourcier.errors import IndexCorruptError


class NumpyVectors:
    """Chunk vectors in one float32 array; cosine search by a matrix product."""

    kind = "numpy"

    def __init__(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[order]
        self._vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)[order]

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[int] | np.ndarray, **_: Any) -> NumpyVectors:
        return cls(np.asarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    @classmethod
    def load(cls, folder: Path) -> NumpyVectors:
        try:
            meta = json.loads((folder / "numpy.json").read_text())
            data = np.load(folder / "numpy.npz")
            vectors, ids = data["vectors"], data["ids"]
        except (OSError, ValueError, KeyError) as err:
            raise IndexCorruptError(f"the vectors in {folder} are damaged: {err}") from err
        if meta.get("count") != len(ids):
            raise IndexCorruptError(f"the vectors in {folder} are incomplete")
        return cls(vectors, ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "numpy.npz", vectors=self._vectors, ids=self.ids)
        (folder / "numpy.json").write_text(json.dumps({"count": len(self.ids)}))

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1]) if self._vectors.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.ids)

    def vector(self, chunk_id: int) -> np.ndarray:
        at = int(np.searchsorted(self.ids, chunk_id))
        if at >= len(self.ids) or self.ids[at] != chunk_id:
            raise KeyError(chunk_id)
        return self._vectors[at]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return self._vectors[np.asarray(rows, dtype=np.int64)]

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None, params: Any = None
    ) -> dict[int, float]:
        if not len(self.ids) or k <= 0:
            return {}
        scores = self._vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
        rows = np.arange(len(self.ids))
        if allowed is not None:
            rows = rows[np.isin(self.ids, np.asarray(allowed, dtype=np.int64))]
        best = rows[np.argsort(-scores[rows], kind="stable")[:k]]
        return {int(self.ids[r]): float(scores[r]) for r in best}
