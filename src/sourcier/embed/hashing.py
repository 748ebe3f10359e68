"""A tiny deterministic embedder for fast tests: hashed bag of analysed words."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from ..analysis import analyze
from ..errors import ConfigError
from ..settings import HASHING_MODEL, ModelSettings
from .pooling import embed_sentences_separately
from .protocol import check_batch_size

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class HashingEmbedder:
    """A deterministic bag-of-words embedder for fast tests (no model, no downloads).

    Words go through the French analyser of the lexical index (elisions, stopwords,
    Snowball stem, accent folding); each term is
    hashed with BLAKE2b to a bucket and a sign (the hashing trick), weighted
    ``1 + log(tf)``, and the vector is L2-normalised. Texts sharing words therefore get
    similar vectors, so retrieval assertions in tests mean something. A text without
    words embeds to the zero vector, whose dot product with anything is 0.

    Args:
        dim: vector size.

    Raises:
        ConfigError: ``dim`` is not positive.
    """

    def __init__(self, dim: int = 512) -> None:
        if dim < 1:
            raise ConfigError(f"dim ({dim}) must be positive")
        self.model_id = HASHING_MODEL
        self.dim = dim
        self.query_prefix = ""
        self.passage_prefix = ""

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dim, (1.0 if value >> 63 else -1.0)

    def _embed_one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        counts = Counter(analyze(text))
        for token, tf in sorted(counts.items()):
            bucket, sign = self._bucket(token)
            vec[bucket] += sign * (1.0 + math.log(tf))
        norm = float(np.linalg.norm(vec))
        if norm > 0.0:
            vec /= norm
        return vec

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._embed_one(text)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions; see :class:`Embedder`.

        Args:
            texts: the questions.

        Returns:
            ``(len(texts), dim)`` float32, each row of norm 1 (or 0 for a text without words).
        """
        return self._embed([self.query_prefix + t for t in texts])

    def embed_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed passages; see :class:`Embedder`.

        Args:
            texts: the passages.
            batch_size: texts per batch (progress granularity).
            progress: called with the number of texts done after each batch.

        Returns:
            ``(len(texts), dim)`` float32, each row of norm 1 (or 0 for a text without words).

        Raises:
            ConfigError: ``batch_size`` is not positive.
        """
        check_batch_size(batch_size)
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = [self.passage_prefix + t for t in texts[start : start + batch_size]]
            parts.append(self._embed(batch))
            if progress is not None:
                progress(len(batch))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)

    def embed_with_sentences(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passages, and each sentence embedded as a text of its own (no tokens to pool);
        see :class:`Embedder`."""
        return embed_sentences_separately(
            self, texts, spans, batch_size=batch_size, progress=progress
        )

    def count_tokens(self, text: str) -> int:
        """Words plus punctuation marks in ``text`` (an approximation of model tokens).

        Args:
            text: any text.

        Returns:
            The number of ``\\w+`` runs and non-space symbols.
        """
        return len(_TOKEN_RE.findall(text))


def load_hashing(
    model: ModelSettings, prefixes: tuple[str, str], cache_dir: object
) -> HashingEmbedder:
    """The test embedder, with ``prefixes`` (query, passage)."""
    embedder = HashingEmbedder()
    embedder.query_prefix, embedder.passage_prefix = prefixes
    return embedder
