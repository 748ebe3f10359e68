"""The one open Index a running app shares, with its upload folder and its write lock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .render import UploadOutcome
from .uploads import MAX_UPLOAD_MB, check_upload, sanitize_filename, store_upload

if TYPE_CHECKING:
    from ..index import Index
    from ..types import Answer

log = logging.getLogger(__name__)


class Library:
    """The one open Index a running app shares, its upload folder and its write lock.

    Reads use the current snapshot (reloaded when another process published a new
    generation); writes (upload, removal) are serialised by a thread lock here and by
    the index's own lock file across processes.
    """

    def __init__(
        self,
        index_path: Path,
        upload_dir: Path | None = None,
        *,
        llm: Any = None,
        llm_base_url: str | None = None,
        llm_timeout: float | None = None,
    ) -> None:
        self.path = Path(index_path)
        self.upload_dir = Path(upload_dir) if upload_dir else self.path / "uploads"
        self.llm: Any = None
        self.llm_name: str | None = None
        self.llm_timeout = llm_timeout
        if llm is not None:
            from ..generative import model_name, resolve_llm

            self.llm = resolve_llm(llm, base_url=llm_base_url, timeout=llm_timeout)
            self.llm_name = model_name(self.llm)
        self._write_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._index: Index | None = None
        self._generation: str | None = None

    def index(self) -> Index:
        """The shared Index, switched to the live generation if it changed on disk."""
        from ..api import load_index
        from ..store import current_generation

        gen = current_generation(self.path)
        with self._load_lock:
            if self._index is None:
                self._index = load_index(self.path)
                self._generation = gen.name if gen else None
            elif gen is not None and gen.name != self._generation:
                self._index.reload()
                self._generation = gen.name
            return self._index

    def warm(self) -> Index:
        """The shared Index with its embedding model loaded (done once, under a lock)."""
        idx = self.index()
        with self._model_lock:
            _ = idx.embedder
        return idx

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Any] | None = None,
        filters: dict[str, Any] | None = None,
        generative: bool = True,
    ) -> Answer:
        """The final Answer of :meth:`ask_stream`."""
        from ..types import Answer as _Answer

        answer = None
        for event in self.ask_stream(
            question, k=k, mode=mode, history=history, filters=filters, generative=generative
        ):
            if isinstance(event, _Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Any] | None = None,
        filters: dict[str, Any] | None = None,
        generative: bool = True,
    ) -> Iterator[Any]:
        """``api.ask_stream`` on the shared index, with the configured model when
        ``generative`` (and one is configured)."""
        from ..api import ask_stream

        idx = self.warm() if mode != "bm25" else self.index()
        llm = self.llm if generative else None
        yield from ask_stream(
            question,
            index=idx,
            k=k,
            mode=mode,
            history=history,
            filters=filters,
            llm=llm,
            llm_timeout=self.llm_timeout,
        )

    def add_uploads(
        self,
        files: Sequence[tuple[str | Path, str]],
        *,
        progress: Callable[[str, int, int], None] | None = None,
        max_mb: float = MAX_UPLOAD_MB,
    ) -> list[UploadOutcome]:
        """Store uploads (``(temporary path, original name)``) and add them to the index.

        Files of another type, too large or empty are refused before being stored; files
        the core cannot read are reported with its reason and their copy is removed.
        """
        outcomes: dict[Path, UploadOutcome] = {}
        refused: list[UploadOutcome] = []
        with self._write_lock:
            stored: dict[Path, tuple[str, bytes | None]] = {}
            for src, name in files:
                shown = sanitize_filename(name)
                try:
                    size = Path(src).stat().st_size
                except OSError:
                    refused.append(UploadOutcome(shown, "skipped", "fichier illisible"))
                    continue
                problem = check_upload(name, size, max_mb=max_mb)
                if problem:
                    refused.append(UploadOutcome(shown, "skipped", problem))
                    continue
                target = self.upload_dir.resolve() / shown
                backup = target.read_bytes() if target.is_file() else None
                path = store_upload(src, name, self.upload_dir)
                stored[path] = (shown, backup)
            if not stored:
                return refused
            idx = self.warm()
            try:
                report = idx.add_files(list(stored), progress=progress)
            except BaseException:
                self._restore(stored, set(stored))
                raise
            self._generation = None  # re-read the generation name on next use
            chunks = {Path(d.source).resolve(): d.chunks for d in idx.documents()}
            skipped = {Path(s.path).resolve(): s.reason for s in report.skipped}
            indexed = {Path(p).resolve() for p in report.indexed}
            removed = {Path(p).resolve() for p in report.removed}
            failed = set()
            for path, (shown, _) in stored.items():
                if path in skipped:
                    outcomes[path] = UploadOutcome(shown, "skipped", skipped[path])
                    failed.add(path)
                elif path in indexed:
                    status = "updated" if path in removed else "indexed"
                    n = chunks.get(path, 0)
                    outcomes[path] = UploadOutcome(shown, status, f"{n} passage{'s' * (n > 1)}")
                else:
                    outcomes[path] = UploadOutcome(shown, "unchanged")
            self._restore(stored, failed)
        return [*outcomes.values(), *refused]

    @staticmethod
    def _restore(stored: dict[Path, tuple[str, bytes | None]], paths: set[Path]) -> None:
        """Put back (or delete) the stored copies of files that did not make it in."""
        for path in paths:
            backup = stored[path][1]
            try:
                if backup is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(backup)
            except OSError as err:  # pragma: no cover - best effort
                log.warning("could not restore %s: %s", path, err)

    def remove(self, doc_id: str) -> str:
        """Remove a document from the index (and its copy if it was uploaded here)."""
        with self._write_lock:
            idx = self.warm()
            doc = idx.document(doc_id)
            report = idx.remove(doc_id)
            self._generation = None
            source = Path(doc.source)
            folder = self.upload_dir.resolve()
            if source.is_file() and source.resolve().parent == folder:
                source.unlink(missing_ok=True)
        n = report.chunks_removed
        return f"« {doc.title} » a été retiré de l’index ({n} passage{'s' * (n > 1)})."
