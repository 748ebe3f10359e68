"""The question, analysed once per call: language, retrieval query, terms, what it asks for.

``parse_question`` is the only place a question is analysed. Retrieval, the refusal
gate and both answerers read the frozen :class:`Question` it returns instead of
re-running the regular expressions and the analyser on the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..analysis import analyze
from ..errors import InputError
from ..ingest.language import question_language
from ..words import PRONOUNS

_FOLLOW_UP_START = re.compile(r"^\s*(et|mais|and|but|what about|et pour|et en|et le|et la)\b", re.I)

WHO = re.compile(r"^\s*(et\s+)?(qui|who|whom|whose|par qui)\b|\b(qui|who)\s*\??\s*$", re.I)
HOW_MANY = re.compile(
    r"\b(combien|how many|how much|quel(le)?s? (est le |sont les )?(nombre|montant|chiffre|budget|"
    r"part|taux|pourcentage)|what (number|amount|share|percentage))\b",
    re.I,
)
WHEN = re.compile(
    r"\b(quand|when|what year|what date|quelle date|quelle année|en quelle année|à quelle date|"
    r"depuis quand|what day|quelles? (?:sont|est) (?:les|la) dates?|what (?:are the )?dates?)\b",
    re.I,
)
WHERE = re.compile(r"\b(où|where|dans quel(le)? (ville|pays|région|lieu))\b", re.I)
WHICH = re.compile(
    r"\b(quel(le)?s|lesquel(le)?s|which|what)\b.{0,60}\b(entreprises?|sociétés?|"
    r"companies|firms|partenaires?|partners|membres?|members|projets?|projects|acteurs?|players|"
    r"pôles?|clusters|villes?|cities|pays|countries)\b",
    re.I,
)

# The asked answer types, in the order they are tested: a question that asks both
# "how many" and "when" is a "how_many" question.
ANSWER_TYPES = ("how_many", "when", "who", "where", "which")


@dataclass(frozen=True)
class Shape:
    """A kind of answer with a form of its own: a question asking for it is answered
    only by a sentence that shows that form (a budget by an amount of money)."""

    name: dict[str, str]  # per language, as it reads after "no passage gives" / "ne donne"
    asked: re.Pattern[str]  # the words of a question that ask for it
    form: re.Pattern[str]  # what an answering sentence must contain


_AMOUNT = r"(?:\d[\d \u00a0\u202f.,]*|un|une|deux|trois|quelques|plusieurs|cent|mille)"
SHAPES = (
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
    if any(p.search(question) for p in (_OTHER_FOCUS, WHO, WHEN, WHERE)):
        return None
    for shape in SHAPES:
        if shape.asked.search(question):
            return shape
    return None


def answer_type(question: str) -> str | None:
    """What kind of thing ``question`` asks for: one of ``ANSWER_TYPES``, or ``None``."""
    for name, pattern in (
        ("how_many", HOW_MANY),
        ("when", WHEN),
        ("who", WHO),
        ("where", WHERE),
        ("which", WHICH),
    ):
        if pattern.search(question):
            return name
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

    Raises:
        InputError: an item has none of these shapes.
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
                f"history items must be messages or (question, answer) pairs: {item!r}",
                code="history_invalid",
                item=_short_repr(item),
            )
    return turns


def _short_repr(item: Any, limit: int = 60) -> str:
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_follow_up(question: str, terms: Sequence[str] | None = None) -> bool:
    """Whether a question only makes sense with the previous turn.

    Args:
        question: the question text.
        terms: ``analyze(question)``, when the caller has it already.
    """
    words = re.findall(r"[\w'’]+", question.lower())
    content = analyze(question) if terms is None else terms
    if _FOLLOW_UP_START.match(question):
        return True
    if len(content) <= 1:
        return True
    return len(content) <= 3 and any(w in PRONOUNS for w in words)


def retrieval_query(
    question: str, history: Sequence[Turn], *, follow_up: bool | None = None
) -> str:
    """The query actually searched: a follow-up is expanded with the last user question.

    "Et qui le préside ?" after "Qu'est-ce que le pôle SCS ?" searches for
    "Qu'est-ce que le pôle SCS ? Et qui le préside ?".
    """
    previous = [t.content for t in history if t.role == "user" and t.content.strip()]
    if follow_up is None:
        follow_up = is_follow_up(question)
    if previous and follow_up:
        return f"{previous[-1].strip()} {question.strip()}"
    return question.strip()


@dataclass(frozen=True)
class Question:
    """A question as every later step sees it.

    Attributes:
        text: the question, stripped.
        language: ``"fr"`` or ``"en"`` (see :func:`~sourcier.language.question_language`).
        query: what is searched: ``text``, or the previous user turn plus ``text`` for a
            follow-up (or the condensed question an LLM wrote, see ``condensed``).
        terms: the analysed terms of ``text`` (French analyser: stems, no stopwords).
        query_terms: the analysed terms of ``query``.
        answer_type: "how_many", "when", "who", "where", "which", or ``None``.
        shape: the answer form asked for (an amount, a phone number ...), or ``None``.
        follow_up: the question leans on an earlier turn.
        has_history: there is an earlier user turn to lean on.
        history: the earlier turns.
        condensed: ``query`` was written by a language model from the conversation.
    """

    text: str
    language: str
    query: str
    terms: tuple[str, ...]
    query_terms: tuple[str, ...]
    answer_type: str | None
    shape: Shape | None
    follow_up: bool
    has_history: bool = False
    history: tuple[Turn, ...] = ()
    condensed: bool = False

    @property
    def unresolved_follow_up(self) -> bool:
        """A follow-up ("Et qui le préside ?") with no earlier turn to resolve it."""
        return self.follow_up and not self.has_history and bool(_FOLLOW_UP_START.match(self.text))

    def with_query(self, query: str, *, condensed: bool = False) -> Question:
        """The same question searched with another query (a condensed follow-up)."""
        from dataclasses import replace

        return replace(self, query=query, query_terms=tuple(analyze(query)), condensed=condensed)


def check_text(text: Any, *, max_chars: int, what: str = "question") -> str:
    """The stripped question, or an InputError that says in one line what is wrong."""
    if not isinstance(text, str):
        kind = type(text).__name__
        raise InputError(
            f"the {what} must be text, not {kind}", code="question_type", what=what, type=kind
        )
    stripped = text.strip()
    if not stripped:
        raise InputError(f"the {what} is empty", code="question_empty", what=what)
    if len(stripped) > max_chars:
        raise InputError(
            f"the {what} is {len(stripped):,} characters long; the limit is {max_chars:,}",
            code="question_too_long",
            what=what,
            length=len(stripped),
            limit=max_chars,
        )
    return stripped


def parse_question(
    text: str, *, history: Sequence[Any] | None = None, max_chars: int = 2000
) -> Question:
    """Analyse a question once.

    Args:
        text: the question, in French or English.
        history: earlier turns (see :func:`normalise_history`).
        max_chars: longer questions are rejected.

    Raises:
        InputError: the question is empty, too long or not text; the history is malformed.
    """
    text = check_text(text, max_chars=max_chars)
    turns = tuple(normalise_history(history))
    terms = tuple(analyze(text))
    follow_up = is_follow_up(text, terms)
    query = retrieval_query(text, turns, follow_up=follow_up)
    return Question(
        text=text,
        language=question_language(text),
        query=query,
        terms=terms,
        query_terms=terms if query == text else tuple(analyze(query)),
        answer_type=answer_type(text),
        shape=asked_shape(text),
        follow_up=follow_up,
        has_history=any(t.role == "user" and t.content.strip() for t in turns),
        history=turns,
    )
