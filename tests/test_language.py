"""Tests for sourcier.ingest.language: document language and short-question language."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sourcier.ingest.language import detect_language, question_language


@pytest.mark.parametrize(
    "question",
    [
        "Qui préside le pôle SCS ?",
        "Combien de pôles ?",
        "Et qui le préside ?",
        "Quand a lieu le forum?",
        "C'est quoi le MIT ?",
        "Pourquoi Helsinki",
        "Quel est le rôle de Provence Promotion ?",
        "Où se trouve le CICA ?",
        "Comment s'appelle le président de l'UPE 13 ?",
        "MIT ?",
        "SCS",
        "",
        "   ",
        "?",
        "2011",
        "Pierre Laffitte ?",
    ],
)
def test_french_questions_and_unclear_default_to_fr(question: str) -> None:
    assert question_language(question) == "fr"


@pytest.mark.parametrize(
    "question",
    [
        "Who chairs the SCS cluster?",
        "How many clusters were created?",
        "When is the Helsinki trip?",
        "What about MIT?",
        "Where is Sophia-Antipolis?",
        "What's SCS?",
        "Which companies went to Nokia?",
        "Why did the SCS cluster sign with MIT?",
        "Tell me about the smart port",
    ],
)
def test_english_questions(question: str) -> None:
    assert question_language(question) == "en"


def test_question_language_returns_only_fr_or_en() -> None:
    for text in ["Wer ist der Präsident?", "¿Quién preside el clúster?", "日本語の質問", "123"]:
        assert question_language(text) in ("fr", "en")


def test_detect_language_long_texts() -> None:
    fr = (
        "La Fondation Sophia Antipolis joue un rôle majeur au sein du parc scientifique et "
        "technologique. Elle facilite les projets régionaux, nationaux et internationaux."
    )
    en = (
        "The foundation plays a major role in the science and technology park. It helps "
        "regional, national and international projects to grow and find partners."
    )
    assert detect_language(fr) == "fr"
    assert detect_language(en) == "en"


@pytest.mark.parametrize("text", ["", "   \n\n ", "12345 678", "— … ?!"])
def test_detect_language_undetermined(text: str) -> None:
    assert detect_language(text) == "und"


def test_detect_language_returns_two_letter_codes() -> None:
    code = detect_language("Der Vorstand hat heute eine strategische Partnerschaft beschlossen.")
    assert code == "de"


def test_import_does_no_work() -> None:
    # A fresh interpreter imports only this module (not the whole package) and checks
    # that the model is neither imported nor loaded until first use, then loaded once.
    code = (
        "import sys, types; "
        "pkg = types.ModuleType('sourcier'); pkg.__path__ = [sys.argv[1]]; "
        "sys.modules['sourcier'] = pkg; "
        "import sourcier.ingest.language as lang; "
        "assert lang._identifier is None; "
        "assert 'py3langid.langid' not in sys.modules, 'py3langid imported at import time'; "
        "lang.detect_language('Bonjour à tous, voici le communiqué de presse du pôle.'); "
        "first = lang._identifier; "
        "lang.question_language('Qui ?'); "
        "assert first is not None and lang._identifier is first"
    )
    import sourcier.ingest.language

    package_dir = str(Path(sourcier.ingest.language.__file__).parents[1])
    subprocess.run([sys.executable, "-c", code, package_dir], check=True)


def test_the_model_is_decompressed_once_and_a_broken_copy_is_not_fatal(
    tmp_path, monkeypatch
) -> None:
    import sourcier.ingest.language as language
    import sourcier.paths as paths

    monkeypatch.setattr(paths, "default_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(language, "_identifier", None)
    assert language.question_language("Who chairs the SCS cluster?") == "en"
    copies = list((tmp_path / "langid").glob("model-*.npz"))
    assert len(copies) == 1 and not list((tmp_path / "langid").glob(".*"))
    fresh = language._from_decompressed_copy()  # read from the copy this time
    assert fresh.classify("Le pôle est présidé par Jean-Pierre Henry.")[0] == "fr"
    copies[0].write_bytes(b"damaged")
    monkeypatch.setattr(language, "_identifier", None)
    assert language.detect_language("Le pôle est présidé par Jean-Pierre Henry.") == "fr"
