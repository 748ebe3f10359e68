"""Formats 2 and 3 of an index (one generation folder holding every part), read once
to be upgraded to segments (:mod:`sourcier.build.upgrade`); nothing else reads them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError
from ..types import Chunk, Document
from .dense import DenseIndex
from .generations import corrupt, read_manifest
from .segment import sentence_ranges
from .sentences import SentenceSpans, SentenceVectors

DOCS_DB = "docs.sqlite"
DENSE = "dense"
DENSE_V2 = "dense.faiss"
SENTENCES = "sentences.npy"


@dataclass(frozen=True)
class LegacyIndex:
    """Everything a format 2 or 3 generation holds but its BM25 files."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    dense: DenseIndex  # the chunk vectors, by FAISS id
    sentences: SentenceSpans  # chunk id -> [(start, end, row)]
    sentence_vectors: SentenceVectors


def read_legacy(gen: Path) -> LegacyIndex:
    """Read a format 2 or 3 generation whole (its BM25 files are not read: an upgrade
    builds them again from the text).

    Raises:
        IndexCorruptError: a part is missing, damaged or inconsistent.
    """
    path = gen.parent
    manifest = read_manifest(gen)
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
        sentence_vectors = np.load(gen / SENTENCES, allow_pickle=False)
    except IndexCorruptError as err:
        if err.code is not None:
            raise
        raise corrupt(path, f"{gen.name}: {err}") from err
    except (sqlite3.Error, KeyError, RuntimeError, OSError, ValueError) as err:
        raise corrupt(path, f"{gen.name}: {err}") from err
    if len(dense) != len(chunks) or len(sentence_vectors) != len(sentence_rows):
        raise corrupt(
            path,
            f"{gen.name} is inconsistent: {len(chunks)} chunks, {len(dense)} vectors, "
            f"{len(sentence_vectors)} sentence vectors for {len(sentence_rows)} sentences",
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
    return LegacyIndex(
        manifest=manifest,
        documents=docs,
        chunks=tuple(chunks),
        dense=dense,
        sentences=sentences,
        sentence_vectors=SentenceVectors([(sentence_vectors, None)], dim),
    )
