"""The data that crosses module boundaries: documents, chunks, hits, citations, answers."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def page_span(starts: Sequence[int], start: int, end: int) -> tuple[int | None, int | None]:
    """The pages ``text[start:end]`` sits on, ``(first, last)``, 1-based, given where each
    page starts (:attr:`Document.pages`); ``(None, None)`` for a document without pages.
    A page that covers no characters is never named."""
    if not starts:
        return None, None
    first = bisect_right(starts, start)
    last = bisect_right(starts, max(start, end - 1))
    return max(1, first), max(1, last)


@dataclass(frozen=True)
class Document:
    """A cleaned document. Every offset in sourcier refers to ``text``.

    Attributes:
        doc_id: sha256 hex digest of ``text`` (and of ``pages`` where it has them).
        source: where the document came from (a file path, as given or resolved).
        title: first meaningful line or heading.
        text: the cleaned, NFC-normalised text.
        date_raw: the date as written in the text, if one was found.
        date_iso: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` when the raw date could be parsed.
        language: ISO 639-1 code ("fr", "en", ...) or "und".
        pages: where each page starts in ``text`` (``pages[0] == 0``), for a document
            read from a paged format (PDF, slides); ``()`` for the others
            (:func:`sourcier.ingest.pages.page_span`).
        headings: the paragraphs that are headings, ``(start, end, level)`` each in
            document order; level 0 is the title line
            (:func:`sourcier.ingest.headings.mark_headings`). Never quoted as evidence.
        notes: one line each on how the file was read, for the build report (the
            pages that could not be read, the pages read by OCR); not stored.
    """

    doc_id: str
    source: str
    title: str
    text: str
    date_raw: str | None = None
    date_iso: str | None = None
    language: str = "und"
    pages: tuple[int, ...] = ()
    headings: tuple[tuple[int, int, int], ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def page_span(self, start: int, end: int) -> tuple[int | None, int | None]:
        """The pages ``text[start:end]`` sits on, 1-based, or ``(None, None)``."""
        return page_span(self.pages, start, end)

    def in_heading(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` lies in a heading, or reads as the title (the
        title line of a document indexed before headings were stored)."""
        if any(s <= start and end <= e for s, e, _ in self.headings):
            return True
        title = " ".join(self.title.split())
        return bool(title) and " ".join(self.text[start:end].split()) == title


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, with exact character offsets into ``Document.text``.

    ``document.text[chunk.start:chunk.end] == chunk.text`` always holds.
    """

    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    label: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score and rank (1-based)."""

    rank: int
    score: float
    chunk: Chunk
    title: str
    source: str
    date_iso: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    pages: tuple[int, ...] = field(default=(), repr=False, compare=False)
    """Where each page of the hit's document starts (:attr:`Document.pages`)."""

    @property
    def page(self) -> int | None:
        """The page the chunk starts on (1-based), ``None`` for a format without pages."""
        return self.page_span(self.chunk.start, self.chunk.end)[0]

    @property
    def page_end(self) -> int | None:
        """The page the chunk ends on."""
        return self.page_span(self.chunk.start, self.chunk.end)[1]

    def page_span(self, start: int, end: int) -> tuple[int | None, int | None]:
        """The pages a span of the hit's document sits on (``(None, None)`` without
        pages)."""
        return page_span(self.pages, start, end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "doc_id": self.chunk.doc_id,
            "title": self.title,
            "source": self.source,
            "date": self.date_iso,
            "chunk_id": self.chunk.chunk_id,
            "label": self.chunk.label,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "page": self.page,
            "page_end": self.page_end,
            "text": self.chunk.text,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
        }


@dataclass(frozen=True)
class Citation:
    """One quoted sentence backing an answer: ``document.text[start:end] == quote``.

    ``page`` and ``page_end`` are the pages the quote sits on (1-based) when the
    document has pages (PDF, slides), else ``None``."""

    n: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    quote: str
    start: int
    end: int
    date_iso: str | None = None
    page: int | None = None
    page_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Marked:
    """The fact a question asks for, marked in the answer line: ``document.text[start:end]
    == text``, inside the quote of citation ``n``.

    Set only when the question asks for a kind of thing (who, when, where, how many) and
    exactly one such thing stands in the quote beside the question's words."""

    n: int
    doc_id: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer and whether a cited span supports it.

    ``citations`` are the ``Citation.n`` numbers that back it. A generative sentence
    the verifier could not support is kept here with ``supported=False`` and no
    citations, and left out of ``Answer.answer``. ``cited`` says whether the model put
    a marker after it (a quote is always cited).
    """

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True
    cited: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "supported": self.supported,
            "cited": self.cited,
        }


@dataclass(frozen=True)
class Answer:
    """An answer with the evidence it was built from.

    ``answer`` holds the text with ``[n]`` markers that point into ``citations``. An
    extractive answer in the default "glance" style is one line: the best quote (or its
    clause that holds the asked thing), its ``[n]``, then "Voir aussi [2] [3]" for the
    runners-up, whose numbers are ``see_also`` and whose quotes are in ``citations``;
    ``marked`` is the asked fact in that line, when it is sure.
    When ``refused`` is true the documents did not support an answer, and
    ``hits`` are only the closest passages, offered as possibly useful, and ``reason``
    says why (see :data:`sourcier.refusal.REASONS`).

    ``mode`` is "extractive" (verbatim quotes, no language model) or "generative" (a
    language model wrote it; ``model`` names it). ``sentences`` lists every sentence
    with its citations and whether a cited span supports it. ``notice`` is a one-line
    message about how the answer was made (a model that failed, an unverifiable reply
    replaced by the extractive answer). ``usage`` counts language-model tokens.
    """

    question: str
    answer: str
    refused: bool
    language: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    retrieval_query: str = ""
    support: float = 0.0
    mode: str = "extractive"
    model: str | None = None
    sentences: tuple[AnswerSentence, ...] = ()
    notice: str | None = None
    reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    see_also: tuple[int, ...] = ()
    marked: Marked | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "reason": self.reason,
            "language": self.language,
            "mode": self.mode,
            "model": self.model,
            "notice": self.notice,
            "retrieval_query": self.retrieval_query,
            "support": round(float(self.support), 4),
            "see_also": list(self.see_also),
            "marked": self.marked.to_dict() if self.marked is not None else None,
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [c.to_dict() for c in self.citations],
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
            "usage": dict(self.usage),
        }


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text as it is written (streaming); not yet verified."""

    text: str


@dataclass(frozen=True)
class Notice:
    """A one-line message about how the answer was made ("the model did not answer in
    time; this is the extractive answer")."""

    text: str


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why.

    Attributes:
        path: the file (or folder) left out.
        reason: why, in English ("file is empty").
        code: a stable name for the reason ("empty"), for translated messages
            (:func:`sourcier.messages.say_skipped`); ``None`` when it has none.
        params: the values the reason quotes (a size, a suffix ...).
        kept: the file was indexed before and could not be read now: the version
            indexed before stays in the index.
    """

    path: str
    reason: str
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    kept: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "reason": self.reason,
            "code": self.code,
            "params": self.params,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class BuildReport:
    """What a build or update did. Each file is in at most one of the source lists.

    Attributes:
        index_path: the index folder.
        indexed: new files (sources), indexed for the first time.
        edited: files already indexed whose content changed, re-indexed.
        unchanged: files read again and found identical.
        removed: documents deleted from the index (their file is gone, or the user
            removed them); an edited file is not counted here.
        skipped: files that could not be indexed, with the reason.
        kept_out: files (or records) the user removed earlier and a build found again:
            left out until named explicitly (``sourcier index FILE``).
        moved: ``(old source, new source)`` of each document whose file was renamed
            or moved, its text unchanged.
        notes: ``(source, note)``: how a file written by this build was read, when
            there is something to say ("pages 3, 7 could not be read").
        chunks_added / chunks_removed / chunks_unchanged: passages.
        embedded: passages that had to be embedded (the rest came from the cache).
        precision: what they were embedded in, and why ("bfloat16 (the CPU has
            avx512_bf16)"); empty when nothing was embedded.
        seconds: time taken.
        segments: segments the index has after the build.
        merged: segments merged into others after the build (by the merge policy).
    """

    index_path: str
    indexed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    edited: tuple[str, ...] = ()
    kept_out: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    embedded: int = 0
    precision: str = ""
    seconds: float = 0.0
    segments: int = 0
    merged: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.chunks_added or self.chunks_removed or self.removed or self.edited or self.moved
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = [s.to_dict() for s in self.skipped]
        return d
