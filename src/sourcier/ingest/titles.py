"""A document's title: its first title-like line (not boilerplate such as "COMMUNIQUE DE
PRESSE"), or the start of its first sentence."""

from __future__ import annotations

import re
import unicodedata

from .cleaning import clean_text
from .dates import YEAR, date_matches, place_and_date

_TITLE_MAX_CHARS = 200
_PROSE_TITLE_MAX_CHARS = 150


_BOILERPLATE = re.compile(
    r"^(?:communiques?(?: de presse)?|press releases?|news releases?|"
    r"pour diffusion immediate|for immediate release|information presse|"
    r"dossier de presse|contacts? presse|press contacts?|embargo.*)$"
)
_LEADING_DATE_LABEL = re.compile(
    rf"^(?i:date)\s*:?\s*(?:{YEAR}(?:[-/]\d{{1,2}}){{0,2}}|\d{{1,2}}[/.\-]\d{{1,2}}[/.\-]\d{{2,4}})"
    r"\s*[-–—:,]?\s*"
)
_OPEN_QUOTES = "«“„‘\"'"
_CLOSE_QUOTES = "»”“’\"'"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-ÖØ-Þ«“\"])")
_TRAILING_STOPWORDS = frozenset(
    [
        "de", "du", "des", "la", "le", "les", "l’", "l'", "d’", "d'", "à", "au", "aux", "et",
        "ou", "en", "un", "une", "pour", "par", "sur", "dans", "avec", "of", "the", "a", "an",
        "and", "or", "to", "in", "on", "for", "with", "by", "at", "from",
    ]
)  # fmt: skip


def find_title(text: str) -> str:
    """The first meaningful line of a cleaned text, tidied into a title.

    Skips press-release labels ("COMMUNIQUE DE PRESSE"), bare date lines and
    place-and-date datelines ("Sophia-Antipolis le 6 juin 2011"), and a leading
    "date 2017-11" label. A heading that ends with ":" takes the short line after it
    as its subtitle. When the first meaningful line is a long paragraph, its first
    sentence is used, shortened on a word boundary.

    Args:
        text: cleaned text (see :func:`clean_text`).

    Returns:
        The title (at most about 200 characters), or ``""`` if no line qualifies.
    """
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        line = re.sub(r"^#{1,6}\s+", "", line)
        line = _LEADING_DATE_LABEL.sub("", line)
        if not _is_title_candidate(line):
            continue
        if len(line) > _TITLE_MAX_CHARS or (len(line) > 120 and _SENTENCE_END.search(line)):
            first = _SENTENCE_END.split(line, maxsplit=1)[0]
            return _shorten(_tidy_title(first), _PROSE_TITLE_MAX_CHARS)
        if line.endswith(":") and i + 1 < len(lines):
            nxt = lines[i + 1]
            if len(nxt) <= 120 and not nxt.endswith(".") and _is_title_candidate(nxt):
                line = line.rstrip(" :") + " : " + nxt
        return _shorten(_tidy_title(line), _TITLE_MAX_CHARS)
    return ""


def _is_title_candidate(line: str) -> bool:
    if not any(ch.isalpha() for ch in line):
        return False
    if _is_boilerplate_line(line):
        return False
    if re.fullmatch(r"(?:https?://|www\.|mailto:)\S+|\S+@\S+\.\S+", line):
        return False
    if len(line) <= 80:
        for m in date_matches(line):
            if place_and_date(line[: m.start], line[m.end :]):
                return False
    return True


def _is_boilerplate_line(line: str) -> bool:
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", line.lower()) if not unicodedata.combining(ch)
    )
    folded = " ".join(re.findall(r"[a-z0-9]+", folded))
    return bool(_BOILERPLATE.match(folded))


def _tidy_title(title: str) -> str:
    title = " ".join(title.split())
    # “Quoted title“ prochainement -> the quoted part, when little follows the quote.
    if title[:1] in _OPEN_QUOTES:
        close = max((title.rfind(q, 1) for q in _CLOSE_QUOTES), default=-1)
        if close > 1:
            tail = title[close + 1 :].split()
            if len(tail) <= 2:
                title = title[1:close]
    title = title.strip(" " + _OPEN_QUOTES + _CLOSE_QUOTES)
    title = re.sub(r"\s*[:;,\-–—]+$", "", title)
    if title.endswith(".") and not title.endswith(".."):
        title = title[:-1]
    return title.strip()


def _shorten(title: str, limit: int) -> str:
    if len(title) <= limit:
        return title
    words = title[: limit + 1].split()
    if len(title) > limit and not title[limit].isspace():
        words = words[:-1]  # the last word was cut
    while len(words) > 1 and words[-1].lower().strip(",;:") in _TRAILING_STOPWORDS:
        words.pop()
    return " ".join(words).rstrip(" ,;:-–—") + "…"


def title_from_hint(hint: str) -> str:
    """The title a format names (an HTML <title>, a PDF's metadata), cleaned and
    shortened, or "" when it is boilerplate ("Communiqué de presse")."""
    title = _shorten(_tidy_title(clean_text(hint)), _TITLE_MAX_CHARS)
    return "" if _is_boilerplate_line(title) else title


def drop_date_label(text: str) -> str:
    """Remove a date label that opens the text ("date 2017-11 Les membres…").

    The date stays the document's date (``find_date`` reads it first); without the
    label no quote starts with it. A label followed by nothing is left as it is.
    """
    stripped = text.lstrip()
    m = _LEADING_DATE_LABEL.match(stripped)
    if not m:
        return text
    rest = stripped[m.end() :]
    return rest if any(ch.isalnum() for ch in rest) else text
