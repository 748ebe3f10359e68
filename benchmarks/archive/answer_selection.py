"""Answer-sentence selection: containment vs citation precision, for a few selection rules.

``sourcier.extractive.select`` quotes the best-scoring sentence plus runners-up. This script
replays it on the candidates ``sourcier.sentences.candidates`` scores for the seed set and
a PIAF dev sample, with:

- ``max_sentences``: 2, 3 or 4 quoted sentences at most;
- ``ratio``: a runner-up must score at least ``ratio`` x the best sentence;
- ``novelty``: a runner-up must also match a question term no quoted sentence matches
  yet, or be closer in meaning to the question than the best sentence.

It prints gold-answer containment, citation precision (citations pointing to a gold
document), sentences per answer and answer length. Refusal is left out (threshold 0).

Usage::

    .venv/bin/python benchmarks/answer_selection.py --seed-index /tmp/sv/seed-idx \\
        --piaf-index /tmp/sv/A/idx --piaf-questions 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from sourcier import build_index, load_index
from sourcier.answer import candidates as sentence_scoring
from sourcier.answer import extractive
from sourcier.answer.question import parse_question
from sourcier.answer.retrieve import retrieve
from sourcier.evaluation import metrics as m
from sourcier.evaluation.datasets import load_dataset


def select(cands: list[Any], max_sentences: int, ratio: float, novelty: bool) -> list[Any]:
    if not cands:
        return []
    best = cands[0]
    chosen, covered = [best], set(best.matched)
    for c in cands[1:]:
        if len(chosen) >= max_sentences:
            break
        if c.score < ratio * best.score:
            continue
        if novelty and not (c.matched - covered) and c.dense <= best.dense:
            continue
        if any(extractive._near_duplicate(c.text, x.text) for x in chosen):
            continue
        chosen.append(c)
        covered |= c.matched
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-index", type=Path, required=True)
    ap.add_argument("--piaf-index", type=Path, required=True)
    ap.add_argument("--piaf-questions", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    build_index(index=args.seed_index, show_progress=False)
    results = []
    for name, path, limit in (
        ("seed", args.seed_index, None),
        ("piaf", args.piaf_index, args.piaf_questions),
    ):
        ds = load_dataset(name)
        if limit:
            ds = ds.select("dev", limit)
        idx = load_index(path)
        snap = idx.snapshot
        data = []
        for q in ds.queries:
            if not q.answerable:
                continue
            qv = idx.embedder.embed_queries([q.question])[0]
            hits = retrieve(idx, q.question, k=idx.settings.k, mode="hybrid", query_vector=qv)
            data.append(
                (q, sentence_scoring.candidates(parse_question(q.question), hits, snap, qv))
            )
        for ms in (2, 3, 4):
            for novelty in (True, False):
                for ratio in (0.85, 0.8, 0.7):
                    contains, precise, sentences, chars = [], [], [], []
                    for q, cands in data:
                        chosen = select(cands, ms, ratio, novelty)
                        text, cites = extractive.compose(chosen, language="fr")
                        contains.append(m.contains_answer(text, q.answers))
                        precise += [ds.doc_key(c.source) in q.gold for c in cites]
                        sentences.append(len(chosen))
                        chars.append(len(text))
                    row = {
                        "dataset": name, "max_sentences": ms, "ratio": ratio,
                        "novelty": novelty, "containment": float(np.mean(contains)),
                        "citation_precision": float(np.mean(precise)),
                        "sentences": float(np.mean(sentences)), "chars": float(np.mean(chars)),
                    }  # fmt: skip
                    results.append(row)
                    print(
                        f"{name} max_sentences={ms} ratio={ratio} novelty={novelty}: "
                        f"containment {row['containment']:.3f} citation precision "
                        f"{row['citation_precision']:.3f} sentences {row['sentences']:.2f} "
                        f"chars {row['chars']:.0f}",
                        flush=True,
                    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
