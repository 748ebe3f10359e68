"""Chunk embedding on a Ray cluster: ``sourcier index PATH --ray auto|ADDRESS``.

An optional extra (``pip install 'sourcier[ray]'``); nothing here imports Ray until a
build asks for it, and the default path never does.

How a build runs:

1. **Plan** (driver): read and chunk the files as :func:`~sourcier.index.update_index`
   does, and keep the passages whose vectors the index's embedding cache does not hold.
2. **Embed** (cluster): the passages, tagged with their position, go through Ray Data
   ``map_batches`` over a pool of actors; each actor builds the index's own embedder
   from the index :class:`~sourcier.settings.Settings` once and embeds each batch with
   :func:`~sourcier.multivector.embed_with_sentences`, so passage *and* sentence
   vectors are the ones a local build computes.
3. **Collect** (driver): results stream back block by block and go straight into the
   on-disk embedding cache; every position must arrive exactly once (a batch retried
   after a worker died is counted once, a missing one fails the build).
4. **Publish** (driver): the ordinary :func:`~sourcier.api.build_index` runs; it finds
   every vector in the cache, embeds nothing, and writes the generation.

The driver holds the planned passages and one streamed block at a time; publishing
then holds what a local build holds (see ``docs/ray.md`` for the bound).

Why the cache and not an :class:`~sourcier.embedders.Embedder` handed to the build:
the build asks its embedder for at most ``4 × batch_size`` passages per call (a Ray
Data pipeline, and so a model load per actor, per call), and
:func:`~sourcier.multivector.embed_with_sentences` pools sentence vectors from the
model's tokens only for a local ``SentenceTransformerEmbedder`` (any other embedder
gets them from separate passes, which for e5 are other vectors).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, IndexCorruptError, LoadError, ModelError, SourcierError
from ..settings import Settings
from ..types import BuildReport

log = logging.getLogger(__name__)

INSTALL_HINT = "Ray is not installed: install sourcier[ray] (pip install 'sourcier[ray]')"

Spans = Sequence[tuple[int, int]]


@dataclass(frozen=True)
class RayOptions:
    """Where and how to embed on Ray.

    Args:
        address: ``"auto"`` (the cluster this machine belongs to, or ``RAY_ADDRESS``),
            a cluster address (``"10.0.0.5:6379"``, ``"ray://head:10001"``), or
            ``"local"`` to start a private single-machine Ray for this build.
        workers: actors in the pool, one model each; ``None``: the cluster's CPUs
            divided by ``cpus_per_worker``.
        cpus_per_worker: CPUs each actor reserves (torch uses as many threads).
        batch_size: passages per Ray batch and per forward pass (``None``: the index's
            ``Settings.batch_size``).
        max_restarts: how many times a dead actor is restarted and its batch retried;
            ``None`` keeps Ray Data's default, without limit (a number is passed as a
            Ray remote argument, which Ray 2.60 deprecates).

    Raises:
        ConfigError: a value cannot work.
    """

    address: str = "auto"
    workers: int | None = None
    cpus_per_worker: float = 1.0
    batch_size: int | None = None
    max_restarts: int | None = None

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ConfigError("the Ray address is empty: give 'auto', 'local' or host:port")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers ({self.workers}) must be positive")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"cpus_per_worker ({self.cpus_per_worker}) must be positive")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size ({self.batch_size}) must be positive")
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ConfigError(f"max_restarts ({self.max_restarts}) must not be negative")


@dataclass(frozen=True)
class EmbeddedBatch:
    """Results for some planned passages, as they come back from the cluster.

    ``positions[i]`` is the passage's index in the list given to
    :func:`embed_on_ray`; ``vectors[i]`` its vector, ``sentences[i]`` the
    ``(len(spans), dim)`` vectors of its sentences.
    """

    positions: np.ndarray
    vectors: np.ndarray
    sentences: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class RayRun:
    """What one Ray embedding run did."""

    embedded: int
    duplicates: int
    workers: int
    batch_size: int
    seconds: float


@dataclass(frozen=True)
class Plan:
    """The passages a build will need and the cache does not hold, in embedding order."""

    index_path: Path
    settings: Settings
    keys: tuple[str, ...]
    texts: tuple[str, ...]
    spans: tuple[tuple[tuple[int, int], ...], ...]
    cached: int

    def __len__(self) -> int:
        return len(self.texts)


def import_ray() -> Any:
    """Import Ray, or raise the one-line install hint.

    Raises:
        ConfigError: Ray (with Ray Data) is not installed.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ConfigError(INSTALL_HINT, code="ray_missing") from err
    return ray


# --------------------------------------------------------------------------- plan


def plan_build(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    index: str | Path | None = None,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
) -> Plan:
    """The passages ``build_index(paths, index=..., settings=...)`` would embed.

    Mirrors steps 1, 3 and 4 of :func:`~sourcier.index.update_index` for new or
    edited documents (unchanged ones keep their vectors); passages the index's cache
    already holds are left out. A file that cannot be read is left out here too (the
    build reports it).

    Raises:
        IndexMismatchError: ``settings`` disagree with the existing index.
    """
    from .. import paths as locations
    from ..storage import store
    from ..ingest.chunking import chunk_document, sentence_spans
    from ..embed.embedders import make_embedder
    from .writer import EXCLUDED, Index, passage_text
    from ..ingest.loaders import discover, load_document

    readd = paths is not None
    if paths is None:
        paths = locations.bundled_corpus_files()
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    path = Path(index) if index is not None else locations.default_index_dir()
    known_docs: set[str] = set()
    excluded: set[str] = set()
    try:
        if store.index_exists(path):
            live = Index.open(path, settings=settings, cache_dir=cache_dir)
            settings = live.settings
            known_docs = set(live.snapshot.documents)
            value = live.manifest.get(EXCLUDED, [])
            excluded = (
                {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
            )
    except IndexCorruptError as err:  # the build rebuilds it or says why not
        log.warning("planning as for a new index: %s", err)
    settings = settings if settings is not None else Settings()
    embedder = make_embedder(settings, cache_dir=cache_dir)

    files, _ = discover(list(paths))
    named = {os.path.abspath(Path(p).expanduser()) for p in paths} if readd else set()
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    texts: list[str] = []
    spans: list[tuple[tuple[int, int], ...]] = []
    seen_docs: set[str] = set()
    for file in files:
        if str(file) in excluded and str(file) not in named:
            continue
        try:
            doc = load_document(file, max_bytes=max_bytes)
        except LoadError:
            continue
        if doc.doc_id in known_docs or doc.doc_id in seen_docs:
            continue
        seen_docs.add(doc.doc_id)
        for chunk in chunk_document(
            doc,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            count_tokens=embedder.count_tokens,
        ):
            text = passage_text(chunk, doc.title, embed_title=settings.embed_title)
            shift = len(text) - len(chunk.text) - chunk.start
            texts.append(text)
            spans.append(
                tuple(
                    (s + shift, e + shift)
                    for s, e in sentence_spans(doc.text, chunk.start, chunk.end)
                )
            )

    path.mkdir(parents=True, exist_ok=True)
    cache = store.EmbeddingCache(path / store.CACHE, embedder.model_id, embedder.dim)
    try:
        keys = [cache.key(t) for t in texts]
        known = cache.get_many(keys)
    finally:
        cache.close()
    todo: dict[str, int] = {}
    for i, key in enumerate(keys):
        hit = known.get(key)
        if (hit is None or len(hit[1]) != len(spans[i])) and key not in todo:
            todo[key] = i
    # by length, so each batch pads to similar lengths (as a local build does)
    order = sorted(todo.items(), key=lambda kv: (len(texts[kv[1]]), kv[0]))
    return Plan(
        index_path=path,
        settings=settings,
        keys=tuple(k for k, _ in order),
        texts=tuple(texts[i] for _, i in order),
        spans=tuple(spans[i] for _, i in order),
        cached=len(set(keys)) - len(todo),
    )


# --------------------------------------------------------------------------- embed


class _EmbedBatches:
    """The Ray Data actor: one embedder per actor, built once, then one call per batch."""

    def __init__(self, settings: Settings, cache_dir: str | None) -> None:
        from ..embed.embedders import SentenceTransformerEmbedder, make_embedder

        embedder = make_embedder(settings, cache_dir=Path(cache_dir) if cache_dir else None)
        if isinstance(embedder, SentenceTransformerEmbedder):
            # this process embeds passages only: no ONNX query encoder to export or load
            embedder.onnx_queries = False
        self._embedder = embedder
        self._dim = embedder.dim  # loads the model now: once per actor, not per batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..embed.pooling import embed_with_sentences

        texts = [str(t) for t in batch["text"]]
        spans = [[tuple(s) for s in json.loads(str(j))] for j in batch["spans"]]
        vectors, sentences = embed_with_sentences(
            self._embedder, texts, spans, batch_size=max(1, len(texts))
        )
        return {
            "pos": np.asarray(batch["pos"], dtype=np.int64),
            "vec": np.ascontiguousarray(vectors, dtype=np.float32),
            "sents": np.array(
                [np.ascontiguousarray(s, dtype=np.float32).tobytes() for s in sentences],
                dtype=object,
            ),
        }


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Connect to (or start) Ray for the block, and disconnect after it.

    A Ray already initialised by the caller is used as it is and left connected.
    ``"local"`` starts a private Ray on this machine, with ``workers × cpus_per_worker``
    CPUs when ``workers`` is given (all of them otherwise), stopped on the way out.

    Raises:
        ConfigError: Ray is not installed, or no cluster answers at ``options.address``.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        _check_reachable(options.address)
        if options.address == "local":
            if options.workers is not None:
                kwargs["num_cpus"] = math.ceil(options.workers * options.cpus_per_worker)
            ray.init(include_dashboard=False, **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except Exception as err:  # ConnectionError, ValueError, RuntimeError ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"cannot reach a Ray cluster at {options.address!r} ({first}); start one with "
            "`ray start --head` or use --ray local",
            code="ray_unreachable",
            address=options.address,
        ) from err
    try:
        yield ray
    finally:
        ray.shutdown()


def embed_on_ray(
    texts: Sequence[str],
    spans: Sequence[Spans],
    *,
    settings: Settings,
    options: RayOptions,
    cache_dir: Path | None = None,
    run: list[RayRun] | None = None,
) -> Iterator[EmbeddedBatch]:
    """Embed passages and their sentences on a Ray cluster, streaming the results.

    Batches come back in completion order, not input order; each result carries its
    position. Every position is yielded exactly once: a duplicate (a batch that ran
    twice after a worker died) is dropped, and a position that never arrives raises
    once the stream ends. Needs a Ray session (:func:`ray_session`).

    Args:
        texts: passages (without the model's passage prefix).
        spans: for each passage, the (start, end) spans of its sentences.
        settings: the index settings; each actor builds its embedder from them.
        options: pool size, batch size and restarts.
        cache_dir: the model cache on the workers (``None``: each worker's default).
        run: if given, a :class:`RayRun` is appended once the stream is exhausted.

    Yields:
        :class:`EmbeddedBatch` objects.

    Raises:
        ConfigError: Ray is not installed.
        ModelError: the cluster failed to embed (the first line of Ray's error), or a
            passage never came back.
    """
    ray = import_ray()
    if len(texts) != len(spans):
        raise ConfigError(f"{len(texts)} texts but {len(spans)} span lists")
    t0 = time.perf_counter()
    n = len(texts)
    batch_size = options.batch_size or settings.batch_size
    workers = options.workers or _default_workers(ray, options.cpus_per_worker)
    seen = np.zeros(n, dtype=bool)
    duplicates = 0
    if n:
        from ray.data import DataContext

        # the driver shows its own bar; Ray Data's bars and banner are off for this run
        context = DataContext.get_current()
        quiet = {"enable_progress_bars": False, "print_on_execution_start": False}
        saved = {k: getattr(context, k) for k in quiet if hasattr(context, k)}
        for k in saved:
            setattr(context, k, quiet[k])
        items = [
            {"pos": i, "text": t, "spans": json.dumps([list(s) for s in sp])}
            for i, (t, sp) in enumerate(zip(texts, spans, strict=True))
        ]
        blocks = max(1, math.ceil(n / batch_size))
        workers = min(workers, blocks)
        # Ray Data restarts a dead actor and retries its batch (max_restarts=-1 and
        # max_task_retries=-1 unless told otherwise)
        retries: dict[str, int] = {}
        if options.max_restarts is not None:
            retries = {"max_restarts": options.max_restarts}
            retries["max_task_retries"] = options.max_restarts
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _EmbedBatches,
            fn_constructor_kwargs={
                "settings": settings,
                "cache_dir": str(cache_dir) if cache_dir is not None else None,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=options.cpus_per_worker,
            **retries,
        )
        del items
        try:
            for block in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                positions = np.asarray(block["pos"], dtype=np.int64)
                fresh = ~seen[positions]
                # a position twice in one block would pass the mask: keep its first copy
                _, first = np.unique(positions, return_index=True)
                once = np.zeros(len(positions), dtype=bool)
                once[first] = True
                keep = fresh & once
                duplicates += int(len(positions) - keep.sum())
                if not keep.any():
                    continue
                seen[positions[keep]] = True
                vectors = np.asarray(block["vec"], dtype=np.float32).reshape(len(positions), -1)
                dim = vectors.shape[1]
                sentences = tuple(
                    np.frombuffer(b, dtype=np.float32).reshape(-1, dim)
                    for b, k in zip(block["sents"], keep, strict=True)
                    if k
                )
                yield EmbeddedBatch(positions[keep], vectors[keep], sentences)
        except SourcierError:
            raise
        except Exception as err:  # Ray wraps the actors' errors in its own types
            raise ModelError(f"embedding on Ray failed: {_first_line(err)}") from err
        finally:
            for k, v in saved.items():
                setattr(context, k, v)
    missing = int(n - seen.sum())
    if missing:
        raise ModelError(
            f"{missing} of {n} passages never came back from the Ray cluster",
            code="ray_lost",
            missing=missing,
        )
    if duplicates:
        log.info("dropped %d passages embedded twice (retried batches)", duplicates)
    if run is not None:
        run.append(RayRun(n, duplicates, workers, batch_size, time.perf_counter() - t0))


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in host or not host:
        return  # "local", "ray://...", or "auto" without RAY_ADDRESS: Ray decides
    with socket.create_connection((host.strip("[]"), int(port)), timeout=10):
        pass


def _default_workers(ray: Any, cpus_per_worker: float) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // cpus_per_worker))


def _first_line(err: BaseException) -> str:
    cause = getattr(err, "cause", None) or err.__cause__
    for candidate in (cause, err):
        if candidate is None:
            continue
        lines = [line.strip() for line in str(candidate).splitlines() if line.strip()]
        if lines:
            return lines[-1] if candidate is err and len(lines) > 1 else lines[0]
    return type(err).__name__


# --------------------------------------------------------------------------- build


def build_index_on_ray(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    index: str | Path | None = None,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    ray: RayOptions | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    show_progress: bool | None = None,
) -> BuildReport:
    """:func:`~sourcier.api.build_index`, with the chunks embedded on a Ray cluster.

    Same arguments, same result; the report's ``embedded`` counts the passages
    embedded on the cluster (plus any the local build still had to embed, which a log
    warning reports). Nothing to embed means no connection to Ray at all.

    Args:
        paths: files and folders; ``None`` means the bundled corpus.
        index: the index folder; ``None`` means the default index.
        settings: model and chunking for a new index.
        cache_dir: where converted models are cached (on the driver; workers use
            their own default unless this is given).
        ray: where and how to embed (default: ``RayOptions()``, the ``"auto"`` cluster).
        progress: callback ``(stage, done, total)``.
        show_progress: progress bars on stderr (``None``: when stderr is a terminal).

    Raises:
        ConfigError: Ray is not installed or the cluster cannot be reached.
        ModelError: the cluster failed to embed.
        InputError, IndexMismatchError: as :func:`~sourcier.api.build_index`.
    """
    from ..storage import store
    from ..api import build_index

    options = ray if ray is not None else RayOptions()
    import_ray()  # say it is missing before reading anything
    t0 = time.perf_counter()
    plan = plan_build(paths, index=index, settings=settings, cache_dir=cache_dir)
    runs: list[RayRun] = []
    if len(plan):
        from tqdm.auto import tqdm

        from ..embed.embedders import make_embedder

        embedder = make_embedder(plan.settings, cache_dir=cache_dir)
        cache = store.EmbeddingCache(plan.index_path / store.CACHE, embedder.model_id, embedder.dim)
        bar = tqdm(
            desc="Embedding on Ray",
            total=len(plan),
            unit="chunk",
            disable=None if show_progress is None else not show_progress,
        )
        done = 0
        try:
            with ray_session(options):
                for batch in embed_on_ray(
                    plan.texts,
                    plan.spans,
                    settings=plan.settings,
                    options=options,
                    cache_dir=cache_dir,
                    run=runs,
                ):
                    cache.put_many(
                        (plan.keys[p], v, s)
                        for p, v, s in zip(
                            batch.positions, batch.vectors, batch.sentences, strict=True
                        )
                    )
                    done += len(batch.positions)
                    bar.update(len(batch.positions))
                    if progress:
                        progress("embed", done, len(plan))
        finally:
            bar.close()
            cache.close()
        log.info(
            "embedded %d passages on Ray (%d workers, batches of %d) in %.1f s",
            runs[0].embedded,
            runs[0].workers,
            runs[0].batch_size,
            runs[0].seconds,
        )
    report = build_index(
        paths,
        index=plan.index_path,
        settings=plan.settings,
        cache_dir=cache_dir,
        progress=progress,
        show_progress=show_progress,
    )
    if report.embedded:
        log.warning(
            "%d chunks were embedded locally: the Ray plan did not foresee them", report.embedded
        )
    return dataclasses.replace(
        report,
        embedded=report.embedded + (runs[0].embedded if runs else 0),
        seconds=time.perf_counter() - t0,
    )
