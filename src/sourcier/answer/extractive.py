"""The extractive answerer: quote the sentences that answer, with their exact spans.

No language model is involved: every word of an answer outside the short framing
("Selon les documents :") is a verbatim quote whose span the verifier checks against
the document text before it is returned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ..analysis import analyze
from ..types import AnswerSentence, Citation, Document, Hit
from . import concise, glance
from .candidates import POINTER, Candidate, idf_weights, list_end
from .protocol import LEAD, Context, Draft, cite, marked

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.snapshot import Snapshot
    from .question import Question
    from .refusal import Evidence


STYLES = ("glance", "sentences", "concise")


class ExtractiveAnswerer:
    """The default answerer: verbatim quotes, no language model.

    Args:
        max_sentences: at most this many quotes ("glance" and "sentences" styles).
        style: "glance" (the sentences style's quotes as citations, the answer text one
            line: the lead quote or its clause, the asked fact marked when sure, "Voir
            aussi" the others; see :mod:`sourcier.answer.glance`), "sentences" (the
            best sentence and close runners-up, whole, after "Selon les documents :")
            or "concise" (the shortest stretch that answers: a clause, a standalone
            line, a list; see :mod:`sourcier.answer.concise`).
    """

    mode = "extractive"

    def __init__(self, *, max_sentences: int = 3, style: str = "glance") -> None:
        self.max_sentences = max_sentences
        self.style = style

    @classmethod
    def from_settings(cls, settings: Settings, chat_model: object = None) -> ExtractiveAnswerer:
        """The extractive answerer with the settings' style and quote count (it uses no
        chat model)."""
        return cls(max_sentences=settings.answer.max_sentences, style=settings.answer.style)

    def stream(
        self, question: Question, hits: Sequence[Hit], evidence: Evidence, context: Context
    ) -> Iterator[str | Draft]:
        yield self.draft(question, evidence, context.snapshot)

    def rewrite(self, question: Question) -> Question | None:
        """Follow-ups are searched with the previous question (no model to rewrite them)."""
        return None

    def draft(self, question: Question, evidence: Evidence, snapshot: Snapshot) -> Draft:
        """The quotes for ``question`` from the gate's candidates."""
        documents = snapshot.documents
        if self.style != "concise" or not evidence.candidates:
            chosen = select(evidence.candidates, max_sentences=self.max_sentences)
            chosen = with_lists(chosen, documents)
            if self.style == "glance" and chosen:
                return glance.draft(question, chosen, snapshot)
            text, citations = compose(chosen, language=question.language)
        else:
            chosen = concise_choice(question, evidence.candidates, snapshot)
            text, citations = compose(chosen, language=question.language, lead=False)
        sentences = tuple(AnswerSentence(c.quote, (c.n,), True) for c in citations)
        return Draft(text, citations, sentences, mode=self.mode)


def concise_choice(
    question: Question, cands: Sequence[Candidate], snapshot: Snapshot
) -> list[Candidate]:
    """The stretch that answers: a standalone line that shows the asked thing, or the
    best sentence (a runner-up that shows it, when the best does not) cut to the
    clauses that hold it, with the list it announces."""
    documents = snapshot.documents
    usable = concise.usable(question, cands, documents)
    best = concise.prefer_typed(question, usable)
    # a runner-up's standalone line only when the best stretch shows no asked thing: a
    # date line under another sentence's colon does not answer "en quelle année"
    # when the best sentence gives the year
    runners = [] if concise.shows_entity(question, best.text) else usable[:5]
    for anchor in [best, *(c for c in runners if c is not best)]:
        text = documents[anchor.hit.chunk.doc_id].text
        lines = concise.standalone_lines(anchor, question, text)
        if lines:
            return [dataclasses.replace(anchor, start=s, end=e, text=text[s:e]) for s, e in lines]
    weights = idf_weights(question.terms, snapshot.bm25)
    return with_lists([concise.trim(best, question, weights)], documents)


def _near_duplicate(a: str, b: str) -> bool:
    ta, tb = set(analyze(a)), set(analyze(b))
    if not ta or not tb:
        return a.strip() == b.strip()
    return len(ta & tb) / len(ta | tb) >= 0.7


def select(cands: Sequence[Candidate], *, max_sentences: int) -> list[Candidate]:
    """The best sentence, plus close runners-up that add something new.

    A runner-up is quoted if it scores within 20% of the best and is not a
    near-duplicate of a quoted sentence. (Measured on the seed set and PIAF dev: a
    stricter novelty rule lost more answers than it saved citation precision.)
    """
    if not cands:
        return []
    best = cands[0]
    chosen = [best]
    for c in cands[1:]:
        if len(chosen) >= max_sentences:
            break
        if c.score < 0.8 * best.score:
            continue
        if any(_near_duplicate(c.text, x.text) for x in chosen):
            continue
        chosen.append(c)
    return chosen


def with_lists(chosen: Sequence[Candidate], documents: Mapping[str, Document]) -> list[Candidate]:
    """Quote a sentence that announces a list ("liste ci-dessous", a closing colon)
    together with the list items that follow it, so the answer shows the list.

    Other chosen sentences inside the extended quote are dropped.
    """
    out: list[Candidate] = []
    for c in chosen:
        if POINTER.search(c.text) or c.text.rstrip().endswith(":"):
            text = documents[c.hit.chunk.doc_id].text
            end = list_end(text, c.end)
            if end > c.end:
                c = dataclasses.replace(c, end=end, text=text[c.start : end])
        out.append(c)
    return [
        c
        for c in out
        if not any(
            o is not c
            and o.hit.chunk.doc_id == c.hit.chunk.doc_id
            and o.start <= c.start
            and c.end <= o.end
            for o in out
        )
    ]


def compose(
    chosen: Sequence[Candidate], *, language: str, lead: bool = True
) -> tuple[str, tuple[Citation, ...]]:
    """Answer text with ``[n]`` markers and the matching citations (after "Selon les
    documents :" when ``lead``)."""
    opening = LEAD.get(language, LEAD["fr"]) if lead else ""
    citations = []
    parts = []
    for n, c in enumerate(chosen, start=1):
        citations.append(cite(n, c.hit, c.start, c.end, c.text))
        parts.append(marked(c.text, n))
    return " ".join([opening, *parts]).strip(), tuple(citations)
