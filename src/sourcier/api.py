"""The public Python API: build_index(), load_index(), search(), ask()."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import answer as answering
from . import store
from .errors import InputError
from .index import Index, ProgressCallback, update_index
from .language import question_language
from .lexical import analyze
from .paths import bundled_corpus_files, default_index_dir
from .retrieve import Filters, retrieve
from .settings import Settings
from .types import Answer, BuildReport, Document, Hit

log = logging.getLogger(__name__)

IndexLike = Index | str | Path | None

_open_lock = threading.Lock()
_open_indexes: dict[tuple[str, str], Index] = {}


def build_index(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    index: str | Path | None = None,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    show_progress: bool | None = None,
) -> BuildReport:
    """Build the index, or bring it up to date with the files under ``paths``.

    Incremental: new files are added, edited files re-chunked, deleted files removed,
    and only chunks no cache knows are embedded. Running it twice changes nothing.
    Documents indexed from other folders (or uploaded) are kept.

    Args:
        paths: files and folders; ``None`` means the bundled corpus.
        index: the index folder; ``None`` means the default index.
        settings: model and chunking for a new index; ``None`` keeps the existing
            index's settings (or uses the defaults).
        cache_dir: where converted models are cached.
        progress: callback ``(stage, done, total)``.
        show_progress: progress bars on stderr (``None``: when stderr is a terminal).

    Returns:
        The build report: files indexed, unchanged, removed and skipped (with reasons),
        chunk counts and time taken.

    Raises:
        InputError: a folder does not exist, or no supported file was found in a new index.
        IndexMismatchError: ``settings`` disagree with the existing index.
    """
    if paths is None:
        paths = bundled_corpus_files()
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    target = Path(index) if index is not None else default_index_dir()
    return update_index(
        target,
        paths=list(paths),
        settings=settings,
        cache_dir=cache_dir,
        progress=progress,
        show_progress=show_progress,
    )


def build_index_from_records(
    records: Sequence[Mapping[str, str]],
    *,
    index: str | Path,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    show_progress: bool | None = None,
) -> BuildReport:
    """Index ready-made passages ``{"id", "title", "text"}`` (evaluation data sets).

    Each record becomes a document whose source is ``record:<id>``; records that
    disappear from a later call are removed.
    """
    import hashlib

    from .language import detect_language
    from .loaders import clean_text, strip_markup

    docs: list[Document] = []
    for r in records:
        text = clean_text(r["text"])
        if not text:
            continue
        title = clean_text(strip_markup(r.get("title") or "")) or text[:80]
        docs.append(
            Document(
                doc_id=hashlib.sha256(text.encode()).hexdigest(),
                source=f"record:{r['id']}",
                title=title,
                text=text,
                language=detect_language(text),
            )
        )
    return update_index(
        Path(index),
        documents=docs,
        settings=settings,
        cache_dir=cache_dir,
        show_progress=show_progress,
    )


def load_index(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
) -> Index:
    """Open an index (``None``: the default index, the one ``ask()`` uses).

    ``load_index().document(doc_id).text`` is the cleaned text every citation span
    refers to.

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexMismatchError: ``settings`` name another model or chunking.
    """
    target = Path(path) if path is not None else default_index_dir()
    return Index.open(target, settings=settings, cache_dir=cache_dir)


def _resolve(index: IndexLike) -> Index:
    """An open Index for ``index``; paths are opened once and reused while unchanged."""
    if isinstance(index, Index):
        return index
    target = Path(index) if index is not None else default_index_dir()
    gen = store.require_index(target)
    key = (str(target.resolve()), gen.name)
    with _open_lock:
        cached = _open_indexes.get(key)
        if cached is None:
            for old in [k for k in _open_indexes if k[0] == key[0]]:
                del _open_indexes[old]
            cached = _open_indexes[key] = Index.open(target)
        return cached


def _check_question(text: str, settings: Settings, what: str = "question") -> str:
    if not isinstance(text, str):
        raise InputError(f"the {what} must be text, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InputError(f"the {what} is empty")
    if len(stripped) > settings.max_question_chars:
        raise InputError(
            f"the {what} is {len(stripped):,} characters long; the limit is "
            f"{settings.max_question_chars:,}"
        )
    return stripped


def search(
    query: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The best passages for ``query``.

    Args:
        query: what to look for.
        index: an open Index, a path, or ``None`` for the default index.
        k: how many hits (default: the index settings' ``k``).
        mode: "hybrid" (default), "dense" or "bm25".
        filters: restrict to documents: ``{"doc_ids", "sources", "date_from", "date_to"}``.

    Returns:
        Hits, best first.
    """
    idx = _resolve(index)
    settings = idx.settings
    query = _check_question(query, settings, "query")
    if k is not None or mode is not None:
        idx = idx.configure(**_query_changes(k=k, mode=mode))
    return retrieve(
        idx, query, k=idx.settings.k, mode=idx.settings.mode, filters=Filters.coerce(filters)
    )


def _query_changes(**values: Any) -> dict[str, Any]:
    changes = {k: v for k, v in values.items() if v is not None}
    if "k" in changes and not isinstance(changes["k"], int):
        raise InputError(f"k must be a whole number, not {changes['k']!r}")
    return changes


def ask(
    question: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    history: Sequence[Any] | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    mode: str | None = None,
) -> Answer:
    """Answer ``question`` from the indexed documents, with citations, or refuse.

    Args:
        question: in French or English.
        index: an open Index, a path, or ``None`` for the default index.
        k: passages considered (default: the index settings' ``k``).
        history: earlier turns (messages ``{"role", "content"}`` or (question, answer)
            pairs); a short follow-up ("Et qui le préside ?") is searched together
            with the previous question.
        filters: restrict to documents: ``{"doc_ids", "sources", "date_from", "date_to"}``.
        mode: "hybrid" (default), "dense" or "bm25".

    Returns:
        An Answer: text with ``[n]`` markers, citations with exact spans, the hits used,
        ``refused`` when the documents do not support an answer, and timings.

    Raises:
        InputError: empty or too long question, bad filters or history.
    """
    t0 = time.perf_counter()
    idx = _resolve(index)
    question = _check_question(question, idx.settings)
    if k is not None or mode is not None:
        idx = idx.configure(**_query_changes(k=k, mode=mode))
    settings = idx.settings
    language = question_language(question)
    turns = answering.normalise_history(history)
    query = answering.retrieval_query(question, turns)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    qvec = idx.embedder.embed_queries([query])[0]
    timings["embed_query"] = (time.perf_counter() - t) * 1000.0
    hits = retrieve(
        idx,
        query,
        k=settings.k,
        mode=settings.mode,
        filters=Filters.coerce(filters),
        timings=timings,
        query_vector=qvec,
    )
    t = time.perf_counter()
    snap = idx.snapshot
    cands = answering.candidates(question, query, hits, snap, qvec)
    top_language = snap.documents[hits[0].chunk.doc_id].language if hits else language
    evidence_terms = analyze(query)
    evidence_hits: Sequence[Hit] = hits
    shape = answering.asked_shape(question)
    if shape is not None:
        # A budget is answered by an amount, a phone number by a phone number: only
        # sentences that show one may answer, and only their passages are evidence.
        cands = [c for c in cands if shape.form.search(c.text)]
        evidence_terms = analyze(shape.asked.sub(" ", query))
        shown_in = {c.hit.chunk.chunk_id for c in cands}
        evidence_hits = [h for h in hits if h.chunk.chunk_id in shown_in]
    pointer = answering.missing_referent(question, cands, snap.documents)
    evidence = answering.support(
        evidence_terms,
        evidence_hits,
        snap.bm25,
        best_sentence_similarity=max((c.dense for c in cands), default=-1.0),
        same_language=language == top_language,
        settings=settings,
    )
    refused = not cands or pointer is not None or evidence < settings.refusal_threshold
    citations: tuple = ()
    if refused:
        text = answering.refusal_text(hits, language=language, shape=shape, pointer=pointer)
    else:
        chosen = answering.select(cands, max_sentences=settings.max_answer_sentences)
        chosen = answering.with_lists(chosen, snap.documents)
        text, citations = answering.compose(chosen, language=language)
        answering.verify(citations, snap.documents)
    timings["answer"] = (time.perf_counter() - t) * 1000.0
    timings["total"] = (time.perf_counter() - t0) * 1000.0
    log.debug("ask %r: support %.3f, refused %s", question, evidence, refused)
    return Answer(
        question=question,
        answer=text,
        refused=refused,
        language=language,
        citations=citations,
        hits=tuple(hits),
        timings_ms=timings,
        retrieval_query=query,
        support=evidence,
    )
