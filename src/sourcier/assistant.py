"""The query pipeline of one index, owned by one object: :class:`Assistant`.

An assistant holds an open index, its embedder, and the settings that choose, by name,
the second stage (:mod:`sourcier.answer.second_stage`) and the answerer
(:mod:`sourcier.answer.answerers`), with the chat model when one is configured.
:meth:`Assistant.ask_stream` is the spine of every answer:

check the request -> parse the question once -> (rewrite a follow-up, when the answerer
can) -> embed it -> retrieve (+ second stage) -> the evidence gate -> the answerer ->
the verifier -> :class:`~sourcier.types.Answer`.

``sourcier.ask()``/``search()``, the CLI and the UI all go through it; processes share
assistants through :mod:`sourcier.cache`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import refusal, verify
from .answer.answerers import answerer_for
from .answer.filters import Filters
from .answer.protocol import Context, Draft
from .answer.request import Request, check_request
from .answer.retrieve import retrieve
from .answer.second_stage import SecondStage, second_stage_for
from .cache import default_cache
from .settings import Settings
from .storage.reader import Index
from .types import Answer, BuildReport, Hit, Notice, TextDelta

if TYPE_CHECKING:
    from .build.plan import Sources
    from .build.progress import ProgressCallback, Reporter
    from .embed.protocol import Embedder

log = logging.getLogger(__name__)

Event = TextDelta | Notice | Answer
"""What :meth:`Assistant.ask_stream` yields."""


class Assistant:
    """One index opened for questions: its embedder, second stage and answerer.

    Make one with :meth:`open` (shared through the process's cache) or from an open
    :class:`~sourcier.storage.reader.Index`. Views with other query settings or another
    chat model (:meth:`configure`, :meth:`with_llm`) share the index and the model.

    Args:
        index: the open index.
        embedder: the index's embedding model.
        chat_model: a LangChain chat model for generative answers, or ``None``.
    """

    def __init__(self, index: Index, *, embedder: Embedder, chat_model: Any = None) -> None:
        self.index = index
        self.embedder = embedder
        self.chat_model = chat_model
        self._reload_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        index: Index | str | Path | None = None,
        *,
        settings: Settings | None = None,
        llm: Any = None,
        cache_dir: Path | None = None,
    ) -> Assistant:
        """The assistant of an index (``None``: the default index).

        Args:
            index: an open Index or an index folder.
            settings: query settings (their index fields must match the index).
            llm: a LangChain chat model or a ``"provider:model"`` string for generative
                answers (default: the settings' ``llm.model``, if any); its server, time-out
                and budgets are the settings' ``llm`` group.
            cache_dir: where converted models are cached.

        Raises:
            IndexNotFoundError: nothing is indexed there.
            IndexMismatchError: ``settings`` name another model or chunking, or the
                index has an older format.
            ConfigError: ``llm`` names a provider whose package is not installed.
        """
        cache = default_cache()
        if isinstance(index, Index):
            embedder = cache.embedder(index.settings.model, cache_dir=cache_dir)
            assistant = cls(index, embedder=embedder)
        else:
            from .paths import default_index_dir

            target = Path(index) if index is not None else default_index_dir()

            def make(opened: Index) -> Assistant:
                embedder = cache.embedder(opened.settings.model, cache_dir=cache_dir)
                return cls(opened, embedder=embedder)

            assistant = cache.open(target, make)
        if settings is not None:
            assistant = assistant.configure(settings)
        llm = llm if llm is not None else assistant.settings.llm.model
        if llm is not None:
            assistant = assistant.with_llm(llm)
        return assistant

    # ----- configuration --------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.index.settings

    def configure(self, settings: Settings | None = None, /, **changes: Any) -> Assistant:
        """A view with other query settings (``k``, ``mode``, ``answer_style`` ...).

        Raises:
            ConfigError: an unknown setting or a value that cannot work.
            IndexMismatchError: the change would need another index (model, chunking).
        """
        new = (settings or self.settings).with_(**changes)
        embedder = self.embedder
        if new.model != self.settings.model:
            embedder = default_cache().embedder(new.model)
        return Assistant(
            self.index.with_settings(new), embedder=embedder, chat_model=self.chat_model
        )

    def with_llm(
        self, llm: Any, *, base_url: str | None = None, timeout: float | None = None
    ) -> Assistant:
        """A view that answers with a chat model (a LangChain chat model or a
        ``"provider:model"`` string), every sentence verified.

        Raises:
            ConfigError: the provider's package is not installed, or the string is not
                ``provider:model``.
        """
        from .answer.generative import resolve_llm

        settings = self.settings.with_(llm={"timeout": timeout}) if timeout else self.settings
        chat_model = resolve_llm(
            llm,
            base_url=base_url or settings.llm.base_url,
            timeout=settings.llm.timeout,
            max_tokens=settings.llm.answer_tokens,
        )
        index = self.index.with_settings(settings)
        return Assistant(index, embedder=self.embedder, chat_model=chat_model)

    def context(self) -> Context:
        """One generation of the index, the embedder and the settings, for one question."""
        return Context(self.index.snapshot, self.embedder, self.settings)

    def second_stage(self) -> SecondStage | None:
        """The second stage the settings name (``None`` for "none")."""
        return second_stage_for(self.settings)

    def warm(self) -> None:
        """Load the embedding model now (and the query encoder), not on the first question."""
        self.embedder.embed_queries(["Qui ?"])

    # ----- questions ------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | Mapping[str, Any] | None = None,
        second_stage: SecondStage | str | None = None,
    ) -> list[Hit]:
        """The best passages for ``query``; see :func:`sourcier.search`."""
        request = check_request(
            query,
            k=k,
            mode=mode,
            filters=filters,
            max_chars=self.settings.retrieval.max_question_chars,
            what="query",
        )
        return self.search_request(request, second_stage=second_stage)

    def search_request(
        self, request: Request, *, second_stage: SecondStage | str | None = None
    ) -> list[Hit]:
        """:meth:`search` for a request already checked."""
        assistant = self.configure(**request.changes) if request.changes else self
        settings = assistant.settings.retrieval
        return retrieve(
            assistant.context(),
            request.question,
            k=settings.k,
            mode=settings.mode,
            filters=request.filters,
            second_stage=assistant._stage(second_stage),
        )

    def ask(self, question: str, **options: Any) -> Answer:
        """The final answer of :meth:`ask_stream` (same options)."""
        answer: Answer | None = None
        for event in self.ask_stream(question, **options):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        *,
        history: Sequence[Any] | None = None,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | Mapping[str, Any] | None = None,
        answerer: str | None = None,
        second_stage: SecondStage | str | None = None,
    ) -> Iterator[Event]:
        """Answer ``question``: ``TextDelta`` pieces while a model writes (unverified),
        ``Notice`` lines, then the final, verified ``Answer`` (always last, always once).

        Args:
            question: in French or English.
            history: earlier turns (see :func:`sourcier.ask`).
            k / mode / filters: as for :func:`sourcier.ask`.
            answerer: an answerer by name for this question ("extractive" skips the
                chat model).
            second_stage: a second stage (or its name) for this question.

        Raises:
            InputError: empty or too long question, bad filters or history.
        """
        started = time.perf_counter()
        request = check_request(
            question,
            history=history,
            k=k,
            mode=mode,
            filters=filters,
            max_chars=self.settings.retrieval.max_question_chars,
            answerer=answerer,
        )
        yield from self.run(request, second_stage=second_stage, started=started)

    def run(
        self,
        request: Request,
        *,
        second_stage: SecondStage | str | None = None,
        started: float | None = None,
    ) -> Iterator[Event]:
        """:meth:`ask_stream` for a request already checked."""
        t0 = started if started is not None else time.perf_counter()
        assistant = self.configure(**request.changes) if request.changes else self
        context = assistant.context()
        settings = context.settings
        answerer = answerer_for(settings, assistant.chat_model, request.answerer)
        question = request.question
        timings: dict[str, float] = {}
        if settings.answer.follow_up_query == "llm" and question.follow_up and question.has_history:
            t = time.perf_counter()
            rewritten = answerer.rewrite(question)
            if rewritten is not None:
                timings["condense"] = _ms(t)
                question = rewritten
        t = time.perf_counter()
        qvec = context.embedder.embed_queries([question.query])[0]
        timings["embed_query"] = _ms(t)
        hits = retrieve(
            context,
            question,
            k=settings.retrieval.k,
            mode=settings.retrieval.mode,
            filters=request.filters,
            timings=timings,
            query_vector=qvec,
            second_stage=assistant._stage(second_stage),
        )
        t = time.perf_counter()
        snap = context.snapshot
        evidence = refusal.assess(question, hits, snap, qvec, settings.answer)
        if evidence.refused:
            draft = Draft(evidence.message, refused=True, mode=answerer.mode)
        else:
            draft = Draft("")
            for piece in answerer.stream(question, hits, evidence, context):
                if isinstance(piece, Draft):
                    draft = piece
                else:
                    yield TextDelta(piece)
        verify.check_spans(draft.citations, snap.documents, marked=draft.marked)
        if draft.notice:
            yield Notice(draft.notice)
        timings.update(draft.timings_ms)
        timings["answer"] = _ms(t)
        timings["total"] = _ms(t0)
        log.debug(
            "ask %r: support %.3f, refused %s", question.text, evidence.support, draft.refused
        )
        yield Answer(
            question=question.text,
            answer=draft.text,
            refused=draft.refused,
            language=question.language,
            citations=draft.citations,
            hits=tuple(hits),
            timings_ms=timings,
            retrieval_query=question.query,
            support=evidence.support,
            mode=draft.mode,
            model=draft.model,
            sentences=draft.sentences,
            notice=draft.notice,
            reason=evidence.reason if evidence.refused else ("model" if draft.refused else None),
            usage=draft.usage,
            see_also=draft.see_also,
            marked=draft.marked,
        )

    def _stage(self, given: SecondStage | str | None) -> SecondStage | None:
        if given is None:
            return self.second_stage()
        if isinstance(given, str):
            return second_stage_for(self.settings.with_(second_stage=given))
        return given

    # ----- writing --------------------------------------------------------------

    def add_files(
        self,
        paths: Sequence[str | Path],
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> BuildReport:
        """Add or update single files without removing anything else, then switch to the
        new generation. A file the user removed earlier (:meth:`remove`) is added back."""
        from .build.plan import Sources
        from .build.progress import Reporter

        sources = Sources(paths=tuple(Path(p) for p in paths), sync=False)
        return self._write(sources, Reporter(progress, show_progress))

    def remove(self, doc_id: str) -> BuildReport:
        """Remove one document (by id) from the index, for good.

        The removal sticks: a later build of the folder it came from leaves the file
        out and lists it in :attr:`BuildReport.kept_out`, until the file is named
        again (``sourcier index FILE``, :meth:`add_files`). The list of removed
        sources lives in the generation's manifest, so it is written as atomically
        as the rest of the index.

        Raises:
            InputError: no such document in this index.
        """
        from .build.plan import Sources
        from .build.progress import Reporter

        self.index.document(doc_id)  # raises InputError if unknown
        return self._write(Sources(remove_ids=frozenset({doc_id})), Reporter())

    def _write(self, sources: Sources, reporter: Reporter) -> BuildReport:
        """One build on this index with its model (the build is imported only to write)."""
        from .build.conductor import update_index
        from .build.embed import LocalEmbedding

        report = update_index(
            self.index.path,
            sources,
            settings=self.settings,
            embedding=lambda s: LocalEmbedding(self.embedder, batch_size=s.model.batch_size),
            reporter=reporter,
        )
        self.reload()
        return report

    def reload(self) -> None:
        """Switch to the live generation on disk (after a write by anyone)."""
        with self._reload_lock:
            self.index.reload()


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000.0
