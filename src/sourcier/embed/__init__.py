"""Embedding: the :class:`Embedder` protocol, the models by name (:data:`EMBEDDERS`,
:func:`load_embedder`), the bundled e5 model and its ONNX query encoder."""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Embedder": ".protocol",
        "EMBEDDERS": ".models",
        "load_embedder": ".models",
        "HashingEmbedder": ".hashing",
        "SentenceTransformerEmbedder": ".transformer",
    },
)
