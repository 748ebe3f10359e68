"""Embedding while the read stage reads: a build's wall time near the larger of the two.

Reading files (parsing a PDF or a .docx, cleaning, dating) and embedding passages use
the machine differently: reading is Python on one core, embedding is torch on all of
them, and the model takes seconds to load. So while the read stage reads, a
:class:`Prefetch` thread loads the model, chunks each new document the read stage hands
it (:meth:`Prefetch.offer`) and embeds its passages, a few batches at a time sorted by
length, into the build's embedding cache (:mod:`sourcier.build.vector_cache`). When
reading is done the thread stops after the batch it is on (:meth:`Prefetch.finish`),
and the build goes on as without it: the chunk stage takes the passages the thread
made, and the embed stage (:func:`~sourcier.build.embed.vectors_for`, with its progress
bar) finds their vectors in the cache and embeds only the rest.

Only documents the live index does not hold are offered (a moved or unchanged one needs
no new vector); the vectors are the same ones the embed stage would compute. A stage
that embeds elsewhere (``in_process = False``: Ray) only gets the chunking done ahead.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..settings import Settings
from ..types import Document
from .chunk import Passage, chunk_documents
from .embed import EmbeddingStage
from .vector_cache import EmbeddingCache, open_cache

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _one_core_for_reading() -> Iterator[None]:
    """torch (when the stage uses it) leaves a core to the reading thread meanwhile."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 1
    if threads < 2:
        yield
        return
    from ..embed.transformer import torch_threads

    with torch_threads(threads - 1):
        yield


WINDOW_BATCHES = 4
"""Passages are sorted by length within windows of this many batches (less padding),
then embedded one batch at a time, so that :meth:`Prefetch.finish` waits one batch."""


class Prefetch:
    """A thread that embeds new documents' passages while the read stage reads on.

    Args:
        path: the index folder (its embedding cache gets the vectors).
        settings: the build's settings (chunking, batch size).
        make: makes the build's embedding stage, in the thread (loading its model).
        live: the ids of the live documents (never offered); ``None``: nothing is
            prefetched (the live documents are not known before reading).
    """

    def __init__(
        self,
        path: Path,
        settings: Settings,
        make: Callable[[], EmbeddingStage],
        live: set[str] | None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.make = make
        self.live = live
        self.passages: dict[str, list[Passage]] = {}
        self.embedded = 0
        self._queue: queue.Queue[Document | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stage: EmbeddingStage | None = None  # made by the thread, for the build
        self._error: BaseException | None = None

    def offer(self, doc: Document) -> None:
        """Hand over a document the read stage read (the thread starts on the first)."""
        if self.live is None or doc.doc_id in self.live:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sourcier-prefetch")
            self._thread.start()
        self._queue.put(doc)

    def finish(self) -> None:
        """Stop after the batch in hand and wait for the thread; :attr:`stage` is then
        the stage it made (``None`` when nothing was offered).

        Raises:
            The error that stopped the thread (a model that cannot load ...).
        """
        self.close()
        if self._error is not None:
            raise self._error
        if self._thread is not None:
            log.info("embedded %d passages while reading", self.embedded)

    def close(self) -> None:
        """Stop the thread after the batch in hand and wait for it (never raises: for a
        build that failed already)."""
        if self._thread is None:
            return
        self._stop.set()
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        cache: EmbeddingCache | None = None
        try:
            stage = self.stage = self.make()
            cache = open_cache(self.path, stage.model_id, stage.dim)  # dim: the model loads
            with _one_core_for_reading():
                self._loop(stage, cache)
        except BaseException as err:  # handed to the build by finish()
            self._error = err
        finally:
            if cache is not None:
                cache.close()

    def _loop(self, stage: EmbeddingStage, cache: EmbeddingCache) -> None:
        """Chunk and embed what is offered, until told to stop."""
        window: list[Passage] = []
        size = WINDOW_BATCHES * self.settings.model.batch_size
        while not self._stop.is_set():
            doc = self._queue.get()
            if doc is None:
                break
            made = chunk_documents([doc], self.settings, stage.count_tokens)
            self.passages[doc.doc_id] = made
            if getattr(stage, "in_process", True):
                window.extend(made)
            if len(window) >= size:
                self._embed(window, stage, cache)
                window = []

    def _embed(
        self, window: Sequence[Passage], stage: EmbeddingStage, cache: EmbeddingCache
    ) -> None:
        """Embed a window's passages not cached yet, shortest first, one batch at a time
        (stopping between batches when asked)."""
        keys = {cache.key(p.text): p for p in window}
        cached = cache.get_many(list(keys))
        todo = sorted(
            (k for k in keys if k not in cached), key=lambda k: stage.count_tokens(keys[k].text)
        )
        step = self.settings.model.batch_size
        for start in range(0, len(todo), step):
            if self._stop.is_set():
                return
            part = todo[start : start + step]
            texts = [keys[k].text for k in part]
            spans = [keys[k].spans_in_text for k in part]
            for batch in stage.embed(texts, spans, tick=lambda n: None):
                rows = [
                    (part[int(i)], v, s)
                    for i, v, s in zip(batch.positions, batch.vectors, batch.sentences, strict=True)
                ]
                cache.put_many(rows)
                self.embedded += len(rows)
