"""BM25 that grows: segments scored with global statistics rank as one rebuilt index."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bm25_oracle import BM25Index
from sourcier.analysis import analyze
from sourcier.errors import IndexCorruptError, InputError
from sourcier.storage.bm25 import BM25Segment, GlobalStats, SegmentedBM25

PIAF = Path(__file__).resolve().parents[1] / "eval" / "piaf-sample"

TEXTS = [
    "Le pôle SCS signe un accord de partenariat avec le MIT de Boston.",
    "La Fondation Sophia Antipolis, présidée par Pierre Laffitte, organise le forum.",
    "Le port de Marseille Fos lance une chaire smart port avec Aix-Marseille Université.",
    "Les pôles de compétitivité rassemblent 6 800 entreprises en France.",
    "Le Technopôle de l'Arbois accueille 110 entreprises innovantes.",
    "Le la les",  # only stopwords: counted in N and the mean length, never found
    "Marseille, Marseille et encore le port de Marseille.",
    "L’innovation des pôles de Marseille et de Sophia Antipolis.",
]
IDS = [11, -3, 2**62, 0, 7, 5, -(2**63), 2**63 - 1]
QUERIES = [
    "accord entre le pôle SCS et le MIT",
    "presidee par Laffitte",
    "pôle entreprises marseille",
    "port port Marseille innovation",
    "technopole arbois 110",
    "Sophia Antipolis",
    "licorne",
    "",
]


def _split(texts, ids, cuts):
    bounds = [0, *cuts, len(texts)]
    return SegmentedBM25([BM25Segment.build(texts[a:b], ids[a:b]) for a, b in pairwise(bounds)])


def _same_everywhere(reference, other, queries, *, allowed=None):
    for q in queries:
        for k in (1, 3, 100):
            assert other.search(q, k=k) == reference.search(q, k=k), (q, k)
            if allowed is not None:
                got = other.search(q, k=k, allowed=allowed)
                assert got == reference.search(q, k=k, allowed=allowed), (q, k)


@pytest.fixture(scope="module")
def piaf():
    rows = [json.loads(line) for line in (PIAF / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["question"] for line in (PIAF / "queries.jsonl").open()]
    texts = [f"{r['title']}\n{r['text']}" for r in rows]
    return texts, list(range(100, 100 + len(texts))), queries


# -- the same ranking as today's index -------------------------------------------------


def test_one_segment_scores_exactly_as_bm25index():
    reference = BM25Index.build(TEXTS, IDS)
    segmented = SegmentedBM25([BM25Segment.build(TEXTS, IDS)])
    _same_everywhere(reference, segmented, QUERIES, allowed={0, 7, 11, 999})
    assert len(segmented) == len(reference) and segmented.ids == reference.ids
    for term in ["pol", "marseil", "boston", "licorne", ""]:
        assert segmented.idf(term) == reference.idf(term)
    assert segmented.related_term("inscrire") == reference.related_term("inscrire")


def test_piaf_ranks_identically_in_one_and_in_many_segments(piaf):
    texts, ids, queries = piaf
    reference = BM25Index.build(texts, ids)
    many = _split(texts, ids, [1, 2, 30, 31, 77])
    for q in queries:
        expected = reference.search(q, k=10)
        assert many.search(q, k=10) == expected  # same ids, order and float scores
    assert many.merge(1, 4).search(queries[0], k=10) == reference.search(queries[0], k=10)
    assert len(many.merge().segments) == 1


def test_the_french_analyser_is_the_one_of_lexical():
    segment = BM25Segment.build(["L’innovation des pôles présidée"], [1])
    assert sorted(segment.terms) == sorted(set(analyze("L’innovation des pôles présidée")))
    index = SegmentedBM25([segment])
    assert index.search("innovations du pole", k=1)[0][0] == 1
    assert index.search("qui préside ?", k=1)[0][0] == 1
    assert index.search("le la les de", k=5) == []


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(1, len(TEXTS) - 1), unique=True, max_size=5).map(sorted),
    deleted=st.sets(st.sampled_from(IDS), max_size=4),
    query=st.lists(st.sampled_from(analyze(" ".join(TEXTS)) + ["licorne"]), max_size=5),
)
def test_any_segmentation_with_deletes_ranks_as_a_rebuild(cuts, deleted, query):
    live = [(t, i) for t, i in zip(TEXTS, IDS, strict=True) if i not in deleted]
    segmented = _split(TEXTS, IDS, cuts).delete(deleted)
    assert segmented.stats == GlobalStats(
        documents=len(live), total_length=sum(len(analyze(t)) for t, _ in live)
    )
    q = " ".join(query)
    if live:
        reference = BM25Index.build([t for t, _ in live], [i for _, i in live])
        _same_everywhere(reference, segmented, [q], allowed=set(IDS[::2]))
        _same_everywhere(reference, segmented.merge(), [q])
    else:
        assert segmented.search(q, k=5) == []


# -- growing: add, delete, merge --------------------------------------------------------


def test_add_and_delete_return_new_sets_and_leave_the_old_one():
    base = SegmentedBM25([BM25Segment.build(TEXTS[:4], IDS[:4])])
    grown = base.add(BM25Segment.build(TEXTS[4:], IDS[4:]))
    assert len(base) == 4 and len(grown) == len(TEXTS)
    shrunk = grown.delete([11, 7, 123456])
    assert len(grown) == len(TEXTS) and len(shrunk) == len(TEXTS) - 2
    assert 11 not in {i for i, _ in shrunk.search("accord SCS MIT", k=10)}
    assert shrunk.deleted_ids() == [{11}, {7}]
    assert shrunk.idf("boston") == 0.0 and grown.idf("boston") > 0


def test_an_id_cannot_be_live_twice_but_can_come_back_after_a_delete():
    index = SegmentedBM25([BM25Segment.build(TEXTS[:2], IDS[:2])])
    with pytest.raises(InputError, match="live in two"):
        index.add(BM25Segment.build(["autre texte"], [IDS[0]]))
    with pytest.raises(InputError, match="live in two"):
        SegmentedBM25([BM25Segment.build(["a"], [1]), BM25Segment.build(["b"], [1])])
    edited = index.delete([IDS[0]]).add(BM25Segment.build(["le pôle SCS, édité"], [IDS[0]]))
    assert [i for i, _ in edited.search("SCS édité", k=5)] == [IDS[0]]
    assert edited.ids == [IDS[1], IDS[0]]
    assert len(edited.merge()) == 2 and edited.merge().deleted_ids() == [set()]


def test_merging_drops_deleted_chunks_and_terms_only_they_had():
    index = _split(TEXTS, IDS, [3, 5]).delete([11])  # the only text with "boston"
    merged = index.merge()
    assert "boston" not in merged.segments[0].vocab
    assert merged.segments[0].ids.tolist() == [i for i in IDS if i != 11]
    _same_everywhere(index, merged, QUERIES, allowed={0, 7, 2**62})
    with pytest.raises(InputError, match="cannot merge"):
        index.merge(2, 1)


def test_filtered_search_returns_k_results_when_k_allowed_chunks_match():
    texts = ["marseille port"] * 30 + ["marseille"] * 30
    ids = list(range(60))
    index = _split(texts, ids, [7, 25, 40])
    allowed = set(range(35, 60, 2))  # 13 allowed, all match, none in the best 30
    got = index.search("marseille port", k=10, allowed=allowed)
    assert len(got) == 10 and {i for i, _ in got} <= allowed
    assert index.search("marseille port", k=10, allowed=[]) == []
    assert len(index.delete(range(35, 60)).search("marseille", k=10, allowed=allowed)) == 0


def test_ties_keep_collection_order_across_segments():
    index = _split(["pôle"] * 6, [60, 50, 40, 30, 20, 10], [2, 3])
    assert [i for i, _ in index.search("pôle", k=4)] == [60, 50, 40, 30]


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="one id per text"):
        BM25Segment.build(["a", "b"], [1])
    with pytest.raises(InputError, match="distinct"):
        BM25Segment.build(["a", "b"], [1, 1])
    with pytest.raises(InputError, match=r"b \(2"):
        SegmentedBM25(b=2.0)
    with pytest.raises(InputError, match="one set per segment"):
        SegmentedBM25([BM25Segment.build(["a"], [1])], deleted=[])
    empty = SegmentedBM25()
    assert empty.search("pôle", k=5) == [] and empty.stats.average_length == 0.0


# -- persistence -----------------------------------------------------------------------


def test_save_and_load_round_trip_and_write_only_new_segments(tmp_path):
    index = _split(TEXTS, IDS, [3]).delete([11])
    index.save(tmp_path / "bm25")
    first = {p.name for p in (tmp_path / "bm25").iterdir()}
    assert {"segments.json", "tombstones.npz"} <= first and len(first) == 4
    loaded = SegmentedBM25.load(tmp_path / "bm25")
    _same_everywhere(index, loaded, QUERIES, allowed={0, 7})
    assert loaded.deleted_ids() == index.deleted_ids() and (loaded.k1, loaded.b) == (1.2, 0.75)
    with np.load(tmp_path / "bm25" / index.segments[0].digest / "postings.npz") as npz:
        assert npz["ids"].dtype == np.int64  # loads without pickle

    old = tmp_path / "bm25" / index.segments[0].digest / "postings.npz"
    stamp = old.stat().st_mtime_ns
    grown = loaded.add(BM25Segment.build(["un texte de plus sur Marseille"], [42]))
    grown.save(tmp_path / "bm25")
    assert old.stat().st_mtime_ns == stamp  # the old segment was not rewritten
    _same_everywhere(grown, SegmentedBM25.load(tmp_path / "bm25"), QUERIES)


@pytest.mark.parametrize("how", ["no manifest", "tombstones", "segment arrays", "segment meta"])
def test_a_damaged_set_raises_index_corrupt_error(tmp_path, how):
    index = _split(TEXTS, IDS, [3]).delete([11])
    folder = tmp_path / "bm25"
    index.save(folder)
    segment = folder / index.segments[1].digest
    if how == "no manifest":
        (folder / "segments.json").unlink()
    elif how == "tombstones":
        np.savez(folder / "tombstones.npz", nothing=np.zeros(1))
    elif how == "segment arrays":
        (segment / "postings.npz").write_bytes(b"broken")
    else:
        meta = json.loads((segment / "postings.json").read_text())
        meta["vocab"] = meta["vocab"][:-1]
        (segment / "postings.json").write_text(json.dumps(meta))
    with pytest.raises(IndexCorruptError):
        SegmentedBM25.load(folder)
