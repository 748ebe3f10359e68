"""The public Python API: build_index(), load_index(), search(), ask(), ask_stream().

Each is a thin wrapper: writes go through the staged build (:mod:`sourcier.build`),
questions through the index's :class:`~sourcier.assistant.Assistant`, which the
process's cache (:mod:`sourcier.cache`) keeps open between calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths as locations
from .answer.filters import Filters
from .answer.request import Request, check_request
from .assistant import Assistant, Event
from .cache import default_cache
from .settings import Settings
from .storage import generations
from .storage.reader import Index
from .types import Answer, BuildReport, Document, Hit

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from .answer.second_stage import SecondStage
    from .build.conductor import StageFactory
    from .build.progress import ProgressCallback
    from .build.ray import RayOptions
    from .storage.merge import MergeReport

__all__ = [
    "Event",
    "Request",
    "ask",
    "ask_stream",
    "build_index",
    "build_index_from_records",
    "check_request",
    "ensure_index",
    "load_index",
    "optimize",
    "search",
    "upgrade",
]

log = logging.getLogger(__name__)

IndexLike = Index | Assistant | str | Path | None


def _target(index: str | Path | None) -> Path:
    return Path(index) if index is not None else locations.default_index_dir()


def _local(cache_dir: Path | None) -> StageFactory:
    """The embedding stage of a build in this process, with the process's shared model."""
    from .build.embed import LocalEmbedding

    def make(settings: Settings) -> LocalEmbedding:
        embedder = default_cache().embedder(settings.model, cache_dir=cache_dir)
        return LocalEmbedding(embedder, batch_size=settings.model.batch_size)

    return make


def _stage(ray: RayOptions | str | None, cache_dir: Path | None) -> StageFactory:
    if ray is None:
        return _local(cache_dir)
    from .build.ray import RayEmbedding, RayOptions

    options = RayOptions(address=ray) if isinstance(ray, str) else ray
    return RayEmbedding.factory(
        options,
        cache_dir=cache_dir,
        embedder=lambda s: default_cache().embedder(s.model, cache_dir=cache_dir),
    )


def build_index(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    index: str | Path | None = None,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    show_progress: bool | None = None,
    ray: RayOptions | str | None = None,
) -> BuildReport:
    """Build the index, or bring it up to date with the files under ``paths``.

    Incremental: new files are added, edited files re-chunked, deleted files removed,
    and only chunks no cache knows are embedded. Running it twice changes nothing.
    Documents indexed from other folders (or uploaded) are kept.

    A folder's walk leaves out hidden files and the folder's README (see
    :func:`~sourcier.ingest.loaders.discover`), and documents the user removed
    (:meth:`Assistant.remove <sourcier.assistant.Assistant.remove>`) stay out, listed in
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
        ray: embed the chunks on a Ray cluster: ``"auto"``, ``"local"``, an address, or
            :class:`~sourcier.build.ray.RayOptions` (needs ``sourcier[ray]``).

    Returns:
        The build report: files indexed, edited, unchanged, removed, skipped (with
        reasons) and kept out, chunk counts and time taken.

    Raises:
        InputError: a folder does not exist, or no supported file was found in a new index.
        IndexMismatchError: ``settings`` disagree with the existing index.
        ConfigError: ``ray`` is given but Ray is not installed or cannot be reached.
    """
    from .build.conductor import update_index
    from .build.plan import Sources
    from .build.progress import Reporter

    bundled = paths is None
    if paths is None:
        paths = locations.bundled_corpus_files()
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    return update_index(
        _target(index),
        # a bundled document the user removed stays removed
        Sources(paths=tuple(Path(p) for p in paths), readd=not bundled),
        settings=settings,
        embedding=_stage(ray, cache_dir),
        reporter=Reporter(progress, show_progress),
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
    from .build.conductor import update_index
    from .build.plan import Sources
    from .build.progress import Reporter
    from .ingest.loaders import document_from_record

    documents: list[Document] = [d for d in map(document_from_record, records) if d is not None]
    return update_index(
        Path(index),
        Sources(documents=tuple(documents)),
        settings=settings,
        embedding=_local(cache_dir),
        reporter=Reporter(show=show_progress),
    )


def optimize(*, index: str | Path | None = None) -> MergeReport:
    """Merge every segment of the index into one, dropping deleted chunks.

    Builds merge segments on their own as they go (a size-tiered policy, see
    :mod:`sourcier.storage.merge`); this is for a compact index before it is copied or
    served, and gives the fastest searches.

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexCorruptError: the index is damaged.
    """
    from .build.conductor import optimize_index

    return optimize_index(_target(index))


def upgrade(*, index: str | Path | None = None) -> bool:
    """Upgrade an index of an older format (2 or 3) to the current one, once.

    Documents, chunks and vectors are carried over; nothing is embedded again.

    Returns:
        Whether the index was upgraded (``False``: it had the current format).

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexCorruptError: the index is damaged.
    """
    from .build.upgrade import upgrade as upgrade_index

    return upgrade_index(_target(index))


def load_index(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
) -> Index:
    """Open an index (``None``: the default index, the one ``ask()`` uses).

    ``load_index().document(doc_id).text`` is the cleaned text every citation span
    refers to.

    Raises:
        IndexNotFoundError: nothing is indexed there.
        IndexMismatchError: ``settings`` name another model or chunking, or the index
            has an older format (the message says how to upgrade it).
    """
    return Index.open(_target(path), settings=settings)


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
    target = _target(index)
    if generations.index_exists(target):
        return target
    if index is not None or (target / generations.CURRENT).exists():
        # not found, or damaged (a default index with documents of the user's own is not
        # silently rebuilt from the bundled corpus): the error says how to fix it
        generations.require_index(target)
        return target
    (announce or log.warning)(
        f"No index yet: building one from the bundled corpus in {target} (about a minute) ..."
    )
    report = build_index(index=target, show_progress=show_progress)
    if on_built is not None:
        on_built(report)
    return target


def _assistant(index: IndexLike, llm: Any = None, **llm_options: Any) -> Assistant:
    """The assistant of ``index``; the default index is built first if it does not exist."""
    if isinstance(index, Assistant):
        assistant = index
    elif isinstance(index, Index):
        assistant = Assistant.open(index)
    else:
        assistant = Assistant.open(ensure_index(index))
    if llm is not None:
        assistant = assistant.with_llm(llm, **llm_options)
    return assistant


def _max_chars(index: IndexLike) -> int:
    settings = index.settings if isinstance(index, (Index, Assistant)) else Settings()
    return settings.retrieval.max_question_chars


def search(
    query: str,
    *,
    index: IndexLike = None,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    second_stage: SecondStage | str | None = None,
) -> list[Hit]:
    """The best passages for ``query``.

    Args:
        query: what to look for.
        index: an open Index or Assistant, a path, or ``None`` for the default index.
        k: how many hits (default: the index settings' ``k``).
        mode: "hybrid" (default), "dense" or "bm25".
        filters: restrict to documents: ``{"doc_ids", "sources", "date_from", "date_to"}``.
        second_stage: a scorer that re-orders the first-stage hits, or its name (see
            :mod:`sourcier.answer.second_stage`; default: the settings').

    Returns:
        Hits, best first.

    Raises:
        InputError: empty or too long query, bad ``k``, ``mode`` or filters; checked
            before the index is opened or built and before the model loads.
    """
    request = check_request(
        query, k=k, mode=mode, filters=filters, max_chars=_max_chars(index), what="query"
    )
    return _assistant(index).search_request(request, second_stage=second_stage)


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
    second_stage: SecondStage | str | None = None,
) -> Answer:
    """Answer ``question`` from the indexed documents, with citations, or refuse.

    Args:
        question: in French or English.
        index: an open Index or Assistant, a path, or ``None`` for the default index.
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
            instead (default: the index settings' ``llm.timeout``, 60).
        second_stage: a scorer that re-orders the first-stage hits, or its name.

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
    second_stage: SecondStage | str | None = None,
) -> Iterator[Event]:
    """:func:`ask`, as events: ``TextDelta`` pieces while a model writes (unverified),
    ``Notice`` lines, then the final, verified ``Answer`` (always last, always once).

    The arguments are those of :func:`ask`. The text of the deltas is what the model
    wrote; the Answer's text is what survived verification, so a display must replace
    the streamed text with it.
    """
    import time

    started = time.perf_counter()
    request = check_request(
        question, history=history, k=k, mode=mode, filters=filters, max_chars=_max_chars(index)
    )
    assistant = _assistant(index, llm, base_url=llm_base_url, timeout=llm_timeout)
    yield from assistant.run(request, second_stage=second_stage, started=started)
