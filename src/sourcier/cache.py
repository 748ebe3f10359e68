"""The one cache of a process: embedding models, and assistants over open indexes.

Loading e5 takes seconds and opening an index reads every segment, so both are kept
here and nowhere else: one embedder per model (shared by every index built with it,
and by the builds that write them), one :class:`~sourcier.assistant.Assistant` per index
folder, which follows the folder's live generation (a write by anyone switches it, and
the segments it loaded are reused).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import DEFAULT_MODEL, ModelSettings

if TYPE_CHECKING:
    from .assistant import Assistant
    from .embed.protocol import Embedder


class Cache:
    """Embedders by model, assistants by index folder (and generation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedders: dict[tuple[object, ...], Embedder] = {}
        self._assistants: dict[str, Assistant] = {}

    def embedder(self, model: ModelSettings, *, cache_dir: Path | None = None) -> Embedder:
        """The embedder for ``model``, made once per process (its weights load on first
        use)."""
        from .embed.models import load_embedder, prefixes
        from .paths import default_cache_dir

        folder = None
        if model.name == DEFAULT_MODEL:
            folder = str(
                Path(cache_dir if cache_dir is not None else default_cache_dir()).resolve()
            )
        key = (model.name, *prefixes(model), folder, model.query_threads, model.device)
        with self._lock:
            embedder = self._embedders.get(key)
            if embedder is None:
                embedder = load_embedder(model, cache_dir=Path(folder) if folder else cache_dir)
                self._embedders[key] = embedder
            return embedder

    def assistant(self, path: str | Path, *, cache_dir: Path | None = None) -> Assistant:
        """The assistant of the index at ``path``, switched to its live generation.

        Raises:
            IndexNotFoundError: nothing is indexed there.
            IndexMismatchError: the index has an older format (the message says how to
                upgrade it).
            IndexCorruptError: the index is damaged.
        """
        from .assistant import Assistant
        from .storage.generations import require_index
        from .storage.reader import Index

        path = Path(path)
        live = require_index(path).name
        key = str(path.resolve())
        with self._lock:
            found = self._assistants.get(key)
        if found is None:
            index = Index.open(path)
            found = Assistant(
                index, embedder=self.embedder(index.settings.model, cache_dir=cache_dir)
            )
            with self._lock:
                found = self._assistants.setdefault(key, found)
        if found.index.generation != live:
            found.reload()
        return found

    def forget(self, path: str | Path) -> None:
        """Drop the assistant of ``path`` (its folder was removed or replaced)."""
        with self._lock:
            self._assistants.pop(str(Path(path).resolve()), None)


_default: Cache | None = None
_default_lock = threading.Lock()


def default_cache() -> Cache:
    """The process's cache (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        return _default
