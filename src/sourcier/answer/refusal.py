"""The evidence gate: whether the retrieved passages can answer, and if not, why.

It runs before any answerer, so a refused question costs no language-model tokens.
Every refusal carries a reason (``Evidence.reason``) and a message in the question's
language that says it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import TermStatistics, analyze, fold_text
from ..types import Document, Hit
from ..words import (
    ARTICLES_EN,
    ARTICLES_FR,
    DAYS_EN,
    DAYS_FR,
    DEMONYMS,
    MONTHS_EN,
    QUESTION_WORDS_EN,
    QUESTION_WORDS_FR,
)
from .candidates import POINTER, Candidate, candidates, list_follows, quotable

if TYPE_CHECKING:
    from ..settings import AnswerSettings
    from ..storage.snapshot import Snapshot
    from .question import Question, Shape

MESSAGES = {
    "fr": {
        "refusal": "Les documents ne contiennent pas cette information.",
        "maybe": "Passages peut-être utiles :",
        "no_shape": "Aucun passage pertinent ne donne {shape}.",
        "pointer": "{source} annonce « {phrase} », mais ce contenu ne figure pas dans le texte.",
        "premise": "Aucun des passages trouvés ne mentionne « {missing} ».",
        "follow_up": "La question renvoie à un échange précédent qui n’existe pas : "
        "posez-la en entier.",
    },
    "en": {
        "refusal": "The documents do not contain this information.",
        "maybe": "Possibly useful passages:",
        "no_shape": "No relevant passage gives {shape}.",
        "pointer": "{source} announces “{phrase}”, but that content is not in the text.",
        "premise": "None of the passages found mentions “{missing}”.",
        "follow_up": "The question refers to an earlier exchange that does not exist: "
        "ask it in full.",
    },
}

# Why a question was refused.
REASONS = ("no_evidence", "low_support", "shape", "pointer", "premise", "follow_up")


@dataclass(frozen=True)
class Evidence:
    """What the gate found in the hits.

    Attributes:
        candidates: the sentences that may answer, best first (only those that show
            the asked form when the question asks for one).
        support: the refusal signal, 0..1 (see :func:`support`).
        refused: the documents do not support an answer.
        reason: one of ``REASONS`` when refused, else ``None``.
        message: the refusal text (with its reason and the closest passages) when refused.
        pointer: the sentence and phrase that point to missing content ("liste ci-dessous").
    """

    candidates: tuple[Candidate, ...]
    support: float
    refused: bool
    reason: str | None = None
    message: str = ""
    pointer: tuple[Candidate, str] | None = None


def assess(
    question: Question,
    hits: Sequence[Hit],
    snapshot: Snapshot,
    query_vector: np.ndarray,
    settings: AnswerSettings,
) -> Evidence:
    """Score the hits' sentences and decide whether the documents can answer.

    Refused when no sentence can answer; when a question asking for a form (a budget,
    a phone number) finds no sentence that shows one; when the passage that would answer
    points to content missing from the text; or when the support signal is below
    ``settings.refusal_threshold``.
    """
    # headings are structure, not statements: never evidence (unless a title is asked)
    cands = quotable(
        question.text, candidates(question, hits, snapshot, query_vector), snapshot.documents
    )
    top_language = snapshot.documents[hits[0].chunk.doc_id].language if hits else question.language
    evidence_terms: Sequence[str] = question.query_terms
    evidence_hits: Sequence[Hit] = hits
    shape = question.shape
    if shape is not None:
        # A budget is answered by an amount, a phone number by a phone number: only
        # sentences that show one may answer, and only their passages are evidence.
        cands = [c for c in cands if shape.form.search(c.text)]
        evidence_terms = analyze(shape.asked.sub(" ", question.query))
        shown_in = {c.hit.chunk.chunk_id for c in cands}
        evidence_hits = [h for h in hits if h.chunk.chunk_id in shown_in]
    pointer = missing_referent(question, cands, snapshot.documents)
    same_language = question.language == top_language
    named = constraints(question)
    if not same_language and shape is None and len(named) >= 2:
        # Across languages only names and numbers survive translation ("UPE 13" in
        # "Who chairs the UPE 13 employers' union?"): the lexical signal reads them.
        evidence_terms = analyze(" ".join(named))
    score = support(
        evidence_terms,
        evidence_hits,
        snapshot.bm25,
        best_sentence_similarity=max((c.dense for c in cands), default=-1.0),
        same_language=same_language,
        settings=settings,
    )
    reason: str | None = None
    missing = premise_gap(question, hits, snapshot.documents)
    if question.unresolved_follow_up:
        reason = "follow_up"
    elif missing is not None:
        reason = "premise"
    elif not cands:
        reason = "shape" if shape is not None else "no_evidence"
    elif pointer is not None:
        reason = "pointer"
    elif score < settings.refusal_threshold:
        reason = "shape" if shape is not None else "low_support"
    if reason is None:
        return Evidence(tuple(cands), score, False)
    message = refusal_text(
        hits,
        language=question.language,
        shape=shape,
        pointer=pointer,
        missing=missing,
        follow_up=reason == "follow_up",
    )
    return Evidence(tuple(cands), score, True, reason, message, pointer)


# capitalised words that are not constraints on the documents: question words,
# function words, days and months, demonyms
_NOT_CONSTRAINTS = frozenset(
    {
        *QUESTION_WORDS_FR, *QUESTION_WORDS_EN, *ARTICLES_FR, *ARTICLES_EN, *MONTHS_EN,
        *DAYS_FR, *DAYS_EN, *DEMONYMS,
        "ou", "est-ce", "is", "are", "was", "were", "do", "does", "did", "it", "its", "this",
        "that", "these", "those", "there",
    }
)  # fmt: skip
_ELIDED = re.compile(r"^(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu)['’]", re.I)
_ORDINAL = re.compile(r"\d+(?:e|er|re|ere|eme|ieme|th|st|nd|rd)")
_TOKEN = re.compile(r"[\wÀ-ÿ][\wÀ-ÿ'’&.-]*")
_YEAR_OR_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[ \u00a0\u202f.,]\d{3})*(?![\w])")


def constraints(question: Question) -> list[str]:
    """The specific things a question takes for granted: proper names (runs of
    capitalised words after the first word, words in capitals, words with digits)
    and numbers and years."""
    found: list[str] = []
    run: list[str] = []
    tokens = list(_TOKEN.finditer(question.text))
    for i, m in enumerate(tokens):
        word = _ELIDED.sub("", m.group()).rstrip(".'’").removesuffix("'s").removesuffix("’s")
        if not word:
            continue
        folded = fold_text(word)
        if _ORDINAL.fullmatch(folded):
            if run:  # "le 7ème Forum": an ordinal is neither a name nor a count
                found.append(" ".join(run))
                run = []
            continue
        is_name = (
            len(word) > 1
            and folded not in _NOT_CONSTRAINTS
            and (
                (word[0].isupper() and i > 0)
                or (word.isupper() and len(word) >= 2 and word.isalpha())
                or (any(ch.isdigit() for ch in word) and any(ch.isalpha() for ch in word))
            )
        )
        if is_name:
            run.append(word)
            continue
        if run:
            found.append(" ".join(run))
            run = []
    if run:
        found.append(" ".join(run))
    for m in _YEAR_OR_NUMBER.finditer(question.text):
        before = question.text[max(0, m.start() - 8) : m.start()].lower()
        after = question.text[m.end() : m.end() + 1]
        if len(m.group()) <= 2 and (before.endswith(("années ", "the ")) or after == "s"):
            continue  # a decade ("les années 80", "the 80s") is written 1980 as often
        found.append(m.group())
    return found


def premise_gap(
    question: Question, hits: Sequence[Hit], documents: Mapping[str, Document]
) -> str | None:
    """A name or number the question takes for granted that the documents found do not
    hold together.

    "Les acteurs marseillais se rendent-ils à Stockholm ?" finds the Helsinki release,
    which never says Stockholm: answering from it would be the confident hallucination
    the refusal exists to prevent. The constraints must hold in one retrieved document
    (Lévi-Strauss and Montréal both, not each in its own article). A name counts as
    present when one of its words (longer than two letters) is in that document, so
    "the Sophia Antipolis Foundation" meets "Fondation Sophia Antipolis"; numbers must
    be there as written (spaces in digit groups ignored).

    Returns:
        The first constraint missing from the document that holds the most of them,
        or ``None`` when one document holds them all.
    """
    items = constraints(question)
    if not hits or not items:
        return None
    best: list[str] | None = None
    for doc_id in dict.fromkeys(h.chunk.doc_id for h in hits):
        doc = documents[doc_id]
        missing = _missing(items, f"{doc.title}\n{doc.text}")
        if not missing:
            return None
        if best is None or len(missing) < len(best):
            best = missing
    return best[0] if best else None


def _missing(items: Sequence[str], text: str) -> list[str]:
    folded = fold_text(text)
    digits = re.sub(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)", "", text)
    words = set(re.findall(r"[\w-]+", folded))
    out = []
    for item in items:
        if item[0].isdigit():
            plain = re.sub(r"[ \u00a0\u202f]", "", item)
            if not re.search(rf"(?<![\d.,]){re.escape(plain)}(?![\d])", digits):
                out.append(item)
            continue
        parts = [fold_text(p) for p in re.split(r"[\s'’-]+", item) if len(p) > 2 or p.isupper()]
        if parts and not any(_present(p, words, folded) for p in parts):
            out.append(item)
    return out


def _present(part: str, words: set[str], folded: str) -> bool:
    """Whether a name's word is in the text, allowing a misspelling of a long word
    ("Strutthof" for Struthof, "Maharashi" for Maharishi) or a plural."""
    if part in words or (len(part) > 3 and part in folded):
        return True
    if len(part) < 6 or any(ch.isdigit() for ch in part):
        return False
    import difflib

    stem = part[: len(part) - 2]
    return any(w.startswith(stem) for w in words) or bool(
        difflib.get_close_matches(part, words, n=1, cutoff=0.85)
    )


def missing_referent(
    question: Question, cands: Sequence[Candidate], documents: Mapping[str, Document]
) -> tuple[Candidate, str] | None:
    """One of the five best candidates that points to content its document does not hold.

    "Outre les projets retenus (liste ci-dessous), ..." tells nothing about the
    projects when no list follows in the text (it was lost when the page was saved).
    A question about them (its terms meet the few words before the pointer) is
    refused rather than answered with the sentences around the missing list.
    Questions asking how many or when are left alone: the count or date may be in
    the pointing sentence itself.

    Returns the candidate and the pointing phrase ("projets retenus (liste ci-dessous)").
    """
    if not cands or question.answer_type in ("how_many", "when"):
        return None
    terms = set(question.terms)
    for c in cands[:5]:
        for m in POINTER.finditer(c.text):
            words = list(re.finditer(r"[\w'’-]+", c.text[: m.start()]))[-4:]
            if not words or not set(analyze(" ".join(w.group() for w in words))) & terms:
                continue
            if list_follows(documents[c.hit.chunk.doc_id].text, c.end):
                continue
            phrase = c.text[words[0].start() : m.end()]
            if phrase.count("(") > phrase.count(")") and c.text[m.end() : m.end() + 1] == ")":
                phrase += ")"
            return c, phrase
    return None


# Verbs that carry no evidence about the documents ("Que fait ...", "Que doit ...").
_LIGHT_VERBS = (
    "fait faits faite faites faire font fais faut falloir fallait doit doivent devoir devait "
    "peut peuvent pouvoir pouvait va vont aller sert servent permet permettent "
    "does do did make makes made can could"
)


@functools.lru_cache(maxsize=1)
def _light_terms() -> frozenset[str]:
    return frozenset(analyze(_LIGHT_VERBS))


def _evidence_weights(question_terms: Sequence[str], bm25: TermStatistics) -> dict[str, float]:
    """idf per question term, keyed by the indexed term it stands for.

    Light verbs are left out; an unseen term that is the same word stemmed otherwise
    ("inscrire"/"inscription") counts as that indexed term; a term found nowhere
    weighs most.
    """
    unseen = math.log(1.0 + (len(bm25) + 0.5) / 0.5)
    light = _light_terms()
    weights: dict[str, float] = {}
    for term in dict.fromkeys(question_terms):
        if term in light:
            continue
        idf = bm25.idf(term)
        if idf <= 0:
            related = bm25.related_term(term)
            if related is not None:
                term, idf = related, bm25.idf(related)
        weights[term] = idf if idf > 0 else unseen
    return weights


def support(
    question_terms: Sequence[str],
    hits: Sequence[Hit],
    bm25: TermStatistics,
    *,
    best_sentence_similarity: float,
    same_language: bool,
    settings: AnswerSettings,
) -> float:
    """How well the evidence supports an answer (0..1): the refusal signal.

    The larger of two signals:
    - lexical: the idf-weighted share of the question's terms found in the title and
      text of one of the top three hits (see ``_evidence_weights``);
    - dense: the best question-sentence cosine mapped linearly to [0, 1] from
      ``[dense_floor, dense_ceiling]`` when the question is in the language of the best
      document, and from the lower ``[cross_dense_floor, cross_dense_ceiling]`` when it
      is not (an English question about French text shares few words). In the same
      language the band is high on purpose: e5 gives 0.81-0.91 to a sentence about the
      right entity even when the attribute asked for ("le budget") is nowhere in it.
    """
    weights = _evidence_weights(question_terms, bm25)
    total = sum(weights.values())
    lexical = 0.0
    if total > 0:
        for hit in hits[:3]:
            present = set(analyze(f"{hit.title}\n{hit.chunk.text}"))
            lexical = max(lexical, sum(w for t, w in weights.items() if t in present) / total)
    if same_language:
        lo, hi = settings.dense_floor, settings.dense_ceiling
    else:
        lo, hi = settings.cross_dense_floor, settings.cross_dense_ceiling
    dense = min(max((best_sentence_similarity - lo) / max(hi - lo, 1e-6), 0.0), 1.0)
    return max(lexical, dense)


def refusal_sentence(language: str) -> str:
    """The fixed sentence that says the documents do not hold the answer."""
    return MESSAGES.get(language, MESSAGES["fr"])["refusal"]


def refusal_text(
    hits: Sequence[Hit],
    *,
    language: str,
    shape: Shape | None = None,
    pointer: tuple[Candidate, str] | None = None,
    missing: str | None = None,
    follow_up: bool = False,
) -> str:
    """The refusal, in the question's language, with its reason when there is one
    (a follow-up with nothing to follow, a name or number no document found holds, no
    passage shows the kind of answer asked for, or the passage that would answer
    points to content missing from the text), and the closest passages."""
    lang = language if language in MESSAGES else "fr"
    words = MESSAGES[lang]
    parts = [words["refusal"]]
    if follow_up:
        parts.append(words["follow_up"])
    elif missing is not None:
        parts.append(words["premise"].format(missing=missing))
    elif pointer is not None:
        cand, phrase = pointer
        parts.append(words["pointer"].format(source=cand.hit.chunk.label, phrase=phrase))
    elif shape is not None:
        parts.append(words["no_shape"].format(shape=shape.name[lang]))
    if hits:
        listed = "; ".join(dict.fromkeys(h.chunk.label for h in hits[:3]))
        parts.append(f"{words['maybe']} {listed}.")
    return " ".join(parts)
