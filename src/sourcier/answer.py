"""Extractive answers: pick the sentences that answer, cite their exact spans, or refuse.

No language model is involved: every word of an answer outside the short framing
("Selon les documents :") is a verbatim quote whose span is checked against the
document text before it is returned.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .lexical import BM25Index, analyze
from .types import Citation, Document, Hit

if TYPE_CHECKING:
    from .settings import Settings
    from .store import Snapshot

_FRAMING = {
    "fr": {
        "lead": "Selon les documents :",
        "refusal": "Les documents ne contiennent pas cette information.",
        "maybe": "Passages peut-être utiles :",
        "no_shape": "Aucun passage pertinent ne donne {shape}.",
        "pointer": "{source} annonce « {phrase} », mais ce contenu ne figure pas dans le texte.",
    },
    "en": {
        "lead": "According to the documents:",
        "refusal": "The documents do not contain this information.",
        "maybe": "Possibly useful passages:",
        "no_shape": "No relevant passage gives {shape}.",
        "pointer": "{source} announces “{phrase}”, but that content is not in the text.",
    },
}

# Words that make a short question lean on the previous turn ("Et qui le préside ?").
_ANAPHORA = frozenset(
    {
        *[
            "le",
            "la",
            "les",
            "lui",
            "leur",
            "leurs",
            "il",
            "elle",
            "ils",
            "elles",
            "celui",
            "celle",
            "ceux",
            "celles",
            "cela",
        ],
        *["ça", "ce", "cet", "cette", "ces", "son", "sa", "ses", "y", "en"],
        *[
            "it",
            "its",
            "they",
            "them",
            "their",
            "he",
            "she",
            "him",
            "her",
            "his",
            "this",
            "that",
            "these",
            "those",
            "there",
        ],
    }
)
_FOLLOW_UP_START = re.compile(r"^\s*(et|mais|and|but|what about|et pour|et en|et le|et la)\b", re.I)

_WHO = re.compile(r"^\s*(et\s+)?(qui|who|whom|whose|par qui)\b|\b(qui|who)\s*\??\s*$", re.I)
_HOW_MANY = re.compile(
    r"\b(combien|how many|how much|quel(le)?s? (est le |sont les )?(nombre|montant|chiffre|budget|"
    r"part|taux|pourcentage)|what (number|amount|share|percentage))\b",
    re.I,
)
_WHEN = re.compile(
    r"\b(quand|when|what year|what date|quelle date|quelle année|en quelle année|à quelle date|"
    r"depuis quand|what day)\b",
    re.I,
)
_WHERE = re.compile(r"\b(où|where|dans quel(le)? (ville|pays|région|lieu))\b", re.I)
# a quantity, not an ordinal ("71", "6 800", "3,2"; not "7ème" or "2nd")
_NUMBER = re.compile(r"(?<!\w)\d+(?:[ \u202f.,]\d+)*(?!\w)")
_MONTHS = re.compile(
    r"\b(janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|"
    r"novembre|décembre|decembre|january|february|march|april|may|june|july|august|september|"
    r"october|november|december)\b|\b(1[89]|20)\d\d\b",
    re.I,
)
_NAME = re.compile(r"\b[A-ZÀ-Ý][a-zà-ÿ'’-]+(?:[ -][A-ZÀ-Ý][A-Za-zÀ-ÿ'’-]+)+|\b[A-ZÀ-Ý]{3,}\b")
_PLACE = re.compile(r"\b(à|au|en|in|at)\s+[A-ZÀ-Ý]")


@dataclass(frozen=True)
class Shape:
    """A kind of answer with a form of its own: a question asking for it is answered
    only by a sentence that shows that form (a budget by an amount of money)."""

    name: dict[str, str]  # per language, as it reads after "no passage gives" / "ne donne"
    asked: re.Pattern[str]  # the words of a question that ask for it
    form: re.Pattern[str]  # what an answering sentence must contain


_AMOUNT = r"(?:\d[\d \u00a0\u202f.,]*|un|une|deux|trois|quelques|plusieurs|cent|mille)"
_SHAPES = (
    Shape(
        {"fr": "de montant", "en": "an amount of money"},
        re.compile(
            r"\b(budgets?|co[uû]ts?|co[uû]t(e|ent|é|era|eront|ait)|montants?|tarifs?|"
            r"chiffres? d['’]affaires|frais d['’]inscription|prix d['’](inscription|entrée|achat)|"
            r"prix (du billet|de vente)|à quel prix|how much money|costs?|prices?|revenues?|"
            r"turnover|fees?)(?!\w)",
            re.I,
        ),
        re.compile(
            _AMOUNT + r"\s*(?:k|m|md|mds|millions?|milliards?|mille|thousand|million|billion)?"
            r"\s*(?:d['’]\s*|de\s+)?(?:€|euros?\b|eur\b|\$|dollars?\b|francs?\b|£|"
            r"livres? sterling|usd\b|chf\b|yens?\b)|[€$£]\s*\d|\b[km]€|"
            r"\d[\d \u00a0\u202f.,]*\s*(?:millions?|milliards?|billions?|M|Md)\b",
            re.I,
        ),
    ),
    Shape(
        {"fr": "de numéro de téléphone", "en": "a phone number"},
        re.compile(
            r"\b((numéros? de )?(t[ée]l[ée]phones?|tél|fax|gsm)|(tele)?phones?( numbers?)?)(?!\w)",
            re.I,
        ),
        re.compile(
            r"(?:\+\s?\d{1,3}|(?<!\d)0\d)(?:[\s.\-()]*\d){7,}|"
            r"\b(?:t[ée]l|phone|gsm|fax|mobile)\b\.?\s*:?\s*\+?\s?\d",
            re.I,
        ),
    ),
    Shape(
        {"fr": "d’adresse e-mail", "en": "an e-mail address"},
        re.compile(
            r"\b((adresses? )?(e-?mails?|courriels?|mails?)( address(es)?)?|"
            r"adresses? (é|e)lectroniques?)(?!\w)",
            re.I,
        ),
        re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    ),
    Shape(
        {"fr": "d’adresse web", "en": "a web address"},
        re.compile(
            r"\b(sites? (web|internet)|websites?|url|web ?(site|address)|adresses? (web|internet))"
            r"(?!\w)",
            re.I,
        ),
        re.compile(
            r"\bhttps?://|\bwww\.[\w-]+\.|(?<![@\w.-])[\w-]+\.(?:fr|com|org|eu|net|io|info)\b", re.I
        ),
    ),
)


# The question asks for something else: "Qui finance le budget ?", "la part du budget".
_OTHER_FOCUS = re.compile(
    r"\b(pourquoi|why|comment|quoi|parts?|pourcentage|proportion|taux|share|percentage|percent)\b",
    re.I,
)


def asked_shape(question: str) -> Shape | None:
    """The kind of answer with a form of its own that ``question`` asks for, if any."""
    if any(p.search(question) for p in (_OTHER_FOCUS, _WHO, _WHEN, _WHERE)):
        return None
    for shape in _SHAPES:
        if shape.asked.search(question):
            return shape
    return None


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: str  # "user" or "assistant"
    content: str


def normalise_history(history: Sequence[Any] | None) -> list[Turn]:
    """Accept the usual shapes of chat history and return turns.

    Accepted: ``[{"role": "user", "content": "..."}, ...]`` (OpenAI / Gradio messages),
    ``[("question", "answer"), ...]`` pairs, ``Turn`` objects, or plain strings (taken as
    earlier user questions).
    """
    turns: list[Turn] = []
    for item in history or ():
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, str):
            turns.append(Turn("user", item))
        elif isinstance(item, Mapping):
            content = item.get("content")
            if isinstance(content, list):  # Gradio multimodal content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            if not isinstance(content, str):
                continue
            turns.append(Turn(str(item.get("role", "user")), content))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            user, bot = item
            if isinstance(user, str):
                turns.append(Turn("user", user))
            if isinstance(bot, str):
                turns.append(Turn("assistant", bot))
        else:
            raise InputError(
                f"history items must be messages or (question, answer) pairs: {item!r}"
            )
    return turns


def is_follow_up(question: str) -> bool:
    """Whether a question only makes sense with the previous turn."""
    words = re.findall(r"[\w'’]+", question.lower())
    content = analyze(question)
    if _FOLLOW_UP_START.match(question):
        return True
    if len(content) <= 1:
        return True
    return len(content) <= 3 and any(w in _ANAPHORA for w in words)


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """The query actually searched: a follow-up is expanded with the last user question.

    "Et qui le préside ?" after "Qu'est-ce que le pôle SCS ?" searches for
    "Qu'est-ce que le pôle SCS ? Et qui le préside ?".
    """
    previous = [t.content for t in history if t.role == "user" and t.content.strip()]
    if previous and is_follow_up(question):
        return f"{previous[-1].strip()} {question.strip()}"
    return question.strip()


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


def _weights(terms: Sequence[str], bm25: BM25Index) -> dict[str, float]:
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
    for m in _NUMBER.finditer(sentence):
        following = sentence[m.end() : m.end() + 40].split()[:3]
        if terms and set(analyze(" ".join(following))) & set(terms):
            return 1.0
        best = 0.4
    return best


def _type_bonus(question: str, sentence: str, terms: Collection[str] = ()) -> float:
    if _HOW_MANY.search(question):
        return _counts_asked_thing(sentence, terms)
    if _WHEN.search(question):
        return 1.0 if _MONTHS.search(sentence) else 0.0
    if _WHO.search(question):
        return 1.0 if _NAME.search(sentence) else 0.0
    if _WHERE.search(question):
        return 1.0 if _PLACE.search(sentence) else 0.0
    return 0.5


def candidates(
    question: str,
    query: str,
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
    own = _weights(analyze(question), bm25)
    carried = {t: 0.5 * w for t, w in _weights(analyze(query), bm25).items() if t not in own}
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
            if len(terms) < 2:
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
            + 0.15 * _type_bonus(question, text, own.keys())
            - (0.1 if len(text) > 600 else 0.0)
        )
        out.append(Candidate(hit, start, end, text, score, cov, dense, frozenset(matched)))
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


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


# Words by which a sentence points to content elsewhere in its document. Not "ci-après"
# ("ci-après dénommée") nor a bare "below" ("fell below zero"): they name, not point.
_POINTER = re.compile(
    r"\b(ci-dessous|ci-joint(?:e|s|es)?|en annexe|(?:see|listed|shown|given|detailed) below|"
    r"as follows|attached)\b|\bbelow(?=\s*[:)])",
    re.I,
)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-–—•*·▪►]|\d{1,2}[.)]|[a-z][.)])[ \t]+\S", re.M)


def _list_follows(text: str, end: int) -> bool:
    """Whether two or more list items follow ``end`` closely in ``text``."""
    return len(_LIST_ITEM.findall(text, end, end + 1500)) >= 2


def _list_end(text: str, end: int) -> int:
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
        if _LIST_ITEM.match(line):
            stop = pos + 1 + len(line.rstrip())
        elif line.strip():
            break
        pos = line_end
    return stop


def with_lists(chosen: Sequence[Candidate], documents: Mapping[str, Document]) -> list[Candidate]:
    """Quote a sentence that announces a list ("liste ci-dessous", a closing colon)
    together with the list items that follow it, so the answer shows the list.

    Other chosen sentences inside the extended quote are dropped.
    """
    out: list[Candidate] = []
    for c in chosen:
        if _POINTER.search(c.text) or c.text.rstrip().endswith(":"):
            text = documents[c.hit.chunk.doc_id].text
            end = _list_end(text, c.end)
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


def missing_referent(
    question: str, cands: Sequence[Candidate], documents: Mapping[str, Document]
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
    if not cands or _HOW_MANY.search(question) or _WHEN.search(question):
        return None
    terms = set(analyze(question))
    for c in cands[:5]:
        for m in _POINTER.finditer(c.text):
            words = list(re.finditer(r"[\w'’-]+", c.text[: m.start()]))[-4:]
            if not words or not set(analyze(" ".join(w.group() for w in words))) & terms:
                continue
            if _list_follows(documents[c.hit.chunk.doc_id].text, c.end):
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


def _evidence_weights(question_terms: Sequence[str], bm25: BM25Index) -> dict[str, float]:
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
    bm25: BM25Index,
    *,
    best_sentence_similarity: float,
    same_language: bool,
    settings: Settings,
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


def marked(quote: str, n: int) -> str:
    """A quote followed by its ``[n]`` marker, as it stands in an answer's text."""
    return f"{quote} [{n}]"


def compose(chosen: Sequence[Candidate], *, language: str) -> tuple[str, tuple[Citation, ...]]:
    """Answer text with ``[n]`` markers and the matching citations."""
    words = _FRAMING.get(language, _FRAMING["fr"])
    citations = []
    parts = []
    for n, c in enumerate(chosen, start=1):
        citations.append(
            Citation(
                n=n,
                doc_id=c.hit.chunk.doc_id,
                title=c.hit.title,
                source=c.hit.source,
                chunk_id=c.hit.chunk.chunk_id,
                quote=c.text,
                start=c.start,
                end=c.end,
                date_iso=c.hit.date_iso,
            )
        )
        parts.append(marked(c.text, n))
    return f"{words['lead']} " + " ".join(parts), tuple(citations)


def refusal_text(
    hits: Sequence[Hit],
    *,
    language: str,
    shape: Shape | None = None,
    pointer: tuple[Candidate, str] | None = None,
) -> str:
    """The refusal, in the question's language, with its reason when there is one
    (no passage shows the kind of answer asked for, or the passage that would answer
    points to content missing from the text), and the closest passages."""
    lang = language if language in _FRAMING else "fr"
    words = _FRAMING[lang]
    parts = [words["refusal"]]
    if pointer is not None:
        cand, phrase = pointer
        parts.append(words["pointer"].format(source=cand.hit.chunk.label, phrase=phrase))
    elif shape is not None:
        parts.append(words["no_shape"].format(shape=shape.name[lang]))
    if hits:
        listed = "; ".join(dict.fromkeys(h.chunk.label for h in hits[:3]))
        parts.append(f"{words['maybe']} {listed}.")
    return " ".join(parts)


def verify(citations: Sequence[Citation], documents: Mapping[str, Document]) -> None:
    """Assert that every quote is exactly its span of the document text."""
    for c in citations:
        text = documents[c.doc_id].text
        if text[c.start : c.end] != c.quote:
            raise AssertionError(f"citation [{c.n}] does not match its span in {c.source}")
