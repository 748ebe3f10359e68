"""The public Python API: build_index(), load_index(), search(), ask()."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths as locations
from .answer import refusal, verify
from .answer.extractive import ExtractiveAnswerer
from .answer.protocol import Answerer, Draft
from .answer.question import Question, check_text, parse_question
from .answer.retrieve import Filters, SecondStage, retrieve
from .build.writer import Index, ProgressCallback, optimize_index, update_index
from .errors import InputError
from .paths import bundled_corpus_files
from .settings import MODES, Settings
from .storage import store
from .storage.merge import MergeReport
from .types import Answer, BuildReport, Document, Hit, Notice, TextDelta

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

Event = TextDelta | Notice | Answer

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

    A folder's walk leaves out hidden files and the folder's README (see
    :func:`~sourcier.loaders.discover`), and documents the user removed
    (:meth:`Index.remove <sourcier.index.Index.remove>`) stay out, listed in
    ``kept_out``; a file named in ``paths`` itself is indexed in every case (this is how
    to add a removed file back). The bundled corpus (``paths=None``) re-adds nothing.

    Args:
        paths: files and folders; ``None`` means the bundled corpus.
        index: the index folder; ``None`` means the default index.
        settings: model and chunking for a new index; ``None`` keeps the existing
            index's settings (or uses the defaults).
        cache_dir: where converted models are cached.
        progress: callback ``(stage, done, total)``.
        show_progress: progress bars on stderr (``None``: when stderr is a terminal).

    Returns:
        The build report: files indexed, edited, unchanged, removed, skipped (with
        reasons) and kept out, chunk counts and time taken.

    Raises:
        InputError: a folder does not exist, or no supported file was found in a new index.
        IndexMismatchError: ``settings`` disagree with the existing index.
    """
    bundled = paths is None
    if paths is None:
        paths = bundled_corpus_files()
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    target = Path(index) if index is not None else locations.default_index_dir()
    return update_index(
        target,
        paths=list(paths),
        readd=not bundled,  # a bundled document the user removed stays removed
        settings=settings,
        cache_dir=cache_dir,
        progress=progress,
        show_progress=show_progress,
    )


def optimize(*, index: str | Path | None = None) -> MergeReport:
    """Merge every segment of the index into one, dropping deleted chunks.

    Builds merge segments on their own as they go (a size-tiered policy, see
    :mod:`sourcier.merge`); this is for a compact index before it is copied or served,
    and gives the fastest searches.

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexCorruptError: the index is damaged.
    """
    target = Path(index) if index is not None else locations.default_index_dir()
    return optimize_index(target)


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

    from .ingest.cleaning import clean_text
    from .ingest.language import detect_language
    from .ingest.readers import strip_markup

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
    target = Path(path) if path is not None else locations.default_index_dir()
    return Index.open(target, settings=settings, cache_dir=cache_dir)


def ensure_index(
    index: str | Path | None = None,
    *,
    announce: Callable[[str], None] | None = None,
    on_built: Callable[[BuildReport], None] | None = None,
    show_progress: bool | None = None,
) -> Path:
    """The index folder to use; the default one is built from the bundled corpus if missing.

    So ``ask()`` works right after install. Two processes doing this at once are safe:
    builds are serialised by the index's lock file, and the second one finds the index
    the first one built and changes nothing.

    Args:
        index: a folder, or ``None`` for the default index.
        announce: called with the one line that says a build starts (default: a log
            warning, which Python prints on stderr when logging is not configured).
        on_built: called with the build report.
        show_progress: progress bars on stderr (``None``: when stderr is a terminal).

    Raises:
        IndexNotFoundError: an explicitly named index does not exist.
        IndexCorruptError: the index is damaged (the message says how to fix it).
    """
    target = Path(index) if index is not None else locations.default_index_dir()
    if store.index_exists(target):
        return target
    if index is not None or (target / store.CURRENT).exists():
        # not found, or damaged (a default index with documents of the user's own is not
        # silently rebuilt from the bundled corpus): the error says how to fix it
        store.require_index(target)
        return target
    (announce or log.warning)(
        f"No index yet: building one from the bundled corpus in {target} (about a minute) ..."
    )
    report = build_index(index=target, show_progress=show_progress)
    if on_built is not None:
        on_built(report)
    return target


def _resolve(index: IndexLike) -> Index:
    """An open Index for ``index``; paths are opened once and reused while unchanged.
    The default index is built first if it does not exist."""
    if isinstance(index, Index):
        return index
    target = ensure_index(None) if index is None else Path(index)
    gen = store.require_index(target)
    key = (str(target.resolve()), gen.name)
    with _open_lock:
        cached = _open_indexes.get(key)
        if cached is None:
            for old in [k for k in _open_indexes if k[0] == key[0]]:
                del _open_indexes[old]
            cached = _open_indexes[key] = Index.open(target)
        return cached


def search(
    query: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    second_stage: SecondStage | None = None,
) -> list[Hit]:
    """The best passages for ``query``.

    Args:
        query: what to look for.
        index: an open Index, a path, or ``None`` for the default index.
        k: how many hits (default: the index settings' ``k``).
        mode: "hybrid" (default), "dense" or "bm25".
        filters: restrict to documents: ``{"doc_ids", "sources", "date_from", "date_to"}``.
        second_stage: a scorer that re-orders the first-stage hits (see
            :class:`~sourcier.retrieve.SecondStage`).

    Returns:
        Hits, best first.

    Raises:
        InputError: empty or too long query, bad ``k``, ``mode`` or filters; checked
            before the index is opened or built and before the model loads.
    """
    request = check_request(
        query, k=k, mode=mode, filters=filters, max_chars=_max_chars(index), what="query"
    )
    idx = _resolve(index)
    if request.changes:
        idx = idx.configure(**request.changes)
    return retrieve(
        idx,
        request.question,
        k=idx.settings.k,
        mode=idx.settings.mode,
        filters=request.filters,
        second_stage=second_stage,
    )


@dataclass(frozen=True)
class Request:
    """A question and its options, checked: what ``ask`` and ``search`` go on with."""

    question: Question
    filters: Filters | None
    changes: dict[str, Any]  # query settings to change (k, mode)


def check_request(
    question: Any,
    *,
    history: Sequence[Any] | None = None,
    k: Any = None,
    mode: Any = None,
    filters: Filters | Mapping[str, Any] | None = None,
    max_chars: int | None = None,
    what: str = "question",
) -> Request:
    """Check a question and its options before anything slow happens.

    ``ask``, ``search`` and the CLI call it before opening (or building) the index and
    loading the model, so a bad date is refused in milliseconds.

    Args:
        question: the question (or search query).
        history: earlier turns, as for :func:`ask`.
        k: passages to retrieve, 1 to 100.
        mode: "hybrid", "dense" or "bm25".
        filters: as for :func:`ask`.
        max_chars: the longest question accepted (default: ``Settings().max_question_chars``).
        what: "question" or "query", as the messages name it.

    Returns:
        The parsed question, the filters, and the query settings to change.

    Raises:
        InputError: any of them is unusable; the error has a ``code`` (see
            :mod:`sourcier.messages`).
    """
    limit = max_chars if max_chars is not None else Settings().max_question_chars
    text = check_text(question, max_chars=limit, what=what)
    changes = _query_changes(k=k, mode=mode)
    parsed_filters = Filters.coerce(filters)
    return Request(parse_question(text, history=history, max_chars=limit), parsed_filters, changes)


def _max_chars(index: IndexLike) -> int:
    settings = index.settings if isinstance(index, Index) else Settings()
    return settings.max_question_chars


def _query_changes(**values: Any) -> dict[str, Any]:
    changes = {k: v for k, v in values.items() if v is not None}
    k = changes.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100):
        raise InputError(
            f"k must be a whole number from 1 to 100, not {k!r}", code="k_invalid", value=repr(k)
        )
    mode = changes.get("mode")
    if mode is not None and mode not in MODES:
        raise InputError(
            f"mode ({mode!r}) must be one of {', '.join(MODES)}",
            code="mode_invalid",
            value=str(mode),
        )
    return changes


def ask(
    question: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    history: Sequence[Any] | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    mode: str | None = None,
    llm: BaseChatModel | str | None = None,
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
    second_stage: SecondStage | None = None,
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
        llm: ``None`` for the extractive answer (verbatim quotes, no model); a LangChain
            chat model, or a ``"provider:model"`` string for
            ``langchain.chat_models.init_chat_model`` ("openai:qwen2.5", "ollama:llama3"),
            for a generative answer whose every sentence is verified against a span.
        llm_base_url: the server of an ``llm`` string (an OpenAI-compatible
            ``http://127.0.0.1:8080/v1``).
        llm_timeout: seconds the model may take before the extractive answer is given
            instead (default: the index settings' ``llm_timeout``, 60).
        second_stage: a scorer that re-orders the first-stage hits.

    Returns:
        An Answer: text with ``[n]`` markers, citations with exact spans, the hits used,
        ``refused`` when the documents do not support an answer, and timings.

    Raises:
        InputError: empty or too long question, bad filters or history.
        ConfigError: ``llm`` names a provider whose package is not installed.
    """
    answer: Answer | None = None
    for event in ask_stream(
        question,
        index=index,
        k=k,
        history=history,
        filters=filters,
        mode=mode,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
        second_stage=second_stage,
    ):
        if isinstance(event, Answer):
            answer = event
    assert answer is not None
    return answer


def ask_stream(
    question: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    history: Sequence[Any] | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    mode: str | None = None,
    llm: BaseChatModel | str | None = None,
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
    second_stage: SecondStage | None = None,
) -> Iterator[Event]:
    """:func:`ask`, as events: ``TextDelta`` pieces while a model writes (unverified),
    ``Notice`` lines, then the final, verified ``Answer`` (always last, always once).

    The arguments are those of :func:`ask`. The text of the deltas is what the model
    wrote; the Answer's text is what survived verification, so a display must replace
    the streamed text with it.
    """
    t0 = time.perf_counter()
    request = check_request(
        question, history=history, k=k, mode=mode, filters=filters, max_chars=_max_chars(index)
    )
    question_, parsed_filters = request.question, request.filters
    idx = _resolve(index)
    if request.changes:
        idx = idx.configure(**request.changes)
    settings = idx.settings
    answerer = _answerer(idx, llm, base_url=llm_base_url, timeout=llm_timeout)
    timings: dict[str, float] = {}
    if (
        settings.follow_up_query == "llm"
        and question_.follow_up
        and question_.has_history
        and answerer.mode == "generative"
    ):
        from .answer.generative import GenerativeAnswerer, condense_follow_up

        assert isinstance(answerer, GenerativeAnswerer)
        t = time.perf_counter()
        condensed = condense_follow_up(answerer.llm, question_, timeout=answerer.timeout)
        timings["condense"] = (time.perf_counter() - t) * 1000.0
        if condensed:
            question_ = question_.with_query(condensed, condensed=True)
    t = time.perf_counter()
    qvec = idx.embedder.embed_queries([question_.query])[0]
    timings["embed_query"] = (time.perf_counter() - t) * 1000.0
    hits = retrieve(
        idx,
        question_,
        k=settings.k,
        mode=settings.mode,
        filters=parsed_filters,
        timings=timings,
        query_vector=qvec,
        second_stage=second_stage,
    )
    t = time.perf_counter()
    snap = idx.snapshot
    evidence = refusal.assess(question_, hits, snap, qvec, settings)
    if evidence.refused:
        draft = Draft(evidence.message, refused=True, mode=answerer.mode)
    else:
        draft = Draft("")
        for piece in answerer.stream(question_, hits, evidence, idx):
            if isinstance(piece, Draft):
                draft = piece
            else:
                yield TextDelta(piece)
    verify.check_spans(draft.citations, snap.documents)
    if draft.notice:
        yield Notice(draft.notice)
    timings.update(draft.timings_ms)
    timings["answer"] = (time.perf_counter() - t) * 1000.0
    timings["total"] = (time.perf_counter() - t0) * 1000.0
    log.debug("ask %r: support %.3f, refused %s", question_.text, evidence.support, draft.refused)
    yield Answer(
        question=question_.text,
        answer=draft.text,
        refused=draft.refused,
        language=question_.language,
        citations=draft.citations,
        hits=tuple(hits),
        timings_ms=timings,
        retrieval_query=question_.query,
        support=evidence.support,
        mode=draft.mode,
        model=draft.model,
        sentences=draft.sentences,
        notice=draft.notice,
        reason=evidence.reason if evidence.refused else ("model" if draft.refused else None),
        usage=draft.usage,
    )


def _answerer(
    index: Index,
    llm: BaseChatModel | str | None,
    *,
    base_url: str | None,
    timeout: float | None,
) -> Answerer:
    settings = index.settings
    extractive = ExtractiveAnswerer(
        max_sentences=settings.max_answer_sentences, style=settings.answer_style
    )
    if llm is None:
        return extractive
    from .answer.generative import GenerativeAnswerer, resolve_llm

    timeout = timeout or settings.llm_timeout
    return GenerativeAnswerer(
        resolve_llm(llm, base_url=base_url, timeout=timeout, max_tokens=settings.llm_answer_tokens),
        fallback=extractive,
        timeout=timeout,
        context_tokens=settings.llm_context_tokens,
        answer_tokens=settings.llm_answer_tokens,
        support_threshold=settings.support_threshold,
    )
