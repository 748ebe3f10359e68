"""Distributed embedding on Ray (``sourcier index --ray``).

The first tests need no Ray: an embedding stage gets what a build embeds, the options are
checked, and ``--ray`` without the extra says so in one line. The others start a real
Ray cluster on this machine (a head without CPUs and two one-CPU worker nodes, 150 MB of
object store each), shared by the module and shut down at its end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from sourcier import HASHING_MODEL, BuildReport, Settings, build_index, load_index
from sourcier.build.chunk import chunk_documents
from sourcier.build.conductor import update_index
from sourcier.build.embed import EmbeddedBatch, LocalEmbedding
from sourcier.build.plan import Sources
from sourcier.build.ray import RayOptions, RayRun, embed_on_ray, ray_session
from sourcier.embed import precision
from sourcier.embed.models import load_embedder
from sourcier.errors import ConfigError
from sourcier.ingest.loaders import discover, load_document
from sourcier.paths import bundled_corpus_dir
from sourcier.storage.segment import faiss_id_for

HASHING = Settings(model=HASHING_MODEL)
SOURCIER = shutil.which("sourcier", path=str(Path(sys.executable).parent)) or "sourcier"
HAS_RAY = importlib.util.find_spec("ray") is not None
OBJECT_STORE = 150 * 1024 * 1024


def ray_test(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test that starts Ray: slow, ray, skipped without the extra."""
    for mark in (
        pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'sourcier[ray]'"),
        pytest.mark.ray,
        pytest.mark.slow,
    ):
        test = mark(test)
    return test


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two zero rows (a text without words) count as equal."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)
    return np.where(both_zero, 1.0, cos)


def _local(texts, spans, settings: Settings) -> tuple[np.ndarray, list[np.ndarray]]:
    embedder = load_embedder(settings.model)
    return embedder.embed_with_sentences(
        list(texts), list(spans), batch_size=settings.model.batch_size
    )


def _passages(folder: Path, settings: Settings) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """What a build of ``folder`` embeds: each passage's text and its sentences in it."""
    files, _ = discover([folder])
    documents = [load_document(f) for f in files]
    passages = chunk_documents(documents, settings, load_embedder(settings.model).count_tokens)
    return [p.text for p in passages], [p.spans_in_text for p in passages]


def _assemble(batches: Iterator[EmbeddedBatch], n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Results by position, checking each position arrives exactly once."""
    vectors: list[np.ndarray | None] = [None] * n
    sentences: list[np.ndarray | None] = [None] * n
    for batch in batches:
        for p, v, s in zip(batch.positions, batch.vectors, batch.sentences, strict=True):
            assert vectors[p] is None, f"position {p} came back twice"
            vectors[p], sentences[p] = v, s
    assert all(v is not None for v in vectors), "a position never came back"
    return np.stack(vectors), list(sentences)  # type: ignore[arg-type]


def _assert_same(local, remote, spans) -> None:
    lv, ls = local
    rv, rs = remote
    assert rv.shape == lv.shape
    assert _cos(lv, rv).min() >= 0.9999
    for i, sp in enumerate(spans):
        assert rs[i].shape == (len(sp), lv.shape[1])
        if len(sp):
            assert _cos(ls[i], rs[i]).min() >= 0.9999


# --------------------------------------------------------------------------- without Ray


class _Recording(LocalEmbedding):
    """The local embedding stage, recording what the build hands it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(load_embedder(settings.model), batch_size=8)
        self.texts: list[str] = []

    def embed(self, texts, spans, *, tick):
        self.texts.extend(texts)
        yield from super().embed(texts, spans, tick=tick)


def test_the_embedding_stage_gets_exactly_what_the_build_embeds(
    tmp_path: Path, corpus_dir: Path
) -> None:
    """The seam the Ray stage plugs into: a stage sees each new passage once, and after
    a new file only that file's passages; an unchanged folder asks for none."""
    index = tmp_path / "index"
    stages: list[_Recording] = []

    def stage(settings: Settings) -> _Recording:
        stages.append(_Recording(settings))
        return stages[-1]

    def build() -> BuildReport:
        return update_index(index, Sources(paths=(corpus_dir,)), settings=HASHING, embedding=stage)

    report = build()
    assert len(stages[0].texts) == report.embedded == report.chunks_added > 20
    (corpus_dir / "nouveau.txt").write_text(
        "Un document nouveau.\n\nIl parle de Marseille et de Sophia Antipolis.", "utf-8"
    )
    report = build()
    assert 1 <= len(stages[1].texts) == report.embedded <= 2
    assert all("Marseille" in t or "nouveau" in t for t in stages[1].texts)
    assert build().embedded == 0 and len(stages) == 2  # nothing changed: no stage at all


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"workers \(0\) must be positive"):
        RayOptions(workers=0)
    with pytest.raises(ConfigError, match=r"batch_size \(-1\)"):
        RayOptions(batch_size=-1)
    with pytest.raises(ConfigError, match="address is empty"):
        RayOptions(address=" ")


def test_ray_option_without_the_extra_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake)}
    proc = subprocess.run(
        [SOURCIER, "index", str(bundled_corpus_dir()), "--index", str(tmp_path / "i")]
        + ["--model", HASHING_MODEL, "--ray", "auto"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: Ray is not installed: install sourcier[ray] (pip install 'sourcier[ray]')"
    ]
    assert not (tmp_path / "i").exists()  # refused before reading anything


# --------------------------------------------------------------------------- a real cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head node without CPUs and two worker nodes of one CPU, all on this machine.

    Ray binds them to the machine's own address (pinning 127.0.0.1 makes ``ray.init``
    dial the machine's address anyway, and hang).
    """
    if not HAS_RAY:
        pytest.skip("Ray is not installed")
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
        },
    )
    try:
        for _ in range(2):
            nodes.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        nodes.wait_for_nodes()
        yield nodes.address
    finally:
        nodes.shutdown()


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list]:
    """The bundled corpus's 30 passages, 400 times with a numbered prefix (12,000)."""
    base_texts, base_spans = _passages(bundled_corpus_dir(), HASHING)
    texts, spans = [], []
    for copy in range(400):
        prefix = f"Copie n°{copy}. "
        shift = len(prefix)
        for text, sp in zip(base_texts, base_spans, strict=True):
            texts.append(prefix + text)
            spans.append(tuple((s + shift, e + shift) for s, e in sp))
    return texts, spans


@ray_test
def test_vectors_equal_local_embedding(cluster: str, corpus_dir: Path, tmp_path: Path) -> None:
    texts, spans = _passages(corpus_dir, HASHING)
    runs: list[RayRun] = []
    with ray_session(RayOptions(address=cluster)):
        remote = _assemble(
            embed_on_ray(
                texts,
                spans,
                settings=HASHING,
                options=RayOptions(address=cluster, workers=2, batch_size=8),
                run=runs,
            ),
            len(texts),
        )
    _assert_same(_local(texts, spans, HASHING), remote, spans)
    assert runs == [RayRun(len(texts), 0, 2, 8, runs[0].seconds)]


@ray_test
def test_build_on_ray_equals_a_local_build(cluster: str, corpus_dir: Path, tmp_path: Path) -> None:
    ray_index, local_index = tmp_path / "ray", tmp_path / "local"
    report = build_index(
        corpus_dir,
        index=ray_index,
        settings=HASHING,
        ray=RayOptions(address=cluster, workers=2),
        show_progress=False,
    )
    local = build_index(corpus_dir, index=local_index, settings=HASHING, show_progress=False)
    assert report.embedded == local.embedded == local.chunks_added == report.chunks_added
    assert (report.precision, local.precision) == ("on Ray: float32", "float32")
    a, b = load_index(ray_index).snapshot, load_index(local_index).snapshot
    assert [c.chunk_id for c in a.chunks] == [c.chunk_id for c in b.chunks]
    va = np.stack([a.dense.vector(faiss_id_for(c.chunk_id)) for c in a.chunks])
    vb = np.stack([b.dense.vector(faiss_id_for(c.chunk_id)) for c in b.chunks])
    assert _cos(va, vb).min() >= 0.9999
    sa, sb = (np.asarray(s.sentence_vectors, dtype=np.float32) for s in (a, b))
    assert sa.shape == sb.shape
    assert _cos(sa, sb).min() >= 0.9999

    # nothing new: no Ray connection at all (an unreachable address is never tried)
    again = build_index(
        corpus_dir, index=ray_index, ray=RayOptions(address="127.0.0.1:1"), show_progress=False
    )
    assert again.embedded == 0 and again.unchanged


def _map_workers(exclude: set[int]) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if proc.info["pid"] not in exclude and "MapWorker" in cmd and "_EmbedBatches" in cmd:
            found.append(proc.info["pid"])
    return found


@ray_test
def test_a_worker_killed_mid_run_is_retried(cluster: str, big_corpus) -> None:
    texts, spans = big_corpus
    n = len(texts)
    before = set(_map_workers(set()))
    killed: list[int] = []
    at_kill: set[int] = set()
    restarted: set[int] = set()  # actor processes started after the kill
    arrived_before_kill = 0
    runs: list[RayRun] = []

    def kill_one() -> None:
        victims = _map_workers(before)
        assert victims, "no embedding actor process found"
        os.kill(victims[0], signal.SIGKILL)
        killed.append(victims[0])

    with ray_session(RayOptions(address=cluster)):
        stream = embed_on_ray(
            texts,
            spans,
            settings=HASHING,
            options=RayOptions(address=cluster, workers=2, batch_size=64),
            run=runs,
        )
        vectors: list[np.ndarray | None] = [None] * n
        sentences: list[np.ndarray | None] = [None] * n
        for batch in stream:
            if not killed:
                arrived_before_kill = sum(v is not None for v in vectors) + len(batch.positions)
                kill_one()
                at_kill = set(_map_workers(before)) - set(killed)
            elif not restarted:
                restarted.update(set(_map_workers(before)) - at_kill - set(killed))
            for p, v, s in zip(batch.positions, batch.vectors, batch.sentences, strict=True):
                assert vectors[p] is None, f"position {p} came back twice"
                vectors[p], sentences[p] = v, s
    assert killed and arrived_before_kill < n // 2, "the kill did not land mid-run"
    assert restarted, "no actor was restarted after the kill"
    print(f"killed {killed[0]} after {arrived_before_kill}/{n}; restarted as {restarted}")
    assert all(v is not None for v in vectors)
    assert runs[0].embedded == n and runs[0].duplicates == 0
    deadline = time.monotonic() + 5
    while killed[0] in _map_workers(set()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert killed[0] not in _map_workers(set())
    remote = (np.stack(vectors), list(sentences))  # type: ignore[arg-type]
    _assert_same(_local(texts, spans, HASHING), remote, spans)


@ray_test
def test_cli_index_on_ray(cluster: str, corpus_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    proc = subprocess.run(
        [SOURCIER, "index", str(corpus_dir), "--index", str(index)]
        + ["--model", HASHING_MODEL, "--ray", cluster, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tempfile.gettempdir(),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["embedded"] == report["chunks_added"] > 20
    assert len(load_index(index)) == report["chunks_added"]


@ray_test
def test_unreachable_cluster_is_one_line(tmp_path: Path, corpus_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot reach a Ray cluster at '127\.0\.0\.1:1'"):
        build_index(
            corpus_dir,
            index=tmp_path / "index",
            settings=HASHING,
            ray=RayOptions(address="127.0.0.1:1"),
            show_progress=False,
        )


@ray_test
def test_real_model_vectors_equal_local(cluster: str, tmp_path: Path) -> None:
    """The default e5 model: token-pooled sentence vectors too, on two actors."""
    settings = Settings()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in sorted(bundled_corpus_dir().glob("*.txt"))[:2]:
        shutil.copy(p, corpus / p.name)
    texts, spans = _passages(corpus, settings)
    assert len(texts) >= 4
    with ray_session(RayOptions(address=cluster)):
        batches = list(
            embed_on_ray(
                texts,
                spans,
                settings=settings,
                options=RayOptions(address=cluster, workers=2, batch_size=8),
            )
        )
    # the actors chose their precision by the same rule, from their CPU (this one)
    assert {b.precision for b in batches} == {str(precision.choose("auto", "cpu"))}
    remote = _assemble(iter(batches), len(texts))
    _assert_same(_local(texts, spans, settings), remote, spans)
