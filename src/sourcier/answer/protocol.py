"""What an answerer is: (question, hits, evidence, context) in, a draft answer out.

Two answerers implement :class:`Answerer`: the extractive one (verbatim quotes, the
default, ``extractive.py``) and the generative one (any LangChain chat model, every
sentence verified, ``generative.py``); they are found by name in
:data:`sourcier.answer.answerers.ANSWERERS`. :meth:`sourcier.assistant.Assistant.ask_stream`
runs whichever is chosen, then the verifier, then builds the
:class:`~sourcier.types.Answer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..types import AnswerSentence, Citation, Hit, Marked

if TYPE_CHECKING:
    from ..embed.protocol import Embedder
    from ..settings import Settings
    from ..storage.snapshot import Snapshot
    from .question import Question
    from .refusal import Evidence

LEAD = {"fr": "Selon les documents :", "en": "According to the documents:"}


@dataclass(frozen=True)
class Draft:
    """An answer before it becomes an :class:`~sourcier.types.Answer`.

    Attributes:
        text: the answer with ``[n]`` markers into ``citations``.
        citations: the quoted spans, numbered from 1.
        sentences: each sentence with its citation numbers and support.
        mode: "extractive" or "generative".
        model: the language model's name (generative only).
        refused: the answerer found the documents do not hold the answer.
        notice: one line about how the answer was made, shown to the user.
        usage: language-model token counts ("input", "output").
        timings_ms: milliseconds per stage of the answerer.
        see_also: the runners-up's citation numbers, when the text quotes only the
            best ("glance" style).
        marked: the asked fact marked in the text, if any ("glance" style).
    """

    text: str
    citations: tuple[Citation, ...] = ()
    sentences: tuple[AnswerSentence, ...] = ()
    mode: str = "extractive"
    model: str | None = None
    refused: bool = False
    notice: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    see_also: tuple[int, ...] = ()
    marked: Marked | None = None


@dataclass(frozen=True)
class Context:
    """What answering reads besides the question: one generation of the index, the
    index's embedder and the settings of this call."""

    snapshot: Snapshot
    embedder: Embedder
    settings: Settings


class Answerer(Protocol):
    """Turns the evidence for a question into a draft answer.

    ``stream`` yields pieces of answer text (``str``) as they are written, then
    exactly one :class:`Draft`. It is only called for questions the evidence gate let
    through.

    ``rewrite`` may turn a follow-up into a standalone question before retrieval
    (``follow_up_query="llm"``); an answerer that cannot returns ``None``.
    """

    mode: str

    def stream(
        self, question: Question, hits: Sequence[Hit], evidence: Evidence, context: Context
    ) -> Iterator[str | Draft]: ...

    def rewrite(self, question: Question) -> Question | None: ...


def cite(n: int, hit: Hit, start: int, end: int, quote: str) -> Citation:
    """Citation ``[n]``: ``quote`` is ``text[start:end]`` of the document ``hit`` is from."""
    page, page_end = hit.page_span(start, end)
    return Citation(
        n=n,
        doc_id=hit.chunk.doc_id,
        title=hit.title,
        source=hit.source,
        chunk_id=hit.chunk.chunk_id,
        quote=quote,
        start=start,
        end=end,
        date_iso=hit.date_iso,
        page=page,
        page_end=page_end,
    )


def marked(quote: str, n: int) -> str:
    """A quote followed by its ``[n]`` marker, as it stands in an answer's text."""
    return f"{quote} [{n}]"
