"""Named implementations of an extension point, imported on first use.

Each extension point keeps one :class:`Registry`: the file readers
(:data:`sourcier.ingest.readers.READERS`), the embedding models
(:data:`sourcier.embed.models.EMBEDDERS`), the vector stores
(:data:`sourcier.storage.vectors.VECTOR_STORES`), the second stages
(:data:`sourcier.answer.second_stage.SECOND_STAGES`) and the answerers
(:data:`sourcier.answer.answerers.ANSWERERS`). An entry is the object itself or, so
that nothing heavy is imported before it is used, its ``"module:attribute"`` path.
Adding an implementation is one module plus one line: its entry in the table, or
``REGISTRY.register("name", obj)`` from code of your own.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Implementations of one kind, by name.

    Args:
        kind: what they are, as an error names them ("second stage").
        entries: name -> the object or its ``"module:attribute"`` path.
    """

    def __init__(self, kind: str, entries: Mapping[str, T | str]) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = dict(entries)
        self._lock = threading.Lock()

    def register(self, name: str, obj: T | str) -> None:
        """Add (or replace) an implementation."""
        with self._lock:
            self._entries[name] = obj

    def unregister(self, name: str) -> None:
        """Remove an implementation (tests that registered one clean up with it)."""
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The implementation named ``name``, imported on first use.

        Raises:
            ConfigError: no implementation has this name (the known names are listed).
        """
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(
                f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})",
                code="registry_unknown",
                kind=self.kind,
                name=name,
                known=", ".join(self.names()),
            )
        if isinstance(entry, str) and ":" in entry:
            module, _, attribute = entry.partition(":")
            value: T = getattr(importlib.import_module(module), attribute)
            with self._lock:
                self._entries[name] = value
            return value
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        with self._lock:
            return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
