"""Follow-up questions: today's heuristic query against a query condensed by a chat model.

Twelve two-turn conversations about the bundled corpus (French and English). For each
follow-up, the query is built twice: by the heuristic (the previous user question plus
the follow-up) and by ``generative.condense_follow_up`` with the given model. Both are
searched with the default hybrid retrieval; a hit is the gold release at rank 1, and the
answer is found when the gold string is in the top 3 passages.

    python benchmarks/follow_ups.py --llm openai:smollm2 --llm-base-url http://127.0.0.1:8080/v1
"""

from __future__ import annotations

import argparse
import json
import time

from sourcier import load_index, search
from sourcier.answer.generative import condense_follow_up, resolve_llm
from sourcier.answer.question import parse_question

CONVERSATIONS = [
    ("Quel accord le pôle SCS a-t-il signé avec le MIT ?", "Et qui le préside ?",
     "scs-mit-alliance-strategique.txt", "HENRY"),
    ("Qu'est-ce que le Forum des Pôles de Compétitivité ?", "Et quand a-t-il lieu ?",
     "forum-clusters-excellence-sophia-2011.txt", "Novembre 2011"),
    ("Où se rendent les acteurs marseillais de l'informatique ?", "Et quand ?",
     "marseille-helsinki-partenariat-it.txt", "29 septembre"),
    ("Qu'est-ce que la technopole de l'Arbois ?", "Et qui l'a visitée ?",
     "technopole-arbois-mediterranee.txt", "Bencivenga"),
    ("Qu'est-ce que le smart port de Marseille ?", "Et où s'est réuni son comité de pilotage ?",
     "smart-port-aix-marseille-2017.txt", "préfecture"),
    ("Who is Federico Casalegno?", "And which lab does he run?",
     "scs-mit-alliance-strategique.txt", "Mobile Experience"),
    ("What is the Sophia Antipolis Foundation?", "And how many agreements has it signed?",
     "forum-clusters-excellence-sophia-2011.txt", "45 accords"),
    ("Which company hosts the Marseille delegation in Helsinki?",
     "And what is the afternoon devoted to?", "marseille-helsinki-partenariat-it.txt",
     "conférence"),
    ("Quelle chaire est créée pour le smart port ?", "Et avec quelle université ?",
     "smart-port-aix-marseille-2017.txt", "Amu"),
    ("Combien de pôles de compétitivité ont été créés en France ?", "Et combien sont mondiaux ?",
     "forum-clusters-excellence-sophia-2011.txt", "7 mondiaux"),
    ("Qui préside l'UPE 13 ?", "Et qui est son candidat à la CCIMP ?",
     "technopole-arbois-mediterranee.txt", "Chauvin"),
    ("Quel laboratoire du MIT est partenaire du pôle SCS ?",
     "Et depuis quand Provence Promotion travaille-t-elle avec lui ?",
     "scs-mit-alliance-strategique.txt", "2007"),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=None, help="index of the bundled corpus (default index)")
    ap.add_argument("--llm", required=True)
    ap.add_argument("--llm-base-url", default=None)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    idx = load_index(args.index)
    llm = resolve_llm(args.llm, base_url=args.llm_base_url, timeout=args.timeout)
    rows, scores = [], {"heuristic": [0, 0], "llm": [0, 0]}
    for first, follow, gold_doc, gold in CONVERSATIONS:
        q = parse_question(follow, history=[{"role": "user", "content": first}])
        t = time.perf_counter()
        condensed = condense_follow_up(llm, q, timeout=args.timeout)
        seconds = time.perf_counter() - t
        queries = {"heuristic": q.query, "llm": condensed or q.query}
        row = {"follow_up": follow, "condensed": condensed, "condense_s": round(seconds, 2)}
        for name, query in queries.items():
            hits = search(query, index=idx, k=3)
            top = bool(hits) and hits[0].source.endswith(gold_doc)
            found = any(gold.lower() in h.chunk.text.lower() for h in hits)
            scores[name][0] += top
            scores[name][1] += found
            row[name] = {"query": query, "gold_doc_at_1": top, "answer_in_top3": found}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    n = len(CONVERSATIONS)
    for name, (top, found) in scores.items():
        print(f"{name}: gold release at rank 1 {top}/{n}, gold answer in the top 3 {found}/{n}")


if __name__ == "__main__":
    main()
