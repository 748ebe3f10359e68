"""Write eval/piaf-sample/: the passages of 30 PIAF articles and their questions (the CI set).

The articles are the first 30 titles in order of sha256("sourcier-ci-v1:" + title), so the
sample is fixed and reproducible. Run from the repository root:

    .venv/bin/python eval/make_piaf_sample.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ARTICLES = 30
SALT = "sourcier-ci-v1"
HERE = Path(__file__).resolve().parent


def main() -> None:
    source, target = HERE / "piaf", HERE / "piaf-sample"
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (source / "queries.jsonl").open(encoding="utf-8")]
    titles = sorted(
        {r["title"] for r in corpus},
        key=lambda t: hashlib.sha256(f"{SALT}:{t}".encode()).hexdigest(),
    )
    chosen = set(titles[:ARTICLES])
    passages = [r for r in corpus if r["title"] in chosen]
    ids = {r["id"] for r in passages}
    sample = [q for q in queries if set(q["gold_ids"]) <= ids]
    target.mkdir(exist_ok=True)
    for name, rows in (("corpus.jsonl", passages), ("queries.jsonl", sample)):
        with (target / name).open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    info = {
        "name": "piaf-sample",
        "description": f"The CI regression set: the {len(passages)} passages of {ARTICLES} PIAF "
        f"articles and their {len(sample)} questions (eval/make_piaf_sample.py).",
        "source": "eval/piaf (PIAF v1.0, etalab-ia/piaf-code)",
        "licence": "MIT, Copyright (c) 2020 DINUM/Etalab",
    }
    (target / "dataset.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"{len(passages)} passages, {len(sample)} questions -> {target}")


if __name__ == "__main__":
    main()
