"""Sweep retrieval settings on the PIAF dev split without re-embedding anything.

For one index folder (one chunking / title setting), this script embeds every question
once (cached in the index folder's parent), scores every (question, chunk) pair with the
dense model and BM25 once, then replays sourcier's fusion (the exact rules of
``sourcier.retrieve``: top-``candidates`` per retriever, min-max or RRF) for many
settings in NumPy, plus a few candidate improvements that need a core change:

- ``sent``: a sentence-level BM25 feature (the best-matching sentence of the chunk,
  with the title), added to the weighted sum;
- ``sentdense``: sentence-level dense matching: the best cosine between the question and
  the chunk's sentence vectors (which the index stores: token embeddings of the passage
  pass, mean-pooled per sentence);
- ``prf``: dense pseudo-relevance feedback (Rocchio on the query vector);
- ``one_chunk_per_document``: the ranking keeps only the best chunk of each document.

Usage (the index is built with ``build_index_from_records`` if missing)::

    .venv/bin/python benchmarks/tune.py --index /tmp/sv/idx-A --chunk-tokens 180 \\
        --overlap 40 --split dev [--out eval/reports/tuning/A-dev.json]

Every configuration is scored with the same metrics as ``sourcier eval``
(:mod:`sourcier.metrics`); the winner is then checked with the real ``search()`` via
``sourcier eval piaf --split dev --set ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sourcier import Settings, build_index_from_records, load_index
from sourcier.analysis import BM25Index
from sourcier.evaluation import metrics as m
from sourcier.evaluation.datasets import load_dataset

MAX_K = 20


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def dense_matrix(snap: Any) -> np.ndarray:
    """The chunk vectors, in ``snap.chunks`` order."""
    import faiss

    inner = faiss.downcast_index(snap.dense.index)
    vecs = inner.reconstruct_n(0, inner.ntotal)
    ids = faiss.vector_to_array(snap.dense.id_map)
    order = np.empty(len(ids), dtype=np.int64)
    for row, fid in enumerate(ids):
        order[snap.positions[int(fid)]] = row
    return np.ascontiguousarray(vecs[order], dtype=np.float32)


def cached_embed(
    path: Path,
    texts: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    what: str,
    batch: int = 64,
) -> np.ndarray:
    """Embed texts once; the vectors are kept in ``path`` (keyed by a hash of the texts)."""
    tag = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    file = path.with_name(f"{path.stem}-{tag}.npy")
    if file.exists():
        return np.load(file)
    out = []
    t0 = time.time()
    for i in range(0, len(texts), batch):
        out.append(embed(list(texts[i : i + batch])))
        log(f"  {what}: {min(i + batch, len(texts))}/{len(texts)} ({time.time() - t0:.0f} s)")
    arr = np.concatenate(out).astype(np.float32)
    np.save(file, arr)
    return arr


class Bench:
    """Every score a fusion needs, for every question of a split, in memory."""

    def __init__(self, index_path: Path, split: str, dataset: str = "piaf") -> None:
        ds = load_dataset(dataset)
        self.ds = ds
        idx = load_index(index_path)
        self.idx = idx
        snap = idx.snapshot
        self.snap = snap
        self.queries = [q for q in ds.select(split).queries if q.answerable]
        self.chunks = snap.chunks
        self.keys = [ds.doc_key(snap.documents[c.doc_id].source) for c in self.chunks]
        self.golds = [set(q.gold) for q in self.queries]
        n = len(self.chunks)
        log(f"{len(self.queries)} questions, {n} chunks")
        emb = idx.embedder
        cache = index_path.parent / "qvec.npy"
        all_q = [q.question for q in ds.queries if q.answerable]
        qv_all = cached_embed(cache, all_q, emb.embed_queries, "queries")
        pos = {q: i for i, q in enumerate(all_q)}
        self.qv = qv_all[[pos[q.question] for q in self.queries]]
        self.V = dense_matrix(snap)
        self.dense = self.qv @ self.V.T
        fid = snap.faiss_ids
        fpos = {int(f): i for i, f in enumerate(fid)}
        self.bm25 = self._bm25_matrix(snap.bm25, fpos)
        self.titles = [snap.documents[c.doc_id].title for c in self.chunks]
        # sentence level: the index's own sentence vectors (token-pooled from the passage
        # pass) and a BM25 over the same sentences (each with its title)
        sents, owner, rows = [], [], []
        for ci, c in enumerate(self.chunks):
            text = snap.documents[c.doc_id].text
            for s, e, row in snap.sentences.get(c.chunk_id, []):
                sents.append(f"{self.titles[ci]}\n{text[s:e]}")
                owner.append(ci)
                rows.append(row)
        self.sent_owner = np.array(owner)
        sb = BM25Index.build(sents, list(range(len(sents))))
        sm = self._bm25_matrix(sb, {i: i for i in range(len(sents))})
        self.sent_bm25 = self._max_by_owner(sm)
        self.title_bm25 = self._bm25_matrix(
            BM25Index.build(self.titles, list(range(n))), {i: i for i in range(n)}
        )
        sv = np.asarray(snap.sentence_vectors)[rows]
        self.sent_dense = self._max_by_owner(self.qv @ sv.T) if len(rows) else None
        log(f"{len(sents)} sentences")

    def _bm25_matrix(self, bm25: BM25Index, fpos: dict[int, int]) -> np.ndarray:
        n = len(fpos)
        out = np.zeros((len(self.queries), n), dtype=np.float32)
        for qi, q in enumerate(self.queries):
            for fid, score in bm25.search(q.question, k=n):
                out[qi, fpos[fid]] = score
        return out

    def _max_by_owner(self, mat: np.ndarray) -> np.ndarray:
        out = np.full((mat.shape[0], len(self.chunks)), -1e9, dtype=np.float32)
        np.maximum.at(out.T, self.sent_owner, mat.T)
        return out

    # ----- scoring -----------------------------------------------------------------

    def evaluate(self, scores: np.ndarray, cap: int = 0) -> dict[str, float]:
        """Metrics of the rankings given by a (questions x chunks) score matrix (ties: index).

        ``cap``: keep at most this many chunks per document in the ranking (0: no cap).
        """
        top = np.argsort(-scores, axis=1, kind="stable")[:, : MAX_K * (4 if cap else 1)]
        rankings = []
        for row in top:
            keys, count = [], {}
            for i in row:
                k = self.keys[i]
                if cap and count.get(k, 0) >= cap:
                    continue
                count[k] = count.get(k, 0) + 1
                keys.append(k)
            rankings.append(keys[:MAX_K])
        return summarise(rankings, self.golds)


def summarise(rankings: list[list[str]], golds: list[set[str]]) -> dict[str, float]:
    out = {
        f"R@{k}": m.mean(m.recall_at_k(r, g, k) for r, g in zip(rankings, golds, strict=True))
        for k in (1, 5, 10, 20)
    }
    out["MRR@10"] = m.mean(m.mrr_at_k(r, g, 10) for r, g in zip(rankings, golds, strict=True))
    out["nDCG@10"] = m.mean(m.ndcg_at_k(r, g, 10) for r, g in zip(rankings, golds, strict=True))
    return out


def topk_mask(scores: np.ndarray, k: int, positive: bool = False) -> np.ndarray:
    """Boolean mask of each row's top-k entries (the candidates a retriever contributes)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    mask = np.zeros_like(scores, dtype=bool)
    np.put_along_axis(mask, part, True, axis=1)
    if positive:
        mask &= scores > 0
    return mask


def minmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sourcier's per-query min-max over the candidates; non-candidates get 0."""
    big = np.where(mask, scores, np.inf)
    lo = big.min(axis=1, keepdims=True)
    hi = np.where(mask, scores, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 1e-12, (scores - lo) / np.where(span > 1e-12, span, 1), 1.0)
    return np.where(mask, norm, 0.0)


def rrf(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    masked = np.where(mask, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :], axis=1)
    return np.where(mask, 1.0 / (k + ranks), 0.0)


def sweep(b: Bench) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def add(name: str, scores: np.ndarray, cap: int = 0, **params: Any) -> None:
        r = {"variant": name, **params, **b.evaluate(scores, cap)}
        if cap:
            r["one_chunk_per_document"] = True
        results.append(r)
        log(
            f"{name:12} {json.dumps(params):60} R@1 {r['R@1']:.3f} R@5 {r['R@5']:.3f} "
            f"R@10 {r['R@10']:.3f} MRR {r['MRR@10']:.3f} nDCG {r['nDCG@10']:.3f}"
        )

    add("bm25", np.where(b.bm25 > 0, b.bm25, -1.0))
    add("dense", b.dense)
    for cand in (100,):
        dm, bm = topk_mask(b.dense, cand), topk_mask(b.bm25, cand, positive=True)
        d, lx = minmax(b.dense, dm), minmax(b.bm25, bm)
        union = dm | bm
        for w in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
            add("weighted", np.where(union, w * d + (1 - w) * lx, -1.0), w=w, candidates=cand)
        for k in (10, 30, 60):
            add("rrf", np.where(union, rrf(b.dense, dm, k) + rrf(b.bm25, bm, k), -1.0), k=k)
        # extra lexical features: the best sentence (with title) and the title alone
        sm = topk_mask(b.sent_bm25, cand, positive=True)
        s = minmax(b.sent_bm25, sm & union)
        tm = b.title_bm25 > 0
        t = minmax(b.title_bm25, tm & union)
        for w in (0.4, 0.5, 0.6):
            for ws in (0.1, 0.2, 0.3):
                base = w * d + (1 - w) * lx
                add("sent", np.where(union, base + ws * s, -1.0), w=w, ws=ws)
        for w in (0.5,):
            for wt in (0.05, 0.1, 0.2):
                add("title", np.where(union, w * d + (1 - w) * lx + wt * t, -1.0), w=w, wt=wt)
        if b.sent_dense is not None:
            sdm = topk_mask(b.sent_dense, cand)
            sd = minmax(b.sent_dense, sdm)
            u2 = union | sdm
            add("sent-dense", np.where(sdm, b.sent_dense, -1.0))
            for w in (0.4, 0.5, 0.6):
                fused = np.where(sdm | bm, w * sd + (1 - w) * lx, -1.0)
                add("sent-dense-fused", fused, w=w)
                add("sent-dense-fused", fused, cap=1, w=w)
            for w in (0.5, 0.6):
                add("weighted", np.where(union, w * d + (1 - w) * lx, -1.0), cap=1, w=w)
            for w in (0.3, 0.4, 0.5):
                for wsd in (0.2, 0.3, 0.4, 0.5):
                    add(
                        "sentdense",
                        np.where(u2, w * d + (1 - w) * lx + wsd * sd, -1.0),
                        w=w,
                        wsd=wsd,
                    )
            for w in (0.4, 0.5):
                for wsd in (0.3, 0.4):
                    for ws in (0.1, 0.2):
                        add(
                            "sentdense+sent",
                            np.where(u2, w * d + (1 - w) * lx + wsd * sd + ws * s, -1.0),
                            w=w,
                            wsd=wsd,
                            ws=ws,
                        )
    # dense pseudo-relevance feedback (Rocchio): q' = q + beta * mean(top-3 fused chunks)
    dm, bm = topk_mask(b.dense, 100), topk_mask(b.bm25, 100, positive=True)
    base = np.where(dm | bm, 0.5 * minmax(b.dense, dm) + 0.5 * minmax(b.bm25, bm), -1.0)
    top3 = np.argsort(-base, axis=1)[:, :3]
    for beta in (0.3, 0.6):
        qv = b.qv + beta * b.V[top3].mean(axis=1)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        dense2 = qv @ b.V.T
        dm2 = topk_mask(dense2, 100)
        add(
            "prf",
            np.where(dm2 | bm, 0.5 * minmax(dense2, dm2) + 0.5 * minmax(b.bm25, bm), -1.0),
            beta=beta,
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--dataset", default="piaf")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--chunk-tokens", type=int, default=180)
    ap.add_argument("--overlap", type=int, default=40)
    ap.add_argument("--no-title", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    settings = Settings().with_(
        chunk_tokens=args.chunk_tokens,
        chunk_overlap_tokens=args.overlap,
        embed_title=not args.no_title,
    )
    ds = load_dataset(args.dataset)
    t0 = time.time()
    report = build_index_from_records(
        list(ds.records), index=args.index, settings=settings, show_progress=False
    )
    log(f"index {args.index}: {report.embedded} embedded in {time.time() - t0:.0f} s")
    bench = Bench(args.index, args.split, args.dataset)
    results = sweep(bench)
    payload = {
        "index": str(args.index),
        "settings": settings.index_fields(),
        "split": args.split,
        "questions": len(bench.queries),
        "chunks": len(bench.chunks),
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(payload)[:200])


if __name__ == "__main__":
    main()
