"""The shortest verbatim stretch that answers: the clause that holds the asked fact.

Rules, each for a class of questions (checked on the seed set and on PIAF):

- a question that asks for a kind of thing (who: a person or organisation; when: a
  date; where: a place; how many: a number) is answered by a sentence that shows one,
  when a close runner-up does and the best one does not;
- that sentence is cut to the fewest clauses that show the thing and keep most of the
  question's words (the anchor that says the clause is about the right subject);
- when the sentence that matches the question announces what follows (it ends with a
  colon) and shows no such thing, a standalone line
  just after it can ("... vous remercie pour votre participation les :" then
  "17 & 18 Novembre 2011"); a question asking both where and when takes the next
  standalone line too (the address under the date);
- a heading or title line is never the evidence unless the question is about a title.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from ..analysis import analyze
from ..types import Document
from .candidates import MONTHS, NUMBER, Candidate, coverage, quotable
from .question import WHEN, WHERE, Question

# a person: a first name and a surname (in capitals or not), not "Le Conseil"
_PERSON = re.compile(
    r"\b(?!(?:Le|La|Les|Un|Une|Des|Du|De|Ce|Cette|Ces|Pour|Par|En|Au|Aux|Et|Il|Elle|Son|Sa|"
    r"Ses|Leur|The|A|An|In|On|At|Its|This|That|Pôle|Pole|Président|Présidente|Directeur|"
    r"Directrice|Conseil|Fondation|Région|Forum|Club|Association|Agence|Université|Centre|"
    r"Institut|Ministère|Groupe|Société|Chambre|Comité|Communauté|Direction|Parc|Port|"
    r"Grand|Greater|Mobile|Lab|Laboratoire|Sénateur|Monsieur|Madame)\b)"
    r"[A-ZÀ-Ý][a-zà-ÿ]+(?:-[A-ZÀ-Ý][a-zà-ÿ]+)?\s+(?:[A-ZÀ-Ý]{2,}|[A-ZÀ-Ý][a-zà-ÿ]+)\b"
)
_PLACE_NAME = re.compile(
    r"\b(?:à|au|aux|en|in|at|de|du|près de|sur)\s+(?:l['’]|la |le )?[A-ZÀ-Ý][\wÀ-ÿ'’-]+|"
    r"\b[A-ZÀ-Ý][\wÀ-ÿ'’]+(?:-[A-ZÀ-Ý][\wÀ-ÿ'’]+)+|\b\d{5}\b"
)
_COUNT = re.compile(
    NUMBER.pattern + r"|\b(deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|"
    r"vingt|trente|cent|mille|dizaine|douzaine|quinzaine|vingtaine|centaine|millier)s?\b",
    re.I,
)
# a named list: three or more capitalised items separated by commas
_NAMED_LIST = re.compile(
    r"(?:[A-ZÀ-Ý][\wÀ-ÿ'’&.-]*(?: [\wÀ-ÿ'’&.-]+){0,4},\s+){2,}(?:et |and )?[A-ZÀ-Ý]"
)
ENTITY = {
    "who": _PERSON,
    "which": _NAMED_LIST,
    "when": MONTHS,
    "where": _PLACE_NAME,
    "how_many": _COUNT,
}
# clause boundaries: commas (not inside a number), semicolons, colons, brackets, quotes,
# spaced dashes
_BREAK = re.compile(r"(?<!\d),|,(?!\d)|[;:()«»\"“”]|\s[-–—]\s")
# a verb of saying that opens a clause after a quotation ("..." commente X)
_SAID = re.compile(
    r"^(commente|conclut|déclare|explique|souligne|précise|ajoute|indique|rappelle|"
    r"estime|affirme|says|said|explains|adds)\s+",
    re.I,
)
# a clause shorter than this is not worth cutting a sentence for
SHORT = 110


def entity_pattern(question: Question) -> re.Pattern[str] | None:
    """What an answer to ``question`` must show, if it asks for a kind of thing."""
    return ENTITY.get(question.answer_type or "")


def shows_entity(question: Question, text: str) -> bool:
    """Whether ``text`` shows the asked kind of thing as new information: a match made
    only of the question's own words ("le Pôle SCS" for "Qui préside le pôle SCS ?")
    is the subject, not the answer."""
    pattern = entity_pattern(question)
    if pattern is None:
        return False
    asked = set(question.terms)
    if question.answer_type == "how_many":
        return _counts(text, asked)
    for m in pattern.finditer(text):
        words = analyze(m.group())
        if not words or any(w not in asked for w in words):
            return True
    return False


def usable(
    question: Question, cands: Sequence[Candidate], documents: Mapping[str, Document]
) -> list[Candidate]:
    """The candidates that may be quoted: no headings unless a title is asked for (the
    evidence gate has left them out already; this keeps a draft made from other
    candidates honest)."""
    return quotable(question.text, cands, documents) or list(cands)


def _counts(text: str, asked: set[str]) -> bool:
    """A number that counts something the question names ("45 accords"), or any
    number that is not a year in a text that speaks of what the question asks about."""
    plain = False
    for m in _COUNT.finditer(text):
        if re.fullmatch(r"(1[89]|20)\d\d", m.group()):
            continue
        following = analyze(" ".join(text[m.end() : m.end() + 40].split()[:3]))
        if set(following) & asked:
            return True
        plain = True
    return plain and bool(asked & set(analyze(text)))


def prefer_typed(
    question: Question, cands: Sequence[Candidate], *, window: int = 5, ratio: float = 0.75
) -> Candidate:
    """The best candidate, or a close runner-up that shows the asked kind of thing
    when the best does not."""
    best = cands[0]
    if entity_pattern(question) is None or shows_entity(question, best.text):
        return best
    for c in cands[1:window]:
        if c.score >= ratio * best.score and shows_entity(question, c.text):
            return c
    return best


def clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans of a sentence (offsets into ``text``), stripped, each with a word."""
    out = []
    pos = 0
    for m in [*_BREAK.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        piece = text[pos:end]
        lead = len(piece) - len(piece.lstrip())
        s, e = pos + lead, pos + len(piece.rstrip())
        if e > s and re.search(r"\w", text[s:e]):
            out.append((s, e))
        if m is not None:
            pos = m.end()
    return out


def trim(c: Candidate, question: Question, weights: Mapping[str, float]) -> Candidate:
    """Cut a long sentence to the clause that matches the question best (the anchor)
    and the nearest clause that shows the asked thing, the one before first: in
    "Johan Bencivenga, président de l’UPE 13 et ..." the role after the comma describes
    the name before it. Sentences of questions that ask for no kind of thing are kept
    whole: their answer is often the clause that does not repeat the question."""
    if entity_pattern(question) is None or len(c.text) <= SHORT:
        return c
    if not shows_entity(question, c.text):
        return c
    spans = clauses(c.text)
    if len(spans) < 2:
        return c
    covs = [coverage(weights, set(analyze(c.text[s:e]))) for s, e in spans]
    has = [shows_entity(question, c.text[s:e]) for s, e in spans]
    anchor = max(range(len(spans)), key=lambda k: (covs[k], -k))
    opens_lower = c.text[spans[anchor][0] : spans[anchor][0] + 1].islower()
    if anchor > 0 and has[anchor - 1] and opens_lower:
        # an apposition ("X, président de ...") describes the clause before it
        first, last = anchor - 1, anchor
    elif has[anchor]:
        first = last = anchor
    else:
        order = [k for d in range(1, len(spans)) for k in (anchor - d, anchor + d)]
        near = next((k for k in order if 0 <= k < len(spans) and has[k]), None)
        if near is None:
            return c
        first, last = min(near, anchor), max(near, anchor)
    s, e = spans[first][0], spans[last][1]
    said = _SAID.match(c.text[s:e])
    if said and shows_entity(question, c.text[s + said.end() : e]):
        s += said.end()
    return dataclasses.replace(c, start=c.start + s, end=c.start + e, text=c.text[s:e])


def standalone_lines(
    c: Candidate, question: Question, text: str, *, reach: int = 400
) -> list[tuple[int, int]]:
    """Short lines standing alone just after ``c`` that show what the question asks
    for (a date line under "... les :"); with the next standalone line too when the
    question asks both where and when."""
    pattern = entity_pattern(question)
    if pattern is None or shows_entity(question, c.text) or not c.text.rstrip().endswith(":"):
        return []
    both = bool(WHEN.search(question.text) and WHERE.search(question.text))
    found: list[tuple[int, int]] = []
    pos = text.find("\n", c.end)
    limit = min(len(text), c.end + reach)
    while 0 <= pos < limit:
        nxt = text.find("\n", pos + 1)
        nxt = len(text) if nxt < 0 else nxt
        raw = text[pos + 1 : nxt]
        line = raw.strip()
        if line:
            s = pos + 1 + (len(raw) - len(raw.lstrip()))
            span = (s, s + len(line))
            standalone = len(line) <= 80 and (
                text[pos - 1 : pos] in ("\n", "") or text[nxt + 1 : nxt + 2] in ("\n", "")
            )
            if found:
                if both and standalone:
                    found.append(span)
                break
            if standalone and shows_entity(question, line):
                found.append(span)
                if not both:
                    break
            elif len(line) > 80:
                break  # the next paragraph: too far to belong to this sentence
        pos = nxt
    return found
