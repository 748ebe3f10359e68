"""A loaded index, and the incremental update that writes new generations of it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import store
from .chunking import chunk_document, sentence_spans
from .embedders import Embedder, make_embedder
from .errors import IndexMismatchError, InputError, LoadError
from .loaders import discover, load_document
from .multivector import embed_with_sentences
from .settings import Settings
from .types import BuildReport, Chunk, Document, Skipped

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a build runs (stage: "read", "embed")."""


@dataclass(frozen=True)
class DocumentInfo:
    """What the corpus panel and ``sourcier documents`` show about one document."""

    doc_id: str
    title: str
    source: str
    date_raw: str | None
    date_iso: str | None
    language: str
    chunks: int
    chars: int


def passage_text(chunk: Chunk, title: str, *, embed_title: bool) -> str:
    """The text embedded for a chunk (before the model's passage prefix)."""
    return f"{title}\n{chunk.text}" if embed_title and title else chunk.text


def lexical_text(chunk: Chunk, title: str) -> str:
    """The text BM25 indexes for a chunk: the title helps lexical matching."""
    return f"{title}\n{chunk.text}"


class Index:
    """An open index: documents, chunks, dense and lexical indexes, and its embedder.

    Reads are served from an immutable snapshot, so searches never see a half update.
    Writes (``add_files``, ``remove``; ``build_index`` for whole folders) are serialised
    by a lock file and publish a new generation atomically; this object then switches
    to it.
    """

    def __init__(
        self, path: Path, snapshot: store.Snapshot, settings: Settings, *, cache_dir: Path | None
    ) -> None:
        self.path = path
        self._snapshot = snapshot
        self.settings = settings
        self._cache_dir = cache_dir
        # shared with the views made by configure(), so the model loads once for all
        self._model_slot: list[Embedder] = []

    # ----- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, *, settings: Settings | None = None, cache_dir: Path | None = None
    ) -> Index:
        """Open the index at ``path``.

        Args:
            path: the index folder.
            settings: query settings; its index fields (model, chunking) must match the
                index. ``None`` takes the index's own fields with default query settings.
            cache_dir: where converted models are cached.

        Raises:
            IndexNotFoundError: nothing is indexed at ``path``.
            IndexMismatchError: ``settings`` name another model or chunking.
            IndexCorruptError: the files are damaged.
        """
        path = Path(path)
        snapshot = store.read_snapshot(store.require_index(path))
        effective = _settings_for(snapshot.manifest, settings, path)
        return cls(path, snapshot, effective, cache_dir=cache_dir)

    def configure(self, **query_settings: Any) -> Index:
        """A view of this index with other query settings (k, mode, fusion, ...)."""
        changed = self.settings.with_(**query_settings)
        if changed.index_fields() != self.settings.index_fields():
            raise IndexMismatchError("configure() changes query settings only; rebuild instead")
        view = Index(self.path, self._snapshot, changed, cache_dir=self._cache_dir)
        view._model_slot = self._model_slot
        return view

    # ----- reading -------------------------------------------------------------

    @property
    def snapshot(self) -> store.Snapshot:
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._snapshot.manifest)

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if not self._model_slot:
            self._model_slot.append(make_embedder(self.settings, cache_dir=self._cache_dir))
        return self._model_slot[0]

    def __len__(self) -> int:
        return len(self._snapshot.chunks)

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document, sorted by title."""
        snap = self._snapshot
        counts: dict[str, int] = {}
        for c in snap.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        infos = [
            DocumentInfo(
                d.doc_id,
                d.title,
                d.source,
                d.date_raw,
                d.date_iso,
                d.language,
                counts.get(d.doc_id, 0),
                len(d.text),
            )
            for d in snap.documents.values()
        ]
        return sorted(infos, key=lambda i: (i.title.lower(), i.source))

    def document(self, doc_id: str) -> Document:
        """The document with this id (its ``text`` is what every offset refers to).

        Raises:
            InputError: no such document in this index.
        """
        try:
            return self._snapshot.documents[doc_id]
        except KeyError:
            raise InputError(
                f"no document {doc_id!r} in the index at {self.path}",
                code="document_not_found",
                doc_id=doc_id,
                path=str(self.path),
            ) from None

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id."""
        try:
            return self._snapshot.by_chunk_id[chunk_id]
        except KeyError:
            raise InputError(
                f"no chunk {chunk_id!r} in the index at {self.path}",
                code="chunk_not_found",
                chunk_id=chunk_id,
                path=str(self.path),
            ) from None

    # ----- writing -------------------------------------------------------------

    def add_files(
        self,
        paths: Sequence[str | Path],
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> BuildReport:
        """Add or update single files without removing anything else."""
        return self._write(paths=paths, progress=progress, show_progress=show_progress, prune=False)

    def remove(self, doc_id: str) -> BuildReport:
        """Remove one document (by id) from the index."""
        self.document(doc_id)  # raises InputError if unknown
        return self._write(remove_ids=(doc_id,))

    def _write(self, **changes: Any) -> BuildReport:
        """Run one update with this index's settings and model, then switch to its result."""
        report = update_index(
            self.path,
            settings=self.settings,
            cache_dir=self._cache_dir,
            embedder=self._model_slot[0] if self._model_slot else None,
            **changes,
        )
        self.reload()
        return report

    def reload(self) -> None:
        """Switch to the live generation on disk (after a write by anyone)."""
        snapshot = store.read_snapshot(store.require_index(self.path))
        _settings_for(snapshot.manifest, self.settings, self.path)
        self._snapshot = snapshot


def _settings_for(manifest: dict[str, Any], settings: Settings | None, path: Path) -> Settings:
    recorded = manifest.get("settings", {})
    if settings is None:
        return Settings().with_(**recorded)
    mine = settings.index_fields()
    if recorded.get("model") != mine["model"]:
        raise IndexMismatchError(
            f"the index at {path} was built with model {recorded.get('model')!r}, "
            f"not {mine['model']!r}; use another --index or rebuild it",
            code="index_mismatch_model",
            path=str(path),
            built=str(recorded.get("model")),
            wanted=str(mine["model"]),
        )
    differing = sorted(k for k, v in mine.items() if recorded.get(k, v) != v)
    if differing:
        fields = ", ".join(f"{k}={recorded.get(k)!r}" for k in differing)
        raise IndexMismatchError(
            f"the index at {path} was built with other {', '.join(differing)} "
            f"({fields}); rebuild it to change them",
            code="index_mismatch_settings",
            path=str(path),
            fields=fields,
        )
    return settings


def _within(source: str, roots: Iterable[Path]) -> bool:
    p = Path(source)
    return any(p == root or root in p.parents for root in roots)


def update_index(
    path: str | Path,
    *,
    paths: Sequence[str | Path] = (),
    documents: Sequence[Document] = (),
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    prune: bool = True,
    remove_ids: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    show_progress: bool | None = None,
    embedder: Embedder | None = None,
) -> BuildReport:
    """Create or update the index at ``path``; the single write path of sourcier.

    Args:
        path: the index folder (created if missing).
        paths: files and folders to read. With ``prune``, documents previously read
            from under these paths and no longer found there are removed.
        documents: ready-made documents (for data sets given as records).
            With ``prune``, previous documents whose source starts with ``"record:"``
            and is not among them are removed.
        settings: index settings for a new index; ``None`` reuses the existing
            index's settings (or the defaults for a new one).
        cache_dir: where converted models are cached.
        prune: remove documents under ``paths`` that no longer exist.
        remove_ids: document ids to remove.
        progress: callback ``(stage, done, total)``.
        show_progress: tqdm bars on stderr (``None``: only when stderr is a terminal).
        embedder: an already loaded embedder to reuse.

    Returns:
        What changed.
    """
    t0 = time.perf_counter()
    path = Path(path)
    with store.writer_lock(path):
        gen = store.current_generation(path)
        old = store.read_snapshot(gen) if gen is not None and gen.is_dir() else None
        if old is not None:
            settings = _settings_for(old.manifest, settings, path)
        elif settings is None:
            settings = Settings()

        # 1. read the files
        files, skipped = discover(paths) if paths else ([], [])
        skipped = list(skipped)
        fresh: dict[str, Document] = {}
        by_source: dict[str, str] = {}
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        for i, file in enumerate(_bar(files, "Reading", show_progress, unit="file")):
            try:
                doc = load_document(file, max_bytes=max_bytes)
            except LoadError as err:
                skipped.append(Skipped(str(file), str(err), err.code, dict(err.params)))
                continue
            finally:
                if progress:
                    progress("read", i + 1, len(files))
            _accept(doc, fresh, by_source, skipped)
        for doc in documents:
            _accept(doc, fresh, by_source, skipped)

        # 2. decide the new document set
        old_docs = dict(old.documents) if old else {}
        roots = [Path(os.path.abspath(p)) for p in paths]
        record_sync = bool(documents) and prune
        keep: dict[str, Document] = {}
        for doc_id, doc in old_docs.items():
            if doc_id in remove_ids or doc.source in by_source:
                continue
            if prune and roots and _within(doc.source, roots):
                continue
            if record_sync and doc.source.startswith("record:"):
                continue
            keep[doc_id] = doc
        new_docs = {**keep, **fresh}
        indexed = tuple(d.source for d in fresh.values() if d.doc_id not in old_docs)
        unchanged = tuple(d.source for d in fresh.values() if d.doc_id in old_docs)
        removed = tuple(d.source for i, d in old_docs.items() if i not in new_docs)

        if old is None and not new_docs:
            sources = ", ".join(str(p) for p in paths) or "the given records"
            raise InputError(
                f"no document could be indexed from {sources}{skip_summary(skipped)}",
                code="nothing_indexed",
                sources=sources,
                skipped=len(skipped),
            )
        if (
            old is not None
            and set(new_docs) == set(old_docs)
            and all(new_docs[i].source == old_docs[i].source for i in new_docs)
        ):
            log.info("nothing changed in %s", path)
            return BuildReport(
                index_path=str(path),
                unchanged=unchanged,
                skipped=tuple(skipped),
                chunks_unchanged=len(old.chunks),
                seconds=time.perf_counter() - t0,
            )

        # 3. chunk (reusing the chunks of unchanged documents)
        if embedder is None:
            embedder = make_embedder(settings, cache_dir=cache_dir)
        old_chunks: dict[str, list[Chunk]] = {}
        for c in old.chunks if old else ():
            old_chunks.setdefault(c.doc_id, []).append(c)
        chunks: list[Chunk] = []
        titles: list[str] = []
        for doc in sorted(new_docs.values(), key=lambda d: d.source):
            doc_chunks = old_chunks.get(doc.doc_id) or chunk_document(
                doc,
                chunk_tokens=settings.chunk_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
                count_tokens=embedder.count_tokens,
            )
            chunks.extend(doc_chunks)
            titles.extend([doc.title] * len(doc_chunks))
        old_ids = {c.chunk_id for c in old.chunks} if old else set()
        new_ids = {c.chunk_id for c in chunks}

        # 4. embed what no cache knows (passages and their sentences, in one pass)
        texts = [
            passage_text(c, t, embed_title=settings.embed_title)
            for c, t in zip(chunks, titles, strict=True)
        ]
        doc_spans = [sentence_spans(new_docs[c.doc_id].text, c.start, c.end) for c in chunks]
        shifts = [len(t) - len(c.text) - c.start for c, t in zip(chunks, texts, strict=True)]
        passage_spans = [
            [(s + d, e + d) for s, e in spans] for spans, d in zip(doc_spans, shifts, strict=True)
        ]
        vectors, sentence_vectors, embedded = _vectors_for(
            path, embedder, texts, passage_spans, settings, progress, show_progress
        )

        # 5. publish
        manifest = {
            "model": embedder.model_id,
            "dimension": embedder.dim,
            "query_prefix": embedder.query_prefix,
            "passage_prefix": embedder.passage_prefix,
            "settings": {**settings.index_fields(), "model": embedder.model_id},
        }
        store.write_generation(
            path,
            documents=sorted(new_docs.values(), key=lambda d: d.source),
            chunks=chunks,
            vectors=vectors,
            sentences=doc_spans,
            sentence_vectors=sentence_vectors,
            lexical_texts=[lexical_text(c, t) for c, t in zip(chunks, titles, strict=True)],
            manifest=manifest,
        )
        _prune_cache(path, embedder, texts)
        return BuildReport(
            index_path=str(path),
            indexed=indexed,
            unchanged=unchanged,
            removed=removed,
            skipped=tuple(skipped),
            chunks_added=len(new_ids - old_ids),
            chunks_removed=len(old_ids - new_ids),
            chunks_unchanged=len(new_ids & old_ids),
            embedded=embedded,
            seconds=time.perf_counter() - t0,
        )


def skip_summary(skipped: Sequence[Skipped]) -> str:
    """Why nothing was indexed, in a few words."""
    if not skipped:
        return ": no supported file (.txt, .md, .html, .pdf, .docx) was found"
    reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return f": every file was skipped ({reasons}{more})"


def _accept(
    doc: Document, fresh: dict[str, Document], by_source: dict[str, str], skipped: list[Skipped]
) -> None:
    if doc.doc_id in fresh:
        other = fresh[doc.doc_id].source
        skipped.append(
            Skipped(doc.source, f"same content as {other}", "duplicate", {"other": other})
        )
        return
    fresh[doc.doc_id] = doc
    by_source[doc.source] = doc.doc_id


def _vectors_for(
    path: Path,
    embedder: Embedder,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    settings: Settings,
    progress: ProgressCallback | None,
    show_progress: bool | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Passage and sentence vectors for ``texts``, from the cache or freshly embedded.

    Returns:
        ``(passage_vectors, sentence_vectors stacked in order, number embedded)``.
    """
    cache = store.EmbeddingCache(path / store.CACHE, embedder.model_id, embedder.dim)
    try:
        keys = [cache.key(t) for t in texts]
        where = {k: i for i, k in enumerate(keys)}
        known = {  # a cached entry is only usable if it has one vector per sentence
            k: v for k, v in cache.get_many(keys).items() if len(v[1]) == len(spans[where[k]])
        }
        todo_at: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in known and k not in todo_at:
                todo_at[k] = i
        # by length, so each batch pads to similar lengths (the forward pass is the cost)
        todo = sorted(todo_at.items(), key=lambda kv: (len(texts[kv[1]]), kv[0]))
        if todo:
            bar = _bar(None, "Embedding", show_progress, total=len(todo), unit="chunk")
            done = 0
            step = max(settings.batch_size * 4, 64)
            for i in range(0, len(todo), step):
                part = todo[i : i + step]

                def tick(n: int) -> None:
                    nonlocal done
                    done += n
                    bar.update(n)
                    if progress:
                        progress("embed", done, len(todo))

                vecs, sents = embed_with_sentences(
                    embedder,
                    [texts[j] for _, j in part],
                    [spans[j] for _, j in part],
                    batch_size=settings.batch_size,
                    progress=tick,
                )
                rows = [(k, v, sv) for (k, _), v, sv in zip(part, vecs, sents, strict=True)]
                cache.put_many(rows)
                known.update({k: (v, sv) for k, v, sv in rows})
            bar.close()
        dim = embedder.dim
        vectors = (
            np.stack([known[k][0] for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, dim), dtype=np.float32)
        )
        sentence_parts = [known[k][1] for k in keys]
        sentence_vectors = (
            np.concatenate(sentence_parts).astype(np.float32)
            if sentence_parts
            else np.zeros((0, dim), dtype=np.float32)
        )
        return vectors, sentence_vectors, len(todo)
    finally:
        cache.close()


def _prune_cache(path: Path, embedder: Embedder, live_texts: list[str]) -> None:
    """Forget cached vectors no live chunk uses, so the cache does not grow forever."""
    cache = store.EmbeddingCache(path / store.CACHE, embedder.model_id, embedder.dim)
    try:
        dropped = cache.prune(cache.key(t) for t in live_texts)
        log.debug("dropped %d cached vectors", dropped)
    finally:
        cache.close()


def _bar(iterable: Any, desc: str, show: bool | None, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=(None if show is None else not show), **kwargs)
