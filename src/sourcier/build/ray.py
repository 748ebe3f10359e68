"""The Ray embedding stage: ``sourcier index PATH --ray auto|ADDRESS``.

An optional extra (``pip install 'sourcier[ray]'``); nothing here imports Ray until a
build embeds something on it, and the default path never does.

A build with :class:`RayEmbedding` runs as any build does (:mod:`sourcier.build`); only
its embed stage differs. The passages to embed, tagged with their position, go through
Ray Data ``map_batches`` over a pool of actors; each actor builds the index's own
embedder from the index settings once and embeds each batch with its
``embed_with_sentences``, so passage *and* sentence vectors are the ones a local build
computes. Results stream back block by block into the build's embedding cache; every
position must arrive exactly once (a batch retried after a worker died is counted once,
a missing one fails the build). See ``docs/ray.md``.
"""

from __future__ import annotations

import contextlib
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

from ..errors import ConfigError, ModelError, SourcierError
from ..settings import Settings
from .chunk import Span
from .embed import EmbeddedBatch, precision_of

log = logging.getLogger(__name__)


INSTALL_HINT = "Ray is not installed: install sourcier[ray] (pip install 'sourcier[ray]')"


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
class RayRun:
    """What one Ray embedding run did."""

    embedded: int
    duplicates: int
    workers: int
    batch_size: int
    seconds: float


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


class _EmbedBatches:
    """The Ray Data actor: one embedder per actor, built once, then one call per batch."""

    def __init__(self, settings: Settings, cache_dir: str | None) -> None:
        from ..embed.models import load_embedder
        from ..embed.transformer import SentenceTransformerEmbedder

        embedder = load_embedder(settings.model, cache_dir=Path(cache_dir) if cache_dir else None)
        if isinstance(embedder, SentenceTransformerEmbedder):
            # this process embeds passages only: no ONNX query encoder to export or load
            embedder.onnx_queries = False
        self._embedder = embedder
        self._dim = embedder.dim  # loads the model now: once per actor, not per batch
        self._precision = precision_of(embedder)  # by this worker's CPU

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        spans = [[tuple(s) for s in json.loads(str(j))] for j in batch["spans"]]
        vectors, sentences = self._embedder.embed_with_sentences(
            texts, spans, batch_size=max(1, len(texts))
        )
        return {
            "pos": np.asarray(batch["pos"], dtype=np.int64),
            "precision": np.array([self._precision] * len(texts), dtype=object),
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
    spans: Sequence[Sequence[Span]],
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
    batch_size = options.batch_size or settings.model.batch_size
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
                precision = str(block["precision"][0]) if "precision" in block else None
                yield EmbeddedBatch(positions[keep], vectors[keep], sentences, precision)
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


class RayEmbedding:
    """The embed stage on a Ray cluster (connected on the first passage to embed, so a
    build with nothing to embed never reaches Ray).

    Args:
        embedder: the index's embedder in this process: its tokenizer cuts the chunks
            and its identity goes in the manifest; the actors build their own.
        settings: the index settings the actors build their embedders from.
        options: where and how to embed.
        cache_dir: the model cache on the workers (``None``: each worker's default).
    """

    in_process = False
    """It embeds on the cluster: a build does not embed with it while it reads
    (:mod:`sourcier.build.prefetch`), it only chunks ahead."""

    def __init__(
        self,
        embedder: Any,
        settings: Settings,
        options: RayOptions,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.options = options
        self.cache_dir = cache_dir
        self.runs: list[RayRun] = []
        self.precisions: set[str] = set()  # what the actors embedded in
        self._session: contextlib.ExitStack | None = None

    @classmethod
    def factory(
        cls,
        options: RayOptions,
        *,
        cache_dir: Path | None = None,
        embedder: Callable[[Settings], Any] | None = None,
    ) -> Callable[[Settings], RayEmbedding]:
        """What :func:`~sourcier.build.conductor.update_index` takes as ``embedding``.

        Args:
            options: where and how to embed.
            cache_dir: the model cache (here and on the workers).
            embedder: gives this process's embedder for the settings (default: a new
                one; a shared one saves loading the model twice).
        """
        import_ray()  # say it is missing before anything is read

        def make(settings: Settings) -> RayEmbedding:
            from ..embed.models import load_embedder

            local = (
                embedder(settings)
                if embedder is not None
                else load_embedder(settings.model, cache_dir=cache_dir)
            )
            return cls(local, settings, options, cache_dir=cache_dir)

        return make

    @property
    def model_id(self) -> str:
        return str(self.embedder.model_id)

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    @property
    def query_prefix(self) -> str:
        return str(self.embedder.query_prefix)

    @property
    def passage_prefix(self) -> str:
        return str(self.embedder.passage_prefix)

    @property
    def precision(self) -> str:
        """What the actors embedded in (each decides by its own CPU)."""
        if not self.precisions:
            return "on Ray: nothing embedded yet"
        return "on Ray: " + "; ".join(sorted(self.precisions))

    def count_tokens(self, text: str) -> int:
        return int(self.embedder.count_tokens(text))

    def embed(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, tick: Callable[[int], None]
    ) -> Iterator[EmbeddedBatch]:
        if self._session is None:
            self._session = contextlib.ExitStack()
            self._session.enter_context(ray_session(self.options))
        for batch in embed_on_ray(
            texts,
            spans,
            settings=self.settings,
            options=self.options,
            cache_dir=self.cache_dir,
            run=self.runs,
        ):
            tick(len(batch.positions))
            if batch.precision:
                self.precisions.add(batch.precision)
            yield batch
        run = self.runs[-1]
        log.info(
            "embedded %d passages on Ray (%d workers, batches of %d) in %.1f s",
            run.embedded,
            run.workers,
            run.batch_size,
            run.seconds,
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
