"""The index on disk: FAISS vectors, SQLite metadata, BM25, a manifest; atomic generations.

Layout of an index folder::

    CURRENT             name of the live generation (replaced atomically)
    LOCK                held by a writer (fcntl) while it builds
    embeddings.sqlite   cache of passage vectors keyed by model + embedded text
    gen-000003/         one complete, immutable generation
        manifest.json   format version, model, dimension, counts, settings
        docs.sqlite     documents (cleaned text) and chunks (offsets, labels, FAISS ids)
        dense/          the chunk vectors (:class:`~sourcier.dense.DenseIndex`: exact
                        below a size, FAISS IVF-HNSW-SQ8 above it)
        sentences.npy   one vector per sentence (float16: cosines move by < 1e-3)
        bm25/           the lexical index (json + npy, no pickle)

Format 2 (``dense.faiss``, a flat ``IndexIDMap2``) is still read.

A writer builds a new generation in a temporary folder, renames it into place and
only then points ``CURRENT`` at it, so a reader never sees a half-written index and
a build killed at any moment leaves the previous generation loadable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dense import FLAT_BELOW, DenseIndex
from .errors import IndexCorruptError, IndexNotFoundError
from .lexical import BM25Index
from .types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
READABLE_FORMATS = (2, 3)
CURRENT = "CURRENT"
LOCK = "LOCK"
CACHE = "embeddings.sqlite"
MANIFEST = "manifest.json"
DOCS_DB = "docs.sqlite"
DENSE = "dense"
DENSE_V2 = "dense.faiss"
SENTENCES = "sentences.npy"
BM25_DIR = "bm25"

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    date_raw TEXT, date_iso TEXT, language TEXT NOT NULL
);
CREATE TABLE chunks (
    faiss_id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, label TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY, faiss_id INTEGER NOT NULL REFERENCES chunks(faiss_id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
"""


def faiss_id_for(chunk_id: str) -> int:
    """A stable, positive int64 FAISS id derived from the chunk id."""
    return int(chunk_id[:15], 16)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def rebuild_hint(path: Path) -> str:
    """How to fix a damaged index, as the end of an error line."""
    return f"rebuild it with `sourcier index FOLDER --index {path}`"


def corrupt(path: Path, detail: object) -> IndexCorruptError:
    """The error for a damaged index at ``path``: what is wrong and how to fix it."""
    what = " ".join(str(detail).split())  # FAISS and SQLite messages span lines
    if len(what) > 300:
        what = what[:299] + "…"
    return IndexCorruptError(
        f"the index at {path} is damaged ({what}); {rebuild_hint(path)}",
        code="index_corrupt",
        path=str(path),
        detail=what,
    )


def current_generation(path: Path) -> Path | None:
    """The live generation folder of the index at ``path``, or None if there is none.

    Raises:
        IndexCorruptError: ``CURRENT`` exists but cannot be read or names no generation.
    """
    try:
        name = (path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise corrupt(path, f"cannot read {CURRENT}: {err}") from err
    if not name.startswith("gen-") or "/" in name:
        raise corrupt(path, f"{CURRENT} names no generation ({name[:40]!r})")
    return path / name


def index_exists(path: str | Path) -> bool:
    """Whether a complete index lives at ``path``.

    Raises:
        IndexCorruptError: ``CURRENT`` exists but cannot be read or names no generation.
    """
    gen = current_generation(Path(path))
    return gen is not None and (gen / MANIFEST).is_file()


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Serialise writers of one index, across threads and processes."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / LOCK, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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

    def prune(self, keep: Iterable[str]) -> int:
        """Drop vectors of this model that no live chunk uses; return how many."""
        keep_set = set(keep)
        rows = self._db.execute(
            "SELECT key FROM vectors WHERE model = ?", (self._model_id,)
        ).fetchall()
        stale = [(k,) for (k,) in rows if k not in keep_set]
        with self._db:
            self._db.executemany("DELETE FROM vectors WHERE key = ?", stale)
        if stale:
            self._db.execute("VACUUM")  # give the space back to the disk
        return len(stale)

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Snapshot:
    """Everything one generation holds, in memory."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    faiss_ids: np.ndarray  # int64, aligned with chunks
    dense: DenseIndex
    bm25: BM25Index
    positions: dict[int, int]  # FAISS id -> position in chunks
    by_chunk_id: dict[str, Chunk]
    sentence_vectors: np.ndarray  # (n_sentences, dim) float16 (float32 in format 2)
    sentences: dict[str, list[tuple[int, int, int]]]  # chunk_id -> [(start, end, row)]


def read_snapshot(gen: Path) -> Snapshot:
    """Load one generation; raise IndexCorruptError if any part is missing or damaged."""
    path = gen.parent
    try:
        manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise corrupt(path, f"cannot read {gen.name}/{MANIFEST}: {err}") from err
    if not isinstance(manifest, dict):
        raise corrupt(path, f"{gen.name}/{MANIFEST} is not a JSON object")
    if manifest.get("format_version") not in READABLE_FORMATS:
        found = manifest.get("format_version")
        raise IndexCorruptError(
            f"the index at {path} has format {found!r}, which this sourcier does not read "
            f"(it reads format {FORMAT_VERSION}); {rebuild_hint(path)}",
            code="index_format",
            path=str(path),
            found=str(found),
            supported=FORMAT_VERSION,
        )
    try:
        db = sqlite3.connect(f"file:{gen / DOCS_DB}?mode=ro", uri=True)
        try:
            docs = {
                row[0]: Document(
                    doc_id=row[0],
                    source=row[1],
                    title=row[2],
                    text=row[3],
                    date_raw=row[4],
                    date_iso=row[5],
                    language=row[6],
                )
                for row in db.execute(
                    "SELECT doc_id, source, title, text, date_raw, date_iso, language "
                    "FROM documents ORDER BY source"
                )
            }
            rows = db.execute(
                'SELECT faiss_id, chunk_id, doc_id, ordinal, start, "end", label FROM chunks '
                "ORDER BY doc_id, ordinal"
            ).fetchall()
            sentence_rows = db.execute(
                'SELECT row, faiss_id, start, "end" FROM sentences ORDER BY row'
            ).fetchall()
        finally:
            db.close()
        chunks = []
        for _fid, chunk_id, doc_id, ordinal, start, end, label in rows:
            text = docs[doc_id].text
            chunks.append(Chunk(chunk_id, doc_id, ordinal, start, end, text[start:end], label))
        faiss_ids = np.array([r[0] for r in rows], dtype=np.int64)
        dense = _read_dense(gen, manifest)
        bm25 = BM25Index.load(gen / BM25_DIR)
        sentence_vectors = np.load(gen / SENTENCES, allow_pickle=False)
    except IndexCorruptError as err:
        if err.code is not None:
            raise
        raise corrupt(path, f"{gen.name}: {err}") from err
    except (sqlite3.Error, KeyError, RuntimeError, OSError, ValueError) as err:
        raise corrupt(path, f"{gen.name}: {err}") from err
    if (
        len(dense) != len(chunks)
        or len(bm25) != len(chunks)
        or len(sentence_vectors) != len(sentence_rows)
    ):
        raise corrupt(
            path,
            f"{gen.name} is inconsistent: {len(chunks)} chunks, {len(dense)} vectors, "
            f"{len(bm25)} BM25 entries",
        )
    positions = {int(f): i for i, f in enumerate(faiss_ids)}
    by_chunk_id = {c.chunk_id: c for c in chunks}
    sentences: dict[str, list[tuple[int, int, int]]] = {}
    for row, fid, start, end in sentence_rows:
        sentences.setdefault(chunks[positions[fid]].chunk_id, []).append((start, end, row))
    return Snapshot(
        manifest,
        docs,
        tuple(chunks),
        faiss_ids,
        dense,
        bm25,
        positions,
        by_chunk_id,
        sentence_vectors,
        sentences,
    )


def _read_dense(gen: Path, manifest: dict[str, Any]) -> DenseIndex:
    if manifest.get("format_version") == 2:
        import faiss

        return DenseIndex.from_faiss(faiss.read_index(str(gen / DENSE_V2)))
    return DenseIndex.load(gen / DENSE)


def write_generation(
    path: Path,
    *,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    sentences: Sequence[Sequence[tuple[int, int]]],
    sentence_vectors: np.ndarray,
    lexical_texts: Sequence[str],
    manifest: dict[str, Any],
    flat_below: int = FLAT_BELOW,
) -> Path:
    """Write a new complete generation and make it the live one. Caller holds the lock.

    ``flat_below``: chunk count from which the dense index is approximate (ANN).

    Returns:
        The folder of the new generation.
    """
    path.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    try:
        previous = current_generation(path)
    except IndexCorruptError:  # a damaged CURRENT is being replaced by this build
        previous = None
    # above every generation on disk, so a folder left by a killed build is never reused
    numbers = [int(p.name[4:]) for p in path.glob("gen-*") if p.name[4:].isdigit()]
    if previous is not None and previous.name[4:].isdigit():
        numbers.append(int(previous.name[4:]))
    number = max(numbers, default=0) + 1
    final = path / f"gen-{number:06d}"
    if final.exists():  # left over by a build killed after its rename: never live, drop it
        shutil.rmtree(final)
    tmp = path / f"{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()

    ids = np.array([faiss_id_for(c.chunk_id) for c in chunks], dtype=np.int64)
    if len(set(ids.tolist())) != len(ids):
        raise IndexCorruptError("two chunks share one FAISS id; this should never happen")

    db = sqlite3.connect(tmp / DOCS_DB)
    try:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (d.doc_id, d.source, d.title, d.text, d.date_raw, d.date_iso, d.language)
                for d in documents
            ],
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (int(i), c.chunk_id, c.doc_id, c.ordinal, c.start, c.end, c.label)
                for i, c in zip(ids, chunks, strict=True)
            ],
        )
        db.executemany(
            "INSERT INTO sentences VALUES (?, ?, ?, ?)",
            [
                (row, int(fid), start, end)
                for row, (fid, start, end) in enumerate(
                    (fid, s, e) for fid, spans in zip(ids, sentences, strict=True) for s, e in spans
                )
            ],
        )
        db.commit()
    finally:
        db.close()

    dim = int(manifest["dimension"])
    (tmp / DENSE).mkdir()
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), dim)
    DenseIndex.build(matrix, ids, flat_below=flat_below).save(tmp / DENSE)
    np.save(
        tmp / SENTENCES,
        np.ascontiguousarray(sentence_vectors, dtype=np.float16),
        allow_pickle=False,
    )
    BM25Index.build(lexical_texts, ids.tolist()).save(tmp / BM25_DIR)

    full_manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "documents": len(documents),
        "chunks": len(chunks),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (tmp / MANIFEST).write_text(json.dumps(full_manifest, indent=2, ensure_ascii=False))
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    os.rename(tmp, final)
    _fsync_dir(path)
    _write_atomic(path / CURRENT, final.name + "\n")
    _prune_generations(path, keep={final.name, previous.name if previous else ""})
    log.info("wrote %s: %d documents, %d chunks", final, len(documents), len(chunks))
    return final


def _remove_stale_temporaries(path: Path) -> None:
    for entry in path.iterdir():
        if ".tmp-" in entry.name:
            log.info("removing %s, left by an interrupted build", entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _prune_generations(path: Path, *, keep: set[str]) -> None:
    """Keep the live generation and the one before it (a reader may still use it)."""
    for entry in path.iterdir():
        if entry.name.startswith("gen-") and entry.name not in keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def require_index(path: Path) -> Path:
    """The live generation of ``path``.

    Raises:
        IndexNotFoundError: nothing was ever indexed at ``path`` (no ``CURRENT``).
        IndexCorruptError: ``CURRENT`` points to a generation that is missing or has
            no manifest; the message says how to fix it.
    """
    gen = current_generation(path)
    if gen is None:
        raise IndexNotFoundError(
            f"no index at {path}; build one with `sourcier index FOLDER --index {path}`",
            code="index_not_found",
            path=str(path),
        )
    if not gen.is_dir():
        previous = _complete_generations(path)
        fallback = (
            f", or put {previous[-1].name} (an older complete generation) in {path / CURRENT}"
            if previous
            else ""
        )
        raise IndexCorruptError(
            f"the index at {path} is damaged: {CURRENT} points to {gen.name}, which is "
            f"missing; {rebuild_hint(path)}{fallback}",
            code="index_generation_missing",
            path=str(path),
            generation=gen.name,
        )
    if not (gen / MANIFEST).is_file():
        raise corrupt(path, f"{gen.name} has no {MANIFEST}")
    return gen


def _complete_generations(path: Path) -> list[Path]:
    """The generation folders with a manifest, oldest first."""
    found = [
        p
        for p in path.glob("gen-*")
        if ".tmp-" not in p.name and p.name[4:].isdigit() and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[4:]))


def disk_size(path: Path) -> int:
    """Bytes used by the live generation plus the embedding cache."""
    total = 0
    gen = current_generation(path)
    if gen is not None:
        total += sum(f.stat().st_size for f in gen.rglob("*") if f.is_file())
    cache = path / CACHE
    if cache.exists():
        total += cache.stat().st_size
    return total
