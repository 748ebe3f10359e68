"""An index opened for reading: its documents and chunks, always from one generation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexMismatchError, InputError
from ..settings import Settings
from ..types import Chunk, Document
from .snapshot import Snapshot, open_live


@dataclass(frozen=True)
class DocumentInfo:
    """What the corpus panel and ``sourcier documents`` show about one document."""

    doc_id: str
    title: str
    source: str
    date_raw: str | None
    date_iso: str | None
    language: str
    chunks: int
    chars: int


class Index:
    """An open index: its documents, chunks, dense and lexical indexes.

    Reads are served from an immutable snapshot, so searches never see a half update.
    Writes go through the build (:func:`sourcier.build_index`,
    :meth:`sourcier.assistant.Assistant.add_files`), serialised by a lock file; they
    publish a new generation atomically, and :meth:`reload` switches to it.

    Attributes:
        path: the index folder.
        settings: the index's own settings (model, chunking) with the query settings
            it was opened with.
    """

    def __init__(self, path: Path, snapshot: Snapshot, settings: Settings) -> None:
        self.path = path
        self._snapshot = snapshot
        self.settings = settings

    @classmethod
    def open(cls, path: str | Path, *, settings: Settings | None = None) -> Index:
        """Open the index at ``path``.

        Args:
            path: the index folder.
            settings: query settings; its index fields (model, chunking) must match the
                index. ``None`` takes the index's own fields with default query settings.

        Raises:
            IndexNotFoundError: nothing is indexed at ``path``.
            IndexMismatchError: ``settings`` name another model or chunking, or the
                index has an older format (the message says how to upgrade it).
            IndexCorruptError: the files are damaged.
        """
        path = Path(path)
        snapshot = open_live(path)
        return cls(path, snapshot, settings_for(snapshot.manifest, settings, path))

    @property
    def snapshot(self) -> Snapshot:
        """The generation this object reads (replaced by :meth:`reload`)."""
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._snapshot.manifest)

    @property
    def generation(self) -> str:
        """The name of the generation this object reads (``gen-000007``)."""
        return self._snapshot.generation

    def __len__(self) -> int:
        return len(self._snapshot.chunks)

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document, sorted by title."""
        snap = self._snapshot
        counts: dict[str, int] = {}
        for c in snap.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        infos = [
            DocumentInfo(
                d.doc_id,
                d.title,
                d.source,
                d.date_raw,
                d.date_iso,
                d.language,
                counts.get(d.doc_id, 0),
                len(d.text),
            )
            for d in snap.documents.values()
        ]
        return sorted(infos, key=lambda i: (i.title.lower(), i.source))

    def document(self, doc_id: str) -> Document:
        """The document with this id (its ``text`` is what every offset refers to).

        Raises:
            InputError: no such document in this index.
        """
        try:
            return self._snapshot.documents[doc_id]
        except KeyError:
            raise InputError(
                f"no document {doc_id!r} in the index at {self.path}",
                code="document_not_found",
                doc_id=doc_id,
                path=str(self.path),
            ) from None

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id."""
        try:
            return self._snapshot.by_chunk_id[chunk_id]
        except KeyError:
            raise InputError(
                f"no chunk {chunk_id!r} in the index at {self.path}",
                code="chunk_not_found",
                chunk_id=chunk_id,
                path=str(self.path),
            ) from None

    def with_settings(self, settings: Settings) -> Index:
        """This index read with other query settings (the same snapshot).

        Raises:
            IndexMismatchError: ``settings`` change the index's model or chunking.
        """
        if settings.index_fields() != self.settings.index_fields():
            raise IndexMismatchError("query settings only can change; rebuild instead")
        return Index(self.path, self._snapshot, settings)

    def reload(self) -> None:
        """Switch to the live generation on disk (after a write by anyone)."""
        snapshot = open_live(self.path, loaded=self._snapshot.segments)
        settings_for(snapshot.manifest, self.settings, self.path)
        self._snapshot = snapshot


def settings_for(manifest: dict[str, Any], settings: Settings | None, path: Path) -> Settings:
    recorded = manifest.get("settings", {})
    if settings is None:
        return Settings().with_(**recorded)
    mine = settings.index_fields()
    if recorded.get("model") != mine["model"]:
        raise IndexMismatchError(
            f"the index at {path} was built with model {recorded.get('model')!r}, "
            f"not {mine['model']!r}; use another --index or rebuild it",
            code="index_mismatch_model",
            path=str(path),
            built=str(recorded.get("model")),
            wanted=str(mine["model"]),
        )
    differing = sorted(k for k, v in mine.items() if recorded.get(k, v) != v)
    if differing:
        fields = ", ".join(f"{k}={recorded.get(k)!r}" for k in differing)
        raise IndexMismatchError(
            f"the index at {path} was built with other {', '.join(differing)} "
            f"({fields}); rebuild it to change them",
            code="index_mismatch_settings",
            path=str(path),
            fields=fields,
        )
    return settings
