"""What an evaluation run measured (:class:`Report`): its text, Markdown, JSON and plots,
and the quality regression gate over it."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import metrics
from .datasets import EVAL_DIR
from .metrics import RECALL_KS


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


# --------------------------------------------------------------------------- regression gate

GATED_RETRIEVAL = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# on-screen containment, not the answer text's: the glance answer shows one quote in its
# text and the others in its sources (recorded before it, the two were the same figure)
GATED_ANSWERS_UP = (
    "on_screen_containment",
    "citation_precision",
    "refusal_recall",
    "quotes_exact",
)
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
    model, index, retrieval, answer = s["model"], s["index"], s["retrieval"], s["answer"]
    lines.append(
        f"{d['questions']} questions ({d['answerable']} answerable), {d['documents']} documents, "
        f"{d['chunks']} chunks; model {model['name']}, chunks {index['chunk_tokens']}/"
        f"{index['chunk_overlap_tokens']} tokens, title embedded: {index['embed_title']}, "
        f"fusion {retrieval['fusion']} (dense weight {retrieval['dense_weight']}), "
        f"k {retrieval['k']}, second stage {retrieval['second_stage']}, refusal threshold "
        f"{answer['refusal_threshold']}"
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
            ["on screen: in the answer or a quote", _f(a.get("on_screen_containment"))],
            ["answer length p50 (characters)", _f(a.get("answer_chars_p50"), 0)],
            [
                "marked fact holds a gold string",
                f"{_f(a.get('marked_precision'))} ({a.get('marked', 0)} marked, coverage "
                f"{_f(a.get('marked_coverage'))})",
            ],
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
        else (EVAL_DIR / "reports" if EVAL_DIR.is_dir() else Path("eval-reports"))
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
