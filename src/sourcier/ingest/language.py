"""Language detection: documents (py3langid) and short questions (French or English).

py3langid's model is loaded on first use, once, and kept in this module; importing
this module does no work. The model ships xz-compressed, and decompressing it took
0.45–0.9 s of every CLI call; it is decompressed once into the cache folder
(``~/.cache/sourcier/langid/``), which then loads in about 0.05 s.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING

from ..words import CUES_EN, CUES_FR, QUESTION_WORDS_EN, QUESTION_WORDS_FR

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

logger = logging.getLogger(__name__)

UNDETERMINED = "und"

# Below this normalised probability a document's language is "und".
_MIN_CONFIDENCE = 0.25
# py3langid reads at most this much of a document: plenty for a confident answer.
_MAX_CHARS = 20_000

_identifier: LanguageIdentifier | None = None
_identifier_lock = threading.Lock()


def _get_identifier() -> LanguageIdentifier:
    """The shared py3langid identifier, built on first use."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE
                from py3langid.langid import LanguageIdentifier as _Identifier

                logger.debug("loading the py3langid model")
                try:
                    _identifier = _from_decompressed_copy()
                except Exception as err:  # noqa: BLE001 - the packaged model always works
                    logger.debug("no decompressed langid model (%s); reading the .xz", err)
                    _identifier = _Identifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


def _from_decompressed_copy() -> LanguageIdentifier:
    """py3langid's identifier from a decompressed copy of its model, made on first use."""
    import lzma
    import os
    import shutil

    import numpy as np
    from py3langid import modelio
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.langid import LanguageIdentifier as _Identifier

    from ..files import write_atomic
    from ..paths import default_cache_dir

    source = MODEL_DIR / MODEL_FILE
    info = source.stat()
    copy = default_cache_dir() / "langid" / f"model-{info.st_size}-{int(info.st_mtime)}.npz"
    if not copy.exists():  # the arrays, stored uncompressed (np.savez, no zlib to undo)
        copy.parent.mkdir(parents=True, exist_ok=True)
        unpacked = copy.with_name(f".{copy.name}.xz-{os.getpid()}")
        try:
            with lzma.open(source) as src, open(unpacked, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            with np.load(unpacked, allow_pickle=False) as packed:
                arrays = {name: packed[name] for name in packed.files}
            write_atomic(copy, lambda fh: np.savez(fh, **arrays))
        finally:
            unpacked.unlink(missing_ok=True)
    with np.load(copy, allow_pickle=False) as data:
        return _Identifier(
            np.asarray(data["ptc"]),
            np.asarray(data["pc"]),
            data["classes"].tolist(),
            modelio._to_array(data["nextmove"]),
            data["out_feat"].tolist(),
            norm_probs=True,
            tk_row=modelio._to_array(data["nextmove_row"]),
        )


def detect_language(text: str) -> str:
    """The language of a document.

    Args:
        text: any text; long texts are judged on their first 20,000 characters.

    Returns:
        An ISO 639-1 code such as ``"fr"`` or ``"en"``, or ``"und"`` when the text
        is empty, has no letters, or no language is likely enough.
    """
    sample = text[:_MAX_CHARS]
    if not any(ch.isalpha() for ch in sample):
        return UNDETERMINED
    lang, confidence = _get_identifier().classify(sample)
    if confidence < _MIN_CONFIDENCE or len(lang) != 2 or not lang.isalpha():
        return UNDETERMINED
    return lang


_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_ACCENTED = re.compile(r"[àâäçéèêëîïôöùûüÿœæ]")
_FR_ELISION = re.compile(r"\b(?:l|d|j|qu|c|n|s|m|t|jusqu|lorsqu|puisqu)['’][^\W\d_]")
_EN_CONTRACTION = re.compile(r"\b[^\W\d_]{2,}['’](?:s|re|ve|ll|d|m)\b|n['’]t\b")
_FR_SPACED_PUNCT = re.compile(r"\w[ \u00a0\u202f][?!:;]")


def question_language(text: str) -> str:
    """The language of a (possibly very short) question: ``"fr"`` or ``"en"``.

    Function words and interrogatives of each language, French elisions (``qu'``,
    ``l'``) and accents, English contractions, French spacing before ``?`` and
    py3langid's fr-versus-en probabilities (weighted by the text's length) are added
    up. French wins ties and unclear cases.

    Args:
        text: the question.

    Returns:
        ``"en"`` when the evidence points to English, otherwise ``"fr"``.
    """
    lowered = text.lower()
    fr = en = 0.0
    for word in _WORD.findall(lowered.replace("’", "'")):
        for part in (word, *word.split("-")) if "-" in word else (word,):
            if part in QUESTION_WORDS_FR:
                fr += 2.0
            elif part in QUESTION_WORDS_EN:
                en += 2.0
            elif part in CUES_FR:
                fr += 1.0
            elif part in CUES_EN:
                en += 1.0
    fr += min(2.0, 1.0 * len(_ACCENTED.findall(lowered)))
    fr += min(2.0, 1.0 * len(_FR_ELISION.findall(lowered)))
    en += min(2.0, 1.0 * len(_EN_CONTRACTION.findall(lowered)))
    if _FR_SPACED_PUNCT.search(text):
        fr += 0.5
    letters = sum(1 for ch in text if ch.isalpha())
    if letters:
        ranked = dict(_get_identifier().rank(text))
        p_fr, p_en = ranked.get("fr", 0.0), ranked.get("en", 0.0)
        if p_fr + p_en > 0.05:  # the model recognises it as one of the two
            share_fr = p_fr / (p_fr + p_en)
            weight = min(3.0, letters / 10)
            fr += weight * share_fr
            en += weight * (1.0 - share_fr)
    return "en" if en - fr > 0.5 else "fr"
