"""Text -> sentences -> chunks, with exact character offsets into ``Document.text``.

Sentences are found by a small French-aware rule set (abbreviations, initials,
numbers, « guillemets », ellipses, list items, paragraph breaks). Chunks pack whole
sentences up to a token budget, overlap the previous chunk by whole sentences, and
split a sentence that is too long on its own at word boundaries. Every offset comes
from our own bookkeeping, never from ``str.find``, so repeated text is handled right.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, InputError
from ..types import Chunk, Document
from ..words import MONTH_ABBREVIATIONS
from .headings import section_at

logger = logging.getLogger(__name__)

__all__ = [
    "chunk_document",
    "chunk_id_for",
    "chunk_label",
    "chunk_with_sentences",
    "sentence_spans",
]

# A run of sentence-final punctuation, with the closing quotes/brackets glued to it:
# "fin.", "vraiment ?!", "fin. »", "fin.”", "(voir plus bas.)", "excellence ! »."
_TERMINATOR = re.compile(r"[.!?…]+(?:(?:[ \u00a0\u202f]?[»”]|[\"'’)\]])[.!?…]*)*")
_TERMINAL_CHARS = ".!?…"

# A whitespace run that contains at least one line break. The look-behind keeps the
# search linear on long runs of spaces: a match can only start where such a run does.
_LINE_BREAK = re.compile(r"(?:(?<![^\S\n\u2029])[^\S\n\u2029]*)?[\n\u2029]\s*")

# What starts a list item at the beginning of a line: "- ", "• ", "* ", "1. ", "2) ",
# "a) ", "b. ", "A) ", "iv. ", "> " (a quoted heading in some press releases).
_BULLET = re.compile(
    r"(?:[-–—*+>·]\s|[•▪◦‣●○■□➢➤►✓✔]|\d{1,3}[.)]\s|[a-z][.)]\s|[A-Z]\)\s"
    r"|(?:i|ii|iii|iv|v|vi|vii|viii|ix|x|I|II|III|IV|V|VI|VII|VIII|IX|X)[.)]\s)"
)

# Titles before a name ("M. Dupont", "Dr. House"), matched with their case.
_TITLES = frozenset(
    {
        "M", "MM", "Mme", "Mmes", "Mlle", "Mlles", "Me", "Mgr", "Dr", "Pr", "Mr", "Mrs", "Ms",
        "Prof", "St", "Ste", "Sts", "Stes", "Gen", "Capt", "Lt", "Sgt", "Rev", "Hon",
    }
)  # fmt: skip

# Abbreviations that do not end a sentence even before a capital or a digit,
# compared lower-cased and without the final period ("cf. Annexe", "p. 12", "e.g. The").
_ABBREVIATIONS = frozenset(
    {
        # French
        "cf", "p", "pp", "n", "nº", "n°", "av", "apr", "env", "ex", "art", "chap", "vol",
        "éd", "coll", "fig", "tél", "tel", "fax", "bd", "boul", "cie", "sté", "éts", "dir",
        "trad", "réf", "resp", "approx", "mme", "mlle", "mgr",
        # English
        "e.g", "i.e", "viz", "vs", "al", "inc", "ltd", "co", "corp", "ph.d", "phd", "dept",
        "no", "nos", "figs",
    }
)  # fmt: skip


# "J.", "J.-P.", "U.S.A.": capital initials do not end a sentence.
_INITIALS = re.compile(r"(?:[^\W\d_]\.-?)*[^\W\d_]")

_OPENERS = "«“‘\"'([{"
# Pieces of text that are fused by quotation marks longer than this are split into
# sentences anyway: a whole quoted paragraph is better cited sentence by sentence.
_MAX_QUOTE_CHARS = 400
# A chunk may stop early at a paragraph break when it is at least this full.
_PARAGRAPH_MIN_FILL = 0.5


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long sentence) with its token count."""

    start: int
    end: int
    tokens: int
    para_end: bool


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences.

    Spans exclude leading and trailing whitespace, come in order, never overlap, and
    together hold every non-whitespace character of the region exactly once. Paragraph
    breaks (a blank line) and list items (lines starting with "-", "•", "*", "1.",
    "a)" ...) always end a sentence. A line break also ends one when it follows a
    heading-like line (ending in a capital, a digit or ":") and precedes a capital.

    Args:
        text: the whole text; offsets are relative to it.
        start: where the region starts.
        end: where the region ends (``len(text)`` when ``None``).

    Returns:
        ``(start, end)`` character offsets into ``text``, one per sentence.

    Raises:
        InputError: when ``start``/``end`` do not describe a region of ``text``.
    """
    return [(u_start, u_end) for u_start, u_end, _ in _sentences(text, start, end)]


def _sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, bool]]:
    """Sentence spans plus whether each one ends a paragraph (or the region)."""
    if end is None:
        end = len(text)
    if not 0 <= start <= end <= len(text):
        raise InputError(
            f"sentence region ({start}, {end}) is not within the text (length {len(text)})"
        )
    out: list[tuple[int, int, bool]] = []
    for block_start, block_end, para_end in _blocks(text, start, end):
        spans = _split_block(text, block_start, block_end)
        for n, (s, e) in enumerate(spans):
            out.append((s, e, para_end and n == len(spans) - 1))
    return out


def _blocks(text: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Cut the region at paragraph breaks, list items and heading line breaks."""
    blocks: list[tuple[int, int, bool]] = []
    block_start = start
    for m in _LINE_BREAK.finditer(text, start, end):
        if m.start() == start or m.end() == end:
            continue
        breaks = m.group().count("\n") + 2 * m.group().count("\u2029")
        paragraph = breaks >= 2
        if not (
            paragraph
            or _BULLET.match(text, m.end(), end)
            or _is_heading_break(text[m.start() - 1], text[m.end()])
        ):
            continue
        blocks.append((block_start, m.start(), paragraph))
        block_start = m.end()
    blocks.append((block_start, end, True))
    return blocks


def _is_heading_break(before: str, after: str) -> bool:
    """A single line break after a title-like line ("COMMUNIQUE DE PRESSE", "Contacts :")."""
    if not (after.isupper() or after.isdigit() or after in '«“"'):
        return False
    return not (before.islower() or before in ".!?…,;-–—(/&+'’" or before.isspace())


def _quote_regions(text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """Top-level « » and “ ” quotations of a block, as sorted (starts, ends)."""
    open_at: dict[str, list[int]] = {"«": [], "“": []}
    regions: list[tuple[int, int]] = []
    for pos in range(start, end):
        c = text[pos]
        if c in open_at:
            open_at[c].append(pos)
        elif c in "»”":
            stack = open_at["«" if c == "»" else "“"]
            if stack:
                q_start = stack.pop()
                if pos + 1 - q_start <= _MAX_QUOTE_CHARS:
                    regions.append((q_start, pos + 1))
    regions.sort(key=lambda r: (r[0], -r[1]))
    starts: list[int] = []
    ends: list[int] = []
    for q_start, q_end in regions:
        if not ends or q_start >= ends[-1]:
            starts.append(q_start)
            ends.append(q_end)
    return starts, ends


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of one block (no paragraph break or list item inside)."""
    block = text[start:end]
    q_starts: list[int] = []
    q_ends: list[int] = []
    if "«" in block or "“" in block:
        q_starts, q_ends = _quote_regions(text, start, end)
    spans: list[tuple[int, int]] = []
    cur = start
    scanned = start  # text[cur:scanned] has been checked for a letter or digit
    has_word = False
    for m in _TERMINATOR.finditer(text, start, end):
        m_start, m_end = m.span()
        if m_end < end and not text[m_end].isspace():
            continue
        nxt = _next_significant(text, m_end, end)
        if nxt is None:
            break  # only whitespace or punctuation left: the last sentence takes it
        if q_starts:
            r = bisect.bisect_right(q_starts, m_start - 1) - 1
            if r >= 0 and m_start < q_ends[r] and m_end < q_ends[r]:
                continue  # inside a quotation that does not close here
        if not has_word:
            has_word = any(c.isalnum() for c in text[scanned:m_start])
            scanned = max(scanned, m_start)
            if not has_word:
                continue
        if not _ends_sentence(text, start, m_start, m.group(), nxt):
            continue
        spans.append((cur, m_end))
        cur = m_end
        scanned = m_end
        has_word = False
    spans.append((cur, end))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s is not None]


def _next_significant(text: str, pos: int, end: int) -> str | None:
    """The first character after ``pos`` that is not whitespace or an opening mark."""
    while pos < end and (text[pos].isspace() or text[pos] in _OPENERS):
        pos += 1
    return text[pos] if pos < end else None


def _ends_sentence(text: str, block_start: int, m_start: int, term: str, nxt: str) -> bool:
    """Whether the terminator ``term`` at ``m_start`` ends a sentence before ``nxt``."""
    core_len = len(term) - len(term.lstrip(_TERMINAL_CHARS))
    core = term[:core_len]
    if "…" in core or core.startswith(".."):
        # An ellipsis ends a sentence only before a capital: "etc... et puis" goes on.
        return nxt.isupper()
    if nxt.islower() or nxt in ",;:":
        return False
    if core != ".":
        return True
    word_start = m_start
    while word_start > block_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:m_start].lstrip(_OPENERS)
    if not word:
        return True
    lower = word.lower()
    if lower in _ABBREVIATIONS or (lower in MONTH_ABBREVIATIONS and nxt.isdigit()):
        return False
    if word in _TITLES or (word.isupper() and word.title() in _TITLES):
        return False
    return not (word.isupper() and _INITIALS.fullmatch(word))


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``[start, end)`` to exclude whitespace; ``None`` if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def chunk_id_for(doc_id: str, start: int, end: int) -> str:
    """The id of a chunk: the first 32 hex digits of sha256 of ``"doc_id:start:end"``.

    Args:
        doc_id: the document's id.
        start: the chunk's first character offset.
        end: the chunk's end offset (exclusive).

    Returns:
        A 32-character lower-case hex string.
    """
    return hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).hexdigest()[:32]


def chunk_label(
    title: str,
    ordinal: int,
    *,
    max_title_chars: int = 60,
    page: int | None = None,
    section: str | None = None,
) -> str:
    """A human label for a chunk: the (shortened) title, its page, and its section's
    heading or else a 1-based § number.

    Args:
        title: the document title; whitespace is collapsed.
        ordinal: the chunk's 0-based position in its document.
        max_title_chars: longer titles (and section headings, at 40) are cut on a word
            boundary and end with "…".
        page: the page the chunk starts on, for a paged document.
        section: the heading of the section the chunk is in.

    Returns:
        For example ``"Le pôle SCS et le MIT signent…, §3"``, ``"§3"`` without a
        title, or ``"Rapport d'activité 2023, p. 17, § Financement"``.
    """
    name = _shorten(title, max_title_chars)
    where = f"§ {_shorten(section, 40)}" if section and section.strip() else f"§{ordinal + 1}"
    if page is not None:
        where = f"p. {page}, {where}"
    return f"{name}, {where}" if name else where


def _shorten(text: str, limit: int) -> str:
    name = " ".join(text.split())
    if len(name) > limit:
        cut = name[:limit]
        space = cut.rfind(" ")
        if space >= limit // 3:
            cut = cut[:space]
        name = cut.rstrip(" ,;:-–—.…(«\"'’") + "…"
    return name


def chunk_document(
    doc: Document,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    """Cut a document into overlapping chunks of whole sentences (see
    :func:`chunk_with_sentences`, which also gives each chunk's sentences)."""
    return [
        chunk
        for chunk, _ in chunk_with_sentences(
            doc, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, count_tokens=count_tokens
        )
    ]


def chunk_with_sentences(
    doc: Document,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[tuple[Chunk, list[tuple[int, int]]]]:
    """Cut a document into overlapping chunks of whole sentences.

    Consecutive sentences are packed until the next one would push the chunk past
    ``chunk_tokens``; a chunk may stop earlier at a paragraph break when it is at
    least half full. The next chunk starts with the last whole sentences of the
    previous one, about ``overlap_tokens`` of them, but never the whole chunk. A
    sentence longer than ``chunk_tokens`` on its own is split between words; a single
    word longer than the budget becomes a chunk of its own.

    Sentence counts are computed once and summed (corrected for any fixed overhead the
    counter adds, such as special tokens), and every multi-sentence chunk is measured
    once more as a whole, so ``count_tokens(chunk.text) <= chunk_tokens`` holds
    except for single over-long words.

    Args:
        doc: the document; offsets refer to ``doc.text``.
        chunk_tokens: the most tokens in a chunk.
        overlap_tokens: about how many tokens consecutive chunks share.
        count_tokens: counts the tokens of a text (the embedding model's tokenizer).

    Returns:
        Chunks in document order with ordinals ``0..n-1``, each with its sentences
        (offsets into ``doc.text``; a sentence too long for a chunk counts as its
        pieces); ``[]`` for blank text.

    Raises:
        ConfigError: when ``chunk_tokens`` or ``overlap_tokens`` cannot work.
    """
    if chunk_tokens < 1:
        raise ConfigError(f"chunk_tokens ({chunk_tokens}) must be at least 1")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ConfigError(
            f"overlap_tokens ({overlap_tokens}) must be at least 0 "
            f"and smaller than chunk_tokens ({chunk_tokens})"
        )
    text = doc.text
    if not text or text.isspace():
        return []
    overhead = max(0, count_tokens(""))
    units = _units(text, chunk_tokens, count_tokens, overhead)
    sections = frozenset(start for start, _, level in doc.headings if level >= 1)
    bounds = _pack(text, units, chunk_tokens, overlap_tokens, count_tokens, overhead, sections)
    chunks = []
    for ordinal, (a, b) in enumerate(bounds):
        start, end = units[a].start, units[b - 1].end
        chunk = Chunk(
            chunk_id=chunk_id_for(doc.doc_id, start, end),
            doc_id=doc.doc_id,
            ordinal=ordinal,
            start=start,
            end=end,
            text=text[start:end],
            label=chunk_label(
                doc.title,
                ordinal,
                page=doc.page_span(start, end)[0],
                section=_section(doc, start, end),
            ),
        )
        chunks.append((chunk, [(u.start, u.end) for u in units[a:b]]))
    logger.debug("chunked %s: %d sentences -> %d chunks", doc.doc_id[:12], len(units), len(chunks))
    return chunks


def _section(doc: Document, start: int, end: int) -> str | None:
    """The section a chunk is in: the heading before its start, else the first one in
    it (a chunk that opens with the title line and the first heading)."""
    heading = section_at(doc.headings, start)
    if heading is None:
        heading = next(((s, e) for s, e, lv in doc.headings if lv >= 1 and start <= s < end), None)
    return None if heading is None else doc.text[heading[0] : heading[1]]


def _units(text: str, limit: int, count_tokens: Callable[[str], int], overhead: int) -> list[_Unit]:
    """Sentences with their token counts; over-long sentences are cut between words."""
    units: list[_Unit] = []
    for start, end, para_end in _sentences(text):
        tokens = count_tokens(text[start:end])
        if tokens <= limit:
            units.append(_Unit(start, end, tokens, para_end))
            continue
        pieces = _split_words(text, start, end, limit, count_tokens, overhead)
        for n, (p_start, p_end, p_tokens) in enumerate(pieces):
            units.append(_Unit(p_start, p_end, p_tokens, para_end and n == len(pieces) - 1))
    return units


def _split_words(
    text: str,
    start: int,
    end: int,
    limit: int,
    count_tokens: Callable[[str], int],
    overhead: int,
) -> list[tuple[int, int, int]]:
    """Cut ``text[start:end]`` between words into even pieces of at most ``limit`` tokens."""
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    counts = [count_tokens(text[start + a : start + b]) - overhead for a, b in words]
    suffix = [0] * (len(counts) + 1)
    for n in range(len(counts) - 1, -1, -1):
        suffix[n] = suffix[n + 1] + counts[n]
    pieces: list[tuple[int, int, int]] = []
    i = 0
    while i < len(words):
        remaining = overhead + suffix[i]
        # Aim for pieces of equal size rather than full pieces and a small tail.
        target = min(limit, -(-remaining // -(-remaining // limit)))
        j = i + 1
        total = overhead + counts[i]
        while j < len(words) and total + counts[j] <= target:
            total += counts[j]
            j += 1
        while True:
            p_start, p_end = start + words[i][0], start + words[j - 1][1]
            tokens = count_tokens(text[p_start:p_end]) if j - i > 1 else total
            if tokens <= limit or j - i == 1:
                break
            j -= 1
            total -= counts[j]
        pieces.append((p_start, p_end, tokens))
        i = j
    return pieces


def _pack(
    text: str,
    units: list[_Unit],
    limit: int,
    overlap: int,
    count_tokens: Callable[[str], int],
    overhead: int,
    headings: frozenset[int] = frozenset(),
) -> list[tuple[int, int]]:
    """Group units into chunks ``[a, b)`` of unit indices; a chunk does not end with a
    section heading (units starting at one of ``headings``): the heading opens the next."""
    n = len(units)
    prefix = [0]
    for u in units:
        prefix.append(prefix[-1] + u.tokens - overhead)

    def estimate(a: int, b: int) -> int:
        return overhead + prefix[b] - prefix[a]

    bounds: list[tuple[int, int]] = []
    i = 0
    covered = 0  # units before this index are in some chunk already
    while i < n:
        j = i + 1
        while j < n and estimate(i, j + 1) <= limit:
            j += 1
        if j < n and not units[j - 1].para_end:
            for jj in range(j - 1, max(i, covered), -1):
                if units[jj - 1].para_end and estimate(i, jj) >= limit * _PARAGRAPH_MIN_FILL:
                    j = jj
                    break
        if j < n and j - 1 > max(i, covered) and units[j - 1].start in headings:
            j -= 1
        # The sum of sentence counts is an estimate: measure the whole chunk once.
        while j - i > 1 and count_tokens(text[units[i].start : units[j - 1].end]) > limit:
            if j - 1 > covered:
                j -= 1
            else:
                i += 1
        bounds.append((i, j))
        if j >= n:
            break
        covered = j
        k, shared = j, 0
        while k - 1 > i:
            tokens = units[k - 1].tokens - overhead
            # Take the sentence if it brings the overlap closer to the target, and
            # keep room for the next new sentence.
            if shared + tokens / 2 >= overlap or estimate(k - 1, j + 1) > limit:
                break
            k -= 1
            shared += tokens
        i = k
    return bounds
