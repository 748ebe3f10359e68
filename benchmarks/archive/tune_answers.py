"""Choose the answer settings: refusal threshold, dense evidence range, k, answer sentences.

Labelled questions come from two places:

- the seed set (eval/seed): 49 answerable questions and 12 the corpus cannot answer;
- PIAF dev, twice: a fixed sample of questions as they are (answerable), and the same
  questions with their gold article hidden by a filter (``filters={"doc_ids": every
  passage of other articles}``), which makes them unanswerable ("held-out article"
  negatives; another article may still answer a few, so their refusal recall is a
  lower bound).

Each configuration runs the real ``ask()`` once per question with
``refusal_threshold=0`` and keeps ``Answer.support`` (the refusal signal), the answer
text and its citations; the refusal threshold is then swept offline: a question is
refused when its support is below the threshold (or no sentence qualified at all).
Question embeddings are cached in memory, so each configuration costs only the search
and the answer extraction.

Usage::

    .venv/bin/python benchmarks/tune_answers.py --piaf-index /tmp/sv/A/idx \\
        --seed-index /tmp/sv/seed-idx --piaf-questions 300 --out refusal.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sourcier import ask, build_index, load_index
from sourcier.evaluation import metrics as m
from sourcier.evaluation.datasets import Dataset, load_dataset

THRESHOLDS = [round(0.05 * i, 2) for i in range(0, 19)]


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


class CachedQueries:
    """Wraps an embedder so each question is embedded once across configurations."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            for t, v in zip(missing, self._inner.embed_queries(missing), strict=True):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in texts])


def with_cache(index: Any, cache: CachedQueries) -> Any:
    index._embedder = cache  # a tuning script may reach in; the library never does
    return index


def outcomes(
    index: Any, ds: Dataset, questions: Sequence[Any], cache: CachedQueries, *, hide_gold: bool
) -> list[dict[str, Any]]:
    snap = index.snapshot
    by_key = {ds.doc_key(d.source): d for d in snap.documents.values()}
    rows = []
    for q in questions:
        filters = None
        if hide_gold:
            title = by_key[q.gold[0]].title
            filters = {"doc_ids": [d for d in snap.documents if snap.documents[d].title != title]}
        a = ask(q.question, index=with_cache(index, cache), filters=filters)
        keys = [ds.doc_key(c.source) for c in a.citations]
        rows.append(
            {
                "id": q.id,
                "answerable": q.answerable and not hide_gold,
                "support": float(a.support),
                "no_candidate": bool(a.refused),  # threshold 0: refused only if nothing qualified
                "contains": (not a.refused) and m.contains_answer(a.answer, q.answers),
                "cited_gold": [k in q.gold for k in keys] if not hide_gold else [],
                "language": a.language,
            }
        )
    return rows


def score(rows: list[dict[str, Any]], t: float) -> dict[str, float]:
    refused = [r["no_candidate"] or r["support"] < t for r in rows]
    pos = [r for r, x in zip(rows, refused, strict=True) if r["answerable"]]
    ref_pos = [x for r, x in zip(rows, refused, strict=True) if r["answerable"]]
    neg = [x for r, x in zip(rows, refused, strict=True) if not r["answerable"]]
    answered = [r for r, x in zip(pos, ref_pos, strict=True) if not x]
    cites = [ok for r in answered for ok in r["cited_gold"]]
    return {
        "threshold": t,
        "refusal_recall": m.mean(1.0 if x else 0.0 for x in neg),
        "false_refusals": m.mean(1.0 if x else 0.0 for x in ref_pos),
        "containment": m.mean(
            1.0 if (r["contains"] and not x) else 0.0 for r, x in zip(pos, ref_pos, strict=True)
        ),
        "citation_precision": m.mean(1.0 if c else 0.0 for c in cites),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-index", type=Path, required=True)
    ap.add_argument("--piaf-index", type=Path, required=True)
    ap.add_argument("--piaf-questions", type=int, default=300)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    seed = load_dataset("seed")
    build_index(index=args.seed_index, show_progress=False)
    sidx = load_index(args.seed_index)
    piaf = load_dataset("piaf").select(args.split, args.piaf_questions)
    pidx = load_index(args.piaf_index)
    cache = CachedQueries(sidx.embedder)

    configs: list[dict[str, Any]] = [
        {},
        {"max_answer_sentences": 1},
        {"max_answer_sentences": 2},
        {"k": 3},
        {"k": 8},
        {"dense_floor": 2.0, "dense_ceiling": 3.0},  # lexical evidence only
    ]
    results = []
    for cfg in configs:
        view_s = sidx.configure(refusal_threshold=0.0, **cfg)
        view_p = pidx.configure(refusal_threshold=0.0, **cfg)
        rows_s = outcomes(view_s, seed, seed.queries, cache, hide_gold=False)
        rows_p = outcomes(view_p, piaf, piaf.queries, cache, hide_gold=False)
        rows_n = outcomes(view_p, piaf, piaf.queries, cache, hide_gold=True)
        for t in THRESHOLDS:
            s, p = score(rows_s, t), score(rows_p + rows_n, t)
            results.append({"config": cfg, "seed": s, "piaf": p})
        log(
            f"\n{json.dumps(cfg)}  (threshold: seed refusal recall / false refusals / "
            "containment / citation precision | PIAF same)"
        )
        for r in results[-len(THRESHOLDS) :]:
            s, p = r["seed"], r["piaf"]
            log(
                f"  {s['threshold']:.2f}  {s['refusal_recall']:.2f} / {s['false_refusals']:.3f}"
                f" / {s['containment']:.3f} / {s['citation_precision']:.3f}   |   "
                f"{p['refusal_recall']:.2f} / {p['false_refusals']:.3f} / "
                f"{p['containment']:.3f} / {p['citation_precision']:.3f}"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
