"""Folder syncs that cost what changed: a file is read only when its identity changed.

Each test builds the corpus copy with the hashing embedder, changes the folder as a user
would, syncs it again, and checks the report, the index and how many files were read.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CRASH_AT
from sourcier import HASHING_MODEL, Settings, build_index, load_index, search
from sourcier.build import conductor, plan, read
from sourcier.cli.commands import main
from sourcier.messages import say_skipped
from sourcier.storage import generations, identities
from sourcier.storage.identities import IDENTITIES, FileStat
from sourcier.types import BuildReport

HASHING = Settings(model=HASHING_MODEL)
HOUR_NS = 3600 * 10**9


class Spy:
    """Counts the calls of a function it wraps."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.calls: list[object] = []
        original: Callable[..., object] = getattr(module, name)

        def spy(*args: object, **kwargs: object) -> object:
            self.calls.append(args[0])
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)


def _age(folder: Path, ns: int = HOUR_NS) -> None:
    """Date every file of ``folder`` ``ns`` in the past, as files that were not just
    written."""
    past = time.time_ns() - ns
    for f in folder.rglob("*"):
        if f.is_file():
            os.utime(f, ns=(past, past))


def _sync(corpus: Path, index: Path) -> BuildReport:
    return build_index(corpus, index=index, show_progress=False)


def _names(paths: tuple[str, ...]) -> set[str]:
    return {Path(p).name for p in paths}


@pytest.fixture
def synced(tmp_path: Path, corpus_dir: Path) -> tuple[Path, Path]:
    """The corpus copy, dated an hour ago, and its index."""
    _age(corpus_dir)
    index = tmp_path / "index"
    build_index(corpus_dir, index=index, settings=HASHING, show_progress=False)
    return corpus_dir, index


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> tuple[Spy, Spy]:
    """(files whose bytes were read, files parsed into documents) by the next builds."""
    return Spy(monkeypatch, read, "read_bytes"), Spy(monkeypatch, read, "load_document")


def test_a_sync_with_nothing_changed_reads_no_file(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    gen = generations.current_generation(index)
    report = _sync(corpus, index)
    assert reads[0].calls == [] and reads[1].calls == []
    assert not report.changed and len(report.unchanged) == 5 and report.embedded == 0
    assert generations.current_generation(index) == gen


def test_a_touched_file_is_hashed_not_parsed_and_embeds_nothing(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    gen = generations.current_generation(index)
    touched = corpus / "scs-mit-alliance-strategique.txt"
    os.utime(touched, ns=(time.time_ns() - 60 * 10**9,) * 2)
    report = _sync(corpus, index)
    assert [Path(p).name for p in reads[0].calls] == [touched.name]  # hashed
    assert reads[1].calls == []  # not parsed
    assert not report.changed and report.embedded == 0 and len(report.unchanged) == 5
    assert generations.current_generation(index) == gen  # readers have nothing to reload
    _sync(corpus, index)  # its new identity was recorded: the next sync reads nothing
    assert len(reads[0].calls) == 1


def test_a_same_size_edit_with_its_mtime_put_back_is_found(synced: tuple[Path, Path]) -> None:
    corpus, index = synced
    edited = corpus / "marseille-helsinki-partenariat-it.txt"
    before = os.stat(edited)
    text = edited.read_text(encoding="utf-8")
    assert "Helsinki" in text
    edited.write_text(text.replace("Helsinki", "Tampere!"), encoding="utf-8")  # same bytes
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(edited).st_size == before.st_size
    report = _sync(corpus, index)
    assert _names(report.edited) == {edited.name} and report.embedded > 0
    hit = search("Tampere", index=index, k=1, mode="bm25")[0]
    assert hit.source == str(edited)


def _whole_seconds(st: os.stat_result) -> FileStat:
    """The stat of a file system with whole-second times and no change time."""
    second = 10**9
    return FileStat(st.st_size, st.st_mtime_ns // second * second, 0, st.st_ino, st.st_dev)


@pytest.mark.parametrize("window_ns", [identities.RACY_WINDOW_NS, 0])
def test_a_file_edited_in_the_second_it_was_read_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window_ns: int
) -> None:
    """Git's racily-clean rule, on a file system of whole seconds: a file modified in the
    tick it was checked cannot be told apart from a later same-size edit in that tick,
    so it is read again. With no window (the control), the edit is missed."""
    monkeypatch.setattr(FileStat, "of", staticmethod(_whole_seconds))
    monkeypatch.setattr(identities, "RACY_WINDOW_NS", window_ns)
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Le pôle SCS réunit les acteurs du numérique.", encoding="utf-8")
    note = corpus / "b.txt"
    note.write_text("Le port de Marseille teste des navettes.", encoding="utf-8")
    now = time.time_ns()
    os.utime(note, ns=(now, now))
    build_index(corpus, index=index, settings=HASHING, show_progress=False)
    note.write_text("Le port de Martigues teste des navettes.", encoding="utf-8")  # same size
    os.utime(note, ns=(now, now))
    report = _sync(corpus, index)
    if window_ns:
        assert _names(report.edited) == {"b.txt"}
        assert search("Martigues", index=index, k=1, mode="bm25")[0].source == str(note)
    else:
        assert not report.changed and _names(report.unchanged) == {"a.txt", "b.txt"}


def test_a_file_just_written_is_checked_again_until_it_is_old_enough(
    tmp_path: Path, corpus_dir: Path, reads: tuple[Spy, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identities, "RACY_WINDOW_NS", 300_000_000)  # 0.3 s, to wait less
    index = tmp_path / "index"
    _age(corpus_dir, 0)  # written just now
    build_index(corpus_dir, index=index, settings=HASHING, show_progress=False)
    assert len(reads[0].calls) == len(reads[1].calls) == 5
    report = _sync(corpus_dir, index)  # checked too soon after the writes: hashed again
    assert len(reads[0].calls) == 10 and len(reads[1].calls) == 5 and not report.changed
    time.sleep(0.35)
    _sync(corpus_dir, index)  # hashed again if the last check was still too soon
    checked = len(reads[0].calls)
    _sync(corpus_dir, index)  # this check came late enough: nothing is read
    assert len(reads[0].calls) == checked and len(reads[1].calls) == 5


def test_a_renamed_file_is_found_under_its_new_name(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    chunks = len(load_index(index))
    old = corpus / "smart-port-aix-marseille-2017.txt"
    new = corpus / "port-intelligent.txt"
    old.rename(new)
    report = _sync(corpus, index)
    assert [Path(p).name for p in reads[0].calls] == [new.name]
    assert report.moved == ((str(old), str(new)),) and report.changed
    assert report.removed == report.indexed == ()
    assert new.name not in _names(report.unchanged)
    sources = {d.source for d in load_index(index).documents()}
    assert str(new) in sources and str(old) not in sources
    assert len(load_index(index)) == chunks
    report = _sync(corpus, index)
    assert not report.changed and len(reads[0].calls) == 1


def test_a_file_replaced_by_a_symbolic_link(
    synced: tuple[Path, Path], tmp_path: Path, reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    same, other = tmp_path / "same.txt", tmp_path / "other.txt"
    target = corpus / "scs-mit-alliance-strategique.txt"
    same.write_bytes(target.read_bytes())
    other.write_text("Le technopôle de Château-Gombert accueille des jeunes pousses.")
    target.unlink()
    target.symlink_to(same)  # the same bytes elsewhere: checked, nothing to write
    report = _sync(corpus, index)
    assert not report.changed and reads[1].calls == [] and len(reads[0].calls) == 1
    target.unlink()
    target.symlink_to(other)  # other bytes: the file was edited
    report = _sync(corpus, index)
    assert _names(report.edited) == {target.name} and len(reads[1].calls) == 1
    hit = search("Château-Gombert", index=index, k=1, mode="bm25")[0]
    assert hit.source == str(target)


def test_an_unreadable_file_keeps_its_chunks_and_the_report_says_why(
    synced: tuple[Path, Path],
) -> None:
    corpus, index = synced
    broken = corpus / "forum-clusters-excellence-sophia-2011.txt"
    good = broken.read_bytes()
    before = [d for d in load_index(index).documents() if d.source == str(broken)]
    broken.write_bytes(b"\x00\x01binary junk\x00" * 50)
    report = _sync(corpus, index)
    [skip] = report.skipped
    assert skip.path == str(broken) and skip.code == "binary" and skip.kept
    assert say_skipped(skip, "fr").endswith("la version indexée avant est conservée")
    assert _names(report.removed) == set() and not report.changed
    assert [d for d in load_index(index).documents() if d.source == str(broken)] == before
    result = CliRunner().invoke(main, ["index", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert f"skipped {broken}: binary file" in result.output
    assert "the version indexed before is kept" in result.output
    broken.write_bytes(good)
    report = _sync(corpus, index)
    assert report.skipped == () and not report.changed and broken.name in _names(report.unchanged)


def test_an_unreadable_folder_keeps_the_documents_read_from_it(
    synced: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, index = synced
    sub = corpus / "archives"
    sub.mkdir()
    (corpus / "scs-mit-alliance-strategique.txt").rename(sub / "scs.txt")
    _sync(corpus, index)
    scandir = os.scandir

    def denied(path: object) -> object:
        if Path(str(path)) == sub:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", denied)
    report = _sync(corpus, index)
    [skip] = report.skipped
    assert skip.path == str(sub) and skip.code == "permission_denied" and skip.kept
    assert not report.changed and report.removed == ()
    assert str(sub / "scs.txt") in {d.source for d in load_index(index).documents()}


def test_a_removed_file_is_found_from_the_stat_walk_alone(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    gone = corpus / "smart-port-aix-marseille-2017.txt"
    gone.unlink()
    report = _sync(corpus, index)
    assert reads[0].calls == []
    assert _names(report.removed) == {gone.name} and len(report.unchanged) == 4
    table = sqlite3.connect(index / IDENTITIES)
    assert str(gone) not in {s for (s,) in table.execute("SELECT source FROM files")}
    table.close()


def test_new_reading_rules_read_every_file_once_and_embed_nothing(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, index = synced
    monkeypatch.setattr(plan, "READER_VERSION", "next")
    monkeypatch.setattr(conductor, "READER_VERSION", "next")
    report = _sync(corpus, index)
    assert len(reads[1].calls) == 5 and report.embedded == 0 and not report.changed
    _sync(corpus, index)
    assert len(reads[1].calls) == 5


def test_a_damaged_file_table_costs_a_reread_only(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy]
) -> None:
    corpus, index = synced
    (index / IDENTITIES).write_bytes(b"not a database" * 100)
    report = _sync(corpus, index)
    assert len(reads[1].calls) == 5 and not report.changed and report.embedded == 0
    _sync(corpus, index)
    assert len(reads[1].calls) == 5  # the table was written anew


_SYNCER = (
    "import sys\npoint = sys.argv[3]\n"
    + CRASH_AT
    + textwrap.dedent(
        """
    from sourcier import build_index
    build_index(sys.argv[1], index=sys.argv[2], show_progress=False)
    """
    )
)


@pytest.mark.parametrize("change", ["touch", "edit"])
@pytest.mark.parametrize("point", ["before-files", "during-files"])
def test_a_sync_dying_while_it_notes_the_files_loses_nothing(
    synced: tuple[Path, Path], reads: tuple[Spy, Spy], change: str, point: str
) -> None:
    corpus, index = synced
    files = sorted(corpus.iterdir())
    for f in files:
        if change == "edit":
            f.write_text(f.read_text(encoding="utf-8") + "\nUne ligne de plus.", encoding="utf-8")
        os.utime(f, ns=(time.time_ns() - 60 * 10**9,) * 2)
    proc = subprocess.run(
        [sys.executable, "-c", _SYNCER, str(corpus), str(index), point],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stderr.decode()[-500:]
    assert len(load_index(index).documents()) == 5
    report = _sync(corpus, index)  # what the killed sync did not note is checked again
    assert report.skipped == () and report.removed == ()
    idx = load_index(index)
    assert {d.source for d in idx.documents()} == {str(f) for f in files}
    edited = ["Une ligne de plus" in idx.document(d.doc_id).text for d in idx.documents()]
    assert edited == [change == "edit"] * 5
    _sync(corpus, index)
    checked = len(reads[0].calls)
    _sync(corpus, index)
    assert len(reads[0].calls) == checked  # everything is noted now
