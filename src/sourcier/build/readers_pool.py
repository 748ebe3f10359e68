"""Files read in other processes, so that reading runs beside the model's load and the
embedding instead of before them.

Parsing a file (a .docx, a PDF) and loading the embedding model are both Python work
that holds the interpreter's lock, so in one process they take turns however they are
threaded. A :class:`ReaderPool` starts plain ``python -m sourcier.build.readers_pool``
processes (no ``multiprocessing``: a user's script needs no ``__main__`` guard) and
hands each one files in turn, one JSON line per file; the answers come back in the
order the files were given, while this process loads the model and embeds
(:mod:`sourcier.build.prefetch`). A reader that dies (a crash in a parsing library)
costs the files it had: each is reported as skipped with the reason, the build goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..ingest.loaders import Limits
from ..storage.identities import FileIdentity, FileStat
from ..types import Document

COMMAND = (sys.executable, "-m", "sourcier.build.readers_pool")
"""What starts a reader process."""

Job = tuple[Path, FileStat, FileIdentity | None]
"""A file to read: its path, its stat, and what the index knew of it."""

Result = tuple[str, Document | None, FileIdentity | None]
"""What :func:`~sourcier.build.read.look` gives: the document id, the document when it
was parsed, the new identity when there is one to record."""


class ReaderPool:
    """Reader processes, each given every ``len(pool)``-th file.

    Args:
        workers: how many processes.
        limits: files larger than these are refused.
        checked_ns: the clock when the build started checking files.
    """

    def __init__(self, workers: int, *, limits: Limits, checked_ns: int) -> None:
        self.limits = limits
        self.checked_ns = checked_ns
        here = str(Path(__file__).resolve().parents[2])  # this sourcier, whatever sys.path says
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        self._procs = [
            subprocess.Popen(
                [*COMMAND],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                env=env,
            )
            for _ in range(workers)
        ]

    def read(self, jobs: Sequence[Job]) -> Iterator[Result | LoadError]:
        """Each file's result (or the :class:`LoadError` that says why it was not
        taken), in the order of ``jobs``."""
        feeders = [
            threading.Thread(target=self._feed, args=(n, jobs), daemon=True)
            for n in range(len(self._procs))
        ]
        for feeder in feeders:
            feeder.start()
        for i, _ in enumerate(jobs):
            yield self._answer(i % len(self._procs))

    def _feed(self, n: int, jobs: Sequence[Job]) -> None:
        """Write worker ``n``'s share of the jobs (on a thread: a pipe holds only so
        much, and the answers are read meanwhile)."""
        proc = self._procs[n]
        assert proc.stdin is not None
        try:
            for path, stat, known in jobs[n :: len(self._procs)]:
                job = {
                    "path": str(path),
                    "stat": asdict(stat),
                    "known": _identity_dict(known),
                    "limits": asdict(self.limits),
                    "checked_ns": self.checked_ns,
                }
                proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the worker died (its answers say so), or the pool was closed

    def _answer(self, n: int) -> Result | LoadError:
        stdout = self._procs[n].stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            return LoadError(
                "the reader process stopped (a crash in a parsing library)",
                code="reader_crashed",
            )
        return _decode(json.loads(line))

    def close(self) -> None:
        """Stop every worker (one still reading, after an error, is killed)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


def _identity_dict(identity: FileIdentity | None) -> dict[str, Any] | None:
    return asdict(identity) if identity is not None else None


def _identity(data: dict[str, Any] | None) -> FileIdentity | None:
    if data is None:
        return None
    return FileIdentity(**{**data, "stat": FileStat(**data["stat"])})


def _document(data: dict[str, Any]) -> Document:
    """A document back from JSON (its tuples came as lists)."""
    return Document(
        **{
            **data,
            "pages": tuple(data.get("pages", ())),
            "headings": tuple(tuple(h) for h in data.get("headings", ())),
            "notes": tuple(data.get("notes", ())),
        }
    )


def _decode(answer: dict[str, Any]) -> Result | LoadError:
    if answer.get("error"):
        message, code, params = answer["error"]
        return LoadError(message, code=code, **params)
    doc = _document(answer["doc"]) if answer.get("doc") else None
    return answer["doc_id"], doc, _identity(answer.get("identity"))


def _serve() -> None:
    """The worker: one JSON job per line in, one JSON answer per line out."""
    from .read import look

    for line in sys.stdin:
        job = json.loads(line)
        try:
            doc_id, doc, identity = look(
                Path(job["path"]),
                FileStat(**job["stat"]),
                _identity(job["known"]),
                Limits(**job["limits"]),
                job["checked_ns"],
            )
            answer: dict[str, Any] = {
                "doc_id": doc_id,
                "doc": asdict(doc) if doc is not None else None,
                "identity": _identity_dict(identity),
            }
        except LoadError as err:
            answer = {"error": [str(err), err.code, dict(err.params)]}
        except Exception as err:  # a reader library failed in a way nobody foresaw
            answer = {"error": [f"cannot read: {type(err).__name__}: {err}", "unreadable", {}]}
        sys.stdout.write(json.dumps(answer, ensure_ascii=True) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
