"""A sentence-transformers model as an embedder: loaded offline on first use, questions
on ONNX Runtime when the folder has the export (:mod:`sourcier.embed.onnx_encoder`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError
from ..settings import ModelSettings
from .precision import Precision, choose
from .protocol import check_batch_size

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded offline on first use and kept on the object.

    Loading and inference are guarded by locks, so one instance can serve several threads
    (a Gradio server does). Nothing is ever downloaded: ``name_or_path`` must be a local
    folder or a model already in the Hugging Face cache.

    With ``onnx_queries``, questions are embedded by an ONNX export of the same model
    (:mod:`sourcier.onnx_encoder`), exported on the first load of the torch model when
    the folder has none yet; without onnxruntime, or if the export fails or drifts from
    torch, questions are embedded with torch and one log line says why.

    Args:
        name_or_path: a model folder or a Hugging Face model id.
        model_id: the id recorded in index manifests (defaults to ``name_or_path``).
        query_prefix: prepended to every query.
        passage_prefix: prepended to every passage.
        device: torch device, "cpu" by default.
        query_threads: CPU threads for one query embedding (onnxruntime's intra-op
            threads, or torch's while it embeds a query); passages get torch's default.
        onnx_queries: embed queries with the ONNX export (a folder converted by
            ``sourcier.e5model`` only).
        precision: what passages are embedded in: "auto", "float32" or "bfloat16"
            (:mod:`sourcier.embed.precision`). In bfloat16 the torch model is cast
            once, on the first passage; questions stay on ONNX Runtime in float32 (when
            torch embeds them, it does so in the model's precision).
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        model_id: str | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        device: str = "cpu",
        query_threads: int = 1,
        onnx_queries: bool = False,
        precision: str = "auto",
    ) -> None:
        if query_threads < 1:
            raise ConfigError(f"query_threads ({query_threads}) must be positive")
        self.name_or_path = str(name_or_path)
        self.model_id = model_id if model_id is not None else self.name_or_path
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.device = device
        self.query_threads = query_threads
        self.onnx_queries = onnx_queries
        self.precision = precision
        self._passage_precision: Precision | None = None
        self._passages_ready = False  # the model is in the passages' precision
        self._model: Any = None
        self._dim: int | None = None
        self._load_lock = threading.Lock()
        # fast tokenizers raise "Already borrowed" when shared across threads mid-call
        self._run_lock = threading.Lock()
        # None: not tried yet; False: not available (torch embeds queries)
        self._onnx: Any = None
        self._onnx_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEmbedder({self.name_or_path!r}, model_id={self.model_id!r}, "
            f"device={self.device!r})"
        )

    @property
    def dim(self) -> int:
        """Embedding size (loads the model if needed)."""
        if self._dim is None:
            self._ensure_loaded()
        assert self._dim is not None
        return self._dim

    @property
    def passage_precision(self) -> Precision:
        """What passages are embedded in, and why (decided once, from the CPU)."""
        if self._passage_precision is None:
            self._passage_precision = choose(self.precision, self.device)
        return self._passage_precision

    def _passage_model(self) -> Any:
        """The torch model, in the passages' precision (cast on first use)."""
        model = self._ensure_loaded()
        if not self._passages_ready:
            with self._run_lock:
                if not self._passages_ready:
                    if self.passage_precision.dtype == "bfloat16":
                        model.to(_torch_dtype("bfloat16"))
                    logger.info("passages are embedded in %s", self.passage_precision)
                    self._passages_ready = True
        return model

    @property
    def loaded(self) -> bool:
        """Whether the torch model has been loaded already."""
        return self._model is not None

    @property
    def query_backend(self) -> str | None:
        """What embeds queries: "onnx", "torch", or ``None`` before the first query."""
        if not self.onnx_queries:
            return "torch"
        if self._onnx is None:
            return None
        return "onnx" if self._onnx else "torch"

    def _ensure_loaded(self) -> Any:
        model = self._load_torch()
        if self.onnx_queries and self._onnx is None:
            # torch is in memory now, the one time an export is cheap to make
            self._query_encoder()
        return model

    def _load_torch(self) -> Any:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
                model = self._model
        return model

    def _query_encoder(self) -> Any:
        """The ONNX query encoder, or ``None`` when torch embeds queries (decided once)."""
        if not self.onnx_queries:
            return None
        encoder = self._onnx
        if encoder is None:
            with self._onnx_lock:
                if self._onnx is None:
                    self._onnx = self._open_onnx() or False
                encoder = self._onnx
        return encoder or None

    def _open_onnx(self) -> Any:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            logger.info("onnxruntime is not installed: questions are embedded with torch")
            return None
        from . import onnx_encoder

        folder = Path(self.name_or_path)
        try:
            path = onnx_encoder.encoder_dir(folder)
            if not onnx_encoder.is_complete(path):
                note = onnx_encoder.failure_note(path)
                if note is not None:
                    logger.info("questions are embedded with torch: %s", note)
                    return None
                logger.info("exporting the query encoder to ONNX (one time, about 15 s)")
                self._load_torch()
                path = onnx_encoder.export_query_encoder(
                    folder,
                    reference=lambda texts: self._encode(texts, 32, threads=self.query_threads),
                    query_prefix=self.query_prefix,
                    threads=self.query_threads,
                )
            encoder = onnx_encoder.OnnxQueryEncoder(path, threads=self.query_threads)
        except (ModelError, OSError, ImportError) as err:
            logger.warning("questions are embedded with torch: %s", err)
            return None
        if self._dim is None:
            self._dim = encoder.dim
        logger.debug("questions are embedded with %r", encoder)
        return encoder

    def _load(self) -> Any:
        source = _resolve_offline(self.name_or_path)
        logger.info("loading embedding model %s on %s", source, self.device)
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(source, device=self.device, local_files_only=True)
            model.eval()
            if str(self.device).startswith("cpu"):
                import torch

                # half-precision checkpoints are slow and lossy on CPU
                if any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()):
                    model.float()
            # renamed in sentence-transformers 6; the old name still works in 5
            getter = getattr(model, "get_embedding_dimension", None)
            if getter is None:
                getter = model.get_sentence_embedding_dimension
            dim = getter()
        except ModelError:
            raise
        except Exception as err:  # sentence-transformers/transformers raise many types
            raise ModelError(f"could not load model '{self.name_or_path}': {err}") from err
        if not dim:
            raise ModelError(f"model '{self.name_or_path}' does not report an embedding size")
        self._dim = int(dim)
        return model

    def _encode(
        self, texts: list[str], batch_size: int, *, threads: int | None, model: Any = None
    ) -> np.ndarray:
        model = model if model is not None else self._load_torch()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._run_lock, torch_threads(threads):
            vectors = model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        out = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        if next(model.parameters()).dtype != _torch_dtype("float32"):
            from .pooling import normalise  # a bfloat16 model normalised in bfloat16

            out = normalise(out)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions with ``query_prefix``; see :class:`Embedder`.

        Args:
            texts: the questions.

        Returns:
            ``(len(texts), dim)`` float32, rows L2-normalised.

        Raises:
            ModelError: the model cannot be loaded.
        """
        prefixed = [self.query_prefix + t for t in texts]
        encoder = self._query_encoder()
        if encoder is not None:
            try:
                vectors: np.ndarray = encoder.encode(prefixed)
                return vectors
            except Exception as err:  # onnxruntime raises its own types
                logger.warning("the ONNX query encoder failed (%s): using torch", err)
                self._onnx = False
        return self._encode(prefixed, batch_size=32, threads=self.query_threads)

    def embed_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed passages with ``passage_prefix``; see :class:`Embedder`.

        Args:
            texts: the passages.
            batch_size: texts per forward pass.
            progress: called with the number of texts done after each batch.

        Returns:
            ``(len(texts), dim)`` float32, rows L2-normalised.

        Raises:
            ConfigError: ``batch_size`` is not positive.
            ModelError: the model cannot be loaded.
        """
        check_batch_size(batch_size)
        model = self._passage_model() if texts else None
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = [self.passage_prefix + t for t in texts[start : start + batch_size]]
            parts.append(self._encode(batch, batch_size=batch_size, threads=None, model=model))
            if progress is not None:
                progress(len(batch))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)

    def embed_with_sentences(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passages and their sentences from one forward pass per passage: each sentence
        vector pools the passage's token embeddings inside it
        (:func:`~sourcier.multivector.pool_sentences`); see :class:`Embedder`.

        Raises:
            ConfigError: ``batch_size`` is not positive.
            ModelError: the model cannot be loaded.
        """
        from .pooling import normalise, pool_sentences

        check_batch_size(batch_size)
        model = self._passage_model()
        shift = len(self.passage_prefix)
        project = _after_pooling(model)
        vectors = np.zeros((len(texts), self.dim), np.float32)
        sentence_vectors: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = [self.passage_prefix + t for t in texts[start : start + batch_size]]
            with self._run_lock:
                outputs = model.encode(
                    batch,
                    batch_size=len(batch),
                    output_value=None,
                    convert_to_numpy=False,
                    show_progress_bar=False,
                )
                encoded = model.tokenizer(
                    batch,
                    return_offsets_mapping=True,
                    truncation=True,
                    max_length=model.max_seq_length,
                )
            for j, out in enumerate(outputs):
                i = start + j
                n = int(out["attention_mask"].sum())
                vectors[i] = out["sentence_embedding"].float().cpu().numpy()
                sentence_vectors.append(
                    pool_sentences(
                        out["token_embeddings"][:n].float().cpu().numpy(),
                        np.asarray(encoded["offset_mapping"][j], dtype=np.int64)[:n],
                        spans[i],
                        shift=shift,
                        fallback=vectors[i],
                        project=project,
                    )
                )
            if progress is not None:
                progress(len(batch))
        return normalise(vectors), sentence_vectors

    def count_tokens(self, text: str) -> int:
        """Model tokens in ``text``, without special tokens or prefix.

        Args:
            text: any text (not truncated).

        Returns:
            The number of tokens the model's tokenizer produces.

        Raises:
            ModelError: the model cannot be loaded.
        """
        tokenizer = self._ensure_loaded().tokenizer
        with self._run_lock:
            backend = getattr(tokenizer, "backend_tokenizer", None)
            if backend is not None:
                return len(backend.encode(text, add_special_tokens=False).ids)
            return len(tokenizer.encode(text, add_special_tokens=False))


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op threads set to ``threads``, then restore them.

    torch's thread count is one setting for the whole process; restoring it keeps an
    application that embeds sourcier in charge of its own. ``None`` changes nothing.
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve_offline(name_or_path: str) -> str:
    """Return a local folder or a cached Hugging Face id for ``name_or_path``, never fetching.

    Raises:
        ModelError: the name is neither a local folder nor in the Hugging Face cache.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model '{name_or_path}' is not a folder")
        return str(path)
    candidates = [name_or_path]
    if "/" not in name_or_path:
        candidates.append(f"sentence-transformers/{name_or_path}")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError as err:  # pragma: no cover - sentence-transformers depends on it
        raise ModelError(f"model '{name_or_path}' is not available offline: {err}") from err
    for repo_id in candidates:
        try:
            cached = try_to_load_from_cache(repo_id, "config.json")
        except Exception:  # an invalid repo id: HFValidationError, ValueError
            continue
        if isinstance(cached, str):
            return repo_id
    raise ModelError(
        f"model '{name_or_path}' is not available offline: it is not a local folder and not "
        "in the Hugging Face cache (sourcier never downloads models)"
    )


def st_modules() -> Any:
    """sentence-transformers' module classes (Pooling, Dense, Normalize, ...): version 6
    moved them, version 5 has them in ``sentence_transformers.models`` only."""
    import importlib

    try:
        return importlib.import_module("sentence_transformers.sentence_transformer.modules")
    except ImportError:
        return importlib.import_module("sentence_transformers.models")


def _after_pooling(model: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """What a sentence-transformers model does to its pooled vector (dense projections,
    as in EmbeddingGemma), as a function of a ``(rows, dim)`` batch of means; ``None``
    when only a normalisation follows the pooling (e5), which the caller does itself."""
    st = st_modules()
    modules = list(model)
    at = next((i for i, m in enumerate(modules) if isinstance(m, st.Pooling)), None)
    after = [] if at is None else [m for m in modules[at + 1 :] if not isinstance(m, st.Normalize)]
    if not after:
        return None

    def project(means: np.ndarray) -> np.ndarray:
        import torch

        weight = next(model.parameters())
        batch = torch.from_numpy(means).to(device=weight.device, dtype=weight.dtype)
        features = {"sentence_embedding": batch}
        with torch.no_grad():
            for module in after:
                features = module(features)
        return features["sentence_embedding"].float().cpu().numpy()

    return project


def load_sentence_transformer(
    model: ModelSettings, prefixes: tuple[str, str], cache_dir: Path | None
) -> SentenceTransformerEmbedder:
    """Any sentence-transformers folder (or model in the Hugging Face cache) by its name."""
    return SentenceTransformerEmbedder(
        model.name,
        model_id=model.name,
        query_prefix=prefixes[0],
        passage_prefix=prefixes[1],
        query_threads=model.query_threads,
        device=model.device,
        precision=model.precision,
    )
