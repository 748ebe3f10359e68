"""What each indexed file looked like when it was read, so a sync reads only what changed.

An index keeps a table of the files its documents were read from (``files.sqlite`` in
the index folder): per source, its size, modification and change times in ns, inode
and device, the SHA-256 of its bytes, the document it gave, and when it was checked. A
folder sync stats every file and reads only those whose identity changed; a changed
file whose bytes hash the same is not parsed again.

The table is a hint that is checked, not a part of a generation: a row counts only when
the document it names is the live document of its source. So a build killed before or
after the table's update (one SQLite transaction) costs at most a re-read of the files
it touched, and recording that a file was only touched publishes no generation (open
readers do not reload). Only writers, under the writer lock, read or write it.

The table also records the version of reading it was made with
(:data:`sourcier.ingest.loaders.READER_VERSION`): when a new sourcier reads files into
other text, the first sync reads every file again.

A file modified within :data:`RACY_WINDOW_NS` before it was checked is *racily clean*
(git's word): another write in the same timestamp tick would leave its identity as it
was, so it is read again at the next sync, until it is old enough.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IDENTITIES = "files.sqlite"

RACY_WINDOW_NS = 2_000_000_000
"""The coarsest timestamp tick a file system may have (FAT: 2 s; ext4 and others write
the kernel's coarse clock, a few ms)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, device INTEGER NOT NULL,
    sha256 TEXT NOT NULL, doc_id TEXT NOT NULL, checked_ns INTEGER NOT NULL
)""",
)


@dataclass(frozen=True)
class FileStat:
    """What a stat of a file says about its identity. The change time moves with a
    chmod, a rename or a write that puts the modification time back, so these count
    too (inode and device are 0 where the OS has none)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


@dataclass(frozen=True)
class FileIdentity:
    """A file as it was when its document was read (or last checked).

    Attributes:
        source: the document's source (the file's path as indexed).
        stat: its size, times, inode and device then.
        sha256: the SHA-256 of its bytes.
        doc_id: the document it gave.
        checked_ns: the wall clock when it was checked, taken before it was read.
    """

    source: str
    stat: FileStat
    sha256: str
    doc_id: str
    checked_ns: int

    def unchanged(self, stat: FileStat) -> bool:
        """Whether a file with this stat is, for sure, the one checked: same identity, and
        not modified so close to the check that a later write could hide in its tick."""
        return stat == self.stat and self.stat.mtime_ns + RACY_WINDOW_NS <= self.checked_ns


def read_identities(index: Path, *, version: str) -> dict[str, FileIdentity]:
    """The file identities recorded for the index at ``index``, if read with this
    ``version`` of reading (none for an older index, another version or a damaged
    table: each costs a re-read of the files, nothing else)."""
    path = index / IDENTITIES
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(path)  # read-write: a hot journal of a killed writer rolls back
        try:
            if _version(db) != version:
                return {}
            rows = db.execute(
                "SELECT source, size, mtime_ns, ctime_ns, inode, device, sha256, doc_id,"
                " checked_ns FROM files"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as err:
        log.warning("the file table %s cannot be read (%s); every file is read again", path, err)
        return {}
    return {r[0]: FileIdentity(r[0], FileStat(*r[1:6]), r[6], r[7], r[8]) for r in rows}


def record_identities(
    index: Path,
    changed: Iterable[FileIdentity],
    removed: Iterable[str],
    *,
    version: str,
    fresh: bool = False,
) -> None:
    """Record, in one transaction, the ``changed`` files' identities and drop the
    ``removed`` sources. ``fresh`` (a build from scratch) or another ``version`` of
    reading in the table first empties it. A damaged table is replaced."""
    path, changed, removed = index / IDENTITIES, tuple(changed), tuple(removed)
    try:
        _record(path, changed, removed, version=version, fresh=fresh)
    except sqlite3.DatabaseError as err:
        log.warning("the file table %s is damaged (%s); writing it anew", path, err)
        path.unlink(missing_ok=True)
        _record(path, changed, removed, version=version, fresh=True)


def _record(
    path: Path,
    changed: Iterable[FileIdentity],
    removed: Iterable[str],
    *,
    version: str,
    fresh: bool,
) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            for statement in _SCHEMA:
                db.execute(statement)
            if fresh or _version(db) != version:
                db.execute("DELETE FROM files")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('reader', ?)", (version,))
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_row(i) for i in changed),
            )
            db.executemany("DELETE FROM files WHERE source = ?", ((s,) for s in removed))
    finally:
        db.close()


def _row(i: FileIdentity) -> tuple[str | int, ...]:
    st = i.stat
    return (
        i.source, st.size, st.mtime_ns, st.ctime_ns, st.inode, st.device,
        i.sha256, i.doc_id, i.checked_ns,
    )  # fmt: skip


def _version(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'reader'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet
        return None
    return None if row is None else str(row[0])
