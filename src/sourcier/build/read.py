"""The read stage of a build: files (and ready-made documents) -> documents.

A file the user removed stays out (``kept_out``) unless it is named again; a file that
cannot be read is skipped with its reason; a second file with the text of one already
read is skipped as a duplicate.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LoadError
from ..ingest.loaders import discover, load_document
from ..settings import Settings
from ..types import Document, Skipped
from .plan import Reading, Sources
from .progress import Reporter


def read(sources: Sources, excluded: set[str], settings: Settings, reporter: Reporter) -> Reading:
    """Read what ``sources`` names, leaving out the ``excluded`` sources.

    Raises:
        InputError: a given path does not exist.
    """
    files, found_skipped = discover(sources.paths) if sources.paths else ([], [])
    skipped = list(found_skipped)
    named = (
        {os.path.abspath(Path(p).expanduser()) for p in sources.paths} if sources.readd else set()
    )
    kept_out = [str(f) for f in files if str(f) in excluded and str(f) not in named]
    files = [f for f in files if str(f) not in excluded or str(f) in named]
    fresh: dict[str, Document] = {}
    by_source: dict[str, str] = {}
    max_bytes = int(settings.index.max_file_mb * 1024 * 1024)
    with reporter.stage("read", len(files), desc="Reading", unit="file") as tick:
        for file in files:
            try:
                doc = load_document(file, max_bytes=max_bytes)
            except LoadError as err:
                skipped.append(Skipped(str(file), str(err), err.code, dict(err.params)))
                continue
            finally:
                tick(1)
            _accept(doc, fresh, by_source, skipped)
    for doc in sources.documents:
        if doc.source in excluded:
            kept_out.append(doc.source)
        else:
            _accept(doc, fresh, by_source, skipped)
    return Reading(fresh, by_source, tuple(skipped), tuple(kept_out))


def _accept(
    doc: Document, fresh: dict[str, Document], by_source: dict[str, str], skipped: list[Skipped]
) -> None:
    if doc.doc_id in fresh:
        other = fresh[doc.doc_id].source
        skipped.append(
            Skipped(doc.source, f"same content as {other}", "duplicate", {"other": other})
        )
        return
    fresh[doc.doc_id] = doc
    by_source[doc.source] = doc.doc_id
