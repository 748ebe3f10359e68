"""Does batch order matter for indexing speed? Length-sorted vs cache-key order.

sourcier's build embeds the chunks no cache knows in the order of their cache keys
(sha256 hashes: random lengths), 32 per forward pass, so every batch is padded to its
longest chunk. ``SentenceTransformer.encode`` sorts by length first. This script times
``embed_with_sentences`` on the same chunk texts in both orders, alternating, next to a
raw ``model.encode``.

    .venv/bin/python benchmarks/batch_order.py --index /tmp/sv/bench/sourcier --rounds 2
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from sourcier import load_index
from sourcier.build.writer import passage_text
from sourcier.embed.pooling import embed_with_sentences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    idx = load_index(args.index)
    snap, emb = idx.snapshot, idx.embedder
    texts, spans = [], []
    for c in snap.chunks:
        title = snap.documents[c.doc_id].title
        text = passage_text(c, title, embed_title=idx.settings.embed_title)
        shift = len(text) - len(c.text)
        texts.append(text)
        spans.append(
            [
                (s - c.start + shift, e - c.start + shift)
                for s, e, _ in snap.sentences.get(c.chunk_id, [])
            ]
        )
    by_key = sorted(range(len(texts)), key=lambda i: hashlib.sha256(texts[i].encode()).digest())
    by_len = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    model = emb._ensure_loaded()
    times: dict[str, list[float]] = {"key order": [], "length order": [], "raw encode": []}
    for _ in range(args.rounds):
        for name, order in (("key order", by_key), ("length order", by_len)):
            t = time.perf_counter()
            embed_with_sentences(emb, [texts[i] for i in order], [spans[i] for i in order])
            times[name].append(time.perf_counter() - t)
        t = time.perf_counter()
        model.encode(
            [emb.passage_prefix + t for t in texts],
            batch_size=32,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        times["raw encode"].append(time.perf_counter() - t)
    for name, vals in times.items():
        best = min(vals)
        print(f"{name:13} {len(texts) / best:6.2f} chunks/s (best of {vals})")


if __name__ == "__main__":
    main()
