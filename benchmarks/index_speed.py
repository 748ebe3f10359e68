"""Indexing at the machine's limit: passage embedding per precision, its quality, and syncs.

Prints, for the machine it runs on:

- the CPU: its model, the flags that matter (AVX2, AVX-512, AVX512-BF16, AMX, VNNI) and
  the precision ``"auto"`` picks here (:mod:`sourcier.embed.precision`);
- **speed**: passages/s of ``embed_with_sentences`` (the build's call) in float32 and in
  the chosen precision, on the same PIAF passages, runs interleaved, the median kept;
  the padding a batch carries when passages are sorted by characters or by tokens;
  passages/s per batch size; and what share of the CPU each path reaches: the model's
  FLOPs per passage times passages/s, against a large matrix product's rate in the same
  precision measured here (a ceiling this code could reach) and against the nominal
  peak the flags and the clock give (assumptions in :func:`nominal_peak`);
- **quality**: the gate for a precision other than float32, side by side with float32
  in one run: vector cosines on the seed chunks, PIAF test retrieval (hybrid R@5,
  R@10, MRR@10; a fresh index each, whose build time is the end-to-end build), and the
  seed set's answers compared field by field;
- **overlap**: a folder of the PIAF passages as ``.docx`` files (a format whose
  parsing costs) built from scratch in a fresh process each time, files read by reader
  processes while the model loads and embeds (the default), and, for comparison,
  everything in one process one stage after the other (the build before this
  benchmark; two internals are switched off for it); runs interleaved;
- **syncs**: a folder of 20,000 files synced after no change, one added, removed,
  touched or edited (``scale_index.folder_sync``; 100,000 too with ``--large``).

    python benchmarks/index_speed.py --json eval/reports/x/index-speed.json
    python benchmarks/index_speed.py --large            # also syncs at 100,000 files
    python benchmarks/index_speed.py --tiny             # CI: a few passages, no PIAF

Run it alone: another job on the machine makes every figure wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "bf16")


def cpu() -> dict[str, Any]:
    from sourcier.embed import precision

    flags = precision.cpu_flags()
    model, mhz = platform.processor() or platform.machine(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            if key.strip() == "cpu MHz" and mhz is None:
                mhz = float(value)
    except OSError:
        pass
    import torch

    return {
        "model": model,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "mhz": mhz,
        "flags": [f for f in FLAGS if f in flags],
        "auto": str(precision.choose("auto", "cpu")),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def nominal_peak(info: dict[str, Any]) -> dict[str, float | None]:
    """GFLOP/s a core count and clock allow, under stated assumptions: two FMA units
    per core, 16 float32 lanes with AVX-512 (8 with AVX2), bfloat16 dot products doing
    twice float32's work (AVX512-BF16), AMX tiles 1,024 bfloat16 FLOPs per cycle per
    core. The clock is what ``/proc/cpuinfo`` says (often the base clock: the real peak
    under boost is higher, so a share over 100% can happen)."""
    if not info["mhz"]:
        return {"float32": None, "bfloat16": None}
    ghz, cores, flags = info["mhz"] / 1000, info["cores"], set(info["flags"])
    lanes = 16 if "avx512f" in flags else 8
    fp32 = cores * ghz * 2 * lanes * 2
    bf16 = (
        cores * ghz * 1024
        if "amx_bf16" in flags
        else (2 * fp32 if "avx512_bf16" in flags else None)
    )
    return {"float32": fp32, "bfloat16": bf16}


def gemm_rate(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n×n×n matrix product in ``dtype`` with torch, best of ``repeats``."""
    import torch

    kind = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(kind), torch.randn(n, n).to(kind)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_passage(tokens: float, layers: int = 12, d: int = 384, ffn: int = 1536) -> float:
    """FLOPs of one e5-small (BERT) forward pass over ``tokens`` tokens: the four
    attention projections and the two feed-forward matrices (2·(4d² + 2·d·ffn) per token
    per layer) plus the attention's two products (4·tokens·d per token per layer)."""
    per_token = 2 * (4 * d * d + 2 * d * ffn) + 4 * tokens * d
    return layers * tokens * per_token


def piaf_passages(n: int) -> list[dict[str, str]]:
    lines = (ROOT / "eval" / "piaf" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def speed(n: int, precisions: list[str], repeats: int, batch_sizes: list[int]) -> dict[str, Any]:
    from sourcier.embed.models import load_embedder
    from sourcier.ingest.chunking import sentence_spans
    from sourcier.settings import ModelSettings

    texts = [r["text"] for r in piaf_passages(n)]
    spans = [sentence_spans(t) for t in texts]
    embedders = {p: load_embedder(ModelSettings(precision=p)) for p in precisions}
    first = embedders[precisions[0]]
    tokens = [first.count_tokens(first.passage_prefix + t) + 2 for t in texts]
    order = sorted(range(n), key=lambda i: tokens[i])
    texts, spans, tokens = (
        [texts[i] for i in order],
        [spans[i] for i in order],
        [tokens[i] for i in order],
    )
    for e in embedders.values():  # load, cast, warm up
        e.embed_with_sentences(texts[:4], spans[:4], batch_size=4)
    rates: dict[str, list[float]] = {p: [] for p in precisions}
    for _ in range(repeats):
        for p, e in embedders.items():
            t = time.perf_counter()
            e.embed_with_sentences(texts, spans, batch_size=32)
            rates[p].append(n / (time.perf_counter() - t))
    mean_tokens = statistics.mean(tokens)
    flops = flops_per_passage(mean_tokens)
    chosen = precisions[-1]
    by_batch = {}
    for bs in batch_sizes:
        t = time.perf_counter()
        embedders[chosen].embed_with_sentences(texts, spans, batch_size=bs)
        by_batch[bs] = n / (time.perf_counter() - t)
    result: dict[str, Any] = {
        "passages": n,
        "mean_tokens": mean_tokens,
        "gflop_per_passage": flops / 1e9,
        "padding_by_characters": padding([len(t) for t in texts], tokens, 32),
        "padding_by_tokens": padding(tokens, tokens, 32),
        "batch_sizes": {chosen: by_batch},
        "paths": {},
    }
    result["question_ms"] = question_times(precisions[-1])
    for p in precisions:
        rate = statistics.median(rates[p])
        gemm = gemm_rate(p)
        result["paths"][p] = {
            "precision": str(embedders[p].passage_precision),
            "passages_per_s": rate,
            "all": rates[p],
            "gflop_s": rate * flops / 1e9,
            "gemm_gflop_s": gemm,
            "share_of_gemm": rate * flops / 1e9 / gemm,
        }
    return result


def question_times(precision: str, n: int = 30) -> dict[str, float]:
    """Median ms to embed one question: on ONNX Runtime (what ``ask`` does) and with the
    torch model in ``precision`` (both warm; torch also costs its import at a cold
    start, which ONNX does not)."""
    from sourcier.embed.models import load_embedder
    from sourcier.settings import ModelSettings

    lines = (ROOT / "eval" / "piaf" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines[:n]]
    onnx = load_embedder(ModelSettings())
    torch_path = load_embedder(ModelSettings(precision=precision))
    torch_path.onnx_queries = False  # type: ignore[attr-defined]
    torch_path.embed_passages(["amorce"])  # the model in the passages' precision
    out = {}
    for name, embedder in (("onnx", onnx), (f"torch_{precision}", torch_path)):
        embedder.embed_queries(questions[:2])
        times = []
        for q in questions:
            t = time.perf_counter()
            embedder.embed_queries([q])
            times.append(1000 * (time.perf_counter() - t))
        out[name] = statistics.median(times)
    return out


def padding(keys: list[int], tokens: list[int], batch: int) -> float:
    """The share of a forward pass's tokens that are padding, batches cut in the order
    of ``keys``."""
    order = sorted(range(len(tokens)), key=lambda i: keys[i])
    real = padded = 0
    for s in range(0, len(order), batch):
        part = [tokens[i] for i in order[s : s + batch]]
        real, padded = real + sum(part), padded + max(part) * len(part)
    return 1 - real / padded if padded else 0.0


def quality(precisions: list[str], *, piaf: bool, work: Path) -> dict[str, Any]:
    from sourcier import ask, build_index
    from sourcier.evaluation.datasets import load_dataset
    from sourcier.evaluation.run import run
    from sourcier.settings import ModelSettings, Settings

    out: dict[str, Any] = {"seed_cosines": seed_cosines(precisions)}
    seed = load_dataset("seed")
    answers: dict[str, list[dict[str, Any]]] = {}
    for p in precisions:
        settings = Settings(model=ModelSettings(precision=p))
        index = work / f"seed-{p}"
        build_index(index=index, settings=settings, show_progress=False)
        answers[p] = [ask(q.question, index=index).to_dict() for q in seed.queries]
    pairs = zip(seed.queries, answers[precisions[0]], answers[precisions[-1]], strict=True)
    differences = [d for d in (answer_difference(*pair) for pair in pairs) if d is not None]
    out["seed_answers"] = {
        "questions": len(seed.queries),
        "same": len(seed.queries) - len(differences),
        "differences": differences,
    }
    if piaf:
        out["piaf_test"] = {}
        for p in precisions:
            settings = Settings(model=ModelSettings(precision=p))
            report = run("piaf", settings=settings, split="test", answers=False, fresh=True)
            hybrid = report.retrieval["hybrid"]
            out["piaf_test"][p] = {
                "recall@5": hybrid["recall@5"],
                "recall@10": hybrid["recall@10"],
                "mrr@10": hybrid["mrr@10"],
                "questions": report.dataset["questions"],
                "build_s": report.speed["build"]["seconds"],
                "model_load_s": report.speed["build"]["model_load_s"],
            }
    return out


def answer_difference(query: Any, base: dict[str, Any], other: dict[str, Any]) -> dict | None:
    """How two answers to one question differ, beyond scores in the last decimals:
    ``None`` when the answer, its citations, its refusal and the order of its hits are
    the same. Else what differs, the largest score gap between two hits whose order
    flipped (a near tie), and whether each answer holds an expected answer."""
    from sourcier.evaluation.metrics import contains_answer

    def cited(a: dict[str, Any]) -> list[tuple[str, int, int]]:
        return [(c["doc_id"], c["start"], c["end"]) for c in a["citations"]]

    def order(a: dict[str, Any]) -> list[str]:
        return [h["chunk_id"] for h in a["hits"]]

    fields = [
        name
        for name, same in (
            ("answer", base["answer"] == other["answer"]),
            ("citations", cited(base) == cited(other)),
            ("refused", base["refused"] == other["refused"]),
            ("hit order", order(base) == order(other)),
        )
        if not same
    ]
    if not fields:
        return None
    scores = {h["chunk_id"]: h["score"] for h in base["hits"]}
    flipped = [
        abs(scores[a] - scores[b])
        for a, b in zip(order(base), order(other), strict=False)
        if a != b and a in scores and b in scores
    ]
    expected = list(query.answers)
    return {
        "question": query.question,
        "differs": fields,
        "largest_flipped_gap": max(flipped, default=None),
        "expected_in": [
            contains_answer(base["answer"], expected) if expected else None,
            contains_answer(other["answer"], expected) if expected else None,
        ],
    }


def seed_cosines(precisions: list[str]) -> dict[str, float]:
    """The smallest cosine between each precision's vectors and float32's, on the seed
    chunks (passages and sentences)."""
    import numpy as np

    from sourcier.build.chunk import chunk_documents
    from sourcier.embed.models import load_embedder
    from sourcier.ingest.loaders import load_document
    from sourcier.paths import bundled_corpus_dir
    from sourcier.settings import ModelSettings, Settings

    embedders = {p: load_embedder(ModelSettings(precision=p)) for p in precisions}
    docs = [load_document(p) for p in sorted(bundled_corpus_dir().glob("*.txt"))]
    passages = chunk_documents(docs, Settings(), embedders[precisions[0]].count_tokens)
    texts, spans = [p.text for p in passages], [p.spans_in_text for p in passages]
    made = {p: e.embed_with_sentences(texts, spans, batch_size=16) for p, e in embedders.items()}
    v0, s0 = made[precisions[0]]
    v1, s1 = made[precisions[-1]]
    a, b = np.concatenate(s0), np.concatenate(s1)
    sentence = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {
        "chunks": len(texts),
        "passage_min": float((v0 * v1).sum(1).min()),
        "sentence_min": float(sentence.min()),
    }


def docx_folder(folder: Path, n: int) -> Path:
    """The first ``n`` PIAF passages as .docx files (a heading, then the text)."""
    import docx

    folder.mkdir(parents=True, exist_ok=True)
    for row in piaf_passages(n):
        document = docx.Document()
        document.add_heading(row["title"], level=1)
        for paragraph in row["text"].split("\n"):
            document.add_paragraph(paragraph)
        document.save(str(folder / f"{row['id']}.docx"))
    return folder


def overlap(n: int, precision: str, repeats: int, work: Path, model: str | None) -> dict[str, Any]:
    """Build times of a .docx folder, overlapped and sequential, each in a new process."""
    folder = docx_folder(work / "docx", n)
    times: dict[str, list[float]] = {"overlapped": [], "sequential": []}
    for r in range(repeats):
        for mode in times:
            index = work / f"index-{mode}-{r}"
            cmd = [sys.executable, __file__, "--build-once", mode, str(folder), str(index)]
            cmd += ["--precision", precision] + (["--model", model] if model else [])
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            times[mode].append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "files": n,
        "overlapped_s": statistics.median(times["overlapped"]),
        "sequential_s": statistics.median(times["sequential"]),
        "all": times,
    }


def build_once(mode: str, folder: Path, index: Path, precision: str, model: str | None) -> float:
    """One build from scratch, in this (new) process; ``sequential`` switches the
    reader processes and the prefetch thread off (what builds did before them)."""
    from sourcier import build_index
    from sourcier.build import conductor, prefetch, read
    from sourcier.settings import ModelSettings, Settings

    if mode == "sequential":

        class Later(prefetch.Prefetch):
            def offer(self, doc: Any) -> None:
                return None

        read.reader_processes = lambda files: 0  # type: ignore[assignment]
        conductor.Prefetch = Later  # type: ignore[misc]
    settings = Settings(
        model=ModelSettings(name=model or Settings().model.name, precision=precision)
    )
    t = time.perf_counter()
    build_index(folder, index=index, settings=settings, show_progress=False)
    return time.perf_counter() - t


def syncs(sizes: list[int]) -> list[dict[str, Any]]:
    from scale_index import folder_sync

    results = []
    with tempfile.TemporaryDirectory(prefix="sourcier-sync-") as tmp:
        for n in sizes:
            results.append(folder_sync(n, Path(tmp)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also sync 100,000 files")
    parser.add_argument("--tiny", action="store_true", help="a smoke run (CI)")
    parser.add_argument("--precision", help="the path to compare with float32 (default: auto's)")
    parser.add_argument("--no-sync", action="store_true", help="skip the folder syncs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--model", help=argparse.SUPPRESS)  # the overlap's model (tests)
    parser.add_argument("--build-once", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_once:
        mode, folder, index = args.build_once
        precision = args.precision or "auto"
        print(build_once(mode, Path(folder), Path(index), precision, args.model))
        return
    info = cpu()
    chosen = args.precision or info["auto"].split()[0]
    precisions = ["float32"] if chosen == "float32" else ["float32", chosen]
    tiny = args.tiny
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpu": info}
    out["nominal_peak_gflop_s"] = nominal_peak(info)
    print(json.dumps(out, indent=1), flush=True)
    out["speed"] = speed(
        8 if tiny else args.passages,
        precisions,
        1 if tiny else args.repeats,
        [8] if tiny else [8, 16, 32, 64],
    )
    print(json.dumps(out["speed"], indent=1), flush=True)
    with tempfile.TemporaryDirectory(prefix="sourcier-quality-") as work:
        out["quality"] = quality(precisions, piaf=not tiny, work=Path(work))
    print(json.dumps(out["quality"], indent=1), flush=True)
    with tempfile.TemporaryDirectory(prefix="sourcier-overlap-") as work:
        n, repeats = (40, 1) if tiny else (761, args.repeats)
        out["overlap"] = overlap(n, chosen, repeats, Path(work), args.model)
    print(json.dumps(out["overlap"], indent=1), flush=True)
    if not args.no_sync:
        sizes = [200] if tiny else [20_000] + ([100_000] if args.large else [])
        out["syncs"] = syncs(sizes)
        print(json.dumps(out["syncs"], indent=1), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
