"""Default locations: the bundled corpus, the default index and the model cache."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _checkout_root() -> Path | None:
    """The source checkout this package runs from, if any (an editable install)."""
    root = _PACKAGE_DIR.parent.parent
    if (root / "pyproject.toml").is_file() and (root / "corpus").is_dir():
        return root
    return None


def bundled_corpus_dir() -> Path:
    """The five press releases that ship with sourcier.

    Inside a wheel they live in ``sourcier/corpus``; in a source checkout, in the
    top-level ``corpus/`` folder.
    """
    packaged = _PACKAGE_DIR / "corpus"
    if packaged.is_dir():
        return packaged
    root = _checkout_root()
    if root is not None:
        return root / "corpus"
    raise FileNotFoundError("the bundled corpus is missing from this installation")


def bundled_corpus_files() -> list[Path]:
    """The bundled documents (the folder's README.md only describes them: left out)."""
    return sorted(
        p for p in bundled_corpus_dir().iterdir() if p.is_file() and p.name != "README.md"
    )


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_index_dir() -> Path:
    """Where the default index lives.

    In a source checkout this is ``index/default`` beside ``pyproject.toml``; for an
    installed package it is ``$XDG_DATA_HOME/sourcier/index`` (``~/.local/share/...``).
    The CLI lets ``--index`` or ``SOURCIER_INDEX`` override it.
    """
    root = _checkout_root()
    if root is not None and os.access(root, os.W_OK):
        return root / "index" / "default"
    return _xdg("XDG_DATA_HOME", ".local/share") / "sourcier" / "index"


def default_cache_dir() -> Path:
    """Where converted models are cached: ``$XDG_CACHE_HOME/sourcier`` (``~/.cache/sourcier``)."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "sourcier"
