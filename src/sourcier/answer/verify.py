"""The verifier: every citation is an exact span, and every generated sentence is backed
by a span of a passage it cites.

``check_spans`` runs on every draft, extractive or generative. ``support_sentences``
reads a language model's reply: it splits it into sentences, parses the ``[n]``
markers, and for each sentence looks for the span (a sentence, or two adjacent ones)
of its cited passages that supports it. Support is scored with the signals retrieval
already has: the idf-weighted share of the sentence's terms found in the span, and
the cosine between the sentence's embedding and the span's stored sentence vector.
Numbers, years and proper names in the sentence must appear in the span itself.
A sentence that no span supports is dropped from the answer text and reported with
``supported=False``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import TermStatistics, analyze, fold_text
from ..ingest.chunking import sentence_spans
from ..types import Citation, Document, Hit, Marked
from ..words import DAYS_EN, DEMONYMS, MONTHS_EN, MONTHS_FR, unaccented
from .candidates import INSTRUCTION, idf_weights

if TYPE_CHECKING:
    from ..storage.sentences import SentenceVectors

PAIR_MARGIN = 0.15
MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# markers written after the full stop ("... le pôle. [1]") belong to that sentence
_MARKER_AFTER_STOP = re.compile(r"([.!?…])((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)")
_NUMBER = re.compile(r"\d+(?:[ \u00a0\u202f.,]\d{3})*(?:[.,]\d+)?")
_CAPITALISED = re.compile(r"\b[A-ZÀ-Ý][\wÀ-ÿ'’-]*")
# capitalised words of English prose that are not names to look for in a French text
# (function words, days, demonyms; "Marseilles" is the English spelling of Marseille)
_NOT_NAMES = frozenset(
    [
        "I", "The", "A", "An", "In", "On", "At", "Of", "For", "And", "But", "Or", "It", "Its",
        "This", "That", "These", "Those", "They", "He", "She", "We", "You", "According",
        "Selon", "Le", "La", "Les", "Un", "Une", "Des", "Du", "De", "Il", "Elle", "Ils",
        "Elles", "Ce", "Cette", "Ces", "En", "Au", "Aux", "Et",
        *(word.capitalize() for word in (*DAYS_EN, *DEMONYMS)),
    ]
)  # fmt: skip
_MONTHS_EN_FR = dict(zip(MONTHS_EN, map(unaccented, MONTHS_FR), strict=True))
_MONTH_WORD = re.compile(r"\b(" + "|".join(_MONTHS_EN_FR) + r")\b", re.I)


def check_spans(
    citations: Sequence[Citation],
    documents: Mapping[str, Document],
    *,
    marked: Marked | None = None,
) -> None:
    """Assert that every quote is exactly its span of the document text, and that the
    marked fact, if any, is its span too, inside the quote of its citation.

    Raises:
        AssertionError: a quote differs from its span (a bug, never a user error).
    """
    for c in citations:
        text = documents[c.doc_id].text
        if text[c.start : c.end] != c.quote:
            raise AssertionError(f"citation [{c.n}] does not match its span in {c.source}")
    if marked is not None:
        cited = next((c for c in citations if c.n == marked.n), None)
        inside = cited is not None and cited.start <= marked.start < marked.end <= cited.end
        text = documents[marked.doc_id].text
        if not inside or text[marked.start : marked.end] != marked.text:
            raise AssertionError(f"the marked fact does not match its span in [{marked.n}]")


@dataclass(frozen=True)
class ReplySentence:
    """A sentence of a model's reply: its text without markers and the passages it cites."""

    text: str
    cited: tuple[int, ...]  # 1-based passage numbers that exist
    invalid: tuple[int, ...] = ()  # markers that name no passage


@dataclass(frozen=True)
class Support:
    """The verdict on one reply sentence."""

    sentence: ReplySentence
    supported: bool
    hit: Hit | None = None
    start: int = 0
    end: int = 0
    score: float = 0.0
    missing: tuple[str, ...] = ()  # numbers or names absent from every cited span


def split_reply(reply: str, n_passages: int) -> list[ReplySentence]:
    """The sentences of a reply with their ``[n]`` markers parsed; ids that name no
    passage are dropped (and kept in ``invalid``)."""
    text = _MARKER_AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", reply.strip())
    out = []
    for start, end in sentence_spans(text) if text else []:
        piece = text[start:end]
        ids: list[int] = []
        for m in MARKER.finditer(piece):
            ids += [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        clean = re.sub(r"\s+([.!?,;:…])", r"\1", MARKER.sub("", piece)).strip()
        clean = re.sub(r"\s{2,}", " ", clean)
        if not re.search(r"\w", clean):
            continue
        valid = tuple(dict.fromkeys(i for i in ids if 1 <= i <= n_passages))
        invalid = tuple(dict.fromkeys(i for i in ids if not 1 <= i <= n_passages))
        out.append(ReplySentence(clean, valid, invalid))
    return out


def _digits(text: str) -> str:
    return re.sub(r"[ \u00a0\u202f]", "", text)


def required_facts(sentence: str) -> tuple[list[str], list[str]]:
    """The numbers and the proper names a sentence states, which a span must show."""
    numbers = [_digits(m.group()).rstrip(".,") for m in _NUMBER.finditer(sentence)]
    names = []
    for i, m in enumerate(_CAPITALISED.finditer(sentence)):
        word = m.group().strip("'’-")
        if len(word) < 2 or word in _NOT_NAMES or _MONTH_WORD.fullmatch(word):
            continue
        # the first word of a sentence is capitalised anyway: it counts as a name only
        # when it is in capitals or capitalised again later in the sentence
        first = i == 0 and m.start() == 0
        if first and not word.isupper() and word not in sentence[m.end() :]:
            continue
        names.append(word)
    return numbers, names


def missing_facts(sentence: str, span: str) -> list[str]:
    """The numbers and names of ``sentence`` that ``span`` does not show."""
    numbers, names = required_facts(sentence)
    span_digits = _digits(span)
    folded = fold_text(span)
    missing = [n for n in numbers if n.replace(",", ".") not in span_digits.replace(",", ".")]
    for name in names:
        parts = [p for p in re.split(r"[-'’\s]+", fold_text(name)) if len(p) > 1]
        if parts and not all(p in folded for p in parts):
            missing.append(name)
    for month in _MONTH_WORD.findall(sentence):
        if _MONTHS_EN_FR[month.lower()] not in folded and month.lower() not in folded:
            missing.append(month)
    return missing


@dataclass(frozen=True)
class _Span:
    hit: Hit
    start: int
    end: int
    text: str
    rows: tuple[int, ...]
    terms: frozenset[str]


def _spans(
    hit: Hit,
    document: Document,
    sentences: Sequence[tuple[int, int, int]],
    *,
    headings: bool = False,
) -> list[_Span]:
    """The sentences of a passage and each pair of adjacent ones; text that gives
    instructions to a model is no evidence, and neither is a heading (unless
    ``headings``: the question asks for a title)."""
    singles = [
        _Span(hit, s, e, document.text[s:e], (row,), frozenset(analyze(document.text[s:e])))
        for s, e, row in sentences
        if not INSTRUCTION.search(document.text[s:e])
        and (headings or not document.in_heading(s, e))
    ]
    pairs = [
        _Span(
            hit, a.start, b.end, document.text[a.start : b.end], a.rows + b.rows, a.terms | b.terms
        )
        for a, b in zip(singles, singles[1:], strict=False)
    ]
    pairs = [p for p in pairs if p.text.count("\n\n") == 0 or len(p.rows) == 1]
    return singles + pairs


def support_sentences(
    reply: Sequence[ReplySentence],
    hits: Sequence[Hit],
    *,
    documents: Mapping[str, Document],
    sentence_index: Mapping[str, Sequence[tuple[int, int, int]]],
    sentence_vectors: np.ndarray | SentenceVectors,
    claim_vectors: np.ndarray | None,
    bm25: TermStatistics,
    dense_band: tuple[float, float],
    threshold: float,
    same_language: bool = True,
    headings: bool = False,
) -> list[Support]:
    """Find, for each reply sentence, the span of its cited passages that supports it.

    A sentence without a marker is checked against every passage. The support of a
    span is the idf-weighted share of the sentence's terms present in it when sentence
    and documents share a language; across languages (an English answer from French
    text shares few words) it is the mean of that share and the sentence-span cosine
    mapped from ``dense_band`` to [0, 1]. (Measured on the bundled corpus with e5: in
    one language the cosine of an invented sentence about the right subject, 0.82-0.86,
    overlaps that of a true one, 0.83-0.87, so it cannot vouch for a sentence alone.)
    The span must also show every number and proper name of the sentence. The best
    such span with a support of at least ``threshold`` backs the sentence; else it is
    unsupported.

    Args:
        reply: the parsed sentences (:func:`split_reply`), numbered against ``hits``.
        hits: the passages as they were numbered in the prompt (1-based).
        documents / sentence_index / sentence_vectors / bm25: the index snapshot's parts.
        claim_vectors: the reply sentences' embeddings, one row per sentence; only read
            across languages (``None`` is fine when ``same_language``).
        dense_band: the cosines mapped to 0 and 1.
        threshold: the least support a span must give.
        same_language: whether the reply and the documents share a language.
        headings: whether a heading may back a sentence (a question about a title).
    """
    lo, hi = dense_band
    out = []
    cache: dict[str, list[_Span]] = {}
    for i, sentence in enumerate(reply):
        numbers = sentence.cited or tuple(range(1, len(hits) + 1))
        weights = idf_weights(analyze(sentence.text), bm25)
        total = sum(weights.values())
        best: tuple[float, _Span] | None = None
        missing_everywhere: list[str] | None = None
        for n in numbers:
            hit = hits[n - 1]
            if hit.chunk.chunk_id not in cache:
                cache[hit.chunk.chunk_id] = _spans(
                    hit,
                    documents[hit.chunk.doc_id],
                    sentence_index.get(hit.chunk.chunk_id, ()),
                    headings=headings,
                )
            for span in cache[hit.chunk.chunk_id]:
                missing = missing_facts(sentence.text, span.text)
                if missing:
                    if missing_everywhere is None or len(missing) < len(missing_everywhere):
                        missing_everywhere = missing
                    continue
                lexical = (
                    sum(w for t, w in weights.items() if t in span.terms) / total if total else 0.0
                )
                if same_language:
                    score = lexical
                else:
                    assert claim_vectors is not None
                    cosine = max(float(sentence_vectors[r] @ claim_vectors[i]) for r in span.rows)
                    dense = min(max((cosine - lo) / max(hi - lo, 1e-6), 0.0), 1.0)
                    score = 0.5 * (lexical + dense)
                # Two sentences hold more words than one, so a pair that only gathers
                # words would back an invented sentence: it must do 0.15 better.
                score -= PAIR_MARGIN if len(span.rows) > 1 else 0.0
                if best is None or score > best[0]:
                    best = (score, span)
        if best is not None and best[0] >= threshold and total > 0:
            span = best[1]
            out.append(Support(sentence, True, span.hit, span.start, span.end, best[0]))
        else:
            score = best[0] if best is not None else 0.0
            out.append(
                Support(sentence, False, score=score, missing=tuple(missing_everywhere or ()))
            )
    return out
