"""Indexes of formats 2 and 3, upgraded once to format 4 (segments).

The first write to such an index upgrades it (:func:`upgrade_locked`, called by the
build), or ``sourcier index --upgrade`` does (:func:`upgrade`). Documents, chunk
boundaries and vectors are carried over, so nothing is embedded again; BM25 is built
again from the text. Reading an old index without upgrading it is refused with a line
that says how (:func:`sourcier.storage.generations.require_current_format`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..settings import Settings
from ..storage import generations
from ..storage.legacy import LegacyIndex, read_legacy
from ..storage.segment import faiss_id_for
from .chunk import Passage, passage_text
from .plan import EXCLUDED, excluded_sources
from .write import write

log = logging.getLogger(__name__)


def upgrade(path: str | Path) -> bool:
    """Upgrade the index at ``path`` to the current format, if it is older.

    Returns:
        Whether it was upgraded (``False``: it already had the current format).

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexCorruptError: the index is damaged.
    """
    path = Path(path)
    with generations.writer_lock(path):
        generations.remove_stale_temporaries(path)
        generations.require_index(path)
        return upgrade_locked(path)


def upgrade_locked(path: Path) -> bool:
    """:func:`upgrade`, for a caller that holds the writer lock already."""
    gen = generations.current_generation(path)
    if gen is None:
        return False
    manifest = generations.read_manifest(gen)
    if manifest["format_version"] == generations.FORMAT_VERSION:
        return False
    log.warning(
        "upgrading the index at %s from format %s to %s (one time)",
        path,
        manifest["format_version"],
        generations.FORMAT_VERSION,
    )
    legacy = read_legacy(gen)
    passages, vectors, sentence_vectors = _carried_over(legacy)
    dimension = int(manifest.get("dimension") or legacy.dense.dim)
    entry = write(
        path,
        list(legacy.documents.values()),
        passages,
        vectors,
        sentence_vectors,
        dimension=dimension,
    )
    recorded = manifest.get("settings", {})
    generations.publish(
        path,
        {
            "model": manifest.get("model"),
            "dimension": dimension,
            "query_prefix": manifest.get("query_prefix"),
            "passage_prefix": manifest.get("passage_prefix"),
            "settings": recorded,
            EXCLUDED: sorted(excluded_sources(manifest)),
            "documents": entry["documents"],
            "chunks": entry["chunks"],
            "segments": [entry],
        },
    )
    return True


def _carried_over(legacy: LegacyIndex) -> tuple[list[Passage], np.ndarray, np.ndarray]:
    """The old chunks as passages (document by source, chunk by ordinal), with their
    vectors and their sentences' vectors as the old index stored them."""
    recorded = legacy.manifest.get("settings", {})
    embed_title = Settings().with_(recorded).index.embed_title if recorded else True
    by_doc: dict[str, list] = {}
    for chunk in legacy.chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    passages: list[Passage] = []
    rows: list[int] = []
    for doc in sorted(legacy.documents.values(), key=lambda d: d.source):
        for chunk in sorted(by_doc.get(doc.doc_id, ()), key=lambda c: c.ordinal):
            sentences = legacy.sentences.get(chunk.chunk_id) or []
            text = passage_text(chunk, doc.title, embed_title=embed_title)
            passages.append(Passage(chunk, doc.title, tuple((s, e) for s, e, _ in sentences), text))
            rows.extend(row for _, _, row in sentences)
    dim = legacy.dense.dim
    vectors = (
        np.stack([legacy.dense.vector(faiss_id_for(p.chunk.chunk_id)) for p in passages])
        if passages
        else np.zeros((0, dim), np.float32)
    )
    return passages, vectors.astype(np.float32), legacy.sentence_vectors[rows]
