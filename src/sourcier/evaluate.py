"""`sourcier eval`: measure retrieval, answers and speed on a question set.

A data set is a folder with ``queries.jsonl`` and a corpus, either

- ``corpus.jsonl``: ready-made passages ``{"id", "title", "text"}`` (PIAF; indexed with
  :func:`~sourcier.api.build_index_from_records`), gold documents named by record id; or
- documents as files: a ``corpus/`` sub-folder, or ``"corpus": "bundled"`` / a relative
  folder in an optional ``dataset.json``; gold documents named by file name (or path
  relative to the corpus folder).

Each line of ``queries.jsonl`` is ``{"id", "question", "gold_ids" | "gold_docs",
"answers", "answerable", "language"}``; only ``id`` and ``question`` are required.
A question without gold documents and with ``"answerable": false`` is one the corpus
cannot answer: it must be refused.

The questions of a corpus.jsonl data set are split into a ``dev`` and a ``test`` half
by a hash of the article title of their gold passage, so no article is in both halves
(:func:`split_of`). Tune on ``dev``; report ``test``.

What :func:`run` measures (see :mod:`sourcier.metrics` for the exact definitions):

- retrieval, per method ("bm25", "dense", "hybrid"): Recall@1/5/10/20, MRR@10,
  nDCG@10, and search latency;
- answers (``ask()``): gold answer contained in the answer text, citation precision,
  quotes equal to their spans, refusal precision/recall, false refusals;
- speed: per-stage latency p50/p95, build throughput, index size, peak memory.

Module imports stay light (stdlib, click, numpy); matplotlib and the model stack are
imported inside the functions that need them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from . import metrics
from .errors import InputError
from .options import llm_options
from .paths import file_sha256
from .settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "NAMED_DATASETS",
    "Dataset",
    "Query",
    "Report",
    "eval_cmd",
    "evaluate_answers",
    "evaluate_retrieval",
    "load_dataset",
    "resolve_dataset",
    "run",
    "save_report",
    "split_of",
]

METHODS = ("bm25", "dense", "hybrid")
NAMED_DATASETS = ("seed", "piaf", "piaf-sample")
RECALL_KS = (1, 5, 10, 20)
SPLITS = ("all", "dev", "test")
SPLIT_SALT = "sourcier-split-v1"
STAGES = ("embed_query", "dense", "bm25", "fusion", "answer", "total")

_EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"
_TAGS = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class Query:
    """One evaluation question.

    Attributes:
        id: unique within the data set.
        question: the text asked.
        gold: keys of the documents that answer it (record ids or file names).
        answers: accepted answer strings (verbatim in a gold document).
        answerable: False for a question the corpus cannot answer (must be refused).
        language: "fr", "en" or None when not given.
        group: what the dev/test split hashes (the gold article's title).
    """

    id: str
    question: str
    gold: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    answerable: bool = True
    language: str | None = None
    group: str = ""


@dataclass(frozen=True)
class Dataset:
    """A corpus and its questions.

    Attributes:
        name: short name (the folder name unless ``dataset.json`` says otherwise).
        folder: where it was loaded from.
        queries: the questions (after any split or limit).
        records: the passages of a ``corpus.jsonl`` data set, else empty.
        corpus_paths: the files or folders to index for a file-based data set, or
            None for the bundled corpus.
        corpus_root: the folder document keys are relative to (file-based data sets).
        info: the ``dataset.json`` content, if any.
        split: "all", "dev" or "test".
    """

    name: str
    folder: Path
    queries: tuple[Query, ...]
    records: tuple[dict[str, str], ...] = ()
    corpus_paths: tuple[Path, ...] | None = None
    corpus_root: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    split: str = "all"

    @property
    def from_records(self) -> bool:
        return bool(self.records)

    def select(self, split: str = "all", limit: int | None = None) -> Dataset:
        """The questions of one split, optionally a fixed sample of ``limit`` of them.

        The sample is deterministic: questions ordered by a hash of their id.
        """
        if split not in SPLITS:
            raise InputError(f"split ({split!r}) must be one of {', '.join(SPLITS)}")
        queries = [q for q in self.queries if split == "all" or split_of(q.group) == split]
        if limit is not None:
            if limit < 1:
                raise InputError(f"limit ({limit}) must be positive")
            ordered = sorted(queries, key=lambda q: _hash(f"limit:{q.id}"))[:limit]
            keep = {q.id for q in ordered}
            queries = [q for q in queries if q.id in keep]
        return replace(self, queries=tuple(queries), split=split)

    def doc_key(self, source: str) -> str:
        """The key gold lists use for the document indexed from ``source``."""
        if source.startswith("record:"):
            return source[len("record:") :]
        path = Path(source)
        if self.corpus_root is not None:
            try:
                return path.resolve().relative_to(self.corpus_root.resolve()).as_posix()
            except ValueError:
                pass
        return path.name


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)


def split_of(group: str) -> str:
    """ "dev" or "test" for an article title (or any group key), by a salted sha256.

    Deterministic and stable across machines and Python versions: the first 48 bits of
    ``sha256("sourcier-split-v1:" + group)``, even -> dev, odd -> test.
    """
    return "dev" if _hash(f"{SPLIT_SALT}:{group}") % 2 == 0 else "test"


def plain_title(title: str) -> str:
    """A title without HTML markup or surrounding spaces (PIAF titles carry ``<i>``)."""
    return " ".join(_TAGS.sub("", title).split())


def resolve_dataset(name_or_path: str | Path) -> Path:
    """The folder of a data set: an existing folder, or a named set in the checkout's eval/.

    Raises:
        InputError: neither a folder nor a known name.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name in NAMED_DATASETS:
        folder = _EVAL_DIR / name
        if folder.is_dir():
            return folder
        raise InputError(
            f"the data set {name!r} lives in the eval/ folder of a sourcier source checkout, "
            "which this installation does not have; pass a data set folder instead"
        )
    raise InputError(
        f"no data set {name!r}: give {', '.join(NAMED_DATASETS)} or a folder with "
        "queries.jsonl and corpus.jsonl (or a corpus/ folder of documents)"
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err}") from err
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise InputError(f"{path}:{n}: not valid JSON ({err})") from err
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
    return rows


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(f"{where}: {name} must be a string or a list of strings")


def load_dataset(folder: str | Path) -> Dataset:
    """Load a data set folder (see the module docstring for the format).

    Args:
        folder: the folder, or one of the names ``seed``, ``piaf``, ``piaf-sample``.

    Returns:
        The data set with every question (use :meth:`Dataset.select` for a split).

    Raises:
        InputError: missing files, bad JSON, duplicate ids, or gold documents that
            are not in the corpus.
    """
    folder = resolve_dataset(folder)
    info: dict[str, Any] = {}
    manifest = folder / "dataset.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError as err:
            raise InputError(f"{manifest}: not valid JSON ({err})") from err
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise InputError(f"{folder} has no queries.jsonl")
    name = str(info.get("name") or folder.name)

    records: list[dict[str, str]] = []
    corpus_paths: tuple[Path, ...] | None = None
    corpus_root: Path | None = None
    known: set[str] = set()
    titles: dict[str, str] = {}
    if (folder / "corpus.jsonl").is_file():
        path = folder / "corpus.jsonl"
        for n, row in enumerate(_read_jsonl(path), start=1):
            rid, text = row.get("id"), row.get("text")
            if not isinstance(rid, str) or not rid or not isinstance(text, str):
                raise InputError(f"{path}: record {n} needs a string 'id' and 'text'")
            if rid in known:
                raise InputError(f"{path}: duplicate id {rid!r}")
            known.add(rid)
            title = row.get("title") if isinstance(row.get("title"), str) else ""
            titles[rid] = plain_title(title or "")
            records.append({"id": rid, "title": title or "", "text": text})
    else:
        corpus = info.get("corpus")
        if corpus == "bundled":
            from .paths import bundled_corpus_dir

            corpus_root = bundled_corpus_dir()
            corpus_paths = None
        else:
            corpus_root = (folder / corpus) if isinstance(corpus, str) else folder / "corpus"
            if not corpus_root.is_dir():
                raise InputError(
                    f"{folder} has neither corpus.jsonl nor a corpus folder ({corpus_root})"
                )
            corpus_paths = (corpus_root,)
        known = {
            p.relative_to(corpus_root).as_posix() for p in corpus_root.rglob("*") if p.is_file()
        }
        known |= {k.rsplit("/", 1)[-1] for k in known}

    queries: list[Query] = []
    seen: set[str] = set()
    for n, row in enumerate(_read_jsonl(queries_path), start=1):
        where = f"{queries_path}:{n}"
        qid, question = row.get("id", f"q{n}"), row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{where}: 'question' must be non-empty text")
        qid = str(qid)
        if qid in seen:
            raise InputError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        gold = _strings(row.get("gold_ids", row.get("gold_docs")), where, "gold_ids")
        unknown = [g for g in gold if g not in known]
        if unknown:
            raise InputError(f"{where}: gold document(s) not in the corpus: {', '.join(unknown)}")
        answerable = row.get("answerable", True)
        if not isinstance(answerable, bool):
            raise InputError(f"{where}: 'answerable' must be true or false")
        if answerable and not gold:
            raise InputError(f"{where}: an answerable question needs gold documents")
        group = titles.get(gold[0], gold[0]) if gold else f"unanswerable:{qid}"
        language = row.get("language")
        queries.append(
            Query(
                id=qid,
                question=question.strip(),
                gold=gold,
                answers=_strings(row.get("answers"), where, "answers"),
                answerable=answerable,
                language=language if isinstance(language, str) else None,
                group=group,
            )
        )
    if not queries:
        raise InputError(f"{queries_path} holds no question")
    return Dataset(
        name=name,
        folder=folder,
        queries=tuple(queries),
        records=tuple(records),
        corpus_paths=corpus_paths,
        corpus_root=corpus_root,
        info=info,
    )


# --------------------------------------------------------------------------- running

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
        index: an open :class:`~sourcier.index.Index` (its query settings are used).
        dataset: the questions; unanswerable ones are skipped.
        methods: retrieval modes to compare.
        max_k: how many chunks to retrieve (the largest cut-off).
        show_progress: a progress bar on stderr (``None``: when stderr is a terminal).

    Returns:
        ``(summary, details)``: per method ``recall@k``, ``mrr@10``, ``ndcg@10``, the
        Recall@1..max_k ``curve`` and search ``latency_ms``; and one dict per
        question with the rank of the first gold chunk per method.
    """
    from .api import search

    for m in methods:
        if m not in METHODS:
            raise InputError(f"method ({m!r}) must be one of {', '.join(METHODS)}")
    queries = [q for q in dataset.queries if q.answerable and q.gold]
    views = {
        m: index.configure(mode=m, k=max_k, candidates=max(index.settings.candidates, max_k))
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
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
) -> tuple[dict[str, Any], dict[str, list[float]], list[dict[str, Any]]]:
    """Ask every question with ``ask()`` and score the answers.

    One warm-up question is asked first and not timed, so latencies are warm.

    Args:
        index: an open :class:`~sourcier.index.Index` (its query settings are used).
        dataset: the questions.
        show_progress: a progress bar on stderr (``None``: when stderr is a terminal).
        llm / llm_base_url / llm_timeout: a chat model for generative answers (see
            :func:`~sourcier.api.ask`); the summary then also has the generation figures
            (see :func:`summarise_generation`).

    Returns:
        ``(summary, timings, details)``: the answer metrics; per-stage latency samples
        in milliseconds; one dict per question.
    """
    from .api import ask

    queries = list(dataset.queries)
    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    details: list[dict[str, Any]] = []
    texts: dict[str, str] = {}

    def doc_text(doc_id: str) -> str:
        if doc_id not in texts:
            texts[doc_id] = index.document(doc_id).text
        return texts[doc_id]

    if llm is not None:
        from .generative import resolve_llm

        llm = resolve_llm(llm, base_url=llm_base_url, timeout=llm_timeout)
    options = {"llm": llm, "llm_timeout": llm_timeout}
    if queries:
        ask(queries[0].question, index=index, **options)  # warm-up: weights, caches
    bar = _bar(len(queries), "Answers" if llm is None else "Generative answers", show_progress)
    try:
        for q in queries:
            a = ask(q.question, index=index, **options)
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
    return {
        "questions": len(details),
        "answerable": len(answerable),
        "unanswerable": len(details) - len(answerable),
        "containment": metrics.mean(1.0 if d["contains"] else 0.0 for d in with_answers),
        "containment_when_answered": metrics.mean(
            1.0 if d["contains"] else 0.0 for d in answered_with
        ),
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


@dataclass
class Report:
    """What one evaluation run measured; ``to_dict()`` is the ``--json`` output."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    retrieval: dict[str, dict[str, Any]]
    answers: dict[str, Any] | None
    speed: dict[str, Any]
    machine: dict[str, Any]
    details: list[dict[str, Any]] = field(default_factory=list, repr=False)
    generative: dict[str, Any] | None = None

    def to_dict(self, *, details: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "dataset": self.dataset,
            "settings": self.settings,
            "retrieval": self.retrieval,
            "answers": self.answers,
            "generative": self.generative,
            "speed": self.speed,
            "machine": self.machine,
        }
        if details:
            d["details"] = self.details
        return _jsonable(d)

    def to_text(self) -> str:
        """The terminal table."""
        return format_report(self)

    def to_markdown(self) -> str:
        """The report as Markdown (tables)."""
        return format_report(self, markdown=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def default_index_for(dataset: Dataset, settings: Settings) -> Path:
    """A reusable index folder for a data set and index settings (keeps the embedding cache).

    ``eval-<name>-<hash of the index settings>`` beside the default index.
    """
    from .paths import default_index_dir

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
    from .api import build_index, build_index_from_records

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
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
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
        llm / llm_base_url / llm_timeout: also answer every question with this chat
            model; the report then has ``generative`` beside the extractive ``answers``.

    Returns:
        The :class:`Report`.

    Raises:
        InputError: a bad data set, split or method.
        IndexMismatchError: ``index`` was built with other index settings.
    """
    from .api import load_index
    from .store import disk_size

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
        from .embedders import make_embedder

        t0 = time.perf_counter()
        _ = make_embedder(settings).dim  # load the model first: time indexing only
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_for(full, index_path, settings, show_progress=show_progress)
        build_s = time.perf_counter() - t0
        idx = load_index(index_path, settings=settings)
        n_chunks = len(idx.snapshot.chunks)
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
                    llm_base_url=llm_base_url,
                    llm_timeout=llm_timeout,
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
    n_docs = len(idx.snapshot.documents)
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
        settings=asdict(settings),
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


# --------------------------------------------------------------------------- regression gate

GATED_RETRIEVAL = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
GATED_ANSWERS_UP = ("containment", "citation_precision", "refusal_recall", "quotes_exact")
GATED_ANSWERS_DOWN = ("false_refusal_rate",)


def gate_figures(report: Report) -> dict[str, Any]:
    """The figures the regression gate records and compares (a subset of the report)."""
    out: dict[str, Any] = {
        "retrieval": {m: {k: r[k] for k in GATED_RETRIEVAL} for m, r in report.retrieval.items()},
    }
    if report.answers is not None:
        out["answers"] = {k: report.answers[k] for k in GATED_ANSWERS_UP + GATED_ANSWERS_DOWN}
    return _jsonable(out)


def regressions(
    current: dict[str, Any], recorded: dict[str, Any], tolerance: dict[str, float]
) -> list[str]:
    """Where ``current`` is worse than ``recorded`` by more than the tolerance.

    Args:
        current / recorded: :func:`gate_figures` of a run and of the recorded baseline.
        tolerance: allowed absolute drop per metric name, with a ``"default"``.
            Higher is better for every metric except ``false_refusal_rate``; a
            ``quotes_exact`` below 1.0 always fails (every quote must equal its span).

    Returns:
        One line per regression (empty when the run is as good as recorded).
    """
    problems = []

    def check(where: str, name: str, now: float | None, then: float | None) -> None:
        if then is None:
            return
        if now is None:
            problems.append(f"{where} {name}: missing (recorded {then:.3f})")
            return
        tol = tolerance.get(name, tolerance.get("default", 0.0))
        if name in GATED_ANSWERS_DOWN:
            if now > then + tol + 1e-9:
                problems.append(f"{where} {name}: {now:.3f} > recorded {then:.3f} + {tol}")
        elif name == "quotes_exact" and now < 1.0:
            problems.append(f"{where} {name}: {now:.3f} (every quote must equal its span)")
        elif now < then - tol - 1e-9:
            problems.append(f"{where} {name}: {now:.3f} < recorded {then:.3f} - {tol}")

    for method, figures in recorded.get("retrieval", {}).items():
        mine = current.get("retrieval", {}).get(method, {})
        for name, then in figures.items():
            check(f"retrieval {method}", name, mine.get(name), then)
    for name, then in recorded.get("answers", {}).items():
        check("answers", name, (current.get("answers") or {}).get(name), then)
    return problems


# --------------------------------------------------------------------------- output


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], markdown: bool) -> list[str]:
    rows = [list(r) for r in rows]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [
        fmt.format(*r) for r in rows
    ]


def format_report(report: Report, *, markdown: bool = False) -> str:
    """The report as terminal text or Markdown."""
    d, s = report.dataset, report.settings
    h = "## " if markdown else ""
    lines: list[str] = []
    title = f"{d['name']} (split {d['split']}"
    title += f", limit {d['limit']})" if d.get("limit") else ")"
    if markdown:
        lines += [f"# sourcier eval: {title}", ""]
    else:
        lines += [f"sourcier eval: {title}"]
    lines.append(
        f"{d['questions']} questions ({d['answerable']} answerable), {d['documents']} documents, "
        f"{d['chunks']} chunks; model {s['model']}, chunks {s['chunk_tokens']}/"
        f"{s['chunk_overlap_tokens']} tokens, title embedded: {s['embed_title']}, fusion "
        f"{s['fusion']} (dense weight {s['dense_weight']}), k {s['k']}, refusal threshold "
        f"{s['refusal_threshold']}"
    )
    lines.append("")
    lines.append(f"{h}Retrieval (a hit = a chunk of a gold document)")
    if markdown:
        lines.append("")
    rows = []
    for m, r in report.retrieval.items():
        rows.append(
            [m]
            + [_f(r[f"recall@{k}"]) for k in RECALL_KS]
            + [_f(r["mrr@10"]), _f(r["ndcg@10"]), _f(r["latency_ms"].get("p50"), 1)]
        )
    lines += _table(
        ["method", "R@1", "R@5", "R@10", "R@20", "MRR@10", "nDCG@10", "search p50 ms"],
        rows,
        markdown,
    )
    a = report.answers
    if a is not None:
        lines += ["", f"{h}Answers (ask())"]
        if markdown:
            lines.append("")
        arows = [
            ["answer contains a gold string", _f(a["containment"])],
            ["  among answered questions", _f(a["containment_when_answered"])],
            ["citation precision", _f(a["citation_precision"])],
            [
                "quotes equal to their span",
                f"{_f(a['quotes_exact'])} ({a['quote_mismatches']} mismatches)",
            ],
            ["refusal precision", _f(a["refusal_precision"])],
            ["refusal recall (unanswerable refused)", _f(a["refusal_recall"])],
            ["false refusals (answerable refused)", _f(a["false_refusal_rate"])],
            [
                "questions / answerable / refused",
                f"{a['questions']} / {a['answerable']} / {a['refused']}",
            ],
        ]
        lines += _table(["metric", "value"], arows, markdown)
    g = report.generative
    if g is not None and a is not None:
        gen = g["generation"]
        lines += ["", f"{h}Generative answers ({g.get('model')}) beside the extractive ones"]
        if markdown:
            lines.append("")
        grows = [
            ["answer contains a gold string", _f(a["containment"]), _f(g["containment"])],
            ["refusal recall (unanswerable refused)", _f(a["refusal_recall"]),
             _f(g["refusal_recall"])],
            ["false refusals", _f(a["false_refusal_rate"]), _f(g["false_refusal_rate"])],
            ["sentence citation precision (ALCE)", "1.000", _f(gen["citation_precision"])],
            ["sentence citation recall (ALCE)", "1.000", _f(gen["citation_recall"])],
            ["answers kept generative / fell back", "-",
             f"{gen['generative']} / {gen['fallbacks']}"],
            ["time to first token p50 ms", "-", _f(gen["first_token_ms_p50"], 0)],
            ["model reply p50 ms", "-", _f(gen["llm_ms_p50"], 0)],
            ["verifier p50 ms", "-", _f(gen["verify_ms_p50"], 1)],
            ["ask() total p50 ms", _f(report.speed["stages_ms"].get("total", {}).get("p50"), 1),
             _f(gen["total_ms_p50"], 0)],
            ["output tokens (mean)", "-", _f(gen["output_tokens_mean"], 1)],
        ]  # fmt: skip
        lines += _table(["metric", "extractive", "generative"], grows, markdown)
    sp = report.speed
    lines += ["", f"{h}Speed"]
    if markdown:
        lines.append("")
    srows = [
        [stage, _f(v["p50"], 1), _f(v["p95"], 1), _f(v["mean"], 1)]
        for stage, v in sp["stages_ms"].items()
    ]
    if srows:
        lines += _table(["ask() stage", "p50 ms", "p95 ms", "mean ms"], srows, markdown)
        lines.append("")
    b = sp["build"]
    if b["chunks_per_s"]:
        lines.append(
            f"Index build: {b['embedded']} chunks embedded in {b['seconds']:.1f} s "
            f"({b['chunks_per_s']:.1f} chunks/s)."
        )
    else:
        lines.append(f"Index up to date: re-index took {b['seconds']:.2f} s (nothing embedded).")
    lines.append(
        f"Index size on disk: {sp['index_bytes'] / 1e6:.1f} MB; peak memory (RSS): "
        f"{_f(sp['peak_rss_mb'], 0)} MB."
    )
    mach = report.machine
    lines.append(
        f"Machine: {mach['cpu']}, {mach['cores']} cores, Python {mach['python']}, {mach['date']}."
    )
    return "\n".join(lines) + "\n"


def save_report(report: Report, folder: str | Path) -> list[Path]:
    """Write report.md, report.json, questions.jsonl and the PNG plots into ``folder``.

    Returns:
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    md = folder / "report.md"
    md.write_text(report.to_markdown() + _plots_md(), encoding="utf-8")
    written.append(md)
    js = folder / "report.json"
    js.write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    written.append(js)
    qs = folder / "questions.jsonl"
    with qs.open("w", encoding="utf-8") as f:
        for row in report.details:
            f.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
    written.append(qs)
    written += plot_report(report, folder)
    return written


def _plots_md() -> str:
    return "\n![Recall@k](recall_at_k.png)\n\n![Latency](latency.png)\n"


def plot_report(report: Report, folder: Path) -> list[Path]:
    """Recall@k curves per method and a histogram of ask() latency (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for m, r in report.retrieval.items():
        curve = r["curve"]
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=m)
    ax.set_xlabel("k (chunks retrieved)")
    ax.set_ylabel("Recall@k")
    ax.set_title(f"{report.dataset['name']} ({report.dataset['split']}): Recall@k")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = folder / "recall_at_k.png"
    fig.savefig(path)
    plt.close(fig)
    out.append(path)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    samples = report.speed.get("samples_ms", {})
    total = samples.get("total") or []
    if total:
        ax.hist(total, bins=min(40, max(5, len(total) // 5)), color="#4472c4")
        for q, style in ((50, "--"), (95, ":")):
            v = metrics.percentile(total, q)
            ax.axvline(v, color="black", linestyle=style, label=f"p{q} {v:.0f} ms")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no ask() timings", ha="center", va="center")
    ax.set_xlabel("ask() latency (ms)")
    ax.set_ylabel("questions")
    ax.set_title(f"{report.dataset['name']}: ask() latency")
    fig.tight_layout()
    path = folder / "latency.png"
    fig.savefig(path)
    plt.close(fig)
    out.append(path)
    return out


def default_report_dir(report: Report, root: Path | None = None) -> Path:
    """``eval/reports/<dataset>[-<split>]-<date>`` (a suffix is added if it exists)."""
    base = (
        root
        if root is not None
        else (_EVAL_DIR / "reports" if _EVAL_DIR.is_dir() else Path("eval-reports"))
    )
    split = report.dataset["split"]
    name = report.dataset["name"] + ("" if split == "all" else f"-{split}")
    stamp = _dt.date.today().isoformat()
    target = base / f"{name}-{stamp}"
    n = 2
    while target.exists():
        target = base / f"{name}-{stamp}-{n}"
        n += 1
    return target


# --------------------------------------------------------------------------- CLI


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    defaults = asdict(Settings())
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise InputError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(defaults)}"
            )
        default = defaults[key]
        try:
            value: Any
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            elif raw.lower() in ("none", "null") and key in ("query_prefix", "passage_prefix"):
                value = None
            else:
                value = raw
        except ValueError:
            raise InputError(f"--set {pair!r}: {raw!r} is not a valid {key}") from None
        out[key] = value
    return out


@click.command("eval")
@click.argument("dataset")
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="all",
    show_default=True,
    help="Questions to evaluate: dev/test halves split by article (corpus.jsonl sets).",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="Evaluate a fixed sample of N questions of the split.",
)
@click.option(
    "--index",
    "index_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index folder to build/reuse (default: index/eval-<dataset>-<hash>).",
)
@click.option(
    "--model",
    envvar="SOURCIER_MODEL",
    default=None,
    help="Embedding model (default multilingual-e5-small; sourcier/hashing-bow: fast).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set chunk_tokens=160 --set dense_weight=0.6.",
)
@click.option(
    "--methods",
    default=",".join(METHODS),
    show_default=True,
    help="Retrieval methods to compare (comma-separated).",
)
@click.option("--no-answers", is_flag=True, help="Retrieval only: do not call ask().")
@click.option(
    "--fresh",
    is_flag=True,
    help="Build a fresh index in a temporary folder (measures a full build).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write report.md/json and plots (default eval/reports/<dataset>-<date>).",
)
@click.option("--no-report", is_flag=True, help="Do not write report files.")
@llm_options
def eval_cmd(
    dataset: str,
    split: str,
    limit: int | None,
    index_path: Path | None,
    model: str | None,
    overrides: tuple[str, ...],
    methods: str,
    no_answers: bool,
    fresh: bool,
    as_json: bool,
    report_dir: Path | None,
    no_report: bool,
    llm: str | None,
    llm_base_url: str | None,
    llm_timeout: float | None,
) -> None:
    """Measure retrieval, answers and speed on DATASET (seed, piaf, piaf-sample or a folder).

    A folder holds queries.jsonl ({"id", "question", "gold_ids", "answers",
    "answerable"}) and corpus.jsonl ({"id", "title", "text"}) or a corpus/ folder of
    documents (gold_ids are then file names). See eval/README.md.
    """
    changes = _parse_overrides(overrides)
    if model:
        changes["model"] = model
    settings = Settings().with_(**changes)
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    report = run(
        dataset,
        settings=settings,
        split=split,
        limit=limit,
        index=index_path,
        methods=chosen,
        answers=not no_answers,
        fresh=fresh,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
    )
    written: list[Path] = []
    if not no_report:
        target = report_dir if report_dir is not None else default_report_dir(report)
        written = save_report(report, target)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(report.to_text())
    if written:
        click.echo(f"Report: {written[0].parent}", err=as_json)
