"""Dense search at scale: exact (flat) vs IVF-HNSW-SQ8 (sourcier.storage.dense.DenseIndex).

Vectors: the real e5-small vectors of the 761 PIAF passages (embedded once, cached in
index/bench-cache/), plus synthetic passages around them (each one a mix of two real
passage vectors and noise, renormalised), up to the largest size asked. Queries: real
e5 vectors of PIAF questions, whose gold passage is in every index.

Reported per size: build time (flat and ANN), recall@10 of ANN against exact search,
PIAF R@5 (the gold passage among the top 5) with exact and with ANN search, query p50
and p95 (single query, 2 threads), and resident bytes of chunk vectors per chunk.

    .venv/bin/python benchmarks/dense_ann.py --sizes 10000 100000 1000000

Run it alone on a quiet machine; it prints a markdown table (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sourcier.storage.dense import DenseIndex, DenseSearch

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT / "eval" / "piaf"
CACHE = ROOT / "index" / "bench-cache"


def real_vectors(
    n_queries: int, model: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(passage vectors, query vectors, gold passage row per query) of the PIAF passages
    and questions, embedded by ``model`` (default e5-small), cached."""
    from sourcier import Settings

    settings = Settings(model=model) if model else Settings()
    slug = "e5" if model is None else "".join(c if c.isalnum() else "-" for c in model)
    cache = CACHE / f"piaf-{slug}.npz"
    if cache.exists():
        data = np.load(cache)
        return data["passages"], data["queries"][:n_queries], data["gold"][:n_queries]
    from sourcier.embed import load_embedder

    passages = [json.loads(line) for line in (PIAF / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (PIAF / "queries.jsonl").open(encoding="utf-8")]
    row = {p["id"]: i for i, p in enumerate(passages)}
    rng = np.random.default_rng(0)
    picked = [queries[i] for i in rng.choice(len(queries), 1000, replace=False)]
    embedder = load_embedder(settings.model)
    t = time.perf_counter()
    pv = embedder.embed_passages([f"{p['title']}\n{p['text']}" for p in passages])
    print(f"embedded {len(passages)} passages in {time.perf_counter() - t:.0f} s")
    qv = embedder.embed_queries([q["question"] for q in picked])
    gold = np.array([row[q["gold_ids"][0]] for q in picked])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, passages=pv, queries=qv, gold=gold)
    return pv, qv[:n_queries], gold[:n_queries]


def synthetic(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors near the real ones: a + 0.5·b + noise, a and b real passages."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        a = real[rng.integers(0, len(real), m)]
        b = real[rng.integers(0, len(real), m)]
        noise = rng.standard_normal(a.shape).astype(np.float32) * 0.02
        x = a + 0.5 * b + noise
        out[lo : lo + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed_searches(index: DenseIndex, queries: np.ndarray, k: int, params: DenseSearch):
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(index.search(q, k, params=params))
        times.append((time.perf_counter() - t) * 1000)
    return found, np.percentile(times, 50), np.percentile(times, 95)


def run(
    size: int,
    real: np.ndarray,
    queries: np.ndarray,
    gold: np.ndarray,
    settings: list[DenseSearch],
) -> list[dict]:
    vectors = np.concatenate([real, synthetic(real, max(0, size - len(real)))])[:size]
    ids = np.arange(size, dtype=np.int64) * 7919 + 11  # any distinct int64 ids
    row_of = {int(i): r for r, i in enumerate(ids)}
    t = time.perf_counter()
    flat = DenseIndex.build(vectors, ids, flat_below=size + 1)
    flat_build = time.perf_counter() - t
    before = rss_mb()
    t = time.perf_counter()
    ann = DenseIndex.build(vectors, ids, flat_below=0)
    ann_build = time.perf_counter() - t
    ann_mb = rss_mb() - before
    exact, flat_p50, flat_p95 = timed_searches(flat, queries, 10, DenseSearch())

    def r_at_5(results: list[dict[int, float]]) -> float:
        top = [[row_of[i] for i in list(r)[:5]] for r in results]
        return float(np.mean([g in t for t, g in zip(top, gold, strict=True)]))

    code = ann._index.sa_code_size() + 8  # 8-bit codes + the int64 id of each list entry
    rows = []
    for p in settings:
        approx, ann_p50, ann_p95 = timed_searches(ann, queries, 10, p)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
        rows.append(
            {
                "chunks": size,
                "flat build s": round(flat_build, 2),
                "ANN build s": round(ann_build, 1),
                "nlist": ann.nlist,
                "nprobe": p.nprobe or f"{max(32, ann.nlist // 8)} (auto)",
                "refine": p.refine,
                "recall@10": round(float(recall), 4),
                "R@5 flat": round(r_at_5(exact), 4),
                "R@5 ANN": round(r_at_5(approx), 4),
                "flat p50 ms": round(float(flat_p50), 2),
                "flat p95 ms": round(float(flat_p95), 2),
                "ANN p50 ms": round(float(ann_p50), 2),
                "ANN p95 ms": round(float(ann_p95), 2),
                "ANN code B/chunk": code,
                "ANN RSS MB": round(ann_mb, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--nprobe", type=int, nargs="+", default=[None], help="default: nlist/8 (auto)"
    )
    parser.add_argument("--ef-search", type=int, default=DenseSearch.ef_search)
    parser.add_argument("--refine", type=int, nargs="+", default=[DenseSearch.refine])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", help="embedding model (default e5-small)")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(2)
    real, queries, gold = real_vectors(args.queries, args.model)
    settings = [
        DenseSearch(nprobe=n, ef_search=max(args.ef_search, n or 0), refine=r)
        for n in args.nprobe
        for r in args.refine
    ]
    rows = []
    for size in args.sizes:
        for row in run(size, real, queries, gold, settings):
            rows.append(row)
            print(json.dumps(row), flush=True)
    head = list(rows[0])
    table = "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        + ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    )
    note = f"efSearch max({args.ef_search}, nprobe); {len(queries)} PIAF questions; 1 thread"
    print(f"\n{note}\n\n{table}")
    if args.out:
        args.out.write_text(f"{note}\n\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
