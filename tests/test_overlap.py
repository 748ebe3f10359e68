"""Reading beside embedding: reader processes and the prefetch thread change no result."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sourcier import HASHING_MODEL, InputError, Settings, build_index, load_index
from sourcier.build import conductor, prefetch, read, readers_pool
from sourcier.settings import ModelSettings
from sourcier.storage.segment import faiss_id_for

# batches of 2: a window of the prefetch thread is 8 passages, reached with a few files
SMALL_BATCHES = Settings(model=ModelSettings(name=HASHING_MODEL, batch_size=2))


def _folder(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"note-{i:03d}.txt").write_text(
            f"Note {i}. Le pôle numéro {i} réunit {i * 7} entreprises à Marseille.\n\n"
            f"Elle décrit le projet {i} du technopôle, lancé en {1990 + i}.",
            encoding="utf-8",
        )
    return root


def _vectors(index: Path) -> tuple[list[str], np.ndarray]:
    snap = load_index(index).snapshot
    ids = [c.chunk_id for c in snap.chunks]
    return ids, np.stack([snap.dense.vector(faiss_id_for(i)) for i in ids])


class _NoPrefetch(prefetch.Prefetch):
    def offer(self, doc: object) -> None:
        return None


def test_a_folder_read_by_reader_processes_gives_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path / "notes", read.POOL_MIN + 8)
    (folder / "vide.txt").write_text("")
    (folder / "binaire.txt").write_bytes(b"\x00\x01" * 40)
    started: list[int] = []
    pool = readers_pool.ReaderPool

    class Counting(pool):  # type: ignore[misc,valid-type]
        def __init__(self, workers: int, **kwargs: int) -> None:
            started.append(workers)
            super().__init__(workers, **kwargs)

    monkeypatch.setattr(read, "ReaderPool", Counting)
    monkeypatch.setattr(read, "reader_processes", lambda n: 2 if n >= read.POOL_MIN else 0)
    pooled = build_index(folder, index=tmp_path / "a", settings=SMALL_BATCHES, show_progress=False)
    assert started == [2]
    monkeypatch.setattr(read, "reader_processes", lambda n: 0)
    monkeypatch.setattr(conductor, "Prefetch", _NoPrefetch)
    here = build_index(folder, index=tmp_path / "b", settings=SMALL_BATCHES, show_progress=False)
    assert started == [2]  # no pool the second time
    assert pooled.indexed == here.indexed and len(pooled.indexed) == read.POOL_MIN + 8
    assert pooled.skipped == here.skipped and {s.code for s in pooled.skipped} == {
        "empty",
        "binary",
    }
    assert pooled.embedded == pooled.chunks_added == here.embedded
    a, b = _vectors(tmp_path / "a"), _vectors(tmp_path / "b")
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_passages_embedded_while_reading_are_not_embedded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path / "notes", 40)
    monkeypatch.setattr(read, "reader_processes", lambda n: 0)
    look = read.look

    def slow_look(*args: object) -> object:
        time.sleep(0.02)  # a slow parser: the prefetch thread embeds meanwhile
        return look(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(read, "look", slow_look)
    with caplog.at_level(logging.INFO, logger="sourcier.build.prefetch"):
        report = build_index(
            folder, index=tmp_path / "a", settings=SMALL_BATCHES, show_progress=False
        )
    [line] = [r.getMessage() for r in caplog.records if "while reading" in r.getMessage()]
    ahead = int(line.split()[1])
    assert ahead >= 8  # at least one window was embedded before reading ended
    assert report.embedded == report.chunks_added  # each passage embedded once in all
    monkeypatch.setattr(conductor, "Prefetch", _NoPrefetch)
    build_index(folder, index=tmp_path / "b", settings=SMALL_BATCHES, show_progress=False)
    a, b = _vectors(tmp_path / "a"), _vectors(tmp_path / "b")
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_a_reader_process_that_dies_costs_its_files_not_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path / "notes", read.POOL_MIN)
    index = tmp_path / "index"
    build_index(folder, index=index, settings=SMALL_BATCHES, show_progress=False)
    monkeypatch.setattr(read, "reader_processes", lambda n: 1)
    monkeypatch.setattr(readers_pool, "COMMAND", (sys.executable, "-c", "raise SystemExit(3)"))
    past = time.time_ns() - 60 * 10**9
    for f in folder.iterdir():  # every file changed: each must be read again
        f.write_text(f.read_text(encoding="utf-8") + " Mis à jour.", encoding="utf-8")
        os.utime(f, ns=(past, past))
    report = build_index(folder, index=index, show_progress=False)
    assert len(report.skipped) == read.POOL_MIN and not report.changed
    assert all(s.code == "reader_crashed" and s.kept for s in report.skipped)
    assert len(load_index(index).documents()) == read.POOL_MIN  # nothing was lost
    with pytest.raises(InputError, match="reader process stopped"):
        build_index(folder, index=tmp_path / "new", settings=SMALL_BATCHES, show_progress=False)
