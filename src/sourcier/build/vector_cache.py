"""The embedding cache of a build: the journal of vectors not yet published.

A build puts every vector it computes here before it writes its segment, so a build
killed midway and run again embeds only what it had not done. Once a generation is
published its segments hold every vector and the file is dropped (:func:`drop`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..storage.generations import JOURNAL


def open_cache(path: Path, model_id: str, dim: int) -> EmbeddingCache:
    """The embedding cache of the index at ``path``."""
    return EmbeddingCache(path / JOURNAL, model_id, dim)


def drop(path: Path) -> None:
    """Remove the cache of the index at ``path`` (the caller holds the writer lock).

    Once a generation is live its segments hold every vector, so the cache only keeps
    the work of a build that was interrupted before it could publish. (Deleting the file
    costs nothing; emptying it row by row took minutes at a million chunks.)
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        (path / f"{JOURNAL}{suffix}").unlink(missing_ok=True)


class EmbeddingCache:
    """Passage vectors, and the vectors of their sentences, keyed by (model, embedded text).

    Re-indexing therefore embeds only what changed.

    SQLite commits are atomic, so a killed build loses at most its last batch.
    """

    def __init__(self, path: Path, model_id: str, dim: int) -> None:
        self._model_id = model_id
        self._dim = dim
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors "
            "(key TEXT PRIMARY KEY, model TEXT, vec BLOB, sents BLOB)"
        )

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model_id}\0{text}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Known (passage vector, sentence vectors) for these keys."""
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT key, vec, sents FROM vectors WHERE key IN ({marks})", part
            ).fetchall()
            for key, blob, sents in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                sent = np.frombuffer(sents or b"", dtype=np.float32)
                if vec.shape == (self._dim,) and sent.size % self._dim == 0:
                    found[key] = (vec, sent.reshape(-1, self._dim))
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (key, model, vec, sents) VALUES (?, ?, ?, ?)",
                [
                    (
                        k,
                        self._model_id,
                        np.ascontiguousarray(v, dtype=np.float32).tobytes(),
                        np.ascontiguousarray(sv, dtype=np.float32).tobytes(),
                    )
                    for k, v, sv in items
                ],
            )

    def close(self) -> None:
        self._db.close()
