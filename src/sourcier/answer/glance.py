"""The answer line: one quote, the asked fact marked, the runners-up as "see also".

The "glance" style quotes what the "sentences" style quotes (the best sentence and close
runners-up, whole, with the list a sentence announces), but shows it differently:

- the answer text is one line: the lead quote (the best one, or a runner-up that shows
  the asked kind of thing when the best does not), cut to the clause that holds that
  thing when the concise rules cut it (:func:`sourcier.answer.concise.trim`), or, for a
  sentence longer than ``LONG``, to its clauses around the question's words
  (:func:`focus`); then its ``[1]`` and "Voir aussi [2] [3]" for the other quotes;
- every quote stays a citation with its exact span (the lead one whole), so what a
  reader can see (the line and the sources) holds everything the sentences style showed;
- when the question asks who, when or where and exactly one thing of that kind, not
  named by the question itself, stands in the line right beside the question's words,
  in a line that holds most of them, it is marked (:class:`~sourcier.types.Marked`).
  When there are none or several, or the line is not sure enough (``RULES``,
  ``MIN_TERMS``), nothing is: a wrong mark misleads more than none. The thresholds were
  calibrated on PIAF dev (``benchmarks/answer_line.py --calibrate``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..analysis import analyze
from ..types import Answer, AnswerSentence, Marked
from ..words import FULL_MONTH_NAMES
from . import concise
from .candidates import Candidate, coverage, idf_weights
from .protocol import Draft, cite, marked

if TYPE_CHECKING:
    from ..storage.snapshot import Snapshot
    from .question import Question

SEE_ALSO = {"fr": "Voir aussi", "en": "See also"}

_MONTH = "|".join(sorted(FULL_MONTH_NAMES, key=lambda m: (-len(m), m)))
_YEAR = r"(?:1\d{3}|20\d\d)"
# a date as written: "12 mars 1995", "mars 1995", "12 mars", "1995", "XVIIe siècle"
_DATE = re.compile(
    rf"(?<![\w,.])(?:(?:\d{{1,2}}(?:er)?\s+)?(?:{_MONTH})(?:\s+{_YEAR})?(?![\w])|"
    rf"{_YEAR}(?![\w,-]|\.\d)|[XVI]+e\s+siècle)",
    re.I,
)
_WORD = re.compile(r"[\wÀ-ÿ'’-]+")
# a name: two or more capitalised words, with the particles between them ("Pierre de
# Rigaud de Vaudreuil", "Albert Le Bail", "Suning Holdings Group"); not "Le Conseil"
_CAP = r"[A-ZÀ-Ý][\wÀ-ÿ'’.-]*[\wÀ-ÿ]"
_NAME = re.compile(
    r"(?<![\wÀ-ÿ])(?!(?:Le|La|Les|Un|Une|Des|Du|De|Ce|Cette|Ces|Pour|Par|En|Au|Aux|Et|Il|Elle|"
    r"Son|Sa|Ses|Leur|The|A|An|In|On|At|Its|This|That|Selon|Dans|Sur|Avec|Après|Avant|Lors|"
    r"Depuis|Mais|Puis|Alors|Ainsi|Pôle|Pole|Président|Présidente|Directeur|Directrice|"
    r"Conseil|Fondation|Région|Forum|Club|Association|Agence|Université|Centre|Institut|"
    r"Ministère|Groupe|Société|Chambre|Comité|Communauté|Direction|Parc|Port|Monsieur|Madame|"
    r"Saint|Sainte|Général|Roi|Reine|Prince|Princesse|Empereur|Pape|Guerre|Bataille|Traité|"
    r"Église|Eglise|Royaume|République|Empire|Académie|Musée|Mont|Lac|Rue|Place)\b)"
    + _CAP
    + r"(?:(?:\s+(?:de|du|des|d['’]|van|von|der|di|da|del|la|le|y|bin|ibn|al-)?\s*)"
    + _CAP
    + r")+"
)
# a place after a preposition of place; the mark is the name (group 1), not "à"
_PLACE = re.compile(
    r"\b(?:à|au|aux|en|dans|in|at)\s+(?:l['’]|la\s|le\s|les\s)?"
    r"([A-ZÀ-Ý][\wÀ-ÿ'’-]+(?:\s+(?:(?:de|du|des|sur|en|d['’])\s*)?[A-ZÀ-Ý][\wÀ-ÿ'’-]+)*)"
)
# Which asked kinds are marked, and how sure the line must be: the idf-weighted share of
# the question's terms it holds, and the most characters between the fact and a word of
# the question. Calibrated on PIAF dev for a precision of .90 (benchmarks/answer_line.py
# --calibrate); "how many" reached .67 at best (a count of the wrong thing) and is not
# marked.
RULES = {"when": (0.5, 8), "where": (0.6, 5), "who": (0.8, 5)}
# a question with fewer terms ("Quand a-t-il arrêté ?") leans on words it does not say
MIN_TERMS = 3
# "Qui est Walter Rodney ?" asks what the person is, not for a name
_IDENTITY = re.compile(
    r"^\s*(?i:qui|who)\s+(?i:est|était|fut|is|was)\s+(?:[A-ZÀ-Ý][\wÀ-ÿ'’.-]*\s*){1,4}\?*\s*$"
)


# a lead sentence longer than this is shown from the clauses around the question's words
LONG = 200


@dataclass(frozen=True)
class Line:
    """The answer line of a draft: its text and the span it quotes."""

    text: str
    start: int
    end: int


def draft(question: Question, chosen: Sequence[Candidate], snapshot: Snapshot) -> Draft:
    """The glance answer for the quotes ``chosen`` (best first, as the sentences style
    quotes them): the lead quote's line with ``[1]``, the others as "see also"."""
    ordered = lead_first(question, chosen)
    citations = tuple(cite(n, c.hit, c.start, c.end, c.text) for n, c in enumerate(ordered, 1))
    weights = idf_weights(question.terms, snapshot.bm25)
    line = answer_line(question, ordered[0], weights)
    text = snapshot.documents[ordered[0].hit.chunk.doc_id].text
    span = mark_span(question, text, line.start, line.end, weights)
    fact = None
    if span is not None:
        fact = Marked(1, citations[0].doc_id, span[0], span[1], text[span[0] : span[1]])
    see_also = tuple(c.n for c in citations[1:])
    return Draft(
        compose_line(line.text, see_also, language=question.language),
        citations,
        (AnswerSentence(line.text, (1,), True),),
        mode="extractive",
        see_also=see_also,
        marked=fact,
    )


def lead_first(question: Question, chosen: Sequence[Candidate]) -> list[Candidate]:
    """``chosen`` with the quote the line shows first: the best, or a runner-up that shows
    the asked kind of thing when the best does not."""
    if not chosen:
        return []
    lead = concise.prefer_typed(question, chosen, window=len(chosen), ratio=0.0)
    return [lead, *(c for c in chosen if c is not lead)]


def answer_line(question: Question, lead: Candidate, weights: Mapping[str, float]) -> Line:
    """The stretch of ``lead`` the line shows: the clause that holds the asked thing when
    the concise rules cut the sentence to it; a long sentence's clauses around the
    question's words (:func:`focus`); else the whole quote."""
    if "\n" in lead.text.strip():  # a sentence with the list it announces: whole
        return Line(lead.text, lead.start, lead.end)
    cut = concise.trim(lead, question, weights)
    if cut.end - cut.start < lead.end - lead.start and concise.shows_entity(question, cut.text):
        lead = cut
    if len(lead.text) <= LONG:
        return Line(lead.text, lead.start, lead.end)
    s, e = focus(lead.text, question, weights)
    return Line(lead.text[s:e], lead.start + s, lead.start + e)


def focus(
    sentence: str, question: Question, weights: Mapping[str, float], *, limit: int = LONG
) -> tuple[int, int]:
    """The clauses of a long sentence around the one that holds most of the question's
    words (among those that show the asked kind of thing, when one does), the following
    clauses first, within ``limit`` characters (offsets into ``sentence``; the whole
    sentence stays the citation)."""
    spans = concise.clauses(sentence)
    if len(spans) < 2:
        return 0, len(sentence)
    covs = [coverage(weights, set(analyze(sentence[s:e]))) for s, e in spans]
    showing = [k for k, (s, e) in enumerate(spans) if concise.shows_entity(question, sentence[s:e])]
    first = last = max(showing or range(len(spans)), key=lambda k: (covs[k], -k))
    grown = True
    while grown:
        grown = False
        for k in (last + 1, first - 1):
            lo, hi = min(first, k), max(last, k)
            if 0 <= k < len(spans) and spans[hi][1] - spans[lo][0] <= limit:
                first, last, grown = lo, hi, True
                break
    return spans[first][0], spans[last][1]


def compose_line(line: str, see_also: Sequence[int], *, language: str) -> str:
    """``"<line> [1] — Voir aussi [2] [3]"`` (``"See also"`` in English)."""
    text = marked(line, 1)
    if see_also:
        label = SEE_ALSO.get(language, SEE_ALSO["fr"])
        text += f" — {label} " + " ".join(f"[{n}]" for n in see_also)
    return text


def mark_span(
    question: Question, text: str, start: int, end: int, weights: Mapping[str, float]
) -> tuple[int, int] | None:
    """The span in ``text`` of the one thing of the asked kind in ``text[start:end]``,
    or ``None`` when the question asks for no marked kind, there are none or several,
    or the line is not sure enough (see ``RULES``)."""
    rule = RULES.get(question.answer_type or "")
    if rule is None:
        return None
    least_coverage, most_apart = rule
    if len(set(question.terms)) < MIN_TERMS or _IDENTITY.match(question.text):
        return None
    line = text[start:end]
    found = facts(question, line)
    if len(found) != 1 or coverage(weights, set(analyze(line))) < least_coverage:
        return None
    s, e = found[0]
    if _apart(line, s, e, _predicate_terms(question.text)) > most_apart:
        return None
    return start + s, start + e


def _predicate_terms(question: str) -> set[str]:
    """The terms of the question's words in lower case ("préside", "membre", "libéré"):
    a fact beside them answers; one beside the subject's name ("Edward Dickinson Baker
    (24 février 1811") is often another fact about the subject."""
    return {t for w in _WORD.findall(question) if w[:1].islower() for t in analyze(w)}


def facts(question: Question, line: str) -> list[tuple[int, int]]:
    """The things of the asked kind (who, when, where) in ``line`` that the question
    does not name itself (spans into ``line``)."""
    kind = question.answer_type
    if kind == "who":
        spans = [m.span() for m in _NAME.finditer(line)]
    elif kind == "when":
        spans = [m.span() for m in _DATE.finditer(line)]
    elif kind == "where":
        spans = [m.span(1) for m in _PLACE.finditer(line)]
    else:
        return []
    asked = set(question.terms)
    return [(s, e) for s, e in spans if _new(line[s:e], asked)]


def _new(found: str, asked: set[str]) -> bool:
    """Whether a match names something the question does not: one that shares a word
    with the question is its subject ("le Pôle SCS" for "Qui préside le pôle SCS ?",
    "Raymond Poulidor" for "Qui est l'adversaire de Poulidor ?"), not the answer."""
    return not set(analyze(found)) & asked


def _apart(line: str, start: int, end: int, asked: set[str]) -> int:
    """Characters between ``line[start:end]`` and the nearest word with a term of
    ``asked``."""
    best = len(line)
    for m in _WORD.finditer(line):
        if start <= m.start() < end or not set(analyze(m.group())) & asked:
            continue
        best = min(best, start - m.end() if m.end() <= start else m.start() - end)
    return max(best, 0)


@dataclass(frozen=True)
class LineParts:
    """A glance answer's line as the CLI and the UI show it: the quoted stretch around
    the marked fact (``fact`` is ``""`` when nothing is marked), its marker ``[n]``, and
    the "see also" numbers."""

    before: str
    fact: str
    after: str
    n: int
    see_also: tuple[int, ...]
    label: str


def line_parts(answer: Answer) -> LineParts | None:
    """The parts of ``answer``'s line, or ``None`` when its text is not a glance line
    (a refusal, the sentences or concise style, a generative answer)."""
    # a model's sentences the verifier rejected may follow (the extractive answer given
    # after a model's reply): they are not shown
    shown = [s for s in answer.sentences if s.supported]
    if answer.refused or answer.mode != "extractive" or len(shown) != 1:
        return None
    line = shown[0].text
    if answer.answer != compose_line(line, answer.see_also, language=answer.language):
        return None
    label = SEE_ALSO.get(answer.language, SEE_ALSO["fr"])
    fact = answer.marked
    lead = next((c for c in answer.citations if fact is not None and c.n == fact.n), None)
    at = -1
    if fact is not None and lead is not None:
        at = fact.start - (lead.start + max(lead.quote.find(line), 0))
        if line[at : at + len(fact.text)] != fact.text:
            at = line.find(fact.text)
    if fact is None or at < 0:
        return LineParts(line, "", "", 1, answer.see_also, label)
    end = at + len(fact.text)
    return LineParts(line[:at], fact.text, line[end:], 1, answer.see_also, label)


def whole_line_citation(answer: Answer) -> int | None:
    """The number of the citation whose whole quote is the answer line, if one is (the
    line then shows that sentence already: a source list need not show it again). A line
    cut to a clause is not the whole quote."""
    line = line_parts(answer)
    if line is None:
        return None
    text = " ".join((line.before + line.fact + line.after).split())
    for c in answer.citations:
        if c.n == line.n and " ".join(c.quote.split()) == text:
            return c.n
    return None
