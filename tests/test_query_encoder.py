"""The query path without torch: lazy imports, the Unigram query tokenizer, the ONNX
encoder (and its fallback to torch), and the thread settings."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from sourcier.cache import default_cache
from sourcier.embed import onnx_encoder
from sourcier.embed.query_tokenizer import QueryTokenizer
from sourcier.embed.transformer import SentenceTransformerEmbedder, torch_threads
from sourcier.errors import ConfigError, ModelError
from sourcier.settings import Settings

HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "gradio", "faiss")
REPO = Path(__file__).resolve().parent.parent
EVAL = REPO / "eval"


def _modules_after(code: str) -> set[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    probe = f"{code}\nimport sys, json\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- lazy imports


def test_importing_the_package_and_the_cli_loads_nothing_heavy() -> None:
    assert _modules_after("import sourcier, sourcier.cli") == set()
    assert _modules_after("import sourcier.cli, sys; assert 'numpy' not in sys.modules") == set()


def test_cli_help_lists_the_lazy_commands_without_importing_them() -> None:
    from click.testing import CliRunner

    from sourcier.cli.commands import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("ask", "search", "serve", "eval", "password"):
        assert f"  {name} " in result.output
    assert _modules_after(
        "from sourcier.cli.commands import main\n"
        "try:\n    main(['eval', '--help'])\nexcept SystemExit:\n    pass"
    ).isdisjoint({"torch", "gradio"})


def test_package_names_resolve_on_first_use() -> None:
    import sourcier

    assert sourcier.search is sourcier.api.search
    assert "Index" in dir(sourcier)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = sourcier.no_such_name  # type: ignore[attr-defined]


def test_bm25_search_from_the_cli_never_loads_a_model(shared_hashing_index: Path) -> None:
    args = ["search", "alliance MIT", "--mode", "bm25", "--index", str(shared_hashing_index)]
    loaded = _modules_after(
        "from sourcier.cli.commands import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code"
    )
    assert loaded.isdisjoint({"torch", "sentence_transformers", "transformers", "onnxruntime"})


# --------------------------------------------------------------------------- query tokenizer


def _toy_tokenizer_json(tmp_path: Path) -> Path:
    """A small Unigram tokenizer in the layout of the converted model's tokenizer.json."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "c", "é", "ab", "bc", "abc"]
    pieces += ["▁a", "▁ab", "▁abc", "▁b", "▁c", "ca", "cab", "▁é", "1", "12", "▁1", "<mask>"]
    rng = np.random.default_rng(7)
    scores = [0.0] * 4 + [float(x) for x in -rng.uniform(1, 8, len(pieces) - 4)]
    scores[pieces.index("ab")] = scores[pieces.index("a")] + scores[pieces.index("b")]  # a tie
    tok = Tokenizer(Unigram(list(zip(pieces, scores, strict=True)), unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace("▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace("▁", prepend_scheme="always")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(pieces) - 1}
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False, lstrip=t == "<mask>") for t in ids]
    )
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return path


def test_query_tokenizer_matches_tokenizers_on_a_toy_model(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    path = _toy_tokenizer_json(tmp_path)
    reference = Tokenizer.from_file(str(path))
    reference.enable_truncation(12)
    ours = QueryTokenizer.from_tokenizer_json(path, max_length=12)
    ours.save(tmp_path / "tok.npz")
    loaded = QueryTokenizer.load(tmp_path / "tok.npz")
    rng = np.random.default_rng(0)
    alphabet = list("abcABCé1 2xyz") + ["<s>", " <mask>", "</s>", "ﬁ", "  "]
    texts = ["", " ", "abc", "cabc abcab", "xyz", "axxb", "a<mask>b", "é É", "12 112"]
    texts += ["".join(rng.choice(alphabet, size=rng.integers(1, 14))) for _ in range(2000)]
    for text in texts:
        expected = reference.encode(text).ids
        assert ours.encode(text) == expected, text
        assert loaded.encode(text) == expected, text
    assert ours.pad_id == 1


def test_query_tokenizer_refuses_other_models(tmp_path: Path) -> None:
    path = _toy_tokenizer_json(tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["model"]["type"] = "BPE"
    with pytest.raises(ModelError, match="Unigram"):
        QueryTokenizer([], [], document)
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="cannot read the query tokenizer"):
        QueryTokenizer.load(tmp_path / "bad.npz")


# --------------------------------------------------------------------------- fallback, threads


def _fake_model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sourcier-model.json").write_text('{"converter_version": 2}', encoding="utf-8")
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


class _TorchlessEmbedder(SentenceTransformerEmbedder):
    """Stands in for torch: records the texts it is asked to embed."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder), query_prefix="query: ", onnx_queries=True)
        self.torch_calls: list[list[str]] = []
        self._dim = 3

    def _load_torch(self) -> object:
        return object()

    def _encode(self, texts: list[str], batch_size: int, *, threads: int | None) -> np.ndarray:
        self.torch_calls.append(texts)
        return np.tile(np.array([1.0, 0.0, 0.0], np.float32), (len(texts), 1))


def test_without_onnxruntime_queries_fall_back_to_torch_with_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    emb = _TorchlessEmbedder(_fake_model_folder(tmp_path))
    with caplog.at_level(logging.INFO, logger="sourcier.embed.transformer"):
        vectors = emb.embed_queries(["Qui ?", "Quand ?"])
        emb.embed_queries(["Où ?"])
    assert vectors.shape == (2, 3)
    assert emb.torch_calls == [["query: Qui ?", "query: Quand ?"], ["query: Où ?"]]
    assert emb.query_backend == "torch"
    notes = [r.getMessage() for r in caplog.records if "onnxruntime" in r.getMessage()]
    assert notes == ["onnxruntime is not installed: questions are embedded with torch"]


def test_a_failed_export_is_noted_and_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("onnxruntime")
    calls: list[Path] = []

    def broken_export(folder: Path, dest: Path) -> None:
        calls.append(dest)
        raise RuntimeError("tracing failed")

    monkeypatch.setattr(onnx_encoder, "_export", broken_export)
    folder = _fake_model_folder(tmp_path)
    first = _TorchlessEmbedder(folder)
    with caplog.at_level(logging.INFO, logger="sourcier.embed.transformer"):
        assert first.embed_queries(["Qui ?"]).shape == (1, 3)
        second = _TorchlessEmbedder(folder)
        second.embed_queries(["Qui ?"])
    assert len(calls) == 1 and first.query_backend == second.query_backend == "torch"
    target = onnx_encoder.encoder_dir(folder)
    assert not target.exists()
    assert "tracing failed" in (onnx_encoder.failure_note(target) or "")
    assert [p.name for p in target.parent.iterdir()] == [target.name + ".failed"]
    assert any("tracing failed" in r.getMessage() for r in caplog.records)

    # another torch, onnx or onnxruntime may export fine: the note no longer holds
    upgraded = {**onnx_encoder._versions(), "torch": "99.0"}
    monkeypatch.setattr(onnx_encoder, "_versions", lambda: upgraded)
    assert onnx_encoder.failure_note(target) is None
    _TorchlessEmbedder(folder).embed_queries(["Qui ?"])
    assert len(calls) == 2


def test_the_encoder_key_follows_the_model_folder(tmp_path: Path) -> None:
    folder = _fake_model_folder(tmp_path)
    key = onnx_encoder.encoder_dir(folder)
    assert key == onnx_encoder.encoder_dir(folder)
    assert key.parent == folder / "onnx" and key.name.startswith("query-encoder-")
    (folder / "sourcier-model.json").write_text('{"converter_version": 3}', encoding="utf-8")
    assert onnx_encoder.encoder_dir(folder) != key


def test_torch_threads_are_set_for_the_call_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    fake = types.SimpleNamespace(get_num_threads=lambda: 2, set_num_threads=calls.append)
    monkeypatch.setitem(sys.modules, "torch", fake)
    with torch_threads(1):
        assert calls == [1]
    assert calls == [1, 2]
    with torch_threads(None), torch_threads(2):
        pass
    assert calls == [1, 2]  # None and the current count change nothing


def test_query_threads_reach_the_embedder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sourcier.embed import e5model

    monkeypatch.setattr(e5model, "ensure_e5_small", lambda cache_dir: tmp_path / "fake-e5")
    one = default_cache().embedder(Settings().model, cache_dir=tmp_path)
    two = default_cache().embedder(Settings().with_(query_threads=2).model, cache_dir=tmp_path)
    assert isinstance(one, SentenceTransformerEmbedder)
    assert isinstance(two, SentenceTransformerEmbedder)
    assert (one.query_threads, two.query_threads) == (1, 2)
    assert one.onnx_queries and two.onnx_queries
    assert default_cache().embedder(Settings().model, cache_dir=tmp_path) is one
    with pytest.raises(ConfigError, match=r"query_threads \(0\)"):
        Settings().with_(query_threads=0)
    other = default_cache().embedder(
        Settings().with_(model="someone/minilm", query_threads=3).model
    )
    assert isinstance(other, SentenceTransformerEmbedder)
    assert other.query_threads == 3 and not other.onnx_queries


# --------------------------------------------------------------------------- the real model


def _questions() -> list[str]:
    """French and English questions people ask: the seed set and 300 PIAF questions."""
    seed = [json.loads(line)["question"] for line in (EVAL / "seed" / "queries.jsonl").open()]
    piaf = [json.loads(line)["question"] for line in (EVAL / "piaf" / "queries.jsonl").open()]
    return seed + piaf[::12][:300]


@pytest.fixture(scope="module")
def torch_e5() -> SentenceTransformerEmbedder:
    """The default model with queries on torch, the reference."""
    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    folder = ensure_e5_small(default_cache_dir())
    return SentenceTransformerEmbedder(
        str(folder), query_prefix="query: ", passage_prefix="passage: "
    )


@pytest.fixture(scope="module")
def onnx_e5(torch_e5: SentenceTransformerEmbedder) -> onnx_encoder.OnnxQueryEncoder:
    folder = Path(torch_e5.name_or_path)
    target = onnx_encoder.export_query_encoder(
        folder,
        reference=lambda texts: torch_e5._encode(texts, 32, threads=None),
        query_prefix="query: ",
    )
    return onnx_encoder.OnnxQueryEncoder(target, threads=1)


@pytest.mark.slow
def test_onnx_queries_agree_with_torch(
    torch_e5: SentenceTransformerEmbedder, onnx_e5: onnx_encoder.OnnxQueryEncoder
) -> None:
    questions = _questions()
    expected = torch_e5.embed_queries(questions)
    got = np.concatenate([onnx_e5.encode(["query: " + q]) for q in questions])
    batched = onnx_e5.encode(["query: " + q for q in questions[:40]])  # padded together
    assert got.shape == expected.shape == (len(questions), 384) and got.dtype == np.float32
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= onnx_encoder.MIN_COSINE, questions[int(cosines.argmin())]
    assert np.sum(batched * got[:40], axis=1).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_query_tokenizer_matches_sentence_transformers(
    torch_e5: SentenceTransformerEmbedder, onnx_e5: onnx_encoder.OnnxQueryEncoder
) -> None:
    tokenizer = torch_e5._load_torch().tokenizer
    texts = ["query: " + q for q in _questions()]
    texts += [
        "Ｆｕｌｌｗｉｄｔｈ ﬁ ½, and\ttabs\nnewlines",
        "日本語のテキストです。",
        "a <mask> b",
        "x " * 600,
    ]
    expected = tokenizer(texts, truncation=True, max_length=512)["input_ids"]
    ids, mask = onnx_e5.tokenize(texts)
    for row, text in enumerate(texts):
        assert ids[row, : mask[row].sum()].tolist() == expected[row], text


@pytest.mark.slow
def test_ask_with_the_real_model_never_imports_torch(real_index) -> None:
    from sourcier.embed.e5model import ensure_e5_small
    from sourcier.paths import default_cache_dir

    folder = ensure_e5_small(default_cache_dir())
    assert onnx_encoder.is_complete(onnx_encoder.encoder_dir(folder))  # made at index time
    loaded = _modules_after(
        "from sourcier import ask\n"
        f"answer = ask('Qui préside le pôle SCS ?', index={str(real_index.path)!r})\n"
        "assert 'HENRY' in answer.answer.upper(), answer.answer"
    )
    assert "onnxruntime" in loaded
    assert loaded.isdisjoint({"torch", "sentence_transformers", "transformers"})
