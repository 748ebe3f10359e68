"""`sourcier eval`: measure retrieval, answers and speed on a question set.

What :func:`run` measures (see :mod:`sourcier.metrics` for the exact definitions):

- retrieval, per method ("bm25", "dense", "hybrid"): Recall@1/5/10/20, MRR@10,
  nDCG@10, and search latency;
- answers (``ask()``): gold answer contained in the answer text, and on screen (in the
  answer text or a quote of its citations), the answer text's median length, the
  marked fact's precision and coverage, citation precision, quotes equal to their
  spans, refusal precision/recall, false refusals;
- speed: per-stage latency p50/p95, build throughput, index size, peak memory.

The data sets are :mod:`sourcier.datasets`; the report, its formats and the regression
gate are :mod:`sourcier.report`; the command is :mod:`sourcier.eval_cli`. Module
imports stay light (stdlib, numpy); matplotlib and the model stack are imported inside
the functions that need them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import file_sha256
from ..settings import Settings
from . import metrics
from .datasets import Dataset, load_dataset
from .metrics import RECALL_KS
from .report import Report

__all__ = [
    "METHODS",
    "evaluate_answers",
    "evaluate_retrieval",
    "run",
]

METHODS = ("bm25", "dense", "hybrid")
STAGES = ("embed_query", "dense", "bm25", "fusion", "answer", "total")


Progress = Callable[[str, int, int], None]


def _bar(total: int, desc: str, show: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="q", disable=(None if show is None else not show), leave=False
    )


def evaluate_retrieval(
    index: Any,
    dataset: Dataset,
    *,
    methods: Sequence[str] = METHODS,
    max_k: int = 20,
    show_progress: bool | None = None,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Search every answerable question with each method and score the rankings.

    Args:
        index: an open :class:`~sourcier.assistant.Assistant` (its query settings are used).
        dataset: the questions; unanswerable ones are skipped.
        methods: retrieval modes to compare.
        max_k: how many chunks to retrieve (the largest cut-off).
        show_progress: a progress bar on stderr (``None``: when stderr is a terminal).

    Returns:
        ``(summary, details)``: per method ``recall@k``, ``mrr@10``, ``ndcg@10``, the
        Recall@1..max_k ``curve`` and search ``latency_ms``; and one dict per
        question with the rank of the first gold chunk per method.
    """
    from ..api import search

    for m in methods:
        if m not in METHODS:
            raise InputError(f"method ({m!r}) must be one of {', '.join(METHODS)}")
    queries = [q for q in dataset.queries if q.answerable and q.gold]
    views = {
        m: index.configure(
            mode=m, k=max_k, candidates=max(index.settings.retrieval.candidates, max_k)
        )
        for m in methods
    }
    rankings: dict[str, list[list[str]]] = {m: [] for m in methods}
    latencies: dict[str, list[float]] = {m: [] for m in methods}
    details: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    bar = _bar(len(queries) * len(methods), "Retrieval", show_progress)
    try:
        for q in queries:
            row: dict[str, Any] = {
                "id": q.id,
                "question": q.question,
                "gold": list(q.gold),
                "rank": {},
                "top": {},
            }
            for m in methods:
                t = time.perf_counter()
                hits = search(q.question, index=views[m])
                latencies[m].append((time.perf_counter() - t) * 1000.0)
                ranking = []
                for h in hits:
                    key = keys.get(h.source)
                    if key is None:
                        key = keys[h.source] = dataset.doc_key(h.source)
                    ranking.append(key)
                rankings[m].append(ranking)
                row["rank"][m] = metrics.first_relevant_rank(ranking, q.gold)
                row["top"][m] = ranking[:3]
                bar.update(1)
            details.append(row)
    finally:
        bar.close()
    golds = [q.gold for q in queries]
    summary: dict[str, dict[str, Any]] = {}
    for m in methods:
        ranks = rankings[m]
        out: dict[str, Any] = {"questions": len(ranks)}
        for k in RECALL_KS:
            out[f"recall@{k}"] = metrics.mean(
                metrics.recall_at_k(r, g, k) for r, g in zip(ranks, golds, strict=True)
            )
        out["mrr@10"] = metrics.mean(
            metrics.mrr_at_k(r, g, 10) for r, g in zip(ranks, golds, strict=True)
        )
        out["ndcg@10"] = metrics.mean(
            metrics.ndcg_at_k(r, g, 10) for r, g in zip(ranks, golds, strict=True)
        )
        out["curve"] = metrics.recall_curve(ranks, golds, max_k)
        out["latency_ms"] = metrics.summarise_latencies({"search": latencies[m]}).get("search", {})
        summary[m] = out
    return summary, details


def evaluate_answers(
    index: Any,
    dataset: Dataset,
    *,
    show_progress: bool | None = None,
    llm: Any = None,
) -> tuple[dict[str, Any], dict[str, list[float]], list[dict[str, Any]]]:
    """Ask every question with ``ask()`` and score the answers.

    One warm-up question is asked first and not timed, so latencies are warm.

    Args:
        index: an open :class:`~sourcier.assistant.Assistant` (its query settings are used).
        dataset: the questions.
        show_progress: a progress bar on stderr (``None``: when stderr is a terminal).
        llm: a chat model for generative answers: a LangChain chat model, a
            ``"provider:model"`` string, or the ``llm`` settings (model, server,
            time-out); the summary then also has the generation figures (see
            :func:`summarise_generation`).

    Returns:
        ``(summary, timings, details)``: the answer metrics; per-stage latency samples
        in milliseconds; one dict per question.
    """
    from ..answer.question import answer_type
    from ..settings import LLMSettings

    queries = list(dataset.queries)
    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    details: list[dict[str, Any]] = []
    texts: dict[str, str] = {}

    def doc_text(doc_id: str) -> str:
        if doc_id not in texts:
            texts[doc_id] = index.index.document(doc_id).text
        return texts[doc_id]

    asker = index
    if llm is not None:
        asker = index.with_llm(llm, timeout=llm.timeout if isinstance(llm, LLMSettings) else None)
    if queries:
        asker.ask(queries[0].question)  # warm-up: weights, caches
    bar = _bar(len(queries), "Answers" if llm is None else "Generative answers", show_progress)
    try:
        for q in queries:
            a = asker.ask(q.question)
            for stage in STAGES:
                if stage in a.timings_ms:
                    timings[stage].append(float(a.timings_ms[stage]))
            cites = [
                {
                    "key": dataset.doc_key(c.source),
                    "exact": doc_text(c.doc_id)[c.start : c.end] == c.quote,
                }
                for c in a.citations
            ]
            details.append(
                {
                    "id": q.id,
                    "question": q.question,
                    "answerable": q.answerable,
                    "gold": list(q.gold),
                    "answers": list(q.answers),
                    "refused": a.refused,
                    "support": round(float(a.support), 4),
                    "contains": (not a.refused) and metrics.contains_answer(a.answer, q.answers),
                    "on_screen": (not a.refused)
                    and metrics.on_screen(a.answer, [c.quote for c in a.citations], q.answers),
                    "answer_chars": None if a.refused else len(a.answer),
                    "asked": answer_type(q.question),
                    "marked": a.marked.text if a.marked is not None else None,
                    "marked_holds": (
                        metrics.holds_answer(a.marked.text, q.answers)
                        if a.marked is not None and q.answers
                        else None
                    ),
                    "citations": [c["key"] for c in cites],
                    "cited_gold": [c["key"] in q.gold for c in cites],
                    "quotes_exact": all(c["exact"] for c in cites),
                    "quote_mismatches": sum(1 for c in cites if not c["exact"]),
                    "answer": a.answer,
                    "language": a.language,
                    "mode": a.mode,
                    "model": a.model,
                    "notice": a.notice,
                    "sentences": len(written := _model_sentences(a)),
                    "cited_sentences": sum(1 for s in written if s.cited),
                    "verified_sentences": sum(1 for s in written if s.supported),
                    "verified_cited": sum(1 for s in written if s.supported and s.cited),
                    "first_token_ms": a.timings_ms.get("llm_first_token"),
                    "llm_ms": a.timings_ms.get("llm_total"),
                    "verify_ms": a.timings_ms.get("verify"),
                    "total_ms": a.timings_ms.get("total"),
                    "output_tokens": a.usage.get("output"),
                }
            )
            bar.update(1)
    finally:
        bar.close()
    summary = summarise_answers(details)
    if llm is not None:
        summary["generation"] = summarise_generation(details)
    return summary, timings, details


def summarise_answers(details: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Answer metrics from per-question details (see :func:`evaluate_answers`)."""
    answerable = [d for d in details if d["answerable"]]
    with_answers = [d for d in answerable if d["answers"]]
    answered = [d for d in answerable if not d["refused"]]
    cited = [ok for d in answered for ok in d["cited_gold"]]
    n_cites = sum(len(d["citations"]) for d in details)
    mismatches = sum(d["quote_mismatches"] for d in details)
    refusal = metrics.refusal_scores(
        [d["refused"] for d in details], [d["answerable"] for d in details]
    )
    answered_with = [d for d in with_answers if not d["refused"]]
    marked = [d for d in answered_with if d.get("marked") is not None]
    return {
        "questions": len(details),
        "answerable": len(answerable),
        "unanswerable": len(details) - len(answerable),
        "containment": metrics.mean(1.0 if d["contains"] else 0.0 for d in with_answers),
        "containment_when_answered": metrics.mean(
            1.0 if d["contains"] else 0.0 for d in answered_with
        ),
        "on_screen_containment": metrics.mean(
            1.0 if d.get("on_screen", d["contains"]) else 0.0 for d in with_answers
        ),
        "answer_chars_p50": metrics.percentile(
            [d["answer_chars"] for d in details if d.get("answer_chars") is not None], 50
        ),
        "marked": len(marked),
        "marked_coverage": len(marked) / len(answered_with) if answered_with else float("nan"),
        "marked_precision": metrics.mean(1.0 if d["marked_holds"] else 0.0 for d in marked),
        "citation_precision": metrics.mean(1.0 if ok else 0.0 for ok in cited),
        "citations": n_cites,
        "quotes_exact": (n_cites - mismatches) / n_cites if n_cites else float("nan"),
        "quote_mismatches": mismatches,
        "refusal_precision": refusal["precision"],
        "refusal_recall": refusal["recall"],
        "false_refusal_rate": refusal["false_refusal_rate"],
        "hallucination_rate": refusal["hallucination_rate"],
        "refused": sum(1 for d in details if d["refused"]),
    }


def _model_sentences(answer: Any) -> list[Any]:
    """The sentences a model wrote: all of a generative answer's; of an answer that fell
    back to the extractive one, those the verifier rejected (the quotes are not the
    model's)."""
    if answer.mode == "generative":
        return list(answer.sentences)
    return [s for s in answer.sentences if not s.supported]


def summarise_generation(details: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures of generative answers, after ALCE (Gao et al., 2023), per sentence.

    - citation precision: verified sentences among those the model cited;
    - citation recall: sentences with a verified citation among all the model wrote;
    - generative / fallback: answers kept as generative, and answers that fell back to
      the extractive one (a fault, or nothing verifiable);
    - latencies (time to first token, the whole reply, the verifier) and output tokens.
    """
    ran = [d for d in details if d.get("llm_ms") is not None or d.get("notice")]
    cited = sum(d["cited_sentences"] for d in ran)
    all_sentences = sum(d["sentences"] for d in ran)
    verified = sum(d["verified_sentences"] for d in ran)
    verified_cited = sum(d["verified_cited"] for d in ran)
    gen = [d for d in details if d["mode"] == "generative" and not d["refused"]]

    def p50(key: str) -> float | None:
        values = [float(d[key]) for d in details if d.get(key) is not None]
        return metrics.percentile(values, 50) if values else None

    tokens = [d["output_tokens"] for d in details if d.get("output_tokens")]
    return {
        "model_calls": len(ran),
        "generative": len(gen),
        "fallbacks": sum(1 for d in details if d["mode"] == "extractive" and d["notice"]),
        "model_refusals": sum(
            1
            for d in details
            if d["mode"] == "generative" and d["refused"] and d.get("llm_ms") is not None
        ),
        "citation_precision": verified_cited / cited if cited else float("nan"),
        "citation_recall": verified / all_sentences if all_sentences else float("nan"),
        "first_token_ms_p50": p50("first_token_ms"),
        "llm_ms_p50": p50("llm_ms"),
        "verify_ms_p50": p50("verify_ms"),
        "total_ms_p50": p50("total_ms"),
        "output_tokens_mean": sum(tokens) / len(tokens) if tokens else None,
    }


def default_index_for(dataset: Dataset, settings: Settings) -> Path:
    """A reusable index folder for a data set and index settings (keeps the embedding cache).

    ``eval-<name>-<hash of the index settings>`` beside the default index.
    """
    from ..paths import default_index_dir

    fields = json.dumps(settings.index_fields(), sort_keys=True)
    tag = hashlib.sha256(fields.encode()).hexdigest()[:8]
    return default_index_dir().parent / f"eval-{dataset.name}-{tag}"


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB.

    Linux's per-process ``VmHWM`` comes first: ``ru_maxrss`` survives fork + exec, so a
    child process would report its parent's peak. ``None`` where neither is available.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        from importlib.metadata import version

        info["sourcier"] = version("sourcier")
    except Exception:  # not installed (running from a source tree)
        info["sourcier"] = None
    try:
        load = os.getloadavg()
        info["load_average"] = [round(x, 2) for x in load]
    except (AttributeError, OSError):
        pass
    return info


def build_for(
    dataset: Dataset,
    index_path: Path,
    settings: Settings,
    *,
    show_progress: bool | None = None,
) -> Any:
    """Build or update the index of a data set; returns the BuildReport."""
    from ..api import build_index, build_index_from_records

    if dataset.from_records:
        return build_index_from_records(
            list(dataset.records), index=index_path, settings=settings, show_progress=show_progress
        )
    return build_index(
        list(dataset.corpus_paths) if dataset.corpus_paths is not None else None,
        index=index_path,
        settings=settings,
        show_progress=show_progress,
    )


def run(
    dataset: Dataset | str | Path,
    *,
    settings: Settings | None = None,
    split: str = "all",
    limit: int | None = None,
    index: str | Path | None = None,
    methods: Sequence[str] = METHODS,
    answers: bool = True,
    fresh: bool = False,
    max_k: int = 20,
    show_progress: bool | None = None,
    llm: Any = None,
) -> Report:
    """Index a data set (incrementally) and measure retrieval, answers and speed.

    Args:
        dataset: a :class:`Dataset`, a folder, or a named set ("seed", "piaf", "piaf-sample").
        settings: index and query settings (default: ``Settings()``).
        split: "all", "dev" or "test" (see :func:`split_of`).
        limit: evaluate a fixed sample of this many questions of the split.
        index: the index folder (default: :func:`default_index_for`, reused between runs).
        methods: retrieval methods to compare.
        answers: also run ``ask()`` on every question.
        fresh: build into a new temporary folder (measures a full build), removed after.
        max_k: the deepest cut-off for retrieval metrics.
        show_progress: progress bars on stderr (``None``: when stderr is a terminal).
        llm: also answer every question with this chat model (a LangChain chat model,
            a ``"provider:model"`` string or the ``llm`` settings); the report then has
            ``generative`` beside the extractive ``answers``.

    Returns:
        The :class:`Report`.

    Raises:
        InputError: a bad data set, split or method.
        IndexMismatchError: ``index`` was built with other index settings.
    """
    from ..assistant import Assistant
    from ..cache import default_cache
    from ..storage.generations import disk_size

    settings = settings or Settings()
    full = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    ds = full.select(split, limit)
    tmp: str | None = None
    if fresh:
        tmp = tempfile.mkdtemp(prefix="sourcier-eval-")
        index_path = Path(tmp) / "index"
    else:
        index_path = Path(index) if index is not None else default_index_for(full, settings)
    try:
        t0 = time.perf_counter()
        default_cache().embedder(settings.model).dim  # noqa: B018 - load the model first: time indexing only
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_for(full, index_path, settings, show_progress=show_progress)
        build_s = time.perf_counter() - t0
        idx = Assistant.open(index_path, settings=settings)
        n_chunks = len(idx.index.snapshot.chunks)
        build = {
            "model_load_s": round(load_s, 3),
            "seconds": round(build_s, 3),
            "chunks": n_chunks,
            "embedded": report.embedded,
            "chunks_added": report.chunks_added,
            "full_build": report.embedded > 0 and report.chunks_unchanged == 0,
            "chunks_per_s": (report.embedded / build_s) if report.embedded else None,
        }
        retrieval, rdetails = evaluate_retrieval(
            idx, ds, methods=methods, max_k=max_k, show_progress=show_progress
        )
        answer_summary = None
        stage_samples: dict[str, list[float]] = {}
        adetails: list[dict[str, Any]] = []
        generative: dict[str, Any] | None = None
        if answers:
            answer_summary, stage_samples, adetails = evaluate_answers(
                idx, ds, show_progress=show_progress
            )
            if llm is not None:
                generative, _, gdetails = evaluate_answers(
                    idx,
                    ds,
                    show_progress=show_progress,
                    llm=llm,
                )
                generative["model"] = gdetails[0]["model"] if gdetails else None
                for row, grow in zip(adetails, gdetails, strict=True):
                    row["generative"] = {
                        k: grow[k]
                        for k in (
                            "answer",
                            "refused",
                            "contains",
                            "mode",
                            "notice",
                            "sentences",
                            "verified_sentences",
                            "first_token_ms",
                            "llm_ms",
                        )
                    }
        size = disk_size(index_path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    details = _merge_details(rdetails, adetails)
    n_docs = len(idx.index.snapshot.documents)
    return Report(
        dataset={
            "name": full.name,
            "folder": str(full.folder),
            "split": split,
            "limit": limit,
            "questions": len(ds.queries),
            "answerable": sum(1 for q in ds.queries if q.answerable),
            "documents": n_docs,
            "chunks": n_chunks,
            "queries_sha256": file_sha256(full.folder / "queries.jsonl"),
            "source": full.info.get("source"),
            "licence": full.info.get("licence"),
        },
        settings=settings.to_dict(),
        retrieval=retrieval,
        answers=answer_summary,
        speed={
            "stages_ms": metrics.summarise_latencies(stage_samples),
            "samples_ms": {s: [round(v, 3) for v in vals] for s, vals in stage_samples.items()},
            "build": build,
            "index_bytes": size,
            "index_path": None if fresh else str(index_path),
            "peak_rss_mb": peak_rss_mb(),
        },
        machine=machine_info(),
        details=details,
        generative=generative,
    )


def _merge_details(
    retrieval: list[dict[str, Any]], answers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for row in retrieval:
        by_id[row["id"]] = dict(row)
    for row in answers:
        by_id.setdefault(row["id"], {}).update(row)
    return list(by_id.values())
