"""One immutable segment of an index: a batch of documents with all their parts.

A segment folder (``segments/seg-NNNNNN/``) holds, for the documents one build (or one
merge) wrote:

- ``docs.sqlite``: the documents (cleaned text) and their chunks (offsets, labels, FAISS
  ids, and the run of sentence rows each chunk reads);
- ``dense/``: the chunk vectors, written by the segment's vector store
  (:mod:`sourcier.storage.vectors`; :class:`~sourcier.storage.dense.DenseIndex` by
  default);
- ``sentences.npy`` + ``sentence_scales.npy``: one vector per sentence in int8 with a
  float32 scale per row (4 times smaller than float32; cosines move by about 1e-3), and
  ``sentence_spans.npy``: each row's offsets in its document. A sentence that two
  consecutive chunks of a document share (the chunk overlap) is one row, read by both:
  the first chunk's vector is kept (see :func:`share_sentences`);
- ``bm25/``: the postings (:class:`~sourcier.bm25_segments.BM25Segment`), never weights:
  BM25 weights come from the statistics of all live chunks, across segments;
- ``segment.json``: counts, written last, so a folder without it is not a segment.

It is written in a temporary folder and renamed into place; nothing changes it after.
Which segments make the index, and which of their documents are deleted, is the
generation manifest's business (:mod:`sourcier.store`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError
from ..files import fsync_dir, fsync_files
from ..types import Chunk, Document
from .bm25 import BM25Segment
from .dense import FLAT_BELOW
from .vectors import DEFAULT_STORE, VECTOR_STORES

SEGMENTS = "segments"
META = "segment.json"
DOCS_DB = "docs.sqlite"
DENSE = "dense"
SENTENCES = "sentences.npy"
SCALES = "sentence_scales.npy"
SPANS = "sentence_spans.npy"
BM25_DIR = "bm25"
FORMAT = "sourcier-segment"
VERSION = 3
# Version 1 kept a sentences table (row, faiss_id, start, end) and one row per chunk's
# sentence, overlap included; version 2 had no page starts and headings
# (documents.pages, documents.headings). Both are
# still read (their documents have no pages), and a merge rewrites them as version 3.
READABLE = (1, 2, 3)

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, text BLOB NOT NULL,
    date_raw TEXT, date_iso TEXT, language TEXT NOT NULL, chunks INTEGER NOT NULL,
    pages TEXT, headings TEXT
);
CREATE INDEX documents_source ON documents(source);
CREATE TABLE chunks (
    faiss_id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, label TEXT NOT NULL,
    position INTEGER NOT NULL, sentence_first INTEGER NOT NULL, sentence_count INTEGER NOT NULL
);
"""
# No index on chunks(doc_id) or chunk_id: a segment is read whole, and a writer reads
# the documents table only (its chunk counts); ids are unique by construction (checked
# when written). Those two indexes were a tenth of the segment's bytes. Document text is
# stored zlib-compressed (UTF-8), which halves it for French prose; a writer never reads
# it, a reader decompresses it once on opening.

ChunkRow = tuple[int, str, str, int, int, int, str]
"""``(faiss_id, chunk_id, doc_id, ordinal, start, end, label)``, as stored."""


def faiss_id_for(chunk_id: str) -> int:
    """A stable, positive int64 FAISS id derived from the chunk id."""
    return int(chunk_id[:15], 16)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sentence vectors as int8 codes and one float32 scale per row (``row ≈ codes *
    scale``)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        v = v.reshape(len(v), -1) if len(v) else v.reshape(0, 0)
    peak = np.abs(v).max(axis=1) if v.size else np.zeros(len(v), dtype=np.float32)
    scales = (peak / 127.0).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.rint(v / safe[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def share_sentences(
    doc_ids: Sequence[str], spans: Sequence[Sequence[tuple[int, int]] | np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence rows with the chunk overlap stored once.

    A chunk's leading sentences that are the trailing sentences of the chunk just before
    it (same document) read that chunk's rows; its other sentences get new rows after
    them, so each chunk's rows stay one run. The contextual vector kept for a shared
    sentence is the earlier chunk's. (Measured with e5-small: the two vectors of an
    overlap sentence have a cosine of .935 on average; keeping the first left the seed
    set's figures unchanged and PIAF-sample containment at .681 against .677.)

    Args:
        doc_ids: each chunk's document, in segment order.
        spans: each chunk's sentence spans, in the same order.

    Returns:
        ``(first, count, taken)``: per chunk its first row and its number of sentences;
        for each stored row, its index in ``spans`` flattened (where its vector is).
    """
    first = np.zeros(len(spans), dtype=np.int64)
    count = np.zeros(len(spans), dtype=np.int64)
    taken: list[int] = []
    flat = 0
    previous: Sequence[tuple[int, int]] = ()
    for k, (doc_id, own) in enumerate(zip(doc_ids, spans, strict=True)):
        own = [(int(s), int(e)) for s, e in own]
        shared = 0
        if k and doc_ids[k - 1] == doc_id:
            shared = next(
                (m for m in range(min(len(own), len(previous)), 0, -1) if own[:m] == previous[-m:]),
                0,
            )
        first[k] = len(taken) - shared
        count[k] = len(own)
        taken.extend(range(flat + shared, flat + len(own)))
        flat += len(own)
        previous = own
    return first, count, np.array(taken, dtype=np.int64)


@dataclass(frozen=True)
class SegmentData:
    """What a new segment holds, ready to write (from a build or a merge).

    ``sentence_codes`` / ``sentence_scales`` are the int8 sentence vectors in the order of
    ``sentence_spans`` flattened (chunk after chunk). Only the chunks' ids, offsets and
    labels are written (their text is the document's), so a merge passes chunks without
    their text.
    """

    documents: Sequence[Document]
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    sentence_spans: Sequence[Sequence[tuple[int, int]] | np.ndarray]
    sentence_codes: np.ndarray
    sentence_scales: np.ndarray
    bm25: BM25Segment


def next_name(path: Path) -> str:
    """A segment name above every one on disk, so a killed build's leftover is never reused."""
    folder = path / SEGMENTS
    numbers = [
        int(p.name[4:].split(".")[0])
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.name.startswith("seg-") and p.name[4:].split(".")[0].isdigit()
    ]
    return f"seg-{max(numbers, default=0) + 1:06d}"


def write_segment(
    path: Path,
    data: SegmentData,
    *,
    dimension: int,
    flat_below: int = FLAT_BELOW,
    vector_store: str = DEFAULT_STORE,
) -> dict[str, Any]:
    """Write ``data`` as a new segment of the index at ``path``; return its manifest
    entry (name, documents, chunks, no deletions yet).

    The caller holds the writer lock. The segment is complete (and fsynced) once its
    name exists; a folder with ``.tmp-`` in its name is a build that died.
    """
    folder = path / SEGMENTS
    folder.mkdir(parents=True, exist_ok=True)
    name = next_name(path)
    tmp = folder / f"{name}.tmp-{os.getpid()}"
    tmp.mkdir()
    chunks = list(data.chunks)
    ids = np.array([faiss_id_for(c.chunk_id) for c in chunks], dtype=np.int64)
    if len(set(ids.tolist())) != len(ids):
        raise IndexCorruptError("two chunks share one FAISS id; this should never happen")
    n_sentences = sum(len(s) for s in data.sentence_spans)
    if len(data.sentence_codes) != n_sentences or len(data.sentence_scales) != n_sentences:
        raise ValueError("one sentence vector per sentence span is needed")

    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    first, count, taken = share_sentences([c.doc_id for c in chunks], data.sentence_spans)
    flat_spans = np.array(
        [span for spans in data.sentence_spans for span in spans], dtype=np.int32
    ).reshape(-1, 2)
    db = sqlite3.connect(tmp / DOCS_DB)
    try:
        db.executescript(_SCHEMA)
        # generators, not lists: a merge of a million chunks writes millions of rows
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    d.doc_id,
                    d.source,
                    d.title,
                    zlib.compress(d.text.encode("utf-8"), 6),
                    d.date_raw,
                    d.date_iso,
                    d.language,
                    per_doc.get(d.doc_id, 0),
                    ",".join(map(str, d.pages)) if d.pages else None,
                    ",".join(f"{s}:{e}:{lv}" for s, e, lv in d.headings) if d.headings else None,
                )
                for d in data.documents
            ),
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (int(i), c.chunk_id, c.doc_id, c.ordinal, c.start, c.end, c.label, n, f, k)
                for n, (i, c, f, k) in enumerate(
                    zip(ids, chunks, first.tolist(), count.tolist(), strict=True)
                )
            ),
        )
        db.commit()
    finally:
        db.close()

    (tmp / DENSE).mkdir()
    matrix = np.asarray(data.vectors, dtype=np.float32).reshape(len(chunks), dimension)
    store = VECTOR_STORES.get(vector_store)
    store.build(matrix, ids, flat_below=flat_below).save(tmp / DENSE)
    codes = np.asarray(data.sentence_codes, dtype=np.int8).reshape(-1, dimension)
    np.save(tmp / SENTENCES, np.ascontiguousarray(codes[taken]), allow_pickle=False)
    scales = np.asarray(data.sentence_scales, dtype=np.float32)
    np.save(tmp / SCALES, np.ascontiguousarray(scales[taken]), allow_pickle=False)
    np.save(tmp / SPANS, np.ascontiguousarray(flat_spans[taken]), allow_pickle=False)
    data.bm25.save(tmp / BM25_DIR)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "documents": len(data.documents),
        "chunks": len(chunks),
        "sentences": len(taken),
        "dimension": dimension,
    }
    if vector_store != DEFAULT_STORE:  # the default is not recorded: older segments have none
        meta["vector_store"] = vector_store
    (tmp / META).write_text(json.dumps(meta), encoding="utf-8")
    fsync_files(tmp)
    os.rename(tmp, folder / name)
    fsync_dir(folder)
    return {
        "name": name,
        "documents": len(data.documents),
        "chunks": len(chunks),
        "deleted": [],
        "deleted_chunks": 0,
    }


def catalogue(path: Path, name: str) -> list[tuple[str, str, int]]:
    """``(doc_id, source, chunk count)`` of every document a segment holds (no text read).

    Raises:
        IndexCorruptError: the segment is missing or unreadable.
    """
    return _documents_where(path, name, None, [])


def find(
    path: Path, name: str, doc_ids: Sequence[str], sources: Sequence[str]
) -> list[tuple[str, str, int]]:
    """``(doc_id, source, chunk count)`` of the documents of a segment that have one of
    these ids or sources: indexed lookups, so an update of a few files reads a few rows.

    Raises:
        IndexCorruptError: the segment is missing or unreadable.
    """
    found = {
        row[0]: row
        for column, values in (("doc_id", doc_ids), ("source", sources))
        for i in range(0, len(values), 500)
        for row in _documents_where(path, name, column, list(values[i : i + 500]))
    }
    return list(found.values())


def _documents_where(
    path: Path, name: str, column: str | None, values: list[str]
) -> list[tuple[str, str, int]]:
    """``(doc_id, source, chunks)`` rows of a segment's documents: all of them
    (``column`` None), or those whose ``column`` is one of ``values``."""
    db_path = path / SEGMENTS / name / DOCS_DB
    if not db_path.is_file():
        raise IndexCorruptError(f"segment {name} is missing")
    if column is not None and not values:
        return []
    sql = "SELECT doc_id, source, chunks FROM documents"
    if column is not None:
        sql += f" WHERE {column} IN ({','.join('?' * len(values))})"
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return [(str(d), str(s), int(n)) for d, s, n in db.execute(sql, values)]
        finally:
            db.close()
    except sqlite3.Error as err:
        raise IndexCorruptError(f"segment {name}: {err}") from err


def _read_sentences(db: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sentences table as arrays ``(faiss_id, start, end)``, in row order, read in
    blocks so that no list of millions of tuples is ever built."""
    fids, starts, ends = [], [], []
    cursor = db.execute('SELECT faiss_id, start, "end" FROM sentences ORDER BY row')
    while True:
        block = cursor.fetchmany(65536)
        if not block:
            break
        arr = np.array(block, dtype=np.int64).reshape(-1, 3)
        fids.append(arr[:, 0])
        starts.append(arr[:, 1].astype(np.int32))
        ends.append(arr[:, 2].astype(np.int32))
    if not fids:
        empty = np.zeros(0, dtype=np.int32)
        return np.zeros(0, dtype=np.int64), empty, empty
    return np.concatenate(fids), np.concatenate(starts), np.concatenate(ends)


def sentence_ranges(
    sentence_fids: np.ndarray, chunk_fids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each chunk (in ``chunk_fids`` order), its first sentence row and its count.

    Each chunk's sentences are stored together, so its rows are one run.

    Raises:
        ValueError: a sentence names no chunk, or a chunk's sentences are not one run.
    """
    order = np.argsort(chunk_fids, kind="stable")
    at = np.searchsorted(chunk_fids[order], sentence_fids)
    at[at >= len(order)] = 0
    if len(sentence_fids) and (not len(order) or (chunk_fids[order][at] != sentence_fids).any()):
        raise ValueError("a sentence belongs to no chunk of the segment")
    position = order[at] if len(sentence_fids) else np.zeros(0, dtype=np.int64)
    count = np.bincount(position, minlength=len(chunk_fids)).astype(np.int32)
    first = np.full(len(chunk_fids), len(sentence_fids), dtype=np.int64)
    rows = np.arange(len(sentence_fids), dtype=np.int64)
    np.minimum.at(first, position, rows)
    first[count == 0] = 0
    if len(rows) and ((rows - first[position]) >= count[position]).any():
        raise ValueError("a chunk's sentences are not stored together")
    return first, count


def _text(stored: bytes) -> str:
    return zlib.decompress(stored).decode("utf-8")


def _documents(db: sqlite3.Connection, version: int) -> dict[str, Document]:
    layout = ", pages, headings" if version >= 3 else ", NULL, NULL"
    return {
        row[0]: Document(
            row[0],
            row[1],
            row[2],
            _text(row[3]),
            row[4],
            row[5],
            row[6],
            _pages(row[7]),
            _headings(row[8]),
        )
        for row in db.execute(
            "SELECT doc_id, source, title, text, date_raw, date_iso, language"
            f"{layout} FROM documents ORDER BY source"
        )
    }


def _pages(stored: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in stored.split(",")) if stored else ()


def _headings(stored: str | None) -> tuple[tuple[int, int, int], ...]:
    if not stored:
        return ()
    spans = (part.split(":") for part in stored.split(","))
    return tuple((int(s), int(e), int(level)) for s, e, level in spans)


def _check_rows(db: sqlite3.Connection) -> None:
    """Check a segment's database without reading its texts: every page of it is
    readable and well formed (SQLite's quick check)."""
    verdict = db.execute("PRAGMA quick_check").fetchone()
    if verdict is None or verdict[0] != "ok":
        raise ValueError(f"its database is damaged: {verdict[0] if verdict else 'no answer'}")


class Segment:
    """A segment opened for reading: documents, chunk rows, dense, BM25, sentence vectors.

    Sentence vectors stay on disk (memory-mapped int8) and are decoded per row read.
    """

    def __init__(self, path: Path, name: str, *, texts: bool = True) -> None:
        """Open ``segments/name`` of the index at ``path``.

        Args:
            path: the index folder.
            name: the segment's name.
            texts: read the documents' texts; ``False`` (a writer checking that every
                part opens) leaves ``documents`` empty and only checks that their rows
                are readable.

        Raises:
            IndexCorruptError: a part is missing, damaged or inconsistent.
        """
        folder = path / SEGMENTS / name
        self.name = name
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("version") not in READABLE:
                raise ValueError(f"not a segment of this format ({meta.get('format')!r})")
            self.version = int(meta["version"])
            db = sqlite3.connect(f"file:{folder / DOCS_DB}?mode=ro", uri=True)
            try:
                self.documents = _documents(db, self.version) if texts else {}
                if not texts:
                    _check_rows(db)
                if self.version == 1:
                    self.chunk_rows: list[ChunkRow] = db.execute(
                        'SELECT faiss_id, chunk_id, doc_id, ordinal, start, "end", label '
                        "FROM chunks ORDER BY position"
                    ).fetchall()
                    fids, self.sentence_starts, self.sentence_ends = _read_sentences(db)
                    self.sentence_first, self.sentence_count = sentence_ranges(
                        fids, np.array([r[0] for r in self.chunk_rows], dtype=np.int64)
                    )
                else:
                    rows = db.execute(
                        'SELECT faiss_id, chunk_id, doc_id, ordinal, start, "end", label, '
                        "sentence_first, sentence_count FROM chunks ORDER BY position"
                    ).fetchall()
                    self.chunk_rows = [r[:7] for r in rows]
                    runs = np.array([r[7:] for r in rows], dtype=np.int64).reshape(-1, 2)
                    spans = np.load(folder / SPANS, allow_pickle=False).reshape(-1, 2)
                    if len(runs) and ((runs < 0).any() or (runs.sum(axis=1) > len(spans)).any()):
                        raise ValueError("a chunk reads sentence rows the segment does not hold")
                    self.sentence_starts = np.ascontiguousarray(spans[:, 0], dtype=np.int32)
                    self.sentence_ends = np.ascontiguousarray(spans[:, 1], dtype=np.int32)
                    self.sentence_first = runs[:, 0]
                    self.sentence_count = runs[:, 1].astype(np.int32)
            finally:
                db.close()
            self.vector_store = str(meta.get("vector_store", DEFAULT_STORE))
            self.dense = VECTOR_STORES.get(self.vector_store).load(folder / DENSE)
            self.bm25 = BM25Segment.load(folder / BM25_DIR)
            self.codes = np.load(folder / SENTENCES, mmap_mode="r", allow_pickle=False)
            self.scales = np.load(folder / SCALES, allow_pickle=False)
        except IndexCorruptError as err:
            raise IndexCorruptError(f"segment {name}: {err}") from err
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            RuntimeError,
            sqlite3.Error,
            zlib.error,
        ) as err:
            raise IndexCorruptError(f"segment {name}: {err}") from err
        n = len(self.chunk_rows)
        if (
            meta.get("chunks") != n
            or len(self.dense) != n
            or len(self.bm25) != n
            or len(self.codes) != len(self.sentence_starts)
            or len(self.scales) != len(self.sentence_starts)
        ):
            raise IndexCorruptError(
                f"segment {name} is inconsistent: {n} chunks, {len(self.dense)} vectors, "
                f"{len(self.bm25)} BM25 entries, {len(self.codes)} sentence vectors"
            )
        order = [faiss_id_for(r[1]) for r in self.chunk_rows]
        if [int(r[0]) for r in self.chunk_rows] != order or [
            int(i) for i in self.bm25.ids
        ] != order:
            raise IndexCorruptError(f"segment {name} is inconsistent: its parts list other chunks")

    def __len__(self) -> int:
        return len(self.chunk_rows)

    @property
    def sentence_rows(self) -> list[tuple[int, int, int, int]]:
        """``(row, faiss_id, start, end)`` of every chunk's sentences, chunk after chunk
        (a row two chunks share comes once for each)."""
        rows: list[tuple[int, int, int, int]] = []
        for position, chunk in enumerate(self.chunk_rows):
            first = int(self.sentence_first[position])
            for row in range(first, first + int(self.sentence_count[position])):
                rows.append(
                    (row, chunk[0], int(self.sentence_starts[row]), int(self.sentence_ends[row]))
                )
        return rows

    def chunk_vectors(self, positions: np.ndarray) -> np.ndarray:
        """The float32 vectors of the chunks at these positions (in ``chunk_rows`` order)."""
        ids = np.array([self.chunk_rows[int(p)][0] for p in positions], dtype=np.int64)
        return self.dense.rows(np.searchsorted(self.dense.ids, ids))
