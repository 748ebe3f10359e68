"""The French analyser: text -> terms (elisions, stopwords, Snowball stemming, accent
folding), shared by BM25 (:mod:`sourcier.storage.bm25`), the test embedder and answer
scoring; and the term statistics answer scoring reads of a BM25 index."""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from typing import Any, Protocol

from .words import MORE_STOPWORDS_FR, SNOWBALL_STOPWORDS_FR, STOPWORDS_EN

logger = logging.getLogger(__name__)

__all__ = [
    "ENGLISH_STOPWORDS",
    "FRENCH_STOPWORDS",
    "STOPWORDS",
    "TermStatistics",
    "analyze",
    "fold_text",
]


FRENCH_STOPWORDS = SNOWBALL_STOPWORDS_FR
ENGLISH_STOPWORDS = STOPWORDS_EN


def _fold(term: str) -> str:
    """Remove accents and expand ligatures: "pôle" -> "pole", "œuvr" -> "oeuvr".

    Compatibility forms are folded too ("ﬁ" -> "fi", "𝓐" -> "a"), and whatever is not
    a letter or digit afterwards is dropped, so a term is always a clean word.
    """
    if term.isascii():
        return term
    decomposed = unicodedata.normalize("NFKD", term).translate(_LIGATURES).lower()
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l"})

STOPWORDS = frozenset(
    FRENCH_STOPWORDS
    | MORE_STOPWORDS_FR
    | ENGLISH_STOPWORDS
    | {_fold(w) for w in FRENCH_STOPWORDS | MORE_STOPWORDS_FR}
)
"""Every word the analyser drops, with and without accents."""

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'"})
# l'innovation, qu'il, jusqu'au, lorsqu'on: the elided word is dropped.
_ELISION = re.compile(r"\b(?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'")
# "6 800", "1 000 000": digit groups separated by a (narrow) space are one number.
_DIGIT_GROUPS = re.compile(r"\b(\d{1,3})((?:[ \u00a0\u202f]\d{3})+)\b")
_WORD = re.compile(r"[^\W_]+")

_local = threading.local()


def _stemmer() -> Any:
    """This thread's French Snowball stemmer (PyStemmer objects are not thread-safe)."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = Stemmer.Stemmer("french")
        _local.stemmer = stemmer
    return stemmer


@functools.lru_cache(maxsize=100_000)
def _term(token: str) -> str | None:
    """The index term of a lower-cased token, or ``None`` for a stopword."""
    if token in STOPWORDS:
        return None
    stem = _stemmer().stemWord(token)
    # Snowball keeps the "-ent" of nouns made from "-ider" verbs, so "président" would
    # not meet "préside": questions ("qui préside ...?") ask with the verb.
    if stem.endswith("ident") and len(stem) >= 7:
        stem = stem[:-3]
    return _fold(stem) or None


def fold_text(text: str) -> str:
    """Lower-case, strip accents and write ’ as ': for matching names and words of a
    question in a document ("Métropole" meets "metropole")."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def analyze(text: str) -> list[str]:
    """Turn French (or English) text into BM25 terms.

    Lower-cases, drops elisions ("l'", "qu'", "jusqu'", with ' or ’), joins digit
    groups ("6 800" -> "6800"), splits into words (letters and digits), drops
    stopwords, stems with the Snowball French stemmer (plus one rule: "président",
    "résident" lose their "-ent" to meet "présider", "résider"), then removes
    accents, so "l’innovation" and "innovations" both give "innov", "pôles" and
    "pole" both give "pol", "présidente" and "préside" both give "presid".

    Args:
        text: any text.

    Returns:
        The terms, in order, repeats kept.
    """
    text = unicodedata.normalize("NFC", text).lower().translate(_APOSTROPHES)
    text = _ELISION.sub(" ", text)
    text = _DIGIT_GROUPS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    terms = []
    for token in _WORD.findall(text):
        term = _term(token)
        if term:
            terms.append(term)
    return terms


class TermStatistics(Protocol):
    """What answer scoring reads of a BM25 index, one segment or many: the number of
    chunks, a term's idf, and the indexed term a question's term stands for."""

    def __len__(self) -> int: ...

    def idf(self, term: str) -> float: ...

    def related_term(self, term: str) -> str | None: ...
