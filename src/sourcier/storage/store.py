"""The index on disk: a manifest of immutable segments, published atomically.

Layout of an index folder (format 4)::

    CURRENT             name of the live generation (replaced atomically)
    LOCK                held by a writer (fcntl) while it builds
    embeddings.sqlite   vectors of a build not yet published (a journal)
    gen-000007/
        manifest.json   format version, model, settings, and the segments that make the
                        index, each with the documents deleted from it (tombstones)
    segments/
        seg-000012/     one immutable segment (:mod:`sourcier.segment`): documents,
                        chunks, sentences, dense vectors, BM25 postings

A build writes only its new segment, then a new manifest that lists the old segments
(with new tombstones for removed or edited documents) plus the new one, and switches
``CURRENT`` to it. Merges (:mod:`sourcier.merge`) write one segment from several and
publish a manifest without them. A reader loads the segments one manifest names, so it
never sees a half-written index; a writer killed at any moment leaves the previous
manifest and all its segments in place. Files no kept manifest names are removed by
the next writer.

Formats 2 and 3 (one generation folder holding everything) are still read; the first
write to such an index rewrites it as one segment.
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import BM25Index
from ..errors import IndexCorruptError, IndexNotFoundError
from ..files import fsync_dir, write_atomic
from ..types import Chunk, Document
from .bm25 import SegmentedBM25
from .dense import DenseIndex, DenseSegments
from .segment import (
    SEGMENTS,
    Segment,
    SentenceSpans,
    SentenceVectors,
    faiss_id_for,
    sentence_ranges,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 4
READABLE_FORMATS = (2, 3, 4)
CURRENT = "CURRENT"
LOCK = "LOCK"
CACHE = "embeddings.sqlite"
MANIFEST = "manifest.json"
# the parts of a format 2 or 3 generation, which held everything in its own folder
DOCS_DB = "docs.sqlite"
DENSE = "dense"
DENSE_V2 = "dense.faiss"
SENTENCES = "sentences.npy"
BM25_DIR = "bm25"


__all__ = ["faiss_id_for"]  # re-exported: callers know ids through the store


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

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Snapshot:
    """Everything one generation holds, in memory (sentence vectors stay on disk).

    ``dense``, ``bm25`` and ``sentence_vectors`` answer across all segments and skip
    deleted chunks; ``documents`` and ``chunks`` hold only live ones.
    """

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    faiss_ids: np.ndarray  # int64, aligned with chunks
    dense: DenseSegments
    bm25: SegmentedBM25 | BM25Index
    positions: dict[int, int]  # FAISS id -> position in chunks
    by_chunk_id: dict[str, Chunk]
    sentence_vectors: SentenceVectors  # global row -> float32 vector
    sentences: Mapping[str, list[tuple[int, int, int]]]  # chunk_id -> [(start, end, row)]
    segments: dict[str, Segment]  # the loaded segments by name (reused by a reload)


def read_manifest(gen: Path) -> dict[str, Any]:
    """The manifest of one generation, checked for a format this sourcier reads."""
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
    if manifest["format_version"] >= 4 and not _segments_listed(manifest):
        raise corrupt(path, f"{gen.name}/{MANIFEST} lists no valid segments")
    return manifest


def _segments_listed(manifest: dict[str, Any]) -> bool:
    entries = manifest.get("segments")
    return isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and e["name"].startswith("seg-")
        and "/" not in e["name"]
        and isinstance(e.get("deleted", []), list)
        for e in entries
    )


def read_snapshot(gen: Path, *, loaded: dict[str, Segment] | None = None) -> Snapshot:
    """Load one generation; raise IndexCorruptError if any part is missing or damaged.

    Args:
        gen: the generation folder.
        loaded: segments already in memory (a previous snapshot's), reused by name:
            segments never change, so a reload reads only the new ones.
    """
    path = gen.parent
    manifest = read_manifest(gen)
    if manifest["format_version"] < 4:
        return _read_legacy(gen, manifest)
    loaded = loaded or {}
    segments: dict[str, Segment] = {}
    deleted: list[set[str]] = []
    try:
        for entry in manifest["segments"]:
            name = entry["name"]
            segments[name] = loaded.get(name) or Segment(path, name)
            deleted.append({str(d) for d in entry.get("deleted", [])})
    except IndexCorruptError as err:
        raise corrupt(path, f"{gen.name}: {err}") from err
    return _assemble(manifest, list(segments.values()), deleted, segments)


def open_live(path: Path, *, loaded: dict[str, Segment] | None = None) -> Snapshot:
    """The live generation of ``path``, loaded.

    A writer removes the segments only two generations back, so a reader that read an
    old ``CURRENT`` just before two writes finished can find a segment gone: it then
    reads the new ``CURRENT`` again (up to three times) instead of failing.
    """
    for attempt in range(3):
        gen = require_index(path)
        try:
            return read_snapshot(gen, loaded=loaded)
        except IndexCorruptError:
            if attempt == 2 or current_generation(path) == gen:
                raise
            log.info("%s changed while it was read; reading it again", path)
    raise AssertionError("unreachable")


def _assemble(
    manifest: dict[str, Any],
    parts: list[Segment],
    deleted: list[set[str]],
    by_name: dict[str, Segment],
) -> Snapshot:
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    firsts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    dense_parts: list[tuple[DenseIndex, np.ndarray]] = []
    bm25_dead: list[set[int]] = []
    vector_parts: list[tuple[np.ndarray, np.ndarray | None]] = []
    row_offset = 0
    for segment, dead_docs in zip(parts, deleted, strict=True):
        docs = segment.documents
        documents.update({d: doc for d, doc in docs.items() if d not in dead_docs})
        dead_ids: list[int] = []
        live = np.ones(len(segment), dtype=bool)
        for position, (fid, chunk_id, doc_id, ordinal, start, end, label) in enumerate(
            segment.chunk_rows
        ):
            if doc_id in dead_docs:
                dead_ids.append(int(fid))
                live[position] = False
                continue
            doc = docs[doc_id]
            text = doc.text[start:end]
            chunks.append(Chunk(chunk_id, doc.doc_id, ordinal, start, end, text, label))
        firsts.append(segment.sentence_first[live] + row_offset)
        counts.append(segment.sentence_count[live])
        row_offset += len(segment.codes)
        dead = np.array(sorted(dead_ids), dtype=np.int64)
        dense_parts.append((segment.dense, dead))
        bm25_dead.append(set(dead_ids))
        vector_parts.append((segment.codes, segment.scales))
    faiss_ids = np.array([faiss_id_for(c.chunk_id) for c in chunks], dtype=np.int64)
    positions = {int(f): i for i, f in enumerate(faiss_ids)}
    if len(positions) != len(chunks):
        raise IndexCorruptError("a chunk is live in two segments; rebuild the index")
    dim = int(manifest.get("dimension", 0))
    chunk_tuple = tuple(chunks)
    sentences = SentenceSpans(
        chunk_tuple,
        positions,
        _joined(firsts, np.int64),
        _joined(counts, np.int32),
        _joined([s.sentence_starts for s in parts], np.int32),
        _joined([s.sentence_ends for s in parts], np.int32),
    )
    return Snapshot(
        manifest=manifest,
        documents=dict(sorted(documents.items(), key=lambda kv: kv[1].source)),
        chunks=chunk_tuple,
        faiss_ids=faiss_ids,
        dense=DenseSegments(dense_parts),
        bm25=SegmentedBM25([s.bm25 for s in parts], deleted=bm25_dead),
        positions=positions,
        by_chunk_id={c.chunk_id: c for c in chunks},
        sentence_vectors=SentenceVectors(vector_parts, dim),
        sentences=sentences,
        segments=by_name,
    )


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _read_legacy(gen: Path, manifest: dict[str, Any]) -> Snapshot:
    """A format 2 or 3 generation: one folder holding every part."""
    path = gen.parent
    try:
        db = sqlite3.connect(f"file:{gen / DOCS_DB}?mode=ro", uri=True)
        try:
            docs = {
                row[0]: Document(*row)
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
        if manifest.get("format_version") == 2:
            import faiss

            dense = DenseIndex.from_faiss(faiss.read_index(str(gen / DENSE_V2)))
        else:
            dense = DenseIndex.load(gen / DENSE)
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
    try:
        first, count = sentence_ranges(
            np.array([r[1] for r in sentence_rows], dtype=np.int64), faiss_ids
        )
    except ValueError as err:
        raise corrupt(path, f"{gen.name}: {err}") from err
    sentences = SentenceSpans(
        tuple(chunks),
        positions,
        first,
        count,
        np.array([r[2] for r in sentence_rows], dtype=np.int32),
        np.array([r[3] for r in sentence_rows], dtype=np.int32),
    )
    dim = int(manifest.get("dimension", 0))
    return Snapshot(
        manifest=manifest,
        documents=docs,
        chunks=tuple(chunks),
        faiss_ids=faiss_ids,
        dense=DenseSegments([(dense, np.zeros(0, dtype=np.int64))]),
        bm25=bm25,
        positions=positions,
        by_chunk_id={c.chunk_id: c for c in chunks},
        sentence_vectors=SentenceVectors([(sentence_vectors, None)], dim),
        sentences=sentences,
        segments={},
    )


def live_segments(path: Path) -> list[Path]:
    """The folders of the segments the live generation lists, oldest first."""
    gen = require_index(path)
    return [path / SEGMENTS / e["name"] for e in read_manifest(gen).get("segments", ())]


def publish(path: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as a new generation and make it the live one. Caller holds the lock.

    The segments it lists must be written already. Generations other than the new and
    the previous one are removed afterwards, with every segment neither of them lists.

    Returns:
        The folder of the new generation.
    """
    path.mkdir(parents=True, exist_ok=True)
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
    full_manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(full_manifest, indent=1, ensure_ascii=False))
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, final)
    fsync_dir(path)
    write_atomic(path / CURRENT, final.name + "\n")
    _prune_generations(path, keep={final.name, previous.name if previous else ""})
    log.info(
        "published %s: %d documents, %d chunks in %d segments",
        final.name,
        manifest.get("documents", 0),
        manifest.get("chunks", 0),
        len(manifest.get("segments", ())),
    )
    return final


def remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed writer left behind (caller holds the lock): half-written
    folders, and generations and segments that neither the live generation nor the one
    before it lists (a writer killed before its cleanup)."""
    if path.is_dir():
        _remove_stale_temporaries(path)
    if (path / SEGMENTS).is_dir():
        _remove_stale_temporaries(path / SEGMENTS)
    try:
        live = current_generation(path)
    except IndexCorruptError:
        return  # the build that repairs it cleans up when it publishes
    if live is None or not (live / MANIFEST).is_file():
        return
    older = [g for g in _complete_generations(path) if g.name < live.name]
    _prune(path, keep={live.name, older[-1].name if older else ""})


def _remove_stale_temporaries(path: Path) -> None:
    for entry in path.iterdir():
        if ".tmp-" in entry.name:
            log.info("removing %s, left by an interrupted build", entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _prune_generations(path: Path, *, keep: set[str]) -> None:
    """Keep the live generation and the one before it (a reader may still use it), and
    the segments they list; remove every other generation and segment.

    The last step of :func:`publish`, kept as its own function so that the crash tests
    can kill a writer exactly there; the cleanup at a writer's start calls
    :func:`_prune` itself."""
    _prune(path, keep=keep)


def _prune(path: Path, *, keep: set[str]) -> None:
    used: set[str] = set()
    for name in keep:
        if not name:
            continue
        try:
            manifest = json.loads((path / name / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in manifest.get("segments", ()) if isinstance(manifest, dict) else ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                used.add(entry["name"])
    for entry in path.iterdir():
        if entry.name.startswith("gen-") and entry.name not in keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    folder = path / SEGMENTS
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.startswith("seg-") and ".tmp-" not in entry.name and entry.name not in used:
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
    """Bytes used by the live generation, its segments and the embedding cache."""
    total = 0
    gen = current_generation(path)
    if gen is not None:
        total += sum(f.stat().st_size for f in gen.rglob("*") if f.is_file())
        try:
            names = [e["name"] for e in read_manifest(gen).get("segments", ())]
        except IndexCorruptError:
            names = []
        for name in names:
            folder = path / SEGMENTS / name
            total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    cache = path / CACHE
    if cache.exists():
        total += cache.stat().st_size
    return total
