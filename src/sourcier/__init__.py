"""sourcier: French-first, offline question answering with cited, verifiable passages.

>>> from sourcier import build_index, ask
>>> build_index()                                   # the bundled corpus, default index
>>> answer = ask("Qui préside le pôle SCS ?")
>>> print(answer.answer)                            # sentences with [n] markers
>>> answer.citations[0].quote                       # == document.text[start:end]
>>> ask("Qui préside le pôle SCS ?", llm="openai:qwen2.5",   # generative, verified
...     llm_base_url="http://127.0.0.1:8080/v1")
"""

from __future__ import annotations

from .api import ask, ask_stream, build_index, build_index_from_records, load_index, search
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
from .index import DocumentInfo, Index
from .retrieve import Filters
from .settings import DEFAULT_MODEL, HASHING_MODEL, Settings
from .types import Answer, BuildReport, Chunk, Citation, Document, Hit, Skipped

__version__ = "0.1.0"

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
    "search",
]
