"""The French catalogue: real errors said in French, English fallback, no code left out."""

from __future__ import annotations

import ast
import shutil
import string
from pathlib import Path

import pytest

from sourcier import (
    HASHING_MODEL,
    ConfigError,
    Filters,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    LoadError,
    Settings,
    SourcierError,
    build_index,
    load_index,
    search,
)
from sourcier.answer.question import normalise_history, parse_question
from sourcier.ingest.loaders import load_document
from sourcier.messages import FRENCH, say, say_reason, say_skipped
from sourcier.storage import generations

HASHING = Settings(model=HASHING_MODEL)
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sourcier"
NNBSP = "\u202f"


def _plain(text: str) -> str:
    """French spacing folded to plain spaces, for readable assertions."""
    return text.replace(NNBSP, " ").replace("\u00a0", " ")


def _raised(fn, *args, **kwargs) -> SourcierError:
    with pytest.raises(SourcierError) as info:
        fn(*args, **kwargs)
    return info.value


def test_question_errors_in_french() -> None:
    empty = _raised(parse_question, "   ")
    assert empty.code == "question_empty"
    assert str(empty) == "the question is empty"
    assert _plain(say(empty, "fr")) == "La question est vide : écrivez-la avant de l’envoyer."
    assert NNBSP + ":" in say(empty, "fr")

    long = _raised(parse_question, "x" * 2001)
    assert long.code == "question_too_long" and long.params["limit"] == 2000
    assert _plain(say(long, "fr")) == (
        "La question fait 2 001 caractères, au-delà de la limite de 2 000 : raccourcissez-la."
    )

    typed = _raised(parse_question, 42)
    assert typed.code == "question_type"
    assert "pas int" in say(typed, "fr")

    history = _raised(normalise_history, [object()])
    assert history.code == "history_invalid" and "historique" in say(history, "fr")


def test_filter_errors_in_french() -> None:
    month = _raised(Filters, date_from="2011-13")
    assert month.code == "filter_date_invalid"
    assert "2011-13" in str(month) and "no month 13" in str(month)
    assert _plain(say(month, "fr")) == (
        "La date de début « 2011-13 » n’existe pas dans le calendrier : vérifiez le mois "
        "(01 à 12) et le jour."
    )
    day = _raised(Filters, date_to="2011-02-30")
    assert "February 2011 has 28 days" in str(day)
    assert "date de fin « 2011-02-30 »" in _plain(say(day, "fr"))

    shape = _raised(Filters.coerce, {"date_from": "demain"})
    assert shape.code == "filter_date_format"
    assert "« demain »" in _plain(say(shape, "fr"))

    order = _raised(Filters, date_from="2012", date_to="2011")
    assert order.code == "filter_date_order" and "inversez-les" in say(order, "fr")

    unknown = _raised(Filters.coerce, {"auteur": "moi"})
    assert unknown.code == "filters_unknown" and "auteur" in say(unknown, "fr")
    assert _raised(Filters.coerce, ["doc"]).code == "filters_type"

    ids = _raised(Filters.coerce, {"doc_ids": "abc123"})
    assert ids.code == "filter_list_type"
    assert _plain(say(ids, "fr")).startswith("Le filtre doc_ids doit être une liste de textes")


def test_calendar_dates_are_accepted_and_normalised() -> None:
    assert Filters(date_from="2012-02-29", date_to="2012-12").date_from == "2012-02-29"
    assert Filters(doc_ids=["a", "b"]).doc_ids == ("a", "b")
    with pytest.raises(InputError, match="February 2011 has 28 days"):
        Filters(date_from="2011-02-29")
    with pytest.raises(InputError, match="no month 00"):
        Filters(date_from="2011-00")
    with pytest.raises(InputError, match="must look like"):
        Filters(date_from="2011\n")


def test_search_options_in_french(shared_hashing_index: Path) -> None:
    k = _raised(search, "pôle", index=shared_hashing_index, k=0)
    assert k.code == "k_invalid" and "entre 1 et 100" in say(k, "fr")
    mode = _raised(search, "pôle", index=shared_hashing_index, mode="fuzzy")
    assert mode.code == "mode_invalid" and "« fuzzy »" in _plain(say(mode, "fr"))
    query = _raised(search, "  ", index=shared_hashing_index)
    assert _plain(say(query, "fr")).startswith("La recherche est vide")


def test_index_errors_in_french(tmp_path: Path, shared_hashing_index: Path) -> None:
    missing = _raised(load_index, tmp_path / "nothing")
    assert isinstance(missing, IndexNotFoundError) and missing.code == "index_not_found"
    assert _plain(say(missing, "fr")).startswith(f"Aucun index dans {tmp_path / 'nothing'} :")

    mismatch = _raised(load_index, shared_hashing_index, settings=Settings())
    assert isinstance(mismatch, IndexMismatchError) and mismatch.code == "index_mismatch_model"
    assert "construit avec le modèle sourcier/hashing-bow" in say(mismatch, "fr")

    copy = tmp_path / "copy"
    shutil.copytree(shared_hashing_index, copy)
    gen = generations.current_generation(copy)
    assert gen is not None
    (generations.live_segments(copy)[0] / "dense" / "ids.npy").write_bytes(b"not an array")
    damaged = _raised(load_index, copy)
    assert isinstance(damaged, IndexCorruptError) and damaged.code == "index_corrupt"
    assert "\n" not in str(damaged)
    assert f"sourcier index FOLDER --index {copy}" in str(damaged)
    assert "reconstruisez-le" in say(damaged, "fr")

    shutil.rmtree(gen)
    gone = _raised(load_index, copy)
    assert gone.code == "index_generation_missing"
    assert f"CURRENT désigne {gen.name}" in say(gone, "fr")


def test_load_and_skip_reasons_in_french(tmp_path: Path) -> None:
    (tmp_path / "vide.txt").write_bytes(b"")
    empty = _raised(load_document, tmp_path / "vide.txt")
    assert isinstance(empty, LoadError) and empty.code == "empty"
    assert say(empty, "fr") == "Fichier vide"

    big = tmp_path / "gros.txt"
    big.write_text("du texte " * 300)
    too_large = _raised(load_document, big, max_bytes=1024)
    assert too_large.code == "too_large"
    assert _plain(say(too_large, "fr")) == "Fichier de 2,6 Ko, au-delà de la limite de 1 Ko"

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("Le pôle Mer réunit des entreprises du littoral.")
    (folder / "copie.txt").write_text("Le pôle Mer réunit des entreprises du littoral.")
    (folder / "tableau.xlsx").write_bytes(b"PK")
    (folder / "blanc.md").write_text("   \n\n")
    report = build_index(folder, index=tmp_path / "idx", settings=HASHING, show_progress=False)
    by_name = {Path(s.path).name: s for s in report.skipped}
    assert {n: s.code for n, s in by_name.items()} == {
        "note.txt": "duplicate",  # read after copie.txt
        "tableau.xlsx": "unsupported_type",
        "blanc.md": "empty",
    }
    assert by_name["tableau.xlsx"].reason == "unsupported file type .xlsx"
    assert _plain(say_skipped(by_name["tableau.xlsx"], "fr")).startswith(
        "Type de fichier non pris en charge (.xlsx) : utilisez"
    )
    assert say_skipped(by_name["note.txt"], "fr").startswith("Même contenu que ")
    assert report.to_dict()["skipped"][0].keys() == {"path", "reason", "code", "params", "kept"}
    entry = by_name["tableau.xlsx"]
    assert say_reason(entry.code, entry.reason, "fr", **entry.params) == say_skipped(entry, "fr")


def test_english_is_the_fallback() -> None:
    err = _raised(parse_question, "")
    assert say(err) == say(err, "en") == str(err)
    assert say(ValueError("plain"), "fr") == "plain"
    uncoded = ConfigError("chunk_tokens (3) must be between 16 and 500")
    assert uncoded.code is None and say(uncoded, "fr") == str(uncoded)
    # a template whose params are missing falls back to English rather than crash
    broken = InputError("the question is 9 characters long", code="question_too_long")
    assert say(broken, "fr") == str(broken)
    assert say_reason(None, "file is odd", "fr") == "file is odd"
    assert say_reason("not-a-code", "file is odd", "fr") == "file is odd"


def test_errors_keep_their_code_through_pickling() -> None:
    import pickle

    err = _raised(Filters, date_from="2011-13")
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.code, again.params) == (str(err), err.code, err.params)


# ----- the catalogue against the code ------------------------------------------------------

_ERRORS = {
    "SourcierError",
    "ConfigError",
    "InputError",
    "LoadError",
    "IndexNotFoundError",
    "IndexMismatchError",
    "IndexCorruptError",
    "ModelError",
}


def _coded_calls() -> list[tuple[str, str, set[str] | None]]:
    """``(where, code, param names or None when not literal)`` for every coded error and
    every coded ``Skipped`` built in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            where = f"{path.name}:{node.lineno}"
            keywords = {k.arg: k.value for k in node.keywords}
            if node.func.id in _ERRORS and "code" in keywords:
                code = keywords["code"]
                params = {k for k in keywords if k not in ("code", None)}
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.append((where, code.value, params))
            elif node.func.id == "Skipped":
                code = node.args[2] if len(node.args) > 2 else keywords.get("code")
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    given = node.args[3] if len(node.args) > 3 else keywords.get("params")
                    params: set[str] | None = set()
                    if isinstance(given, ast.Dict):
                        params = {k.value for k in given.keys if isinstance(k, ast.Constant)}
                    elif given is not None:
                        params = None
                    found.append((where, code.value, params))
    return found


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_code_raised_in_the_package_has_a_french_template() -> None:
    calls = _coded_calls()
    assert len(calls) >= 40  # the scan really sees the raises
    missing = sorted({f"{where} {code}" for where, code, _ in calls if code not in FRENCH})
    assert not missing, f"codes without a French template: {missing}"


def test_every_template_gets_the_params_it_names() -> None:
    wrong = []
    for where, code, params in _coded_calls():
        if params is not None and code in FRENCH and not _placeholders(FRENCH[code]) <= params:
            wrong.append(
                f"{where} {code}: has {sorted(params)}, template needs "
                f"{sorted(_placeholders(FRENCH[code]))}"
            )
    assert not wrong, wrong


def test_every_template_is_used_by_the_package() -> None:
    used = {code for _, code, _ in _coded_calls()}
    assert not sorted(set(FRENCH) - used), "templates no code uses"


def test_templates_are_one_sentence_without_english_quotes() -> None:
    for code, template in FRENCH.items():
        assert "\n" not in template, code
        assert '"' not in template and "'" not in template, code  # « » and ’ in French
        assert template.count(". ") == 0, code
