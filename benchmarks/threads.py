"""Warm query latency by thread count, on an idle machine and beside a CPU hog.

For each backend (ONNX Runtime, torch) and thread count, a fresh process loads the
default model, embeds a few questions to warm up, then times ``--queries`` single-question
embeddings (the seed questions, in turn): p50 and p95 in milliseconds. The same runs are
repeated while ``--hog`` busy-loop processes compete for the cores, as other work on a
shared machine does. A last set of runs sends ``--concurrency`` questions at once from
as many threads (a server answering several people; ONNX only, which needs no lock).

    python benchmarks/threads.py                       # threads 1 and 2, 2 hogs
    python benchmarks/threads.py --queries 60 --json out.json --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, sys, threading, time
backend, questions = sys.argv[1], json.loads(sys.argv[5])
threads, n, concurrency = (int(x) for x in sys.argv[2:5])
from sourcier.embed.e5model import ensure_e5_small
from sourcier.embed import SentenceTransformerEmbedder
from sourcier.paths import default_cache_dir

folder = ensure_e5_small(default_cache_dir())
emb = SentenceTransformerEmbedder(
    str(folder), query_prefix="query: ", query_threads=threads, onnx_queries=backend == "onnx"
)
for q in questions[:3]:
    emb.embed_queries([q])
assert emb.query_backend == backend, emb.query_backend
times = []
lock = threading.Lock()

def work(offset):
    for i in range(offset, n, concurrency):
        start = time.perf_counter()
        emb.embed_queries([questions[i % len(questions)]])
        with lock:
            times.append((time.perf_counter() - start) * 1000.0)

workers = [threading.Thread(target=work, args=(k,)) for k in range(concurrency)]
wall = time.perf_counter()
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"ms": times, "wall_s": time.perf_counter() - wall}))
"""

_HOG = "while True:\n    pass\n"


def _questions() -> list[str]:
    path = Path(__file__).resolve().parent.parent / "eval" / "seed" / "queries.jsonl"
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8")]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[rank]


def _run(backend: str, threads: int, n: int, concurrency: int) -> dict[str, float]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = [backend, str(threads), str(n), str(concurrency), json.dumps(_questions())]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{backend}/{threads} failed: {done.stderr.strip()[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    ms = row["ms"]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(_percentile(ms, 95), 1),
        "queries_per_s": round(len(ms) / row["wall_s"], 1),
    }


def measure(
    *, threads: list[int], backends: list[str], n: int, hogs: int, concurrency: int
) -> list[dict[str, object]]:
    """Every (load, backend, threads) combination, then the concurrent runs."""
    rows: list[dict[str, object]] = []
    for load in ("idle", f"{hogs} busy loops"):
        procs = []
        if load != "idle":
            procs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(hogs)]
        try:
            runs = [(b, t, 1) for b in backends for t in threads]
            if concurrency > 1 and "onnx" in backends:
                runs += [("onnx", t, concurrency) for t in threads]
            for backend, t, at_once in runs:
                result = _run(backend, t, n, at_once)
                rows.append(
                    {"load": load, "backend": backend, "threads": t, "concurrency": at_once}
                    | result
                    | {"loadavg_1m": round(os.getloadavg()[0], 2)}
                )
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return rows


def to_markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| load | backend | threads/query | queries at once | p50 ms | p95 ms | queries/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['load']} (load avg {r['loadavg_1m']}) | {r['backend']} | {r['threads']} | "
            f"{r['concurrency']} | {r['p50_ms']} | {r['p95_ms']} | {r['queries_per_s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", nargs="+", default=["onnx", "torch"], choices=["onnx", "torch"])
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--hog", type=int, default=2, help="busy-loop processes for the busy runs")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    rows = measure(
        threads=args.threads,
        backends=args.backends,
        n=args.queries,
        hogs=args.hog,
        concurrency=args.concurrency,
    )
    table = to_markdown(rows)
    print(f"{os.cpu_count()} CPUs\n")
    print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
