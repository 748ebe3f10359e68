"""A SentencePiece Unigram tokenizer for questions that loads in milliseconds.

``tokenizers`` builds a trie of the 250,002 XLM-R pieces every time it loads
``tokenizer.json``: about a second on 2 cores, more than the rest of a question's
embedding. A question is a few words, so a dict of pieces and a Viterbi pass over each
word are enough. This module reproduces what ``tokenizers`` (and so sentence-transformers)
does with the model folder's ``tokenizer.json``:

* special tokens (``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>``, the last one eating
  the spaces before it) are split out of the raw text first;
* each remaining stretch goes through the folder's own normaliser and pre-tokeniser,
  rebuilt by ``tokenizers`` from the stored JSON without the vocabulary (whitespace split,
  then ``▁`` before every word);
* each word is cut by the Viterbi search of ``tokenizers``' Unigram model: the same
  scores, the same tie rule (the first path found is kept), unknown characters scored
  ``min(score) - 10`` and consecutive unknowns fused into one ``<unk>``;
* ``<s>`` and ``</s>`` are added and the whole truncated to ``max_length`` tokens.

:meth:`QueryTokenizer.from_tokenizer_json` converts a ``tokenizer.json`` once (into an
``.npz`` written by :meth:`save`); :meth:`load` reads it back. The slow tests check the
ids against sentence-transformers' tokenizer on every seed and PIAF question.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

_UNK_PENALTY = 10.0  # tokenizers' K_UNK_PENALTY
_FORMAT = 1


class QueryTokenizer:
    """Unigram tokenisation of short texts, equal to ``tokenizers`` on the same model.

    Args:
        pieces: the vocabulary, in id order.
        scores: each piece's log probability.
        pipeline: the ``tokenizer.json`` document without its vocabulary (normaliser,
            pre-tokeniser, added tokens, unknown id).
        max_length: ids per text at most, ``<s>`` and ``</s>`` included.

    Raises:
        ModelError: the pipeline is not a Unigram model with ``<s>``/``</s>`` around texts.
    """

    def __init__(
        self,
        pieces: Sequence[str],
        scores: Sequence[float],
        pipeline: dict[str, Any],
        *,
        max_length: int = 512,
    ) -> None:
        from tokenizers import Tokenizer

        model = pipeline.get("model") or {}
        if model.get("type") != "Unigram" or model.get("byte_fallback"):
            raise ModelError("the query tokenizer handles Unigram models without byte fallback")
        if len(pieces) != len(scores) or not pieces:
            raise ModelError("the query tokenizer needs one score per piece")
        self._ids = dict(zip(pieces, range(len(pieces)), strict=True))
        self._scores = list(map(float, scores))
        self._longest = max(map(len, pieces))
        self._unk_id = int(model["unk_id"])
        self._unk_score = min(self._scores) - _UNK_PENALTY
        self.max_length = max_length
        # tokenizers rebuilds the normaliser and pre-tokeniser from the JSON (instant
        # without the vocabulary), so both are exactly the folder's
        stripped = {**pipeline, "model": {**model, "vocab": [[pieces[self._unk_id], 0.0]]}}
        stripped["model"]["unk_id"] = 0
        shell = Tokenizer.from_str(json.dumps(stripped))
        self._normalizer = shell.normalizer
        self._pre_tokenizer = shell.pre_tokenizer
        specials = list(pipeline.get("added_tokens", []))
        if any(t.get("normalized") for t in specials):
            raise ModelError("the query tokenizer handles added tokens matched before normalising")
        self._special_ids = {t["content"]: int(t["id"]) for t in specials}
        alternatives = []
        for t in sorted(specials, key=lambda t: -len(t["content"])):
            left = r"\s*" if t.get("lstrip") else ""
            right = r"\s*" if t.get("rstrip") else ""
            alternatives.append(f"{left}({re.escape(t['content'])}){right}")
        self._special_re = re.compile("|".join(alternatives)) if alternatives else None
        try:
            self._bos = self._special_ids["<s>"]
            self._eos = self._special_ids["</s>"]
        except KeyError as err:
            raise ModelError(f"the query tokenizer needs the special token {err}") from None
        self.pad_id = self._special_ids.get("<pad>", self._unk_id)
        self._pipeline = pipeline

    # ----- conversion and storage ---------------------------------------------

    @classmethod
    def from_tokenizer_json(cls, path: Path, *, max_length: int = 512) -> QueryTokenizer:
        """Read a ``tokenizer.json`` (slow: a one-time conversion).

        The file is read by ``tokenizers`` and written back: its JSON parser may round a
        score one unit in the last place away from Python's, which decides exact ties
        between two cuts, so the scores kept are the ones ``tokenizers`` holds.
        """
        from tokenizers import Tokenizer

        try:
            document = json.loads(Tokenizer.from_file(str(path)).to_str())
        except Exception as err:  # tokenizers raises its own exception type
            raise ModelError(f"cannot read the tokenizer {path}: {err}") from err
        vocab = document.get("model", {}).pop("vocab", None) or []
        pieces = [str(piece) for piece, _score in vocab]
        scores = [float(score) for _piece, score in vocab]
        return cls(pieces, scores, document, max_length=max_length)

    def save(self, path: Path) -> None:
        """Write the tokenizer as one ``.npz`` (the pieces as one NUL-separated text).

        Raises:
            ModelError: a piece contains a NUL character.
        """
        pieces = sorted(self._ids, key=self._ids.__getitem__)
        if len(pieces) != len(self._scores) or any("\0" in p for p in pieces):
            raise ModelError("the query tokenizer cannot store duplicate or NUL pieces")
        with Path(path).open("wb") as fh:
            np.savez(
                fh,
                format=np.array(_FORMAT),
                pieces=np.frombuffer("\0".join(pieces).encode("utf-8"), dtype=np.uint8),
                scores=np.asarray(self._scores, dtype=np.float64),
                pipeline=np.frombuffer(json.dumps(self._pipeline).encode("utf-8"), np.uint8),
                max_length=np.array(self.max_length),
            )

    @classmethod
    def load(cls, path: Path) -> QueryTokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            ModelError: the file is missing, damaged or of another format.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                if int(data["format"]) != _FORMAT:
                    raise ModelError(f"{path} is a query tokenizer of another format")
                pieces = data["pieces"].tobytes().decode("utf-8").split("\0")
                scores = data["scores"].tolist()
                pipeline = json.loads(data["pipeline"].tobytes().decode("utf-8"))
                max_length = int(data["max_length"])
        except (OSError, KeyError, ValueError) as err:
            raise ModelError(f"cannot read the query tokenizer {path}: {err}") from err
        return cls(pieces, scores, pipeline, max_length=max_length)

    # ----- tokenising ---------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with ``<s>`` and ``</s>``, truncated to ``max_length``."""
        ids: list[int] = []
        for stretch, special in self._split_specials(text):
            if special is not None:
                ids.append(special)
                continue
            normalized = self._normalizer.normalize_str(stretch) if self._normalizer else stretch
            if self._pre_tokenizer is None:
                words = [normalized] if normalized else []
            else:
                words = [w for w, _ in self._pre_tokenizer.pre_tokenize_str(normalized)]
            for word in words:
                ids.extend(self._viterbi(word))
        return [self._bos, *ids[: max(0, self.max_length - 2)], self._eos]

    def _split_specials(self, text: str) -> list[tuple[str, int | None]]:
        if self._special_re is None:
            return [(text, None)]
        out: list[tuple[str, int | None]] = []
        start = 0
        for match in self._special_re.finditer(text):
            if match.start() > start:
                out.append((text[start : match.start()], None))
            token = next(g for g in match.groups() if g is not None)
            out.append(("", self._special_ids[token]))
            start = match.end()
        if start < len(text):
            out.append((text[start:], None))
        return out

    def _viterbi(self, word: str) -> list[int]:
        """The best-scoring cut of one word into pieces (tokenizers' encode_optimized)."""
        n = len(word)
        best = [0.0] * (n + 1)
        start_of: list[int | None] = [None] * (n + 1)
        id_of = [0] * (n + 1)
        ids, scores = self._ids, self._scores
        for start in range(n):
            here = best[start]
            single = False
            for end in range(start + 1, min(n, start + self._longest) + 1):
                piece = ids.get(word[start:end])
                if piece is None:
                    continue
                score = here + scores[piece]
                if start_of[end] is None or score > best[end]:
                    best[end], start_of[end], id_of[end] = score, start, piece
                if end == start + 1:
                    single = True
            if not single:
                score = here + self._unk_score
                if start_of[start + 1] is None or score > best[start + 1]:
                    best[start + 1], start_of[start + 1], id_of[start + 1] = score, start, -1
        out: list[int] = []
        end = n
        fused = False
        while end > 0:
            begin = start_of[end]
            assert begin is not None
            if id_of[end] == -1:
                if not fused:  # a run of unknown characters is one <unk>
                    out.append(self._unk_id)
                fused = True
            else:
                out.append(id_of[end])
                fused = False
            end = begin
        out.reverse()
        return out
