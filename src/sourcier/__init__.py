"""sourcier: French-first, offline question answering with cited, verifiable passages.

>>> from sourcier import build_index, ask
>>> build_index()                                   # the bundled corpus, default index
>>> answer = ask("Qui préside le pôle SCS ?")
>>> print(answer.answer)                            # sentences with [n] markers
>>> answer.citations[0].quote                       # == document.text[start:end]
>>> ask("Qui préside le pôle SCS ?", llm="openai:qwen2.5",   # generative, verified
...     llm_base_url="http://127.0.0.1:8080/v1")

``import sourcier`` is cheap: the API and the index (numpy, FAISS, BM25) are imported on
first use of the names below, so ``sourcier --help`` or a settings check costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    LoadError,
    ModelError,
    SourcierError,
)
from .settings import DEFAULT_MODEL, HASHING_MODEL, Settings
from .types import Answer, BuildReport, Chunk, Citation, Document, Hit, Skipped

if TYPE_CHECKING:
    from .answer.retrieve import Filters
    from .api import (
        ask,
        ask_stream,
        build_index,
        build_index_from_records,
        load_index,
        optimize,
        search,
    )
    from .build.writer import DocumentInfo, Index

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first read
_LAZY = {
    "ask": ".api",
    "ask_stream": ".api",
    "build_index": ".api",
    "build_index_from_records": ".api",
    "load_index": ".api",
    "optimize": ".api",
    "search": ".api",
    "DocumentInfo": ".build.writer",
    "Index": ".build.writer",
    "Filters": ".answer.retrieve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sourcier' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DEFAULT_MODEL",
    "HASHING_MODEL",
    "Answer",
    "BuildReport",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "DocumentInfo",
    "Filters",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InputError",
    "LoadError",
    "ModelError",
    "Settings",
    "Skipped",
    "SourcierError",
    "ask",
    "ask_stream",
    "build_index",
    "build_index_from_records",
    "load_index",
    "optimize",
    "search",
]
