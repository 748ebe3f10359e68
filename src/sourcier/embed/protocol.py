"""What an embedder is: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``model_id`` is recorded in the index manifest, so an index is only ever queried with
    the model that built it. Queries and passages get their own prefix (e5 expects
    ``"query: "`` and ``"passage: "``); callers pass the bare text.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def query_prefix(self) -> str: ...

    @property
    def passage_prefix(self) -> str: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: ``(len(texts), dim)`` float32, rows L2-normalised."""
        ...

    def embed_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed passages in batches, calling ``progress(n)`` after each batch of ``n``."""
        ...

    def embed_with_sentences(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passages and one vector per sentence (``spans``: each passage's sentences):
        ``(n, dim)`` and, per passage, ``(len(spans[i]), dim)``; rows L2-normalised.
        See :mod:`sourcier.multivector`."""
        ...

    def count_tokens(self, text: str) -> int:
        """Model tokens in ``text`` (no special tokens, no prefix)."""
        ...


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size ({batch_size}) must be positive")
