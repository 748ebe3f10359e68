"""Ingestion throughput: local embedding against Ray with 1 and 2 local workers.

The passages are those a build of the bundled corpus embeds (copied ``--copies`` times,
each copy with its own first line so nothing is cached), embedded with the default
model (multilingual-e5-small) and their sentence vectors, as ``sourcier index`` does:

* ``local``: :func:`sourcier.multivector.embed_with_sentences` in this process (torch
  with its default threads), the model already loaded;
* ``ray-N``: :func:`sourcier.distributed.embed_on_ray` on a private local Ray with ``N``
  one-CPU actors. ``wall`` counts everything from the call (Ray starts, the actors
  start, import torch and load the model). ``steady`` takes the start-up out by
  difference: a second run embeds only ``N`` batches (one per actor), and
  ``steady = (passages - N x batch) / (wall - wall of the short run)``.

The machine's load average is printed next to the numbers: on a shared machine, compare
rows of one run only.

    .venv/bin/python benchmarks/ray_ingest.py                     # 1 and 2 workers
    .venv/bin/python benchmarks/ray_ingest.py --copies 4 --batch-sizes 16,32,64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def _corpus(root: Path, copies: int) -> Path:
    from sourcier.paths import bundled_corpus_dir

    folder = root / "corpus"
    folder.mkdir()
    for copy in range(copies):
        for p in sorted(bundled_corpus_dir().glob("*.txt")):
            text = p.read_text("utf-8")
            (folder / f"{copy:02d}-{p.name}").write_text(f"Copie {copy}.\n\n{text}", "utf-8")
    return folder


def passages(folder: Path, settings: Any) -> tuple[tuple[str, ...], tuple]:
    """What a build of ``folder`` embeds: each passage's text and its sentences in it."""
    from sourcier.build import chunk_documents
    from sourcier.embed import load_embedder
    from sourcier.ingest import discover, load_document

    files, _ = discover([folder])
    docs = [load_document(f) for f in files]
    chunks = chunk_documents(docs, settings, load_embedder(settings.model).count_tokens)
    return tuple(p.text for p in chunks), tuple(tuple(p.spans_in_text) for p in chunks)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def bench_local(texts: tuple[str, ...], spans: tuple, settings: Any, batch_size: int) -> dict:
    from sourcier.embed import load_embedder

    embedder = load_embedder(settings.model)
    t0 = time.perf_counter()
    assert embedder.dim > 0  # loads the model
    embedder.embed_with_sentences(list(texts[:batch_size]), list(spans[:batch_size]))
    load = time.perf_counter() - t0
    load_before = _load()
    t0 = time.perf_counter()
    embedder.embed_with_sentences(list(texts), list(spans), batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return {
        "setup": "local",
        "batch_size": batch_size,
        "passages": len(texts),
        "model_load_s": round(load, 2),
        "wall_s": round(seconds, 2),
        "wall_per_s": round(len(texts) / seconds, 1),
        "steady_per_s": round(len(texts) / seconds, 1),
        "load_before": load_before,
        "load_after": _load(),
    }


def _ray_run(texts: tuple[str, ...], spans: tuple, settings: Any, workers: int, batch: int):
    import ray

    from sourcier.build.ray import RayOptions, RayRun, embed_on_ray, ray_session

    t0 = time.perf_counter()
    ray.init(
        num_cpus=workers,
        object_store_memory=200 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        options = RayOptions(address="local", workers=workers, batch_size=batch)
        runs: list[RayRun] = []
        done = 0
        with ray_session(options):
            for out in embed_on_ray(texts, spans, settings=settings, options=options, run=runs):
                done += len(out.positions)
    finally:
        ray.shutdown()
    assert done == len(texts)
    return time.perf_counter() - t0, runs[0]


def bench_ray(
    texts: tuple[str, ...], spans: tuple, settings: Any, workers: int, batch_size: int
) -> dict:
    load_before = _load()
    short = workers * batch_size
    step = max(1, len(texts) // short)  # passages of every length, as in the full run
    short_wall, _ = _ray_run(
        texts[::step][:short], spans[::step][:short], settings, workers, batch_size
    )
    wall, run = _ray_run(texts, spans, settings, workers, batch_size)
    rest = len(texts) - short
    return {
        "setup": f"ray-{workers}",
        "batch_size": batch_size,
        "passages": len(texts),
        "startup_s": round(short_wall, 2),
        "wall_s": round(wall, 2),
        "wall_per_s": round(len(texts) / wall, 1),
        "steady_per_s": round(rest / (wall - short_wall), 1) if wall > short_wall else None,
        "duplicates": run.duplicates,
        "load_before": load_before,
        "load_after": _load(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", type=int, default=3, help="copies of the bundled corpus")
    ap.add_argument("--workers", default="1,2", help="Ray pool sizes to time")
    ap.add_argument("--batch-sizes", default="32", help="passages per batch to time")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--model", default=None, help="embedding model (default e5-small)")
    args = ap.parse_args()

    from sourcier import Settings

    settings = Settings(model=args.model) if args.model else Settings()
    root = Path(tempfile.mkdtemp(prefix="sourcier-ray-bench-"))
    rows = []
    try:
        corpus = _corpus(root, args.copies)
        texts, spans = passages(corpus, settings)
        print(f"{len(texts)} passages, {os.cpu_count()} CPUs, load {_load()}", flush=True)
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            rows.append(bench_local(texts, spans, settings, batch_size))
            print(rows[-1], flush=True)
            for workers in [int(w) for w in args.workers.split(",")]:
                rows.append(bench_ray(texts, spans, settings, workers, batch_size))
                print(rows[-1], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print("| setup | batch | passages | wall s | passages/s (wall) | passages/s (steady) | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setup']} | {r['batch_size']} | {r['passages']} | {r['wall_s']} | "
            f"{r['wall_per_s']} | {r['steady_per_s']} | {r['load_before']} → {r['load_after']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), "utf-8")


if __name__ == "__main__":
    main()
