"""The dense index: exact below a size, IVF-HNSW-SQ8 above it, filters that never lose hits.

Fast: synthetic clustered unit vectors (like real embeddings, unlike uniform noise) and
the hashing-embedder index. The recall and latency at 100k–1M chunks are measured by
benchmarks/dense_ann.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sourcier import load_index, search, upgrade
from sourcier.errors import IndexCorruptError, IndexMismatchError
from sourcier.storage import generations, legacy
from sourcier.storage.dense import DenseIndex, DenseSearch


def _clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ids(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).choice(2**60, n, replace=False).astype(np.int64)


def _brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, allowed=None) -> list[int]:
    scores = x @ q
    order = np.argsort(-scores, kind="stable")
    keep = [int(ids[i]) for i in order if allowed is None or ids[i] in allowed]
    return keep[:k]


def test_flat_is_exact_and_returns_cosines() -> None:
    x, ids = _clustered(2000), _ids(2000)
    dense = DenseIndex.build(x, ids)
    assert dense.kind == "flat" and len(dense) == 2000 and dense.dim == 64
    stored = x.astype(np.float16).astype(np.float32)  # what it keeps (float16 on disk)
    assert np.abs(stored - x).max() < 1e-3
    for q in x[:20]:
        found = dense.search(q, 10)
        assert list(found) == _brute(stored, ids, q, 10)
        best = next(iter(found))
        assert found[best] == pytest.approx(float(dense.vector(best) @ q), abs=1e-5)


def test_ann_recall_against_exact_search() -> None:
    x, ids = _clustered(30_000), _ids(30_000)
    ann = DenseIndex.build(x, ids, flat_below=10_000)
    assert ann.kind == "ivf-hnsw-sq8" and ann.nlist >= 64
    assert ann.vectors.dtype == np.float16  # 2 bytes a dimension on disk, for re-scoring
    rng = np.random.default_rng(7)
    queries = x[rng.choice(len(x), 50, replace=False)] + 0.1 * rng.standard_normal((50, 64))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    recall = np.mean(
        [len(set(ann.search(q, 10)) & set(_brute(x, ids, q, 10))) / 10 for q in queries]
    )
    assert recall >= 0.95
    # the scores are re-scored cosines (float16 vectors), not 8-bit approximations
    q = queries[0]
    position = {int(i): row for row, i in enumerate(ids)}
    for i, s in ann.search(q, 5).items():
        assert s == pytest.approx(float(x[position[i]] @ q), abs=2e-3)


def test_filters_never_lose_hits_on_an_ann_index() -> None:
    x, ids = _clustered(30_000), _ids(30_000)
    ann = DenseIndex.build(x, ids, flat_below=10_000)
    q = x[0]
    # a selective filter: searched exactly over the allowed vectors
    few = ids[np.random.default_rng(3).choice(len(ids), 40, replace=False)]
    found = ann.search(q, 10, allowed=few)
    stored = ann.rows(np.searchsorted(ann.ids, ids))  # the float16 copies it searches
    assert list(found) == _brute(stored, ids, q, 10, set(few.tolist()))
    # a broad one through the ANN index, still k results, all allowed
    many = ids[::2]
    found = ann.search(q, 10, allowed=many, params=DenseSearch(nprobe=1))
    assert len(found) == 10 and set(found) <= set(many.tolist())
    assert ann.search(q, 10, allowed=np.array([], dtype=np.int64)) == {}


def test_an_empty_index_searches_to_nothing(tmp_path: Path) -> None:
    """The last document removed: the generation still has a dense index, of no rows."""
    empty = DenseIndex.build(np.zeros((0, 64), dtype=np.float32), np.zeros(0, dtype=np.int64))
    assert len(empty) == 0 and empty.dim == 64 and empty.search(np.ones(64), 5) == {}
    empty.save(tmp_path)
    assert len(DenseIndex.load(tmp_path)) == 0


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    x, ids = _clustered(12_000), _ids(12_000)
    for flat_below, name in ((100_000, "flat"), (5_000, "ann")):
        folder = tmp_path / name
        folder.mkdir()
        built = DenseIndex.build(x, ids, flat_below=flat_below)
        built.save(folder)
        loaded = DenseIndex.load(folder)
        assert loaded.kind == built.kind
        assert loaded.search(x[5], 10) == built.search(x[5], 10)
        assert not list(folder.glob("*.pkl"))
    (tmp_path / "ann" / "ids.npy").write_bytes(b"broken")
    with pytest.raises(IndexCorruptError):
        DenseIndex.load(tmp_path / "ann")


def test_an_index_of_format_2_is_upgraded_once_and_answers_alike(
    hashing_index: Path, as_format_3
) -> None:
    """An index written before the dense folder (a flat dense.faiss) is not read as it
    is: opening it says how to upgrade it, and once upgraded it answers alike."""
    import faiss

    before = [
        (h.chunk.chunk_id, round(h.score, 6)) for h in search("pôle SCS", index=hashing_index)
    ]
    as_format_3(hashing_index)
    gen = generations.current_generation(hashing_index)
    assert gen is not None
    dense = DenseIndex.load(gen / legacy.DENSE)
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(dense.dim))
    old.add_with_ids(np.asarray(dense.vectors, dtype=np.float32), dense.ids)
    faiss.write_index(old, str(gen / legacy.DENSE_V2))
    for f in (gen / legacy.DENSE).iterdir():
        f.unlink()
    (gen / legacy.DENSE).rmdir()
    manifest = json.loads((gen / generations.MANIFEST).read_text())
    (gen / generations.MANIFEST).write_text(json.dumps({**manifest, "format_version": 2}))
    with pytest.raises(IndexMismatchError, match=r"older format \(2\).*sourcier index --upgrade"):
        load_index(hashing_index)
    assert upgrade(index=hashing_index) and not upgrade(index=hashing_index)
    assert load_index(hashing_index).snapshot.dense.kinds == ["flat"]
    after = [(h.chunk.chunk_id, round(h.score, 6)) for h in search("pôle SCS", index=hashing_index)]
    assert after == before
