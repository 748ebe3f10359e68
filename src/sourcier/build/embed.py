"""The embed stage of a build: passage and sentence vectors for the passages to write.

What computes the vectors is an :class:`EmbeddingStage`: :class:`LocalEmbedding` (the
index's embedder, in this process) or :class:`~sourcier.build.ray.RayEmbedding` (a Ray
cluster). Whichever runs, :func:`vectors_for` first looks in the build's embedding cache
(:mod:`sourcier.build.vector_cache`), embeds only what it does not hold, and puts every
new vector there before the segment is written, so an interrupted build loses little.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..embed.protocol import Embedder
from .chunk import Passage, Span
from .progress import Reporter
from .vector_cache import open_cache


@dataclass(frozen=True)
class EmbeddedBatch:
    """Vectors for some of the texts given to :meth:`EmbeddingStage.embed`.

    ``positions[i]`` is the text's index in that call; ``vectors[i]`` its vector and
    ``sentences[i]`` the ``(len(spans), dim)`` vectors of its sentences.
    """

    positions: np.ndarray
    vectors: np.ndarray
    sentences: tuple[np.ndarray, ...]
    precision: str | None = None
    """What computed them, when the stage says per batch (Ray's actors)."""


class EmbeddingStage(Protocol):
    """What computes a build's vectors. It embeds with the index's model, whose identity
    (recorded in the manifest) and tokenizer (the chunk stage counts tokens with it) it
    exposes."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def query_prefix(self) -> str: ...

    @property
    def passage_prefix(self) -> str: ...

    @property
    def precision(self) -> str:
        """What the passages are embedded in, and why ("bfloat16 (the CPU has
        avx512_bf16)"); for a stage of several machines, what each ran."""
        ...

    def count_tokens(self, text: str) -> int:
        """Model tokens in ``text``."""
        ...

    def embed(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, tick: Callable[[int], None]
    ) -> Iterator[EmbeddedBatch]:
        """Embed passages (without the model's prefix) and their sentences (``spans``:
        offsets into each text); batches may come in any order, each position once.
        ``tick(n)`` is called as ``n`` more passages are done."""
        ...

    def close(self) -> None:
        """Release what the stage holds (a cluster connection)."""
        ...


class LocalEmbedding:
    """The embed stage in this process, with the index's embedder.

    Args:
        embedder: the index's embedder.
        batch_size: passages per forward pass.
    """

    def __init__(self, embedder: Embedder, *, batch_size: int) -> None:
        self.embedder = embedder
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def query_prefix(self) -> str:
        return self.embedder.query_prefix

    @property
    def passage_prefix(self) -> str:
        return self.embedder.passage_prefix

    @property
    def precision(self) -> str:
        return precision_of(self.embedder)

    def count_tokens(self, text: str) -> int:
        return self.embedder.count_tokens(text)

    def embed(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, tick: Callable[[int], None]
    ) -> Iterator[EmbeddedBatch]:
        step = max(self.batch_size * 4, 64)  # a few batches per cache write
        for start in range(0, len(texts), step):
            stop = min(start + step, len(texts))
            vectors, sentences = self.embedder.embed_with_sentences(
                texts[start:stop], spans[start:stop], batch_size=self.batch_size, progress=tick
            )
            yield EmbeddedBatch(np.arange(start, stop), vectors, tuple(sentences))

    def close(self) -> None:
        return None


def precision_of(embedder: Embedder) -> str:
    """What ``embedder`` embeds passages in (float32 for an embedder that does not say)."""
    return str(getattr(embedder, "passage_precision", "float32"))


def vectors_for(
    path: Path,
    passages: Sequence[Passage],
    stage: EmbeddingStage,
    reporter: Reporter,
    *,
    offset: int = 0,
    overall: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Passage and sentence vectors for ``passages``, from the cache or from ``stage``.

    Passages are embedded in order of their length in model tokens, so a batch pads
    little (on PIAF, batches of 32 pad 2% of their tokens this way, 14% when sorted by
    characters), and a passage repeated in the build is embedded once.
    Progress is reported as ``("embed", offset + done, overall)``.

    Returns:
        ``(passage vectors, sentence vectors stacked in order, number embedded)``.
    """
    texts = [p.text for p in passages]
    spans = [p.spans_in_text for p in passages]
    cache = open_cache(path, stage.model_id, stage.dim)
    try:
        keys = [cache.key(t) for t in texts]
        where = {k: i for i, k in enumerate(keys)}
        # a cached entry is only usable if it has one vector per sentence
        known = {k: v for k, v in cache.get_many(keys).items() if len(v[1]) == len(spans[where[k]])}
        todo_at: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in known and k not in todo_at:
                todo_at[k] = i
        tokens = {k: stage.count_tokens(texts[i]) for k, i in todo_at.items()}
        todo = sorted(todo_at.items(), key=lambda kv: (tokens[kv[0]], kv[0]))
        if todo:
            bar = reporter.stage(
                "embed", len(todo), desc="Embedding", unit="chunk", offset=offset, overall=overall
            )
            with bar as tick:
                for batch in stage.embed(
                    [texts[i] for _, i in todo], [spans[i] for _, i in todo], tick=tick
                ):
                    rows = [
                        (todo[int(p)][0], v, s)
                        for p, v, s in zip(
                            batch.positions, batch.vectors, batch.sentences, strict=True
                        )
                    ]
                    cache.put_many(rows)
                    known.update({k: (v, s) for k, v, s in rows})
        vectors = _joined([known[k][0][None, :] for k in keys], stage.dim)
        return vectors, _joined([known[k][1] for k in keys], stage.dim), len(todo)
    finally:
        cache.close()


def _joined(parts: Sequence[np.ndarray], dim: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)
