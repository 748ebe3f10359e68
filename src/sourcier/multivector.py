"""Passage vectors plus one vector per sentence, from the same forward pass.

Answer selection compares the question with each sentence of the retrieved chunks.
Embedding every sentence separately would double the indexing cost; instead the
transformer runs once per passage and each sentence vector is the mean of the
contextual token embeddings that fall inside the sentence (the passage vector is
the usual mean over all tokens). The result is stored with the index, so a query
costs one dot product per candidate sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .embedders import Embedder, SentenceTransformerEmbedder

Spans = Sequence[tuple[int, int]]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_with_sentences(
    embedder: Embedder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Embed passages and their sentences.

    Args:
        embedder: the index's embedder.
        texts: passages (without the model's passage prefix).
        spans: for each passage, the (start, end) character spans of its sentences.
        batch_size: passages per forward pass.
        progress: called with the number of passages done after each batch.

    Returns:
        ``(passage_vectors, sentence_vectors)``: an ``(n, dim)`` array, and for each
        passage an ``(len(spans[i]), dim)`` array; all rows L2-normalised.
    """
    if isinstance(embedder, SentenceTransformerEmbedder):
        return _token_pooled(embedder, texts, spans, batch_size=batch_size, progress=progress)
    vectors = embedder.embed_passages(texts, batch_size=batch_size, progress=progress)
    flat = [texts[i][s:e] for i, sp in enumerate(spans) for s, e in sp]
    flat_vecs = (
        embedder.embed_passages(flat, batch_size=batch_size)
        if flat
        else np.zeros((0, embedder.dim), np.float32)
    )
    out, row = [], 0
    for sp in spans:
        out.append(flat_vecs[row : row + len(sp)])
        row += len(sp)
    return vectors, out


def _token_pooled(
    embedder: SentenceTransformerEmbedder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    *,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    model = embedder._ensure_loaded()
    prefix = embedder.passage_prefix
    shift = len(prefix)
    dim = embedder.dim
    vectors = np.zeros((len(texts), dim), np.float32)
    sentence_vectors: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        batch = [prefix + t for t in texts[start : start + batch_size]]
        with embedder._run_lock:
            outputs = model.encode(
                batch,
                batch_size=len(batch),
                output_value=None,
                convert_to_numpy=False,
                show_progress_bar=False,
            )
            encoded = model.tokenizer(
                batch,
                return_offsets_mapping=True,
                truncation=True,
                max_length=model.max_seq_length,
            )
        for j, out in enumerate(outputs):
            i = start + j
            n = int(out["attention_mask"].sum())
            tokens = out["token_embeddings"][:n].float().cpu().numpy()
            offsets = np.asarray(encoded["offset_mapping"][j], dtype=np.int64)[:n]
            vectors[i] = out["sentence_embedding"].float().cpu().numpy()
            mids = (offsets[:, 0] + offsets[:, 1]) / 2.0
            real = offsets[:, 1] > offsets[:, 0]
            rows = np.zeros((len(spans[i]), dim), np.float32)
            for r, (s, e) in enumerate(spans[i]):
                inside = real & (mids >= s + shift) & (mids < e + shift)
                # a sentence cut off by the model's length limit falls back to the passage
                rows[r] = tokens[inside].mean(axis=0) if inside.any() else vectors[i]
            sentence_vectors.append(_normalise(rows) if len(rows) else rows)
        if progress is not None:
            progress(len(batch))
    return _normalise(vectors), sentence_vectors
