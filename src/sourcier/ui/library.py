"""The index a running app shares, with its upload folder and its write lock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..files import file_sha256
from ..messages import say_skipped
from ..settings import LLMSettings
from .render import UploadOutcome
from .uploads import (
    MAX_UPLOAD_MB,
    check_upload,
    free_name,
    remove_stale_copies,
    sanitize_filename,
    store_upload,
)

if TYPE_CHECKING:
    from ..assistant import Assistant, Event
    from ..settings import Settings
    from ..storage.reader import Index
    from ..types import Answer

log = logging.getLogger(__name__)


class Library:
    """The index a running app shares, its upload folder and its write lock.

    Questions go to the index's :class:`~sourcier.assistant.Assistant` from the
    process's cache, which follows the live generation (reloaded when another process
    published a new one); writes (upload, removal) are serialised by a thread lock here
    and by the index's own lock file across processes. A read-only library refuses
    writes.

    Args:
        index_path: the index folder.
        upload_dir: where uploads are kept (default ``<index>/uploads``).
        llm: the chat model of generative answers: a LangChain chat model, a
            ``"provider:model"`` string, or the ``llm`` settings (model, server, time-out).
        read_only: refuse uploads and removals.
    """

    def __init__(
        self,
        index_path: Path,
        upload_dir: Path | None = None,
        *,
        llm: Any = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(index_path)
        self.upload_dir = Path(upload_dir) if upload_dir else self.path / "uploads"
        self.read_only = read_only
        if not read_only:
            remove_stale_copies(self.upload_dir)
        self.llm: Any = None
        self.llm_name: str | None = None
        # seconds the model may take: the settings' when given, else the index's default
        self.timeout: float | None = llm.timeout if isinstance(llm, LLMSettings) else None
        if llm is not None:
            from ..answer.generative import model_name, resolve_llm

            self.llm = resolve_llm(llm)
            self.llm_name = model_name(self.llm)
        self._write_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._warmed = False

    def assistant(self) -> Assistant:
        """The shared assistant, on the live generation of the index."""
        from ..assistant import Assistant

        return Assistant.open(self.path)

    def index(self) -> Index:
        """The shared index, on its live generation."""
        return self.assistant().index

    @property
    def settings(self) -> Settings:
        """The settings questions are answered with (the index's)."""
        return self.index().settings

    def warm(self) -> Assistant:
        """The shared assistant with its embedding model loaded (done once, under a lock)."""
        assistant = self.assistant()
        with self._model_lock:
            if not self._warmed:  # one question opens the query encoder (ONNX) too
                assistant.warm()
                self._warmed = True
        return assistant

    def ask(self, question: str, *, generative: bool = True, **options: Any) -> Answer:
        """The final Answer of :meth:`ask_stream` (same options)."""
        from ..types import Answer as _Answer

        answer = None
        for event in self.ask_stream(question, generative=generative, **options):
            if isinstance(event, _Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self, question: str, *, generative: bool = True, **options: Any
    ) -> Iterator[Event]:
        """The shared assistant's :meth:`~sourcier.assistant.Assistant.ask_stream` (its
        options: ``history``, ``k``, ``mode``, ``filters``), with the configured chat
        model when ``generative`` (and one is configured)."""
        assistant = self.warm()
        if generative and self.llm is not None:
            assistant = assistant.with_llm(self.llm, timeout=self.timeout)
        yield from assistant.ask_stream(question, **options)

    def add_uploads(
        self,
        files: Sequence[tuple[str | Path, str]],
        *,
        progress: Callable[[str, int, int], None] | None = None,
        max_mb: float = MAX_UPLOAD_MB,
        replace: bool = False,
    ) -> list[UploadOutcome]:
        """Store uploads (``(temporary path, original name)``) and add them to the index.

        Files of another type, too large or empty are refused before being stored; files
        the core cannot read are reported with its reason and their copy is removed.
        Nothing is overwritten silently: a file whose bytes are already in the upload
        folder is reported as already there (under its name), and a different file with
        the name of one already uploaded is kept under a free name ("a (2).txt"),
        unless ``replace``, which replaces the older file and says so.

        Raises:
            InputError: the library is read-only.
        """
        self._require_write()
        outcomes: dict[Path, UploadOutcome] = {}
        refused: list[UploadOutcome] = []
        folder = self.upload_dir.resolve()
        with self._write_lock:
            stored: dict[Path, tuple[str, bytes | None, str]] = {}
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
                twin = _same_bytes(Path(src), size, folder)
                if twin is not None:
                    note = "" if twin.name == shown else f"même contenu que « {twin.name} »"
                    refused.append(UploadOutcome(shown, "unchanged", note))
                    continue
                target, note = folder / shown, ""
                if target.exists() and not replace:
                    target = folder / free_name(folder, shown)
                    note = (
                        f"un autre fichier s’appelle déjà « {shown} » : "
                        f"gardé sous « {target.name} »"
                    )
                elif target.exists():
                    note = "remplace le fichier du même nom"
                backup = target.read_bytes() if target.is_file() else None
                path = store_upload(src, target.name, folder)
                stored[path] = (target.name, backup, note)
            if not stored:
                return refused
            assistant = self.warm()
            before = {d.doc_id: Path(d.source).resolve() for d in assistant.index.documents()}
            try:
                report = assistant.add_files(list(stored), progress=progress)
            except BaseException:
                self._restore(stored, set(stored))
                raise
            docs = {Path(d.source).resolve(): d for d in assistant.index.documents()}
            skipped = {Path(s.path).resolve(): say_skipped(s, "fr") for s in report.skipped}
            replaced = {Path(p).resolve() for p in report.edited}
            indexed = {Path(p).resolve() for p in report.indexed} | replaced
            failed = set()
            give_back: list[Path] = []  # sources to point the index back at
            for path, (shown, _, note) in stored.items():
                doc = docs.get(path)
                earlier = before.get(doc.doc_id) if doc is not None else None
                if path in skipped:
                    outcomes[path] = UploadOutcome(shown, "skipped", skipped[path])
                    failed.add(path)
                elif earlier is not None and earlier != path:
                    # the same text is indexed from another file: keep that one
                    failed.add(path)
                    give_back.append(earlier)
                    outcomes[path] = UploadOutcome(
                        shown, "unchanged", f"même texte que « {earlier.name} », déjà indexé"
                    )
                elif path in indexed:
                    status = "updated" if path in replaced else "indexed"
                    n = doc.chunks if doc is not None else 0
                    detail = f"{n} passage{'s' * (n > 1)}" + (f" ; {note}" if note else "")
                    outcomes[path] = UploadOutcome(shown, status, detail)
                else:
                    outcomes[path] = UploadOutcome(shown, "unchanged", note)
            self._restore(stored, failed)
            if give_back:
                assistant.add_files([p for p in give_back if p.is_file()])
        return [*outcomes.values(), *refused]

    @staticmethod
    def _restore(stored: dict[Path, tuple[str, bytes | None, str]], paths: set[Path]) -> None:
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
        """Remove a document from the index (and its copy if it was uploaded here).

        Raises:
            InputError: the library is read-only, or no such document.
        """
        self._require_write()
        with self._write_lock:
            assistant = self.warm()
            doc = assistant.index.document(doc_id)
            report = assistant.remove(doc_id)
            source = Path(doc.source)
            folder = self.upload_dir.resolve()
            if source.is_file() and source.resolve().parent == folder:
                source.unlink(missing_ok=True)
        n = report.chunks_removed
        return f"« {doc.title} » a été retiré de l’index ({n} passage{'s' * (n > 1)})."

    def _require_write(self) -> None:
        if self.read_only:
            raise InputError(
                "this server is read-only: uploads and removals are turned off",
                code="read_only",
            )


def _same_bytes(src: Path, size: int, folder: Path) -> Path | None:
    """A file directly in ``folder`` with exactly the bytes of ``src``, if any."""
    if not folder.is_dir():
        return None
    digest: str | None = None
    for other in sorted(folder.iterdir()):
        if other.name.startswith(".") or not other.is_file() or other.stat().st_size != size:
            continue
        digest = digest or file_sha256(src)
        if file_sha256(other) == digest:
            return other
    return None
