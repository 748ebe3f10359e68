"""Sentences of the retrieved passages, scored as answers to the question.

Both the refusal gate (how well does the best sentence match?) and the extractive
answerer (which sentences to quote?) read these candidates; they are computed once
per call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import TermStatistics, analyze
from ..types import Document, Hit
from ..words import FULL_MONTH_NAMES

if TYPE_CHECKING:
    from ..storage.snapshot import Snapshot
    from .question import Question

# a quantity, not an ordinal ("71", "6 800", "3,2"; not "7ème" or "2nd")
NUMBER = re.compile(r"(?<!\w)\d+(?:[ \u202f.,]\d+)*(?!\w)")
_MONTH_NAMES = "|".join(sorted(FULL_MONTH_NAMES, key=lambda m: (-len(m), m)))
MONTHS = re.compile(rf"\b({_MONTH_NAMES})\b|\b(1[89]|20)\d\d\b", re.I)
NAME = re.compile(r"\b[A-ZÀ-Ý][a-zà-ÿ'’-]+(?:[ -][A-ZÀ-Ý][A-Za-zÀ-ÿ'’-]+)+|\b[A-ZÀ-Ý]{3,}\b")
PLACE = re.compile(r"\b(à|au|en|in|at)\s+[A-ZÀ-Ý]")
# Text that addresses a language model ("ignore previous instructions"): it is never
# evidence, so neither answerer can be steered into quoting or repeating it.
INSTRUCTION = re.compile(
    r"\b(ignore[sz]?|disregard|oublie[sz]?)\b.{0,40}\b(instructions?|consignes?|prompt|r[èe]gles?)\b|"
    r"\b(system prompt|prompt syst[èe]me|r[ée]ponds uniquement|answer only with|reply only with|"
    r"you are now|tu es maintenant)\b",
    re.I,
)


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved chunk, scored as an answer to the question."""

    hit: Hit
    start: int
    end: int
    text: str
    score: float
    coverage: float
    dense: float
    matched: frozenset[str] = frozenset()  # question terms found in the sentence


_ABOUT_A_TITLE = re.compile(r"\b(titres?|titled?|intitulée?s?|s.intitule|headlines?)\b", re.I)


def asks_for_a_title(text: str) -> bool:
    """Whether a question is about a document itself: its title or a heading ("Quel
    est le titre du communiqué… ?")."""
    return bool(_ABOUT_A_TITLE.search(text))


def quotable(
    question_text: str, cands: Sequence[Candidate], documents: Mapping[str, Document]
) -> list[Candidate]:
    """The candidates that may be evidence: headings are structure, not statements,
    unless the question asks for a title."""
    if asks_for_a_title(question_text):
        return list(cands)
    return [c for c in cands if not documents[c.hit.chunk.doc_id].in_heading(c.start, c.end)]


def idf_weights(terms: Sequence[str], bm25: TermStatistics) -> dict[str, float]:
    """idf per query term; a term no passage contains weighs most (df = 0)."""
    unseen = math.log(1.0 + (len(bm25) + 0.5) / 0.5)
    return {t: (bm25.idf(t) or unseen) for t in dict.fromkeys(terms)}


def coverage(weights: Mapping[str, float], text_terms: set[str]) -> float:
    """The idf-weighted share of query terms present in a text (0..1)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in text_terms) / total


def _counts_asked_thing(sentence: str, terms: Collection[str]) -> float:
    """1 if a number counts something the question names ("71 pôles"), 0.4 for any number."""
    best = 0.0
    for m in NUMBER.finditer(sentence):
        following = sentence[m.end() : m.end() + 40].split()[:3]
        if terms and set(analyze(" ".join(following))) & set(terms):
            return 1.0
        best = 0.4
    return best


def type_bonus(answer_type: str | None, sentence: str, terms: Collection[str] = ()) -> float:
    """How much ``sentence`` shows the kind of thing asked for (0..1; 0.5: no kind asked)."""
    if answer_type == "how_many":
        return _counts_asked_thing(sentence, terms)
    if answer_type == "when":
        return 1.0 if MONTHS.search(sentence) else 0.0
    if answer_type == "who":
        return 1.0 if NAME.search(sentence) else 0.0
    if answer_type == "where":
        return 1.0 if PLACE.search(sentence) else 0.0
    return 0.5


def candidates(
    question: Question,
    hits: Sequence[Hit],
    snapshot: Snapshot,
    query_vector: np.ndarray,
) -> list[Candidate]:
    """Score every sentence of the hits as an answer; best first.

    The score mixes the dense similarity of the sentence to the question (its stored
    sentence vector, min-max normalised over the candidates), the idf-weighted share
    of question terms in the sentence (terms of the current question count twice
    those carried over from history), the rank of its chunk, and whether the sentence
    has the kind of thing the question asks for (a number for "combien", a name for
    "qui", a date for "quand").
    """
    bm25 = snapshot.bm25
    own = idf_weights(question.terms, bm25)
    carried = {
        t: 0.5 * w for t, w in idf_weights(question.query_terms, bm25).items() if t not in own
    }
    weights = {**carried, **own}
    seen: set[tuple[str, int, int]] = set()
    raw: list[tuple[Hit, int, int, str, float, float, float, float, set[str]]] = []
    top = max((h.score for h in hits), default=1.0) or 1.0
    qvec = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    for hit in hits:
        doc = snapshot.documents[hit.chunk.doc_id]
        title_terms = set(analyze(doc.title))
        prior = max(hit.score, 0.0) / top
        for start, end, row in snapshot.sentences.get(hit.chunk.chunk_id, ()):
            key = (doc.doc_id, start, end)
            if key in seen:
                continue
            seen.add(key)
            text = doc.text[start:end]
            terms = set(analyze(text))
            if len(terms) < 2 or INSTRUCTION.search(text):
                continue
            dense = float(snapshot.sentence_vectors[row] @ qvec)
            cov = coverage(weights, terms)
            cov_ctx = coverage(weights, terms | title_terms)
            raw.append((hit, start, end, text, dense, cov, cov_ctx, prior, terms & weights.keys()))
    if not raw:
        return []
    lo = min(r[4] for r in raw)
    hi = max(r[4] for r in raw)
    out = []
    for hit, start, end, text, dense, cov, cov_ctx, prior, matched in raw:
        dense_norm = (dense - lo) / (hi - lo) if hi - lo > 1e-9 else 1.0
        score = (
            0.35 * dense_norm
            + 0.3 * cov
            + 0.1 * cov_ctx
            + 0.1 * prior
            + 0.15 * type_bonus(_scored_type(question.answer_type), text, own.keys())
            - (0.1 if len(text) > 600 else 0.0)
        )
        out.append(Candidate(hit, start, end, text, score, cov, dense, frozenset(matched)))
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


def _scored_type(answer_type: str | None) -> str | None:
    # "which" questions are scored like untyped ones: a named list is found by the
    # extractive answerer's list handling, not by a sentence bonus
    return None if answer_type == "which" else answer_type


# Words by which a sentence points to content elsewhere in its document. Not "ci-après"
# ("ci-après dénommée") nor a bare "below" ("fell below zero"): they name, not point.
POINTER = re.compile(
    r"\b(ci-dessous|ci-joint(?:e|s|es)?|en annexe|(?:see|listed|shown|given|detailed) below|"
    r"as follows|attached)\b|\bbelow(?=\s*[:)])",
    re.I,
)
LIST_ITEM = re.compile(r"^[ \t]*(?:[-–—•*·▪►]|\d{1,2}[.)]|[a-z][.)])[ \t]+\S", re.M)


def list_follows(text: str, end: int) -> bool:
    """Whether two or more list items follow ``end`` closely in ``text``."""
    return len(LIST_ITEM.findall(text, end, end + 1500)) >= 2


def list_end(text: str, end: int) -> int:
    """The end of the list items that follow ``end`` (blank lines between them allowed),
    or ``end`` when no item follows."""
    stop = end
    pos = text.find("\n", end)
    if pos < 0 or text[end:pos].strip():
        return end
    while pos < min(len(text), end + 1500):
        line_end = text.find("\n", pos + 1)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos + 1 : line_end]
        if LIST_ITEM.match(line):
            stop = pos + 1 + len(line.rstrip())
        elif line.strip():
            break
        pos = line_end
    return stop
