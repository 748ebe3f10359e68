"""The one cache of a process: embedding models, and assistants over open indexes.

Loading e5 takes seconds and opening an index reads every segment, so both are kept
here and nowhere else: one embedder per model (shared by every index built with it,
and by the builds that write them), and one :class:`~sourcier.assistant.Assistant` per
index folder (:meth:`Cache.open`), which follows the folder's live generation (a write
by anyone switches it, and the segments it loaded are reused).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .settings import DEFAULT_MODEL, ModelSettings

if TYPE_CHECKING:
    from .embed.protocol import Embedder
    from .storage.reader import Index


class Reloadable(Protocol):
    """What the cache keeps per index folder (an assistant): its index, and a way to
    switch it to the live generation."""

    @property
    def index(self) -> Index: ...

    def reload(self) -> None: ...


T = TypeVar("T", bound=Reloadable)


class Cache:
    """Embedders by model; assistants by index folder, on its live generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedders: dict[tuple[object, ...], Embedder] = {}
        self._open: dict[str, Reloadable] = {}

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
        key = (
            model.name,
            *prefixes(model),
            folder,
            model.query_threads,
            model.device,
            model.precision,
        )
        with self._lock:
            embedder = self._embedders.get(key)
            if embedder is None:
                embedder = load_embedder(model, cache_dir=Path(folder) if folder else cache_dir)
                self._embedders[key] = embedder
            return embedder

    def open(self, path: str | Path, make: Callable[[Index], T]) -> T:
        """What ``make`` built over the index at ``path`` (an assistant), made once and
        switched to the live generation of the folder whenever a write published a new
        one (``reload()`` reuses the segments it has loaded).

        Raises:
            IndexNotFoundError: nothing is indexed there.
            IndexMismatchError: the index has an older format (the message says how to
                upgrade it).
            IndexCorruptError: the index is damaged.
        """
        from .storage.generations import require_index
        from .storage.reader import Index

        path = Path(path)
        live = require_index(path).name
        key = str(path.resolve())
        with self._lock:
            found = self._open.get(key)
        if found is None:
            made = make(Index.open(path))
            with self._lock:
                found = self._open.setdefault(key, made)
        if found.index.generation != live:
            found.reload()
        return found  # type: ignore[return-value]

    def forget(self, path: str | Path) -> None:
        """Drop the assistant of ``path`` (its folder was removed or replaced)."""
        with self._lock:
            self._open.pop(str(Path(path).resolve()), None)


_default: Cache | None = None
_default_lock = threading.Lock()


def default_cache() -> Cache:
    """The process's cache (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        return _default
