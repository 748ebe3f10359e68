"""A document's date: a dateline ("Marseille, le 12 décembre 2011") or a date label,
in French or English, as an ISO date."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..words import DAYS_EN, DAYS_FR, MONTH_NUMBERS, MONTH_NUMBERS_EN

DATELINE_WINDOW = 500


def _alternation(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


_M_ANY = rf"(?:{_alternation(list(MONTH_NUMBERS))})\.?(?!\w)"
_M_EN = rf"(?:{_alternation(list(MONTH_NUMBERS_EN))})\.?(?!\w)"
_ORD = r"(?:er|ère|re|e|st|nd|rd|th)?"
_DAY = rf"(?:[12]\d|3[01]|0?[1-9]){_ORD}"
_RANGE = r"\s*(?:&|et|and|au|to|-|–)\s*"
YEAR = r"(?:1[89]\d\d|20\d\d)"

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "dmy",
        re.compile(
            rf"(?<![\w/.,])(?P<d>{_DAY})(?:{_RANGE}{_DAY})?\s+(?:de\s+|of\s+)?"
            rf"(?P<m>{_M_ANY})(?:,?\s+(?P<y>{YEAR}))?(?!\d)",
            re.IGNORECASE,
        ),
    ),
    (
        "mdy",
        re.compile(
            rf"(?<![\w/.])(?P<m>{_M_EN})\s+(?P<d>{_DAY})(?:{_RANGE}{_DAY})?"
            rf"(?:,?\s+(?P<y>{YEAR}))?(?![\d\w])",
            re.IGNORECASE,
        ),
    ),
    (
        "my",
        re.compile(rf"(?<![\w/.])(?P<m>{_M_ANY}),?\s+(?P<y>{YEAR})(?!\d)", re.IGNORECASE),
    ),
    (
        "iso",
        re.compile(
            rf"(?<![\d/.\-])(?P<y>{YEAR})(?P<s>[-/])(?P<m>0?[1-9]|1[0-2])"
            r"(?:(?P=s)(?P<d>[0-3]?\d))?(?![\d\-/])"
        ),
    ),
    (
        "num",
        re.compile(
            r"(?<![\d/.\-])(?P<d>[0-3]?\d)(?P<s>[/.\-])(?P<m>[01]?\d)"
            rf"(?:(?P=s)(?P<y>{YEAR}|\d\d))?(?![\d/]|[.\-]\d)"
        ),
    ),
    ("year", re.compile(rf"(?i:\bdate\b)\s*:?\s*(?P<y>{YEAR})(?![\d\-/])")),
)
_DATE_LABEL_BEFORE = re.compile(r"(?i:\b(?:date|dated|le|du|on))\s*:?\s*$")
_NEARBY_YEAR = re.compile(rf"(?<!\d){YEAR}(?!\d)")
_FILLER_WORDS = frozenset(
    ["le", "the", "on", "date", "du", "dated", "en", "in", *DAYS_FR, *DAYS_EN]
)
_PLACE_PARTICLES = frozenset(["de", "des", "la", "les", "lès", "sur", "sous", "aux", "d", "l"])


@dataclass(frozen=True)
class _DateMatch:
    start: int
    end: int
    raw: str
    iso: str | None
    has_year: bool
    needs_context: bool  # year-less or year-month-only forms: accept on a dateline only


def find_date(text: str) -> tuple[str | None, str | None]:
    """Find the date a document states, preferring its header or dateline.

    A date in the first ~500 characters wins; otherwise the first complete date
    (with a year) anywhere. Dates without a year ("27/06", "12 décembre") count
    only when they stand on a dateline (a short line of their own, such as
    "Marseille, le 27/06") near the top; they get an ISO form only if a year is
    written right next to them.

    Args:
        text: cleaned text.

    Returns:
        ``(raw, iso)``: the date as written (``"6 juin 2011"``, ``"17 & 18
        Novembre 2011"``, ``"2017-11"``) and its ISO form (``YYYY-MM-DD``,
        ``YYYY-MM`` or ``YYYY``) or ``None`` when it cannot be completed;
        ``(None, None)`` when no date is found.
    """
    # The header: the window plus the rest of its last line, so no date is cut in two.
    line_end = text.find("\n", DATELINE_WINDOW)
    head = text[: min(len(text) if line_end < 0 else line_end, DATELINE_WINDOW + 200)]
    for m in date_matches(head):
        if m.start >= DATELINE_WINDOW:
            break
        if not m.needs_context or _is_dateline(text, m):
            return m.raw, m.iso
    # Elsewhere: the first complete date, each pattern scanned only up to its first one.
    best: _DateMatch | None = None
    for kind, pattern in _DATE_PATTERNS:
        for found in pattern.finditer(text):
            date = _parse_date(kind, found, text)
            if date is not None and date.has_year and not date.needs_context:
                if best is None or (date.start, -date.end) < (best.start, -best.end):
                    best = date
                break
    return (best.raw, best.iso) if best is not None else (None, None)


def date_matches(text: str) -> list[_DateMatch]:
    found: list[_DateMatch] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            parsed = _parse_date(kind, m, text)
            if parsed is not None:
                found.append(parsed)
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    chosen: list[_DateMatch] = []
    for d in found:
        if chosen and d.start < chosen[-1].end:
            continue
        chosen.append(d)
    return chosen


def _parse_date(kind: str, m: re.Match[str], text: str) -> _DateMatch | None:
    groups = m.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    if year is not None and year < 100:
        year += 2000 if year < 50 else 1900
    if kind == "year":
        start = m.start("y")
        return _DateMatch(start, m.end(), m.group("y"), f"{year:04d}", True, False)
    if kind in ("dmy", "mdy", "my"):
        month = MONTH_NUMBERS[m.group("m").lower().rstrip(".")]
    else:
        month = int(groups["m"])
    day_text = groups.get("d")
    day = int(re.match(r"\d+", day_text).group()) if day_text else None  # type: ignore[union-attr]
    if not 1 <= month <= 12:
        return None
    if day is not None:
        last = calendar.monthrange(year if year else 2000, month)[1]
        if not 1 <= day <= last:
            return None
    if kind == "num" and year is None and groups["s"] != "/":
        return None  # "1.5" or "3-4" are not dates
    raw = m.group(0).strip()
    needs_context = False
    if year is None:
        needs_context = True
        year = _year_nearby(text, m.start(), m.end())
    elif kind == "iso" and day is None:
        before = text[max(0, m.start() - 12) : m.start()]
        needs_context = not _DATE_LABEL_BEFORE.search(before)
    if year is None:
        iso = None
    elif day is None:
        iso = f"{year:04d}-{month:02d}"
    else:
        iso = f"{year:04d}-{month:02d}-{day:02d}"
    return _DateMatch(m.start(), m.end(), raw, iso, m.group("y") is not None, needs_context)


def _year_nearby(text: str, start: int, end: int) -> int | None:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    after = _NEARBY_YEAR.search(text, end, min(line_end, end + 40))
    if after:
        return int(after.group())
    before = list(_NEARBY_YEAR.finditer(text, max(line_start, start - 40), start))
    return int(before[-1].group()) if before else None


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end < 0 else line_end


def _is_dateline(text: str, m: _DateMatch) -> bool:
    """A short line that holds the date plus at most a place and filler words."""
    line_start, line_end = _line_bounds(text, m.start, m.end)
    if line_end - line_start > 80:
        return False
    return place_and_date(text[line_start : m.start], text[m.end : line_end])


def place_and_date(before: str, after: str) -> bool:
    """True when what surrounds a date on its line is at most a place and filler words.

    "Sophia-Antipolis le | 6 juin 2011 |" and "| 27/06 |" qualify; "réuni le |
    12 décembre | , le conseil a approuvé" does not.
    """
    word = r"[^\W\d_][\w'’-]*"
    if any(w.lower() not in _FILLER_WORDS for w in re.findall(word, after)):
        return False
    place = [w for w in re.findall(word, before) if w.lower() not in _FILLER_WORDS]
    if len(place) > 5:
        return False
    return all(w[0].isupper() or w.lower() in _PLACE_PARTICLES for w in place)
