"""The French analyser and BM25 as the index uses it: terms, ranking, filters, persistence."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sourcier.analysis import STOPWORDS, analyze
from sourcier.errors import IndexCorruptError, InputError
from sourcier.storage.bm25 import BM25Segment, SegmentedBM25

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

TEXTS = [
    "Le pôle SCS signe un accord de partenariat avec le MIT de Boston.",
    "La Fondation Sophia Antipolis, présidée par Pierre Laffitte, organise le forum.",
    "Le port de Marseille Fos lance une chaire smart port avec Aix-Marseille Université.",
    "Les pôles de compétitivité rassemblent 6 800 entreprises en France.",
    "Le Technopôle de l'Arbois accueille 110 entreprises innovantes.",
]
IDS = [11, -3, 2**62, 0, 7]


def bm25(texts: list[str], ids: list[int]) -> SegmentedBM25:
    """BM25 over one segment of these texts, as an index of one build holds it."""
    return SegmentedBM25([BM25Segment.build(texts, ids)])


@pytest.fixture(scope="module")
def index() -> SegmentedBM25:
    return bm25(TEXTS, IDS)


# -- analyser --------------------------------------------------------------------------


def test_elisions_are_stripped_with_either_apostrophe():
    assert analyze("l’innovation") == analyze("l'innovation") == analyze("innovation")
    assert analyze("d’excellence") == analyze("excellence")
    assert analyze("qu'il, jusqu’au, lorsqu'on, puisqu’elle, c'est, n'est, s'est") == []
    assert analyze("aujourd'hui") == ["aujourd", "hui"]  # not an elision


def test_stopwords_are_dropped_in_french_and_english():
    assert analyze("le la les de des du et ou à au aux un une est sont été") == []
    assert analyze("Who is the president of the cluster?") == analyze("président cluster")
    assert analyze("Qui préside la fondation ?") == analyze("préside fondation")
    assert not any(t in STOPWORDS for t in analyze(" ".join(TEXTS)))


def test_stemming_merges_inflections():
    assert analyze("pôles") == analyze("pôle")
    assert analyze("innovations innovant") == analyze("innovation innovant")
    assert analyze("présidente") == analyze("président") == analyze("présidence")
    assert analyze("préside") == analyze("présidé") == analyze("président") == ["presid"]
    assert analyze("résident") == analyze("résider")
    assert analyze("dent") == ["dent"]  # too short for the "-ident" rule
    assert analyze("entreprises") == analyze("entreprise")


def test_accents_and_ligatures_are_folded_after_stemming():
    assert analyze("pole") == analyze("pôle") == analyze("Pôle") == analyze("PÔLE")
    assert analyze("œuvre") == analyze("oeuvre")
    assert analyze("Méditerranée") == analyze("Mediterranée")
    assert all(t.isascii() for t in analyze("compétitivité réseau été créé"))


def test_digits_are_kept_and_grouped_numbers_joined():
    assert analyze("en 2011") == ["2011"]
    assert analyze("6 800 entreprises") == analyze("6800 entreprises")
    assert "6800" in analyze("6\u202f800")
    assert analyze("3,2 milliards")[:2] == ["3", "2"]


def test_analyze_is_deterministic_and_handles_unicode_forms():
    text = " ".join(TEXTS)
    assert analyze(text) == analyze(text)
    decomposed = "po\u0302le"  # "pôle" written with a combining accent
    assert analyze(decomposed) == analyze("pôle")
    assert analyze("") == [] and analyze("  ,;!? ") == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_analyze_returns_clean_terms_for_any_text(text):
    terms = analyze(text)
    assert all(isinstance(t, str) and t and t == t.lower() for t in terms)
    assert all(not any(c.isspace() or c in "'’_" for c in t) for t in terms)
    assert analyze(text) == terms


# -- BM25 ------------------------------------------------------------------------------


def test_a_text_with_the_query_terms_ranks_first(index):
    hits = index.search("accord entre le pôle SCS et le MIT", k=5)
    assert hits[0][0] == 11
    assert all(score > 0 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_accents_and_inflections_match_at_query_time(index):
    assert index.search("technopole arbois", k=1)[0][0] == 7
    assert index.search("presidee par Laffitte", k=1)[0][0] == -3


def test_a_rare_term_outweighs_a_common_one(index):
    # "entreprises" is in two texts, "Boston" in one: Boston's text wins.
    assert index.idf("boston") > index.idf(analyze("entreprises")[0]) > 0
    texts = ["marseille marseille port", "boston marseille", "marseille", "marseille fos"]
    small = bm25(texts, [1, 2, 3, 4])
    assert small.search("marseille boston", k=1)[0][0] == 2


def test_idf_of_unknown_or_unanalysed_terms_is_zero(index):
    assert index.idf("licorne") == 0.0
    assert index.idf("") == 0.0


def test_search_respects_k_and_only_returns_positive_scores(index):
    assert len(index.search("pôle entreprises marseille", k=2)) == 2
    assert index.search("licorne dragon", k=5) == []
    assert index.search("le la les de", k=5) == []  # nothing left after analysis
    assert index.search("", k=5) == []
    assert index.search("pôle", k=0) == []


def test_allowed_restricts_the_results(index):
    everything = dict(index.search("pôle entreprises", k=5))
    assert {11, 0} <= set(everything)
    only = index.search("pôle entreprises", k=5, allowed={0, 7, 999})
    assert {i for i, _ in only} <= {0, 7}
    assert dict(only)[0] == pytest.approx(everything[0])
    assert index.search("pôle entreprises", k=5, allowed=[]) == []
    assert index.search("pôle entreprises", k=5, allowed=[123456]) == []


def test_ids_can_be_any_int64_and_must_be_distinct():
    big = [2**63 - 1, -(2**63), 5]
    idx = bm25(["alpha beta", "gamma", "beta delta"], big)
    assert {i for i, _ in idx.search("beta", k=5)} == {2**63 - 1, 5}
    assert idx.ids == big
    with pytest.raises(InputError, match="distinct"):
        bm25(["a", "b"], [1, 1])
    with pytest.raises(InputError, match="one id per text"):
        bm25(["a", "b"], [1])


def test_an_empty_corpus_builds_and_finds_nothing(tmp_path):
    idx = bm25([], [])
    assert len(idx) == 0
    assert idx.search("pôle", k=5) == []
    assert idx.idf("pol") == 0.0
    BM25Segment.build([], []).save(tmp_path / "bm25")
    assert bm25_loaded(tmp_path / "bm25").search("pôle", k=5) == []


def test_texts_with_only_stopwords_are_counted_but_never_found():
    idx = bm25(["le la les", "", "pôle"], [1, 2, 3])
    assert len(idx) == 3
    assert idx.search("pôle", k=5)[0][0] == 3
    assert bm25(["le la", ""], [1, 2]).search("le pôle", k=5) == []


def bm25_loaded(folder: Path) -> SegmentedBM25:
    return SegmentedBM25([BM25Segment.load(folder)])


def test_save_and_load_give_identical_results(index, tmp_path):
    folder = tmp_path / "nested" / "bm25"
    BM25Segment.build(TEXTS, IDS).save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["postings.json", "postings.npz"]
    with np.load(folder / "postings.npz", allow_pickle=False) as npz:  # loads without pickle
        assert npz["ids"].dtype == np.int64
    loaded = bm25_loaded(folder)
    assert len(loaded) == len(index)
    assert loaded.ids == index.ids
    for query in ["pôle SCS MIT", "entreprises", "Laffitte forum", "smart port Marseille"]:
        assert loaded.search(query, k=5) == index.search(query, k=5)
        assert loaded.search(query, k=5, allowed=[0, 7]) == index.search(query, k=5, allowed=[0, 7])
    for term in ["pol", "entrepris", "boston", "licorne"]:
        assert loaded.idf(term) == index.idf(term)


def test_builds_are_reproducible(tmp_path):
    BM25Segment.build(TEXTS, IDS).save(tmp_path / "a")
    BM25Segment.build(TEXTS, IDS).save(tmp_path / "b")
    for name in ("postings.json", "postings.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _damage(folder: Path, how: str) -> None:
    meta = folder / "postings.json"
    arrays = folder / "postings.npz"
    if how == "no folder":
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    elif how == "no arrays":
        arrays.unlink()
    elif how == "no meta":
        meta.unlink()
    elif how == "truncated arrays":
        arrays.write_bytes(arrays.read_bytes()[:100])
    elif how == "garbage meta":
        meta.write_text("{not json")
    elif how == "wrong format":
        meta.write_text(json.dumps({"format": "something-else"}))
    elif how == "inconsistent counts":
        data = json.loads(meta.read_text())
        data["documents"] += 1
        meta.write_text(json.dumps(data))
    elif how == "vocabulary too short":
        data = json.loads(meta.read_text())
        data["vocab"] = data["vocab"][:-1]
        meta.write_text(json.dumps(data))
    elif how == "vocabulary not strings":
        data = json.loads(meta.read_text())
        data["vocab"] = 12
        meta.write_text(json.dumps(data))
    elif how == "swapped arrays":
        BM25Segment.build(["autre chose"], [1]).save(folder.parent / "other")
        arrays.write_bytes((folder.parent / "other" / "postings.npz").read_bytes())


@pytest.mark.parametrize(
    "how",
    [
        "no folder",
        "no arrays",
        "no meta",
        "truncated arrays",
        "garbage meta",
        "wrong format",
        "inconsistent counts",
        "vocabulary too short",
        "vocabulary not strings",
        "swapped arrays",
    ],
)
def test_a_damaged_index_raises_index_corrupt_error(tmp_path, how):
    folder = tmp_path / "bm25"
    BM25Segment.build(TEXTS, IDS).save(folder)
    _damage(folder, how)
    with pytest.raises(IndexCorruptError):
        BM25Segment.load(folder)


def test_corpus_questions_find_their_release():
    paths = sorted(CORPUS.glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in paths]
    idx = bm25(texts, list(range(len(texts))))
    names = [p.stem for p in paths]

    def top(query: str) -> str:
        return names[idx.search(query, k=1)[0][0]]

    assert (
        top("Qui préside la Fondation Sophia Antipolis ?")
        == "forum-clusters-excellence-sophia-2011"
    )
    assert top("partenariat avec le MIT de Boston") == "scs-mit-alliance-strategique"
    assert top("smart port comité de pilotage") == "smart-port-aix-marseille-2017"
    assert top("Helsinki Nokia") == "marseille-helsinki-partenariat-it"
    assert top("technopole arbois") == "technopole-arbois-mediterranee"


def test_search_is_fast_on_ten_thousand_chunks():
    rng = random.Random(0)
    vocabulary = analyze(" ".join(TEXTS)) + [f"mot{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocabulary, k=120)) for _ in range(10_000)]
    ids = rng.sample(range(-(2**40), 2**40), 10_000)
    started = time.perf_counter()
    idx = bm25(texts, ids)
    build_s = time.perf_counter() - started
    allowed = set(ids[:2000])
    queries = ["pôle compétitivité Marseille mot12 mot999", "entreprises innovantes", "mot7"]
    for q in queries:  # warm the analyser cache
        idx.search(q, k=10)
    timings = []
    for _ in range(20):
        for q in queries:
            started = time.perf_counter()
            idx.search(q, k=100)
            idx.search(q, k=100, allowed=allowed)
            timings.append((time.perf_counter() - started) / 2)
    median = sorted(timings)[len(timings) // 2]
    assert median < 0.005, f"search took {median * 1000:.2f} ms (build {build_s:.1f} s)"


def test_ties_are_broken_by_build_order():
    idx = bm25(["pôle"] * 6, [60, 50, 40, 30, 20, 10])
    assert [i for i, _ in idx.search("pôle", k=3)] == [60, 50, 40]
    assert [i for i, _ in idx.search("pôle", k=10)] == [60, 50, 40, 30, 20, 10]
