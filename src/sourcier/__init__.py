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

from typing import TYPE_CHECKING

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
from .lazy import attach
from .settings import DEFAULT_MODEL, HASHING_MODEL, Settings
from .types import Answer, BuildReport, Chunk, Citation, Document, Hit, Skipped

if TYPE_CHECKING:
    from .answer.filters import Filters
    from .api import (
        ask,
        ask_stream,
        build_index,
        build_index_from_records,
        load_index,
        optimize,
        search,
        upgrade,
    )
    from .assistant import Assistant
    from .storage.reader import DocumentInfo, Index

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
    "upgrade": ".api",
    "Assistant": ".assistant",
    "DocumentInfo": ".storage.reader",
    "Index": ".storage.reader",
    "Filters": ".answer.filters",
}


__getattr__, __dir__, _ = attach(__name__, _LAZY)

__all__ = [
    "DEFAULT_MODEL",
    "HASHING_MODEL",
    "Answer",
    "Assistant",
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
    "upgrade",
]
