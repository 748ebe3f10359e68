"""The staged build that writes an index: plan, read, chunk, embed, write, publish.

:func:`update_index` is the one write path (:mod:`.conductor`); an embedding stage
(:class:`EmbeddingStage`) computes its vectors, in this process
(:class:`LocalEmbedding`) or on a Ray cluster (:class:`RayEmbedding`).
"""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "update_index": ".conductor",
        "optimize_index": ".conductor",
        "Sources": ".plan",
        "Reporter": ".progress",
        "EmbeddingStage": ".embed",
        "LocalEmbedding": ".embed",
        "RayEmbedding": ".ray",
        "RayOptions": ".ray",
        "Passage": ".chunk",
        "chunk_documents": ".chunk",
        "upgrade": ".upgrade",
    },
)
