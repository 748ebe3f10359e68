"""Answers at a glance, before and after, in one run: the "sentences" style against the
"glance" style on the same index, question by question.

For each data set (by default the seed set, PIAF test and both false-premise sets) every
question is asked once per style, and the script writes, per style, the answer figures
of ``sourcier eval``: containment in the answer text, on-screen containment (in the
answer text or a quote of its citations), the answer text's median length, the marked
fact's precision (the mark holds a gold string) and coverage (answered questions with
a mark), refusals and false refusals; and how many questions changed refusal between
the two styles (it must be none: the styles differ only in how the quotes are shown).

    python benchmarks/answer_line.py --out eval/reports/answers-at-a-glance-2026-12-08
    python benchmarks/answer_line.py --calibrate      # PIAF dev: marks per asked kind

``--calibrate`` asks PIAF dev with the glance style only and prints, per asked kind
(who, when, where, how many), how many answers were marked and how many marks hold a
gold string, with the wrong marks written to ``--out`` for reading. A tiny run:
``--datasets seed --limit 5 --model sourcier/hashing-bow``.

Only the public API is used: ``sourcier.Settings`` and ``sourcier.evaluation.run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

SETS = {
    # name -> (data set, split)
    "seed": ("seed", "all"),
    "piaf-test": ("piaf", "test"),
    "piaf-dev": ("piaf", "dev"),
    "premise": ("eval/premise", "all"),
    "premise-piaf": ("eval/premise-piaf", "all"),
}
STYLES = ("sentences", "glance")
FIGURES = (
    "containment",
    "on_screen_containment",
    "answer_chars_p50",
    "marked",
    "marked_coverage",
    "marked_precision",
    "refused",
    "refusal_recall",
    "false_refusal_rate",
    "citation_precision",
    "quote_mismatches",
)


def measure(name: str, *, model: str | None, limit: int | None, index_root: Path) -> dict:
    """Both styles on one data set: their answer figures and the refusals that differ."""
    from sourcier import Settings
    from sourcier.evaluation import run

    dataset, split = SETS[name]
    base = Settings(model=model) if model else Settings()
    out: dict[str, Any] = {"dataset": dataset, "split": split, "styles": {}}
    details = {}
    for style in STYLES:
        report = run(
            dataset,
            settings=base.with_(answer_style=style),
            split=split,
            limit=limit,
            index=index_root / f"{Path(dataset).name}-{base.model.name.replace('/', '_')}",
            methods=("hybrid",),
            show_progress=False,
        )
        assert report.answers is not None
        out["styles"][style] = {k: report.answers.get(k) for k in FIGURES}
        details[style] = {d["id"]: d for d in report.details}
    before, after = details["sentences"], details["glance"]
    out["questions"] = len(after)
    out["refusals_changed"] = sorted(
        q for q in after if after[q]["refused"] != before[q]["refused"]
    )
    out["machine"] = report.machine
    out["wrong_marks"] = [
        {k: d[k] for k in ("id", "question", "asked", "marked", "answers", "answer")}
        for d in after.values()
        if d.get("marked_holds") is False
    ]
    return out


def calibrate(*, model: str | None, limit: int | None, index_root: Path) -> dict:
    """Marks per asked kind on PIAF dev (glance style): marked, right, answered."""
    from sourcier import Settings
    from sourcier.evaluation import run

    base = Settings(model=model) if model else Settings()
    report = run(
        "piaf",
        settings=base,
        split="dev",
        limit=limit,
        index=index_root / f"piaf-{base.model.name.replace('/', '_')}",
        methods=("hybrid",),
        show_progress=False,
    )
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    wrong = []
    for d in report.details:
        if d["refused"] or not d["answers"]:
            continue
        kind = kinds[str(d["asked"])]
        kind["answered"] += 1
        kind["line_holds_gold"] += int(d["contains"])
        if d["marked"] is not None:
            kind["marked"] += 1
            kind["right"] += int(bool(d["marked_holds"]))
            if not d["marked_holds"]:
                wrong.append({k: d[k] for k in ("id", "question", "marked", "answers", "answer")})
    return {"kinds": {k: dict(v) for k, v in kinds.items()}, "wrong": wrong}


def table(results: dict[str, dict]) -> str:
    """The before/after figures as a Markdown table, one row per figure and data set."""
    lines = ["| data set | figure | sentences (before) | glance (after) |", "|---|---|---|---|"]
    for name, r in results.items():
        for k in FIGURES:
            b, a = (r["styles"][s][k] for s in STYLES)
            lines.append(f"| {name} | {k} | {_f(b)} | {_f(a)} |")
        lines.append(f"| {name} | refusals changed | | {len(r['refusals_changed'])} |")
    return "\n".join(lines) + "\n"


def _f(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="seed,piaf-test,premise,premise-piaf")
    parser.add_argument("--model", default=None, help="embedding model (default: e5-small)")
    parser.add_argument("--limit", type=int, default=None, help="questions per data set")
    parser.add_argument("--index-root", type=Path, default=Path("index/answer-line"))
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json")
    parser.add_argument("--calibrate", action="store_true", help="marks per kind on PIAF dev")
    args = parser.parse_args(argv)
    if args.calibrate:
        result = calibrate(model=args.model, limit=args.limit, index_root=args.index_root)
        for kind, v in sorted(result["kinds"].items()):
            marked, right = v.get("marked", 0), v.get("right", 0)
            print(
                f"{kind:9} answered {v['answered']:4}  marked {marked:4}  right {right:4}  "
                f"precision {right / marked if marked else float('nan'):.3f}"
            )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "calibration.json").write_text(
                json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8"
            )
        return 0
    results = {
        name: measure(name, model=args.model, limit=args.limit, index_root=args.index_root)
        for name in args.datasets.split(",")
    }
    print(table(results))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(
            json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        (args.out / "table.md").write_text(table(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
