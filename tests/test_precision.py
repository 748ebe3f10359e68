"""Passage embedding in bfloat16 where the CPU computes it natively, float32 elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sourcier import HASHING_MODEL, ConfigError, Settings, build_index, load_index, search
from sourcier.build.chunk import chunk_documents
from sourcier.cli.commands import main
from sourcier.embed import precision
from sourcier.embed.models import load_embedder
from sourcier.ingest.loaders import load_document
from sourcier.paths import bundled_corpus_dir
from sourcier.settings import ModelSettings

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2 = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(
    ("flags", "setting", "device", "expected"),
    [
        (AMX, "auto", "cpu", ("bfloat16", "the CPU has amx_bf16")),
        (AVX512_BF16, "auto", "cpu", ("bfloat16", "the CPU has avx512_bf16")),
        (frozenset({"fp", "asimd", "bf16"}), "auto", "cpu", ("bfloat16", "the CPU has bf16")),
        (AVX2, "auto", "cpu", ("float32", "has no native bfloat16")),
        (frozenset(), "auto", "cpu", ("float32", "has no native bfloat16")),
        (AMX, "auto", "cuda", ("float32", "the default on cuda")),
        (AMX, "float32", "cpu", ("float32", "set in the settings")),
        (AVX2, "bfloat16", "cpu", ("bfloat16", "set in the settings")),
    ],
)
def test_the_precision_follows_what_the_cpu_computes_natively(
    flags: frozenset[str], setting: str, device: str, expected: tuple[str, str]
) -> None:
    chosen = precision.choose(setting, device, flags=flags)
    assert chosen.dtype == expected[0] and expected[1] in chosen.reason
    assert str(chosen) == f"{chosen.dtype} ({chosen.reason})"


def test_a_precision_that_does_not_exist_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"precision \('half'\) must be one of auto, float32"):
        ModelSettings(precision="half")
    result = CliRunner().invoke(
        main, ["index", str(tmp_path), "--index", str(tmp_path / "i"), "--set", "precision=half"]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "must be one of auto, float32" in result.output


def test_the_report_says_what_the_passages_were_embedded_in(
    tmp_path: Path, corpus_dir: Path
) -> None:
    report = build_index(
        corpus_dir,
        index=tmp_path / "i",
        settings=Settings(model=HASHING_MODEL),
        show_progress=False,
    )
    assert report.embedded > 0 and report.precision == "float32"
    result = CliRunner().invoke(main, ["index", str(corpus_dir), "--index", str(tmp_path / "i")])
    assert "0 embedded)" in result.output  # nothing embedded: no precision to tell


def _seed_passages() -> tuple[list[str], list[list[tuple[int, int]]]]:
    embedder = load_embedder(ModelSettings(precision="float32"))
    docs = [load_document(p) for p in sorted(bundled_corpus_dir().glob("*.txt"))]
    passages = chunk_documents(docs, Settings(), embedder.count_tokens)
    return [p.text for p in passages], [p.spans_in_text for p in passages]


@pytest.mark.slow
def test_bfloat16_and_float32_vectors_of_the_seed_chunks_match() -> None:
    """An index stays one index across machines: a passage embedded in bfloat16 on one
    and in float32 on another must give the same vector, to a cosine of 0.9999."""
    texts, spans = _seed_passages()
    assert len(texts) > 20
    full = load_embedder(ModelSettings(precision="float32"))
    brain = load_embedder(ModelSettings(precision="bfloat16"))
    v32, s32 = full.embed_with_sentences(texts, spans, batch_size=16)
    v16, s16 = brain.embed_with_sentences(texts, spans, batch_size=16)
    assert str(brain.passage_precision) == "bfloat16 (set in the settings)"
    assert v16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v16, axis=1), 1.0, rtol=1e-5)
    alone = brain.embed_passages(texts[:4], batch_size=2)  # the other passage path
    np.testing.assert_allclose(np.linalg.norm(alone, axis=1), 1.0, rtol=1e-5)
    assert float(np.sum(alone * v32[:4], axis=1).min()) >= 0.9999
    assert float(np.sum(v32 * v16, axis=1).min()) >= 0.9999
    for a, b in zip(s32, s16, strict=True):
        cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() >= 0.9999
    # questions stay on ONNX Runtime in float32: the same vector whatever the passages ran in
    question = ["Qui préside le pôle SCS ?"]
    np.testing.assert_allclose(
        full.embed_queries(question), brain.embed_queries(question), atol=1e-6
    )


@pytest.mark.slow
def test_an_index_built_in_one_precision_is_extended_in_the_other(
    tmp_path: Path, corpus_dir: Path
) -> None:
    index = tmp_path / "index"
    first = build_index(
        corpus_dir,
        index=index,
        settings=Settings(model=ModelSettings(precision="bfloat16")),
        show_progress=False,
    )
    assert first.precision == "bfloat16 (set in the settings)"
    (corpus_dir / "lavande.txt").write_text(
        "La lavande de Valensole fleurit en juillet sur le plateau.", encoding="utf-8"
    )
    second = build_index(
        corpus_dir,
        index=index,
        settings=Settings(model=ModelSettings(precision="float32")),
        show_progress=False,
    )
    assert second.precision == "float32 (set in the settings)" and second.embedded == 1
    assert load_index(index).manifest["dimension"] == 384
    hit = search("Quand fleurit la lavande ?", index=index, k=1, mode="dense")[0]
    assert hit.source.endswith("lavande.txt")
