"""The chunk stage of a build: documents -> passages, each with its sentences.

A :class:`Passage` is a chunk as the model reads it (with the document title before it)
and as BM25 reads it, with its sentences' offsets, found once by the chunker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..ingest.chunking import chunk_with_sentences
from ..settings import Settings
from ..types import Chunk, Document

Span = tuple[int, int]


def passage_text(chunk: Chunk, title: str, *, embed_title: bool) -> str:
    """The text embedded for a chunk (before the model's passage prefix)."""
    return f"{title}\n{chunk.text}" if embed_title and title else chunk.text


def lexical_text(chunk: Chunk, title: str) -> str:
    """The text BM25 indexes for a chunk: the title helps lexical matching."""
    return f"{title}\n{chunk.text}"


@dataclass(frozen=True)
class Passage:
    """A chunk ready to embed and index.

    Attributes:
        chunk: the chunk (offsets into its document's text).
        title: its document's title.
        sentences: its sentences, as offsets into the document's text.
        text: what the model embeds (:func:`passage_text`).
    """

    chunk: Chunk
    title: str
    sentences: tuple[Span, ...]
    text: str

    @property
    def spans_in_text(self) -> list[Span]:
        """The sentences as offsets into :attr:`text` (after the title, if any)."""
        shift = len(self.text) - len(self.chunk.text) - self.chunk.start
        return [(s + shift, e + shift) for s, e in self.sentences]

    @property
    def lexical(self) -> str:
        """What BM25 indexes (:func:`lexical_text`)."""
        return lexical_text(self.chunk, self.title)


def chunk_documents(
    documents: Iterable[Document],
    settings: Settings,
    count_tokens: Callable[[str], int],
    *,
    known: Mapping[str, list[Passage]] | None = None,
) -> list[Passage]:
    """The passages of ``documents``, by source, then in document order.

    Args:
        documents: the documents to write.
        settings: chunk size, overlap and whether the title is embedded.
        count_tokens: the embedding model's token counter.
        known: passages already made, by document id (by :mod:`sourcier.build.prefetch`
            with the same settings and counter).
    """
    index = settings.index
    passages: list[Passage] = []
    for doc in sorted(documents, key=lambda d: d.source):
        if known is not None and doc.doc_id in known:
            passages.extend(known[doc.doc_id])
            continue
        for chunk, sentences in chunk_with_sentences(
            doc,
            chunk_tokens=index.chunk_tokens,
            overlap_tokens=index.chunk_overlap_tokens,
            count_tokens=count_tokens,
        ):
            text = passage_text(chunk, doc.title, embed_title=index.embed_title)
            passages.append(Passage(chunk, doc.title, tuple(sentences), text))
    return passages
