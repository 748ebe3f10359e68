"""Shared fixtures: a copy of the bundled corpus, hashing-embedder indexes, the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sourcier import HASHING_MODEL, Settings, build_index, load_index
from sourcier.paths import bundled_corpus_dir
from sourcier.ui.client import quiet_environment

HASHING = Settings(model=HASHING_MODEL)

# The tests' gradio clients call no other host either (see sourcier.ui.client).
quiet_environment()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private, writable copy of the five press releases."""
    target = tmp_path / "corpus"
    shutil.copytree(bundled_corpus_dir(), target, ignore=shutil.ignore_patterns("README.md"))
    return target


@pytest.fixture
def hashing_index(tmp_path: Path, corpus_dir: Path) -> Path:
    """A fresh index of the corpus copy, built with the tiny hashing embedder."""
    path = tmp_path / "index"
    build_index(corpus_dir, index=path, settings=HASHING, show_progress=False)
    return path


@pytest.fixture(scope="session")
def shared_hashing_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only hashing index of the bundled corpus, shared by the whole run."""
    path = tmp_path_factory.mktemp("shared") / "index"
    build_index(index=path, settings=HASHING, show_progress=False)
    return path


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory):
    """The bundled corpus indexed with the real default model, loaded once per run."""
    path = tmp_path_factory.mktemp("real") / "index"
    build_index(index=path, show_progress=False)
    return load_index(path)
