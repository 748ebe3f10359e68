"""Prototype of a better refusal signal, compared with today's on the same questions.

This script led to the current ``sourcier.refusal.support`` (adopted on 2026-11-22);
"today" below now reports that adopted signal. Before it: ``max(lexical, dense)``, where
``lexical`` is the idf-weighted share of the question's terms found in one of the top-3
hits (a term the corpus never uses weighs most) and ``dense`` maps the best question-
sentence cosine from [dense_floor, dense_ceiling] to [0, 1]. On French questions about
French text the dense part rescues almost every unanswerable question: e5 gives
0.81-0.91 to a sentence about the right entity even when the asked attribute ("le
budget", "le maire", "le chiffre d'affaires") is nowhere in the corpus.

Proposed (``proposed_support`` below):

1. light verbs carry no evidence: "fait", "faut", "doit", "peut", "font", ... are
   dropped from the question terms (they are content words to the analyser, so a
   question like "Que fait la société ECHY ?" loses weight on a word no text uses);
2. an unseen stem that shares its first 5+ characters with an indexed stem (the
   stemmer leaves "inscrire" -> "inscrir" but "inscription" -> "inscript";
   "organisme" -> "organ" but "organisée" -> "organis") counts as that stem;
3. the dense part is used only when the question is not in the language of the top
   document (an English question about French text, where words are not shared);
   in the same language the lexical share decides.

Usage::

    .venv/bin/python benchmarks/refusal_signal.py --seed-index /tmp/sv/seed-idx \\
        --piaf-index /tmp/sv/A/idx --piaf-questions 300
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sourcier import build_index, load_index
from sourcier.analysis import analyze
from sourcier.answer import candidates as sentences
from sourcier.answer import refusal
from sourcier.answer.question import parse_question
from sourcier.answer.retrieve import Filters, retrieve
from sourcier.evaluation.datasets import Dataset, load_dataset
from sourcier.ingest.language import question_language

LIGHT_VERBS = frozenset(
    t
    for w in [
        "fait",
        "faits",
        "faite",
        "faites",
        "faire",
        "font",
        "fais",
        "faut",
        "falloir",
        "fallait",
        "doit",
        "doivent",
        "devoir",
        "devait",
        "peut",
        "peuvent",
        "pouvoir",
        "pouvait",
        "va",
        "vont",
        "aller",
        "sert",
        "servent",
        "permet",
        "permettent",
        "does",
        "do",
        "did",
        "make",
        "makes",
        "made",
        "can",
        "could",
    ]
    for t in analyze(w)
)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def proposed_support(
    question: str,
    hits: Sequence[Any],
    snapshot: Any,
    best_similarity: float,
    *,
    floor: float,
    ceiling: float,
) -> float:
    bm25 = snapshot.bm25
    vocab = bm25._terms  # prototype only: the core would expose a prefix lookup
    unseen = math.log(1.0 + (len(bm25) + 0.5) / 0.5)
    weights: dict[str, float] = {}
    alias: dict[str, str] = {}
    for t in dict.fromkeys(analyze(question)):
        if t in LIGHT_VERBS:
            continue
        idf = bm25.idf(t)
        if idf > 0:
            weights[t] = idf
            continue
        match = None
        if len(t) >= 5:
            match = next(
                (
                    v
                    for v in vocab
                    if v[:5] == t[:5]
                    and (v.startswith(t) or t.startswith(v) or len(os_prefix(v, t)) >= 6)
                ),
                None,
            )
        if match is not None:
            alias[t] = match
            weights[t] = bm25.idf(match)
        else:
            weights[t] = unseen
    total = sum(weights.values())
    lexical = 0.0
    if total > 0:
        for hit in hits[:3]:
            present = set(analyze(f"{hit.title}\n{hit.chunk.text}"))
            got = sum(w for t, w in weights.items() if alias.get(t, t) in present)
            lexical = max(lexical, got / total)
    doc_lang = snapshot.documents[hits[0].chunk.doc_id].language if hits else "fr"
    if question_language(question) == doc_lang:
        return lexical
    dense = min(max((best_similarity - floor) / max(ceiling - floor, 1e-6), 0.0), 1.0)
    return max(lexical, dense)


def os_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def signals(
    index: Any,
    ds: Dataset,
    questions: Sequence[Any],
    qvecs: dict[str, np.ndarray],
    *,
    hide_gold: bool,
) -> list[dict[str, Any]]:
    snap = index.snapshot
    by_key = {ds.doc_key(d.source): d for d in snap.documents.values()}
    settings = index.settings
    rows = []
    for q in questions:
        filters = None
        if hide_gold:
            title = by_key[q.gold[0]].title
            filters = Filters(
                doc_ids=tuple(d for d in snap.documents if snap.documents[d].title != title)
            )
        qv = qvecs.get(q.question)
        if qv is None:
            qv = qvecs[q.question] = index.embedder.embed_queries([q.question])[0]
        hits = retrieve(
            index, q.question, k=settings.k, mode="hybrid", filters=filters, query_vector=qv
        )
        cands = sentences.candidates(parse_question(q.question), hits, snap, qv)
        sim = max((c.dense for c in cands), default=-1.0)
        doc_lang = snap.documents[hits[0].chunk.doc_id].language if hits else "fr"
        same = question_language(q.question) == doc_lang
        today = refusal.support(
            analyze(q.question),
            hits,
            snap.bm25,
            best_sentence_similarity=sim,
            same_language=same,
            settings=settings,
        )
        row = {
            "id": q.id,
            "answerable": q.answerable and not hide_gold,
            "today": today,
            "no_candidate": not cands,
            "similarity": sim,
            "same_language": same,
            "lexical_today": refusal.support(
                analyze(q.question),
                hits,
                snap.bm25,
                best_sentence_similarity=-1.0,
                same_language=same,
                settings=settings,
            ),
            "lexical_proposed": proposed_support(
                q.question, hits, snap, -1.0, floor=2.0, ceiling=3.0
            ),
        }
        for floor, ceiling in ((0.78, 0.84), (0.80, 0.86), (0.80, 0.90)):
            row[f"proposed_{floor}_{ceiling}"] = proposed_support(
                q.question, hits, snap, sim, floor=floor, ceiling=ceiling
            )
        rows.append(row)
    return rows


def curve(rows: list[dict[str, Any]], signal: str) -> list[dict[str, float]]:
    out = []
    for i in range(0, 19):
        t = round(0.05 * i, 2)
        refused = [r["no_candidate"] or r[signal] < t for r in rows]
        pos = [x for r, x in zip(rows, refused, strict=True) if not r["answerable"]]
        neg = [x for r, x in zip(rows, refused, strict=True) if r["answerable"]]
        out.append(
            {
                "threshold": t,
                "refusal_recall": sum(pos) / len(pos) if pos else float("nan"),
                "false_refusals": sum(neg) / len(neg) if neg else float("nan"),
            }
        )
    return out


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
    qvecs: dict[str, np.ndarray] = {}
    seed_rows = signals(sidx, seed, seed.queries, qvecs, hide_gold=False)
    piaf_rows = signals(pidx, piaf, piaf.queries, qvecs, hide_gold=False) + signals(
        pidx, piaf, piaf.queries, qvecs, hide_gold=True
    )
    names = [k for k in seed_rows[0] if k == "today" or k.startswith("proposed")]
    result = {}
    for name in names:
        s, p = curve(seed_rows, name), curve(piaf_rows, name)
        result[name] = {"seed": s, "piaf": p}
        log(f"\n{name}: threshold  seed refusal recall / false refusals | PIAF same")
        for a, b in zip(s, p, strict=True):
            log(
                f"  {a['threshold']:.2f}  {a['refusal_recall']:.2f} / {a['false_refusals']:.3f}"
                f"  |  {b['refusal_recall']:.2f} / {b['false_refusals']:.3f}"
            )
    if args.out:
        args.out.write_text(
            json.dumps({"curves": result, "seed_rows": seed_rows, "piaf_rows": piaf_rows}, indent=1)
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
