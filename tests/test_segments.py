"""The segmented index: updates write only what changed, segments rank as one, merges
lose nothing, and older formats are still read."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CRASH_AT, WARM_UP, kill_during, time_work, unshared_sentences
from sourcier import (
    HASHING_MODEL,
    Assistant,
    Document,
    Settings,
    ask,
    build_index,
    load_index,
    search,
)
from sourcier.build.conductor import optimize_index, update_index
from sourcier.build.plan import Sources
from sourcier.build.progress import Reporter
from sourcier.cli.commands import main
from sourcier.errors import IndexMismatchError
from sourcier.ingest.chunking import sentence_spans
from sourcier.storage import generations
from sourcier.storage import snapshot as snapshots
from sourcier.storage.merge import MergePolicy, optimize_plan, plan, run_merges
from sourcier.storage.segment import VERSION as SEGMENT_VERSION
from sourcier.storage.segment import Segment, quantize
from sourcier.storage.sentences import SentenceVectors

HASHING = Settings(model=HASHING_MODEL)
ROOT = Path(__file__).resolve().parents[1]


def _piaf_documents() -> list[Document]:
    docs = []
    for line in (ROOT / "eval" / "piaf-sample" / "corpus.jsonl").read_text().splitlines():
        r = json.loads(line)
        docs.append(
            Document(
                doc_id=hashlib.sha256(r["text"].encode()).hexdigest(),
                source=f"record:{r['id']}",
                title=r["title"],
                text=r["text"],
                language="fr",
            )
        )
    return sorted(docs, key=lambda d: d.source)


def _questions(n: int) -> list[str]:
    lines = (ROOT / "eval" / "piaf-sample" / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines[:n]]


def _ranking(index: Path, questions: list[str], mode: str) -> list[list[tuple[str, float]]]:
    idx = Assistant.open(index).configure(mode=mode)
    return [
        [(h.chunk.chunk_id, round(h.score, 6)) for h in search(q, index=idx, k=10)]
        for q in questions
    ]


def _segment_names(index: Path) -> list[str]:
    return [p.name for p in generations.live_segments(index)]


def test_one_segment_and_many_rank_identically(tmp_path: Path) -> None:
    """BM25 uses the statistics of all live chunks, not per segment: 1 segment, 5
    segments, 5 segments plus a tombstoned one, and the optimized index all rank alike."""
    docs = _piaf_documents()
    # the extra batch sorts last, so that one segment holds the chunks in the same order
    extra = [dataclasses.replace(d, source=f"record:zz-{d.source}") for d in docs[:12]]
    docs = docs[12:]
    one, plus, many = tmp_path / "one", tmp_path / "plus", tmp_path / "many"
    update_index(one, Sources(documents=tuple(docs)), settings=HASHING, merge=None)
    update_index(plus, Sources(documents=tuple(docs + extra[-1:])), settings=HASHING, merge=None)
    for i in range(0, len(docs), 20):
        update_index(
            many,
            Sources(documents=tuple(docs[i : i + 20]), sync=False),
            settings=HASHING,
            merge=None,
        )
    assert len(_segment_names(one)) == 1 and len(_segment_names(many)) == 5
    questions = _questions(60)
    modes = ("bm25", "dense", "hybrid")
    expected = {m: _ranking(one, questions, m) for m in modes}
    assert sum(len(r) for r in expected["bm25"]) > 5 * len(questions)  # real rankings
    for mode in modes:
        assert _ranking(many, questions, mode) == expected[mode], mode

    # a sixth segment with 11 of its 12 documents deleted ranks as if they never were
    update_index(many, Sources(documents=tuple(extra), sync=False), settings=HASHING, merge=None)
    update_index(
        many,
        Sources(remove_ids=frozenset(d.doc_id for d in extra[:-1])),
        settings=HASHING,
        merge=None,
    )
    entries = load_index(many).manifest["segments"]
    assert len(entries) == 6 and len(entries[-1]["deleted"]) == 11
    expected = {m: _ranking(plus, questions, m) for m in modes}
    for mode in modes:
        assert _ranking(many, questions, mode) == expected[mode], mode

    report = optimize_index(many)
    assert (report.segments_before, report.segments_after) == (6, 1)
    assert report.chunks_written == len(load_index(plus))
    assert not load_index(many).manifest["segments"][0]["deleted"]
    for mode in modes:
        assert _ranking(many, questions, mode) == expected[mode], mode


def test_adding_and_removing_one_document_writes_only_what_changed(
    hashing_index: Path, corpus_dir: Path
) -> None:
    (before,) = generations.live_segments(hashing_index)
    stamp = {p: p.stat().st_mtime_ns for p in before.rglob("*") if p.is_file()}
    new = corpus_dir / "toulon.md"
    new.write_text("# Toulon\n\nLe port de Toulon accueille un pôle naval innovant.\n")
    idx = Assistant.open(hashing_index)
    report = idx.add_files([new])
    assert report.indexed == (str(new),) and report.embedded == report.chunks_added == 1
    segments = generations.live_segments(hashing_index)
    assert segments[0] == before and len(segments) == 2
    assert {p: p.stat().st_mtime_ns for p in before.rglob("*") if p.is_file()} == stamp
    assert search("port de Toulon naval", index=idx, k=1)[0].source == str(new)

    doc = next(
        d for d in idx.index.documents() if d.source.endswith("smart-port-aix-marseille-2017.txt")
    )
    report = idx.remove(doc.doc_id)
    assert report.chunks_removed == doc.chunks and report.embedded == 0
    entry = next(e for e in idx.index.manifest["segments"] if e["name"] == before.name)
    assert entry["deleted"] == [doc.doc_id] and entry["deleted_chunks"] == doc.chunks
    assert {p: p.stat().st_mtime_ns for p in before.rglob("*") if p.is_file()} == stamp
    assert doc.doc_id not in {d.doc_id for d in idx.index.documents()}
    assert all(h.chunk.doc_id != doc.doc_id for h in search("smart port", index=idx, k=20))
    assert (
        idx.index.manifest["chunks"]
        == len(idx.index)
        == len(idx.index.snapshot.dense)
        == len(idx.index.snapshot.bm25)
    )


def test_an_edited_file_gets_a_new_segment_and_its_old_copy_a_tombstone(
    hashing_index: Path, corpus_dir: Path
) -> None:
    target = corpus_dir / "smart-port-aix-marseille-2017.txt"
    old_doc = next(d for d in load_index(hashing_index).documents() if d.source == str(target))
    target.write_text(target.read_text() + "\nUne phrase ajoutée sur Fos-sur-Mer.\n")
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert report.edited == (str(target),) and not report.removed
    idx = load_index(hashing_index)
    assert len(idx.documents()) == 5
    assert [d for d in idx.documents() if d.source == str(target)][0].doc_id != old_doc.doc_id
    first = idx.manifest["segments"][0]
    assert first["deleted"] == [old_doc.doc_id]
    hit = search("phrase ajoutée Fos-sur-Mer", index=idx, k=1)[0]
    assert hit.source == str(target) and "ajoutée" in idx.document(hit.chunk.doc_id).text

    # a moved file keeps its content: it is rewritten under its new name, nothing embedded
    moved = corpus_dir / "port.txt"
    target.rename(moved)
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    idx = load_index(hashing_index)
    assert {d.source for d in idx.documents()} >= {str(moved)}
    assert str(target) not in {d.source for d in idx.documents()}
    assert len(idx.documents()) == 5


def test_the_size_tiered_policy() -> None:
    policy = MergePolicy(factor=4, floor=100, spread=1.5, expunge=0.3)

    def entry(name: str, chunks: int, dead: int = 0) -> dict:
        return {"name": name, "chunks": chunks, "deleted_chunks": dead, "deleted": []}

    small = [entry(f"s{i}", 10 + i) for i in range(6)]
    assert plan(small, policy) == [["s0", "s1", "s2", "s3"]]  # the oldest four of a class
    mixed = [entry("big", 500), *small[:3], entry("mid", 150)]
    assert plan(mixed, policy) == []  # no class holds four
    # a build's size cap: 99,999 and 100,000 live chunks are one class, not two tiers
    capped = [entry(f"c{i}", 100_000 - (i % 2)) for i in range(4)]
    assert plan(capped, policy) == [["c0", "c1", "c2", "c3"]]
    # sizes that grow by more than the spread are not merged together
    assert plan([entry(f"g{i}", 200 * 2**i) for i in range(5)], policy) == []
    assert plan([entry("a", 500, dead=200), *small[:2]], policy) == [["a"]]  # 40% deleted
    # no merge writes more than max_chunks: a merge holds its segments in memory
    capped_policy = MergePolicy(factor=4, floor=100, max_chunks=350_000)
    assert plan(capped, capped_policy) == []
    runs = optimize_plan([entry("x", 200), entry("y", 200), entry("z", 200, dead=1)], 450)
    assert runs == [["x", "y"], ["z"]]  # two runs that fit; z alone for its deletion
    assert optimize_plan([entry("x", 200), entry("y", 300)], 450) == []  # nothing to gain


def test_builds_merge_as_they_go_and_lose_nothing(tmp_path: Path) -> None:
    docs = _piaf_documents()[:40]
    index = tmp_path / "index"
    policy = MergePolicy(factor=3, floor=5)
    merged = 0
    for i, doc in enumerate(docs):
        report = update_index(
            index, Sources(documents=tuple([doc]), sync=False), settings=HASHING, merge=policy
        )
        merged += report.merged
        assert report.segments == len(_segment_names(index))
        assert len(load_index(index).documents()) == i + 1
    assert merged > 0
    entries = load_index(index).manifest["segments"]
    assert all(len(b) < policy.factor for b in policy.buckets(entries))  # all full ones merged
    one = tmp_path / "one"
    update_index(one, Sources(documents=tuple(docs)), settings=HASHING, merge=None)
    questions = _questions(30)
    assert _ranking(index, questions, "bm25") == _ranking(one, questions, "bm25")
    Assistant.open(index).remove(docs[0].doc_id)
    Assistant.open(index).remove(docs[1].doc_id)
    _assert_no_orphans(index)


def _assert_no_orphans(index: Path) -> None:
    """Every segment on disk is listed by a generation kept on disk (at most two)."""
    gens = [p for p in index.glob("gen-*") if ".tmp-" not in p.name]
    assert 1 <= len(gens) <= 2
    listed = {
        e["name"] for g in gens for e in json.loads((g / "manifest.json").read_text())["segments"]
    }
    assert {p.name for p in (index / "segments").iterdir()} == listed


def test_optimize_from_the_cli(hashing_index: Path, corpus_dir: Path) -> None:
    new = corpus_dir / "note.md"
    new.write_text("# Note\n\nLa technopole de Sophia Antipolis accueille des chercheurs.\n")
    Assistant.open(hashing_index).add_files([new])
    before = _ranking(hashing_index, ["technopole Sophia Antipolis", "pôle SCS"], "hybrid")
    result = CliRunner().invoke(main, ["index", "--optimize", "--index", str(hashing_index)])
    assert result.exit_code == 0, result.output
    assert "2 segment(s) -> 1" in result.output
    assert len(_segment_names(hashing_index)) == 1
    assert _ranking(hashing_index, ["technopole Sophia Antipolis", "pôle SCS"], "hybrid") == before
    again = CliRunner().invoke(main, ["index", "--optimize", "--index", str(hashing_index)])
    assert "1 segment(s) -> 1, 0 chunks rewritten" in again.output
    missing = CliRunner().invoke(main, ["index", "--optimize", "--index", str(corpus_dir / "x")])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert "no index at" in missing.output or "Aucun index" in missing.output


def test_int8_sentence_vectors_keep_cosines() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codes, scales = quantize(x)
    assert codes.dtype == np.int8 and codes.nbytes == x.nbytes // 4
    vectors = SentenceVectors([(codes[:100], scales[:100]), (codes[100:], scales[100:])], 384)
    decoded = vectors[np.arange(300)]
    assert len(vectors) == 300 and np.allclose(vectors[150], decoded[150])
    cos = (decoded * x).sum(axis=1) / np.linalg.norm(decoded, axis=1)
    assert cos.min() > 0.999
    q = x[7]
    assert np.abs(decoded @ q - x @ q).max() < 0.01
    with pytest.raises(IndexError):
        vectors[300]


def test_an_index_of_format_3_is_upgraded_by_the_next_write(
    hashing_index: Path, corpus_dir: Path, tmp_path: Path, as_format_3
) -> None:
    questions = ["Qui préside le pôle SCS ?", "smart port Marseille", "Nokia Helsinki"]
    as_format_3(hashing_index)
    with pytest.raises(IndexMismatchError, match=r"older format \(3\).*--upgrade"):
        load_index(hashing_index)
    with pytest.raises(IndexMismatchError, match="older format"):
        ask(questions[0], index=hashing_index)
    new = corpus_dir / "note.md"
    new.write_text("# Note\n\nLe port de Toulon innove aussi.\n")
    report = update_index(hashing_index, Sources(paths=(new,), sync=False), settings=HASHING)
    assert report.embedded == 1  # the old chunks' vectors were carried over
    idx = load_index(hashing_index)
    assert idx.manifest["format_version"] == generations.FORMAT_VERSION
    # the old documents in the upgraded segment, the new file in its own
    assert len(idx.documents()) == 6 and len(_segment_names(hashing_index)) == 2
    fresh = tmp_path / "fresh"
    build_index(corpus_dir, index=fresh, settings=HASHING, show_progress=False)
    for mode in ("bm25", "hybrid"):
        assert _ranking(hashing_index, questions, mode) == _ranking(fresh, questions, mode)


def test_sourcier_index_upgrade_converts_an_old_index_once(
    hashing_index: Path, as_format_3
) -> None:
    questions = ["Qui préside le pôle SCS ?", "smart port Marseille", "Nokia Helsinki"]
    before = {m: _ranking(hashing_index, questions, m) for m in ("bm25", "hybrid")}
    as_format_3(hashing_index)
    runner = CliRunner()
    asked = runner.invoke(main, ["ask", questions[0], "--index", str(hashing_index)])
    assert asked.exit_code == 1
    assert asked.stderr.strip().splitlines() == [
        f"Error: the index at {hashing_index} has an older format (3); upgrade it once with "
        f"`sourcier index --upgrade --index {hashing_index}` (any build upgrades it too)"
    ]
    done = runner.invoke(main, ["index", "--upgrade", "--index", str(hashing_index)])
    assert done.exit_code == 0 and done.output.strip() == f"Upgraded {hashing_index}."
    for mode in ("bm25", "hybrid"):
        assert _ranking(hashing_index, questions, mode) == before[mode]
    again = runner.invoke(main, ["index", "--upgrade", "--index", str(hashing_index)])
    assert again.output.strip() == f"{hashing_index} has the current format."


_MERGER = (
    WARM_UP
    + "import sys\npoint = sys.argv[2]\n"
    + CRASH_AT
    + textwrap.dedent(
        """
    from pathlib import Path
    from sourcier import optimize
    optimize(index=Path(sys.argv[1]))
    print("done")
    """
    )
)


def _many_segments(tmp_path: Path, n: int = 12) -> tuple[Path, list[list[str]]]:
    """An index of ``n`` segments (one with a tombstone), and its hybrid rankings."""
    index = tmp_path / "index"
    docs = _piaf_documents()
    size = len(docs) // n
    for i in range(n):
        part = docs[i * size : (i + 1) * size]
        update_index(
            index, Sources(documents=tuple(part), sync=False), settings=HASHING, merge=None
        )
    update_index(
        index, Sources(remove_ids=frozenset([docs[0].doc_id])), settings=HASHING, merge=None
    )
    assert len(generations.live_segments(index)) == n
    return index, _ranking(index, _questions(20), "hybrid")


def _assert_same_index(index: Path, ranking: list) -> None:
    idx = load_index(index)
    for chunk in idx.snapshot.chunks:
        assert idx.document(chunk.doc_id).text[chunk.start : chunk.end] == chunk.text
    assert len(idx.snapshot.dense) == len(idx) == len(idx.snapshot.bm25)
    assert _ranking(index, _questions(20), "hybrid") == ranking


@pytest.mark.parametrize("point", ["before-rename", "before-current", "before-prune"])
def test_a_merge_dying_at_any_step_leaves_the_index_as_it_was(tmp_path: Path, point: str) -> None:
    index, ranking = _many_segments(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _MERGER, str(index), point], capture_output=True, timeout=120
    )
    assert proc.returncode == 137, proc.stderr.decode()[-500:]
    _assert_same_index(index, ranking)
    merged = len(generations.live_segments(index)) == 1
    assert merged == (point == "before-prune")
    optimize_index(index)
    assert len(generations.live_segments(index)) == 1
    _assert_same_index(index, ranking)
    _assert_no_orphans(index)
    assert not [p for p in (index / "segments").iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
def test_killing_a_real_merge_at_random_moments(tmp_path: Path) -> None:
    """10 SIGKILLs at random moments of `optimize` (seeded): every time, the index
    answers as before, with 12 segments or with 1."""
    index, ranking = _many_segments(tmp_path)
    pristine, shadow = tmp_path / "pristine", tmp_path / "shadow"
    shutil.copytree(index, pristine)
    shutil.copytree(index, shadow)
    duration = time_work([_MERGER, str(shadow), "none"])  # imports excluded
    rng = random.Random(1202)
    finished = 0
    for fraction in sorted(rng.uniform(0.0, 1.0) for _ in range(10)):
        kill_during([_MERGER, str(index), "none"], duration * fraction)
        assert len(generations.live_segments(index)) in (1, 12)
        _assert_same_index(index, ranking)
        if len(generations.live_segments(index)) == 1:  # it got through: start again from 12
            finished += 1
            shutil.rmtree(index)
            shutil.copytree(pristine, index)
    assert finished < 10  # most kills landed inside the merge
    optimize_index(index)
    _assert_same_index(index, ranking)
    _assert_no_orphans(index)


def test_a_big_build_writes_several_segments_of_whole_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build bounded to N chunks a segment (memory stays bounded) cuts between
    documents, and reports its embedding progress over the whole build."""
    from sourcier.build import conductor

    monkeypatch.setattr(conductor, "SEGMENT_CHUNKS", 25)
    docs = _piaf_documents()[:60]
    seen: list[tuple[int, int]] = []
    path = tmp_path / "index"
    report = update_index(
        path,
        Sources(documents=tuple(docs)),
        settings=HASHING,
        merge=None,
        reporter=Reporter(
            lambda stage, done, total: seen.append((done, total)) if stage == "embed" else 0
        ),
    )
    entries = load_index(path).manifest["segments"]
    assert len(entries) == report.segments >= 3
    assert all(e["chunks"] <= 25 for e in entries if e["documents"] > 1)
    assert sum(e["documents"] for e in entries) == 60
    idx = load_index(path)
    by_segment = {}
    for s in idx.snapshot.segments.values():
        for doc_id in s.documents:
            by_segment.setdefault(doc_id, []).append(s.name)
    assert all(len(v) == 1 for v in by_segment.values())  # no document is split
    assert seen[-1] == (report.chunks_added, report.chunks_added)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    one = tmp_path / "one"
    update_index(one, Sources(documents=tuple(docs)), settings=HASHING, merge=None)
    questions = _questions(20)
    assert _ranking(path, questions, "hybrid") == _ranking(one, questions, "hybrid")


def test_a_reader_whose_generation_is_cleaned_away_reads_the_new_one(
    hashing_index: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes and a merge between a reader's look at CURRENT and its reading of the
    segments remove what it was about to read: it reads the new CURRENT instead."""
    real = snapshots.read_snapshot
    calls: list[str] = []

    def racing(gen: Path, **kwargs):
        calls.append(gen.name)
        if len(calls) == 1:  # the writers get in between
            for name in ("a.md", "b.md"):
                (corpus_dir / name).write_text(f"# {name}\n\nLe port de Toulon innove ({name}).\n")
                update_index(hashing_index, Sources(paths=(corpus_dir / name,), sync=False))
                optimize_index(hashing_index)
        return real(gen, **kwargs)

    monkeypatch.setattr(snapshots, "read_snapshot", racing)
    snapshot = snapshots.open_live(hashing_index)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert len(snapshot.documents) == 7


def test_optimize_keeps_segments_within_the_size_cap(tmp_path: Path) -> None:
    docs = _piaf_documents()[:60]
    index = tmp_path / "index"
    for i in range(0, 60, 10):
        update_index(
            index,
            Sources(documents=tuple(docs[i : i + 10]), sync=False),
            settings=HASHING,
            merge=None,
        )
    total = len(load_index(index))
    manifest = load_index(index).manifest
    report = run_merges(index, manifest, MergePolicy(max_chunks=total // 2), optimize=True)
    entries = load_index(index).manifest["segments"]
    assert report.segments_after == len(entries) >= 2
    assert all(e["chunks"] <= total // 2 for e in entries)
    assert sum(e["chunks"] for e in entries) == total


def test_overlap_sentences_are_stored_once_and_each_chunk_reads_its_own(tmp_path: Path) -> None:
    """Consecutive chunks overlap by whole sentences; a shared sentence is one stored
    row (one vector) that both chunks read, and every chunk still reads exactly the
    sentences inside it."""
    index = tmp_path / "idx"
    update_index(index, Sources(documents=tuple(_piaf_documents())), settings=HASHING, merge=None)
    snap = load_index(index).snapshot
    rows_of: dict[tuple[str, int, int], set[int]] = {}
    read = 0
    for chunk in snap.chunks:
        text = snap.documents[chunk.doc_id].text
        got = snap.sentences.get(chunk.chunk_id, [])
        assert [(s, e) for s, e, _ in got] == sentence_spans(text, chunk.start, chunk.end)
        for s, e, row in got:
            rows_of.setdefault((chunk.doc_id, s, e), set()).add(row)
        read += len(got)
    assert all(len(rows) == 1 for rows in rows_of.values())
    stored = len(snap.sentence_vectors)
    assert stored == len(rows_of) and read - stored >= 10  # the overlap is stored once
    (segment,) = snap.segments.values()
    assert segment.version == SEGMENT_VERSION  # shared sentence rows since version 2


def _as_version_1(index: Path, name: str) -> None:
    """Rewrite a segment the way version 1 stored it: a sentences table with one row per
    chunk's sentence (overlap included) and no shared rows."""
    folder = index / "segments" / name
    table, stored = unshared_sentences(Segment(index, name))
    db = sqlite3.connect(folder / "docs.sqlite")
    db.executescript(
        "CREATE TABLE sentences (row INTEGER PRIMARY KEY, faiss_id INTEGER NOT NULL, "
        'start INTEGER NOT NULL, "end" INTEGER NOT NULL);'
        "ALTER TABLE chunks DROP COLUMN sentence_first;"
        "ALTER TABLE chunks DROP COLUMN sentence_count;"
    )
    db.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?)", table)
    db.commit()
    db.close()
    for part in ("sentences.npy", "sentence_scales.npy"):
        np.save(folder / part, np.load(folder / part)[stored])
    (folder / "sentence_spans.npy").unlink()
    meta = json.loads((folder / "segment.json").read_text())
    (folder / "segment.json").write_text(
        json.dumps({**meta, "version": 1, "sentences": len(table)})
    )


def test_a_segment_of_version_1_is_read_and_a_merge_rewrites_it(tmp_path: Path) -> None:
    docs = _piaf_documents()
    index = tmp_path / "idx"
    update_index(
        index, Sources(documents=tuple(docs[:50]), sync=False), settings=HASHING, merge=None
    )
    update_index(
        index, Sources(documents=tuple(docs[50:]), sync=False), settings=HASHING, merge=None
    )
    questions = _questions(30)
    before = _ranking(index, questions, "hybrid")
    answers = [ask(q, index=load_index(index)).answer for q in questions[:10]]
    shared = len(load_index(index).snapshot.sentence_vectors)
    first = _segment_names(index)[0]
    _as_version_1(index, first)
    idx = load_index(index)
    assert idx.snapshot.segments[first].version == 1
    assert len(idx.snapshot.sentence_vectors) > shared  # version 1 stores the overlap twice
    assert _ranking(index, questions, "hybrid") == before
    assert [ask(q, index=idx).answer for q in questions[:10]] == answers
    optimize_index(index)
    idx = load_index(index)
    (segment,) = idx.snapshot.segments.values()
    assert segment.version == SEGMENT_VERSION and len(idx.snapshot.sentence_vectors) == shared
    assert _ranking(index, questions, "hybrid") == before
    assert [ask(q, index=idx).answer for q in questions[:10]] == answers
