"""Passage vectors plus one vector per sentence, from the same forward pass.

Answer selection compares the question with each sentence of the retrieved chunks.
Embedding every sentence separately would double the indexing cost; instead the
transformer runs once per passage and each sentence vector is the mean of the
contextual token embeddings that fall inside the sentence (the passage vector is
the usual mean over all tokens). The result is stored with the index, so a query
costs one dot product per candidate sentence.

Each embedder implements ``embed_with_sentences`` (part of the
:class:`~sourcier.embed.protocol.Embedder` protocol): a transformer pools its own token
embeddings with :func:`pool_sentences`; an embedder without token embeddings embeds
the sentences as texts of their own (:func:`embed_sentences_separately`). This module
holds those two pure pieces and knows nothing of any model library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .protocol import Embedder

Spans = Sequence[tuple[int, int]]


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to norm 1 (a zero row stays zero), as float32."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def pool_sentences(
    tokens: np.ndarray,
    offsets: np.ndarray,
    spans: Spans,
    *,
    shift: int,
    fallback: np.ndarray,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """One vector per sentence: the mean of the token embeddings inside it.

    Args:
        tokens: ``(n_tokens, dim)`` contextual token embeddings of one passage.
        offsets: ``(n_tokens, 2)`` character offsets of those tokens in the model's input.
        spans: the sentences' (start, end) in the passage text.
        shift: characters before the passage text in the model's input (its prefix).
        fallback: the vector of a sentence with no token inside (cut off by the model's
            length limit): the passage vector.
        project: what the model does to a pooled vector before it is a sentence
            embedding (the dense projections of EmbeddingGemma), applied to the means
            of a ``(rows, dim)`` batch; ``None`` when nothing follows the pooling.

    Returns:
        ``(len(spans), output dim)`` float32, rows L2-normalised.
    """
    mids = (offsets[:, 0] + offsets[:, 1]) / 2.0
    real = offsets[:, 1] > offsets[:, 0]
    means = np.zeros((len(spans), tokens.shape[1] if tokens.ndim == 2 else 0), np.float32)
    pooled = np.zeros(len(spans), dtype=bool)
    for r, (s, e) in enumerate(spans):
        inside = real & (mids >= s + shift) & (mids < e + shift)
        if inside.any():
            means[r] = tokens[inside].mean(axis=0)
            pooled[r] = True
    rows = np.tile(np.asarray(fallback, dtype=np.float32), (len(spans), 1))
    if pooled.any():
        rows[pooled] = project(means[pooled]) if project is not None else means[pooled]
    return normalise(rows) if len(rows) else rows


def embed_sentences_separately(
    embedder: Embedder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passages, then every sentence as a passage of its own (no token embeddings)."""
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
