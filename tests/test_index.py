"""The index on disk: incremental builds, no-op rebuilds, safety against kills and bad input."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import CRASH_AT, WARM_UP, kill_during, time_work
from sourcier import (
    HASHING_MODEL,
    Assistant,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    Settings,
    build_index,
    load_index,
    search,
)
from sourcier.api import ensure_index
from sourcier.build import vector_cache
from sourcier.storage import generations
from sourcier.storage.segment import faiss_id_for

HASHING = Settings(model=HASHING_MODEL)


def _all_spans_exact(idx) -> None:
    for chunk in idx.snapshot.chunks:
        doc = idx.document(chunk.doc_id)
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_build_reports_files_chunks_and_skips(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "notes.xyz").write_text("pas un document")
    (corpus_dir / "vide.txt").write_text("")
    report = build_index(corpus_dir, index=tmp_path / "idx", settings=HASHING, show_progress=False)
    assert len(report.indexed) == 5
    assert report.chunks_added > 5 and report.chunks_removed == 0
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == {"notes.xyz", "vide.txt"}
    assert "unsupported" in skipped["notes.xyz"]
    assert "empty" in skipped["vide.txt"]
    idx = load_index(tmp_path / "idx")
    assert len(idx.documents()) == 5
    assert sum(d.chunks for d in idx.documents()) == len(idx) == report.chunks_added
    _all_spans_exact(idx)
    manifest = idx.manifest
    assert manifest["model"] == HASHING_MODEL and manifest["chunks"] == len(idx)
    assert manifest["settings"]["chunk_tokens"] == HASHING.index.chunk_tokens


def test_second_build_is_a_noop_that_embeds_nothing(hashing_index: Path, corpus_dir: Path) -> None:
    gen_before = generations.current_generation(hashing_index)
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert not report.changed
    assert report.embedded == 0 and report.chunks_added == 0
    assert len(report.unchanged) == 5
    assert generations.current_generation(hashing_index) == gen_before


def test_edit_add_delete_touch_only_their_own_chunks(hashing_index: Path, corpus_dir: Path) -> None:
    before = load_index(hashing_index)
    by_source = {Path(d.source).name: d for d in before.documents()}
    edited = corpus_dir / "technopole-arbois-mediterranee.txt"
    edited.write_text(edited.read_text() + "\n\nUn nouveau paragraphe sur le biomimétisme.\n")
    (corpus_dir / "smart-port-aix-marseille-2017.txt").unlink()
    (corpus_dir / "nouveau.md").write_text("# Nouvelle note\n\nLe port de Toulon innove aussi.\n")

    report = build_index(corpus_dir, index=hashing_index, show_progress=False)

    names = lambda paths: {Path(p).name for p in paths}  # noqa: E731
    assert names(report.indexed) == {"nouveau.md"}
    assert names(report.edited) == {"technopole-arbois-mediterranee.txt"}
    assert names(report.removed) == {"smart-port-aix-marseille-2017.txt"}
    assert report.changed and report.to_dict()["edited"] == report.edited
    assert names(report.unchanged) == {
        "scs-mit-alliance-strategique.txt",
        "marseille-helsinki-partenariat-it.txt",
        "forum-clusters-excellence-sophia-2011.txt",
    }
    after = load_index(hashing_index)
    untouched = [
        by_source[n].doc_id
        for n in ("scs-mit-alliance-strategique.txt", "forum-clusters-excellence-sophia-2011.txt")
    ]
    for doc_id in untouched:
        old = [c for c in before.snapshot.chunks if c.doc_id == doc_id]
        new = [c for c in after.snapshot.chunks if c.doc_id == doc_id]
        assert old == new
    # only chunks of the edited and new files were embedded (the rest came from the cache)
    arbois = [d for d in after.documents() if "arbois" in d.source][0]
    nouveau = [d for d in after.documents() if d.source.endswith("nouveau.md")][0]
    assert report.embedded <= arbois.chunks + nouveau.chunks
    assert report.chunks_added >= 1
    hits = search("port de Toulon", index=hashing_index, k=1, mode="bm25")
    assert hits[0].source.endswith("nouveau.md")
    _all_spans_exact(after)


def test_add_and_remove_single_documents(hashing_index: Path, tmp_path: Path) -> None:
    idx = Assistant.open(hashing_index)
    upload = tmp_path / "uploads" / "lavande.txt"
    upload.parent.mkdir()
    upload.write_text(
        "La lavande de Valensole fleurit en juillet sur le plateau.", encoding="utf-8"
    )
    report = idx.add_files([upload])
    assert [Path(p).name for p in report.indexed] == ["lavande.txt"]
    assert len(idx.index.documents()) == 6  # nothing else was removed
    assert search("lavande Valensole", index=idx, k=1)[0].source.endswith("lavande.txt")

    doc_id = next(d.doc_id for d in idx.index.documents() if d.source.endswith("lavande.txt"))
    report = idx.remove(doc_id)
    assert report.chunks_removed >= 1
    assert all(not d.source.endswith("lavande.txt") for d in idx.index.documents())
    with pytest.raises(InputError, match="no document"):
        idx.remove(doc_id)


def test_document_text_is_what_offsets_refer_to(shared_hashing_index: Path) -> None:
    idx = load_index(shared_hashing_index)
    for hit in search("pôle de compétitivité", index=idx, k=5):
        text = idx.document(hit.chunk.doc_id).text
        assert text[hit.chunk.start : hit.chunk.end] == hit.chunk.text


def test_missing_index_and_wrong_model_are_clear_errors(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    with pytest.raises(IndexNotFoundError, match="no index at"):
        load_index(tmp_path / "nothing")
    with pytest.raises(IndexMismatchError, match="built with model"):
        load_index(shared_hashing_index, settings=Settings())
    with pytest.raises(IndexMismatchError, match="built with model"):
        build_index(index=shared_hashing_index, settings=Settings(model="some/other-model"))


def test_missing_folder_and_empty_corpus_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        build_index(tmp_path / "absent", index=tmp_path / "i", settings=HASHING)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no supported file"):
        build_index(tmp_path / "empty", index=tmp_path / "i", settings=HASHING)
    assert not generations.index_exists(tmp_path / "i")


def test_damaged_generation_is_reported_not_crashed(hashing_index: Path) -> None:
    (segment,) = generations.live_segments(hashing_index)
    (segment / "dense" / "vectors.npy").write_bytes(b"not vectors")
    with pytest.raises(IndexCorruptError):
        load_index(hashing_index)


def test_no_pickle_anywhere_in_the_index(hashing_index: Path) -> None:
    suffixes = {p.suffix for p in hashing_index.rglob("*") if p.is_file()}
    assert not suffixes & {".pkl", ".pickle"}


_BUILDER = WARM_UP + textwrap.dedent(
    """
    import sys
    from sourcier import HASHING_MODEL, Settings, build_index
    build_index(sys.argv[1], index=sys.argv[2], settings=Settings(model=HASHING_MODEL),
                show_progress=False)
    print("done")
    """
)


def _big_corpus(folder: Path, n: int, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sentence = (
        "Le pôle {i} de la région {tag} réunit des entreprises innovantes. "
        "Son budget atteint {i} millions d'euros en 2024. "
    )
    for i in range(n):
        (folder / f"doc-{i:04d}.txt").write_text((sentence.format(i=i, tag=tag) * 30) + "\n")


def _assert_old_or_new(index: Path, old: tuple[int, int], new_docs: int) -> None:
    idx = load_index(index)
    _all_spans_exact(idx)
    assert (len(idx.documents()), len(idx)) == old or len(idx.documents()) == new_docs
    assert len(idx.snapshot.dense) == len(idx) == len(idx.snapshot.bm25)
    # every stored sentence vector is read by a live chunk (the overlap is stored once)
    rows = {row for v in idx.snapshot.sentences.values() for _, _, row in v}
    assert rows == set(range(len(idx.snapshot.sentence_vectors)))


def _prepare(tmp_path: Path, n_new: int) -> tuple[Path, Path, tuple[int, int]]:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    _big_corpus(corpus, 20, "A")
    build_index(corpus, index=index, settings=HASHING, show_progress=False)
    before = load_index(index)
    for f in corpus.iterdir():  # change every file so the next build rewrites everything
        f.unlink()
    _big_corpus(corpus, n_new, "B")
    return corpus, index, (len(before.documents()), len(before))


_CRASHER = (
    "import sys\npoint = sys.argv[3]\n"
    + CRASH_AT
    + textwrap.dedent(
        """
    from sourcier import HASHING_MODEL, Settings, build_index
    build_index(sys.argv[1], index=sys.argv[2], settings=Settings(model=HASHING_MODEL),
                show_progress=False)
    """
    )
)


@pytest.mark.parametrize(
    "point",
    [
        "during-cache",
        "before-rename",
        "before-current",
        "before-prune",
        "before-files",
        "during-files",
    ],
)
def test_a_build_dying_at_any_step_leaves_a_loadable_index(tmp_path: Path, point: str) -> None:
    corpus, index, old = _prepare(tmp_path, 30)
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(corpus), str(index), point],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stderr.decode()[-500:]
    _assert_old_or_new(index, old, 30)
    if point.endswith("-files"):  # it died after the switch, noting the files it read
        assert len(load_index(index).documents()) == 30
    elif point != "before-prune":  # the switch never happened: readers still see the old one
        assert len(load_index(index).documents()) == old[0]
    build_index(corpus, index=index, show_progress=False)
    assert len(load_index(index).documents()) == 30
    assert not [p for p in index.iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
def test_killing_a_real_build_at_random_moments(tmp_path: Path) -> None:
    """12 SIGKILLs at random moments of a real build (seeded, so a failure replays)."""
    corpus, index, old = _prepare(tmp_path, 150)
    # time one whole build (imports excluded), in a throwaway copy of the index
    duration = time_work([_BUILDER, str(corpus), str(tmp_path / "shadow")])
    rng = random.Random(20261202)
    for fraction in sorted(rng.uniform(0.0, 1.0) for _ in range(12)):
        kill_during([_BUILDER, str(corpus), str(index)], duration * fraction)
        _assert_old_or_new(index, old, 150)
    build_index(corpus, index=index, show_progress=False)
    assert len(load_index(index).documents()) == 150
    assert len(generations.live_segments(index)) == 1  # the old segment was wholly deleted
    listed = {p.name for g in index.glob("gen-*") for p in _listed_segments(g)}
    assert {p.name for p in (index / "segments").iterdir()} == listed


def _listed_segments(gen: Path) -> list[Path]:
    import json

    manifest = json.loads((gen / generations.MANIFEST).read_text())
    return [gen.parent / "segments" / e["name"] for e in manifest["segments"]]


def test_concurrent_writers_are_serialised(tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "index"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILDER, str(corpus_dir), str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-500:] for o in outs]
    idx = load_index(index)
    assert len(idx.documents()) == 5
    _all_spans_exact(idx)


# ----- removals that stick, damaged indexes that say how to fix them ----------------------


def _names(paths) -> set[str]:
    return {Path(p).name for p in paths}


def test_a_removed_document_stays_out_until_it_is_named_again(
    hashing_index: Path, corpus_dir: Path
) -> None:
    idx = Assistant.open(hashing_index)
    target = corpus_dir / "smart-port-aix-marseille-2017.txt"
    doc_id = next(d.doc_id for d in idx.index.documents() if d.source == str(target))
    report = idx.remove(doc_id)
    assert _names(report.removed) == {target.name} and not report.kept_out
    assert load_index(hashing_index).manifest["excluded"] == [str(target)]

    again = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert again.kept_out == (str(target),)
    assert not again.changed and not again.indexed
    assert len(load_index(hashing_index).documents()) == 4
    hits = search("Smart Port Marseille", index=hashing_index, mode="bm25", k=10)
    assert all(h.source != str(target) for h in hits)

    target.write_text(target.read_text() + "\nUne ligne de plus.\n")  # edited: still out
    assert build_index(corpus_dir, index=hashing_index, show_progress=False).kept_out

    back = build_index(target, index=hashing_index, show_progress=False)
    assert back.indexed == (str(target),) and not back.kept_out
    assert load_index(hashing_index).manifest["excluded"] == []
    after = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert not after.kept_out and not after.changed and len(after.unchanged) == 5


def test_add_files_brings_a_removed_upload_back(hashing_index: Path, tmp_path: Path) -> None:
    upload = tmp_path / "uploads" / "lavande.txt"
    upload.parent.mkdir()
    upload.write_text("La lavande de Valensole fleurit en juillet.", encoding="utf-8")
    idx = Assistant.open(hashing_index)
    idx.add_files([upload])
    idx.remove(next(d.doc_id for d in idx.index.documents() if d.source == str(upload)))
    assert build_index(upload.parent, index=hashing_index).kept_out == (str(upload),)
    report = idx.add_files([upload])
    assert report.indexed == (str(upload),)
    assert any(d.source == str(upload) for d in idx.index.documents())


def test_a_removed_bundled_document_stays_out_of_the_default_build(tmp_path: Path) -> None:
    index = tmp_path / "index"
    build_index(index=index, settings=HASHING, show_progress=False)  # the bundled corpus
    idx = Assistant.open(index)
    first = idx.index.documents()[0]
    idx.remove(first.doc_id)
    report = build_index(index=index, show_progress=False)
    assert report.kept_out == (first.source,) and not report.indexed
    assert len(load_index(index).documents()) == 4
    assert build_index(first.source, index=index).indexed == (first.source,)
    assert len(load_index(index).documents()) == 5


def test_readme_and_hidden_files_of_a_folder_are_reported(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "README.md").write_text("# Ce dossier\n\nLes cinq communiqués du pôle.\n")
    (corpus_dir / ".brouillon.txt").write_text("Un brouillon caché.")
    report = build_index(corpus_dir, index=tmp_path / "i", settings=HASHING, show_progress=False)
    assert {Path(s.path).name: s.code for s in report.skipped} == {
        "README.md": "readme",
        ".brouillon.txt": "hidden_file",
    }
    assert len(report.indexed) == 5
    named = build_index(corpus_dir / "README.md", index=tmp_path / "i", show_progress=False)
    assert _names(named.indexed) == {"README.md"}


_REMOVER = (
    "import sys\npoint = sys.argv[2]\n"
    + CRASH_AT
    + textwrap.dedent(
        """
    from sourcier import Assistant
    idx = Assistant.open(sys.argv[1])
    idx.remove(next(d.doc_id for d in idx.index.documents() if d.source.endswith(sys.argv[3])))
    """
    )
)


@pytest.mark.parametrize("point", ["before-rename", "before-current", "before-prune"])
def test_a_removal_dying_at_any_step_leaves_a_usable_index(
    hashing_index: Path, corpus_dir: Path, point: str
) -> None:
    name = "smart-port-aix-marseille-2017.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _REMOVER, str(hashing_index), point, name],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stderr.decode()[-500:]
    idx = Assistant.open(hashing_index)
    _all_spans_exact(idx.index)
    present = any(d.source.endswith(name) for d in idx.index.documents())
    excluded = [Path(s).name for s in idx.index.manifest.get("excluded", [])]
    # the document and its exclusion switch together: never half applied
    assert present == (point != "before-prune") and excluded == ([] if present else [name])
    assert search("Smart Port", index=idx, k=1)
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert _names(report.kept_out) == (set() if present else {name})
    if present:
        idx.reload()
        idx.remove(next(d.doc_id for d in idx.index.documents() if d.source.endswith(name)))
        assert len(idx.index.documents()) == 4
    assert not [p for p in hashing_index.iterdir() if ".tmp-" in p.name]


def test_a_current_pointing_nowhere_says_damaged_and_a_build_repairs_it(
    hashing_index: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    idx = Assistant.open(hashing_index)
    gen = generations.current_generation(hashing_index)
    assert gen is not None
    shutil.rmtree(gen)
    for call in (load_index, lambda p: search("pôle", index=p), ensure_index):
        with pytest.raises(IndexCorruptError, match="CURRENT points to gen-") as info:
            call(hashing_index)
        assert "damaged" in str(info.value) and "sourcier index FOLDER --index" in str(info.value)
    # an update of single files does not paper over it with a one-file index
    with pytest.raises(IndexCorruptError, match="damaged"):
        idx.add_files([corpus_dir / "smart-port-aix-marseille-2017.txt"])
    with pytest.raises(IndexCorruptError, match="damaged"):
        idx.remove(idx.index.documents()[0].doc_id)
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    assert len(report.indexed) == 5
    assert len(load_index(hashing_index).documents()) == 5


@pytest.mark.parametrize("damage", ["dense", "texts", "manifest", "current"])
def test_a_damaged_index_is_rebuilt_by_the_build_its_error_suggests(
    tmp_path: Path, corpus_dir: Path, damage: str
) -> None:
    index = tmp_path / "index"
    build_index(corpus_dir, index=index, settings=HASHING, show_progress=False)
    gen = generations.current_generation(index)
    assert gen is not None
    if damage == "dense":
        (generations.live_segments(index)[0] / "dense" / "ids.npy").write_bytes(b"not an array")
    elif damage == "texts":  # the documents' table: its pages past the header overwritten
        db = generations.live_segments(index)[0] / "docs.sqlite"
        data = bytearray(db.read_bytes())
        data[4096:] = b"\xff" * (len(data) - 4096)
        db.write_bytes(bytes(data))
    elif damage == "manifest":
        (gen / generations.MANIFEST).write_text("{not json")
    else:
        (index / generations.CURRENT).write_text("garbage\n")
    with pytest.raises(IndexCorruptError, match=r"damaged .*; rebuild it with `sourcier index"):
        load_index(index)
    report = build_index(corpus_dir, index=index, settings=HASHING, show_progress=False)
    assert len(report.indexed) == 5
    idx = load_index(index)
    assert len(idx.documents()) == 5 and idx.manifest["model"] == HASHING_MODEL
    _all_spans_exact(idx)


def test_vectors_are_kept_once_and_reused_from_the_live_generation(
    hashing_index: Path, corpus_dir: Path
) -> None:
    """The cache holds only an interrupted build's work: a published segment holds
    every vector, and the next build writes only the new file's segment."""
    before = Assistant.open(hashing_index)
    cache = vector_cache.EmbeddingCache(
        hashing_index / generations.JOURNAL, HASHING_MODEL, before.embedder.dim
    )
    try:
        assert cache.get_many([cache.key("x")]) == {}
        (count,) = cache._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
    finally:
        cache.close()
    assert count == 0
    assert before.index.snapshot.sentence_vectors.encodings == {"int8"}  # a quarter of float32
    (corpus_dir / "nouveau.md").write_text("# Note\n\nLe port de Toulon innove aussi.\n")
    report = build_index(corpus_dir, index=hashing_index, show_progress=False)
    after = load_index(hashing_index)
    added = [d for d in after.documents() if d.source.endswith("nouveau.md")][0]
    assert report.embedded == added.chunks  # only the new file was embedded
    for chunk in before.index.snapshot.chunks:
        fid = faiss_id_for(chunk.chunk_id)
        assert np.array_equal(
            before.index.snapshot.dense.vector(fid), after.snapshot.dense.vector(fid)
        )
        rows_before = [r for _, _, r in before.index.snapshot.sentences[chunk.chunk_id]]
        rows_after = [r for _, _, r in after.snapshot.sentences[chunk.chunk_id]]
        assert np.array_equal(
            before.index.snapshot.sentence_vectors[rows_before],
            after.snapshot.sentence_vectors[rows_after],
        )


def test_a_removal_loads_no_model_and_keeps_the_model_fields(hashing_index: Path) -> None:
    from sourcier.build.conductor import update_index
    from sourcier.build.plan import Sources

    def no_model(settings):  # a removal embeds nothing: asking for the model is a bug
        raise AssertionError("the model was loaded for a removal")

    before = generations.read_manifest(generations.current_generation(hashing_index))
    doc_id = load_index(hashing_index).documents()[0].doc_id
    report = update_index(
        hashing_index, Sources(remove_ids=frozenset({doc_id})), embedding=no_model
    )
    assert report.removed and report.chunks_removed >= 1 and report.embedded == 0
    after = generations.read_manifest(generations.current_generation(hashing_index))
    for key in ("model", "dimension", "query_prefix", "passage_prefix"):
        assert after[key] == before[key], key
    idx = load_index(hashing_index)
    assert doc_id not in {d.doc_id for d in idx.documents()} and len(idx.documents()) == 4
    assert search("pôle SCS", index=idx, k=3)  # the index still answers
