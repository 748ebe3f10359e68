"""The query encoder on ONNX Runtime: a question is embedded without importing torch.

Loading torch and sentence-transformers costs a command-line call most of its time
(about 11 s of a 14 s ``sourcier ask`` on 2 cores) although a question is a few tokens.
So the default model's encoder, with its mean pooling and L2 normalisation, is exported
once to ONNX from the locally converted folder (``torch.onnx.export``; nothing is
downloaded) and cached next to it, in ``onnx/query-encoder-<key>/``: the graph
(``model.onnx``, its weights in ``model.onnx.data``, which onnxruntime maps instead of
parsing) and the tokenizer (``tokenizer.npz``, see :mod:`sourcier.query_tokenizer`). The
key hashes the folder's provenance, its BERT config, the weights file's size and time and
this module's export version, so a new conversion or export gets a new folder. It is
written under a temporary name and renamed into place, and only after its embeddings of
:data:`PROBE_QUERIES` agree with torch's to a cosine of at least :data:`MIN_COSINE`. An
export that fails leaves a ``query-encoder-<key>.failed`` note with the reason and the
versions of the packages involved, so later processes use torch without trying again
until one of those packages changes.

At query time, :class:`OnnxQueryEncoder` tokenises and runs the graph on onnxruntime's
CPU provider with a fixed number of threads. Passages are still embedded with torch at
index time; the two agree because the graph is the same model, pooling and prefix.

torch, onnx and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..files import owner_alive, publish_folder, temporary_folder
from .query_tokenizer import QueryTokenizer

logger = logging.getLogger(__name__)

EXPORT_VERSION = 1
OPSET = 17
MIN_COSINE = 0.999
ONNX_DIRNAME = "onnx"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.npz"
INFO_FILE = "encoder.json"
_PREFIX = "query-encoder-"
_PROVENANCE_FILE = "sourcier-model.json"
_MAX_LENGTH = 512

# Checked at every export against torch: short and long, French and English, with
# accents, digits, quotes and a list, as people ask them.
PROBE_QUERIES = (
    "Qui préside le pôle SCS ?",
    "Quel jour le conseil d'administration s'est-il réuni pour approuver l'accord ?",
    "Combien de pôles de compétitivité ont été créés en France en 2005 ?",
    "Où se rendent les acteurs marseillais de l'informatique le 29 septembre ?",
    "Qu'est-ce que le « smart port » d'Aix-Marseille-Provence ?",
    "Et qui le préside ?",
    "alliance stratégique MIT Mobile Experience Lab",
    "Quels sont les objectifs, les partenaires et le calendrier du projet ?",
    "Who chairs the SCS cluster?",
    "How many competitiveness clusters were created in France?",
    "Which company hosts the Marseille delegation in Helsinki?",
    "What is the Sophia Antipolis Foundation and how many agreements has it signed?",
    "When did the steering committee of the smart port meet?",
    "MIT",
    "L'œuvre a coûté 1 200 € ; était-ce prévu dès 2011 ?",
    "Quelle est la capitale de l'Australie ?",
)


def encoder_dir(folder: Path) -> Path:
    """Where the exported query encoder of the model ``folder`` lives (it may not exist).

    Raises:
        OSError: the folder's provenance, config or weights cannot be read.
    """
    folder = Path(folder)
    digest = hashlib.sha256(f"sourcier-onnx-{EXPORT_VERSION}-opset-{OPSET}".encode())
    digest.update((folder / _PROVENANCE_FILE).read_bytes())
    digest.update((folder / "config.json").read_bytes())
    weights = (folder / "model.safetensors").stat()
    digest.update(f"{weights.st_size}-{weights.st_mtime_ns}".encode())
    return folder / ONNX_DIRNAME / f"{_PREFIX}{digest.hexdigest()[:16]}"


def is_complete(target: Path) -> bool:
    """Whether ``target`` holds a published encoder (the rename publishes all at once)."""
    return (target / INFO_FILE).is_file()


def failure_note(target: Path) -> str | None:
    """Why the export to ``target`` failed, or ``None`` if it never did with the packages
    installed now (a note left under other versions of them is ignored)."""
    try:
        note = json.loads(_note_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("versions") != _versions():
        return None
    return str(note.get("reason") or "the export failed")


def _note_path(target: Path) -> Path:
    return target.with_name(target.name + ".failed")


def _versions() -> dict[str, str | None]:
    """The packages an export depends on, and their installed versions."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def export_query_encoder(
    folder: Path,
    *,
    reference: Callable[[list[str]], np.ndarray],
    query_prefix: str,
    threads: int = 1,
) -> Path:
    """Export the query encoder of ``folder`` to ONNX, check it, and cache it.

    Args:
        folder: a converted model folder (``e5model.ensure_e5_small``).
        reference: torch's embedding of already prefixed texts, the model the ONNX
            graph must agree with.
        query_prefix: prepended to :data:`PROBE_QUERIES` for the check.
        threads: onnxruntime threads for the check.

    Returns:
        The published encoder folder (for :class:`OnnxQueryEncoder`).

    Raises:
        ModelError: the export fails or drifts from torch; a ``.failed`` note is left so
            later processes do not try again.
    """
    folder = Path(folder)
    target = encoder_dir(folder)
    if is_complete(target):
        return target
    try:
        target.parent.mkdir(exist_ok=True)
        tmp = temporary_folder(target)
    except OSError as err:
        raise ModelError(
            f"cannot write the ONNX query encoder into {target.parent}: {err}"
        ) from err
    try:
        try:
            _export(folder, tmp / MODEL_FILE)
            QueryTokenizer.from_tokenizer_json(folder / "tokenizer.json").save(tmp / TOKENIZER_FILE)
            encoder = OnnxQueryEncoder(tmp, threads=threads)
            texts = [query_prefix + q for q in PROBE_QUERIES]
            cosine = float(np.min(np.sum(encoder.encode(texts) * reference(texts), axis=1)))
        except ModelError:
            raise
        except Exception as err:  # torch.onnx, onnx and onnxruntime raise many types
            raise ModelError(f"could not export the query encoder to ONNX: {err}") from err
        if not cosine >= MIN_COSINE:
            raise ModelError(
                f"the ONNX query encoder drifts from torch (cosine {cosine:.5f} < {MIN_COSINE})"
            )
        info = {"export_version": EXPORT_VERSION, "opset": OPSET, "min_cosine_to_torch": cosine}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        try:  # another process may have published the same first: it is kept
            publish_folder(tmp, target, complete=is_complete)
        except OSError as err:
            raise ModelError(f"could not publish the ONNX query encoder: {err}") from err
    except ModelError as err:
        _note_failure(target, str(err))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("exported the ONNX query encoder to %s (cosine to torch %.5f)", target, cosine)
    _remove_stale(target)
    return target


def _note_failure(target: Path, reason: str) -> None:
    note = {"reason": reason, "versions": _versions()}
    with contextlib.suppress(OSError):
        _note_path(target).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")


def _remove_stale(keep: Path) -> None:
    """Delete encoders and notes of older keys, and leftovers of dead exports."""
    for entry in keep.parent.iterdir():
        if entry == keep or not entry.name.lstrip(".").startswith(_PREFIX):
            continue
        if entry.name.startswith(".") and owner_alive(entry.name):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _export(folder: Path, dest: Path) -> None:
    """Trace BERT + mean pooling + L2 normalisation into ``dest`` (an ONNX file).

    The word embeddings are 96 M of the 118 M weights; they stay float16 in the graph
    (a Gather, then a Cast: exact, since the folder stores them as float16), which
    halves the file. Everything else computes in float32, as torch does on CPU.
    """
    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(
        str(folder), attn_implementation="eager", dtype=torch.float32, local_files_only=True
    )
    bert.eval()

    class PooledEncoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            weight = model.embeddings.word_embeddings.weight.detach()
            self.register_buffer("words", weight.to(torch.float16).clone())

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            words: Any = self.words
            embeds = torch.nn.functional.embedding(input_ids, words).float()
            hidden = self.model(inputs_embeds=embeds, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            summed = (hidden.last_hidden_state * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    # a padded batch, so the traced graph handles masks of any length
    ids = torch.tensor([[0, 41, 9, 77, 2], [0, 41, 2, 1, 1]], dtype=torch.int64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int64)
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes it fixes
        torch.onnx.export(
            PooledEncoder(bert).eval(),
            (ids, mask),
            str(dest),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    del bert
    import onnx

    # weights beside the graph: onnxruntime maps them (0.2 s to open, not 0.7 s)
    graph = onnx.load(str(dest))
    onnx.save_model(
        graph,
        str(dest),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=dest.name + ".data",
        size_threshold=1024,
    )


class OnnxQueryEncoder:
    """Embeds prefixed texts with an exported encoder on onnxruntime's CPU provider.

    ``encode`` may be called from several threads at once: each call runs on its
    caller's thread plus ``threads - 1`` of onnxruntime's, and nothing is shared but
    read-only state.

    Args:
        folder: an encoder folder (:func:`export_query_encoder`).
        threads: onnxruntime's intra-op threads per call.

    Raises:
        ImportError: onnxruntime or tokenizers is not installed.
        ModelError: the files cannot be loaded.
    """

    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # the full level fuses little more on this graph and costs more at every start
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        # idle workers that spin steal the CPU from everything else on a busy machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        folder = Path(folder)
        self._tokenizer = QueryTokenizer.load(folder / TOKENIZER_FILE)
        try:
            self._session = ort.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types
            raise ModelError(f"could not load the ONNX query encoder {folder}: {err}") from err
        self._pad_id = self._tokenizer.pad_id
        self.threads = threads
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def __repr__(self) -> str:
        return f"OnnxQueryEncoder(dim={self.dim}, threads={self.threads})"

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, right-padded: two ``(len(texts), n)`` int64 arrays."""
        encoded = [self._tokenizer.encode(t) for t in texts]
        width = max(len(ids) for ids in encoded)
        ids = np.full((len(texts), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, row_ids in enumerate(encoded):
            ids[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = 1
        return ids, mask

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (prefix included): ``(len(texts), dim)`` float32, rows of norm 1."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self.tokenize(texts)
        (vectors,) = self._session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.ascontiguousarray(vectors, dtype=np.float32)
