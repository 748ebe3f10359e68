"""The checks that make ask() refuse instead of answering beside the point.

- a question asking for a kind of answer with a form of its own (an amount of money,
  a phone number, an e-mail or web address) is answered only by a sentence showing it;
- a sentence that points to content missing from its document ("liste ci-dessous")
  does not answer questions about that content.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sourcier import HASHING_MODEL, Settings, ask, build_index_from_records
from sourcier.answer.candidates import POINTER
from sourcier.answer.question import asked_shape

HASHING = Settings(model=HASHING_MODEL)


@pytest.mark.parametrize(
    ("question", "shape"),
    [
        ("Quel est le budget de la nouvelle chaire Smart Port ?", "an amount of money"),
        ("Combien coûte l'inscription ?", "an amount of money"),
        ("Quel est le chiffre d'affaires de SP3H ?", "an amount of money"),
        ("How much money did the European Union give?", "an amount of money"),
        ("budget chaire smart port", "an amount of money"),
        ("Quel est le numéro de téléphone de Jean-Marc Perrin ?", "a phone number"),
        ("What is the phone number of the press office?", "a phone number"),
        ("Quelle est l'adresse e-mail de Dominique Ruffat ?", "an e-mail address"),
        ("Quel est le site web du pôle SCS ?", "a web address"),
        # asking for something else about the same words
        ("Qui finance le budget du forum ?", None),
        ("Quelle est la part du budget assurée par les États-Unis ?", None),
        ("Pourquoi le budget a-t-il baissé ?", None),
        ("Quel prix Nobel a-t-il reçu ?", None),
        ("Qui préside le pôle SCS ?", None),
        ("Quelle entreprise de téléphonie mobile accueille la rencontre ?", None),
    ],
)
def test_questions_are_read_for_the_kind_of_answer_they_need(question, shape) -> None:
    found = asked_shape(question)
    assert (found.name["en"] if found else None) == shape


@pytest.mark.parametrize(
    ("shape_of", "text", "shows"),
    [
        ("Quel est le budget ?", "un budget de 30 millions de dollars", True),
        ("Quel est le budget ?", "doté de 2,5 M€ sur trois ans", True),
        ("Quel est le budget ?", "le billet coûte 1 200 €", True),
        ("Quel est le budget ?", "le budget atteint 14,2 milliards en 2003", True),
        ("Quel est le budget ?", "71 pôles ont été créés en 2005", False),
        ("Quel est le budget ?", "6 800 entreprises sont mobilisées", False),
        ("Quel est le numéro de téléphone ?", "Tél. +33 (0)6 18 45 15 38", True),
        ("Quel est le numéro de téléphone ?", "joignable au 04 92 96 79 65", True),
        ("Quel est le numéro de téléphone ?", "entre 2010 et 2011, 71 pôles", False),
        ("Quelle est l'adresse e-mail ?", "audrey.rivollet@pole-scs.org", True),
        ("Quelle est l'adresse e-mail ?", "Contacts presse :", False),
        ("Quel est le site web ?", "voir www.pole-scs.org", True),
        ("Quel est le site web ?", "écrire à audrey.rivollet@pole-scs.org", False),
    ],
)
def test_answer_forms_are_recognised(shape_of, text, shows) -> None:
    shape = asked_shape(shape_of)
    assert shape is not None
    assert bool(shape.form.search(text)) is shows


def test_a_budget_nobody_gives_is_refused_with_the_reason(shared_hashing_index: Path) -> None:
    question = "Quel est le budget de la nouvelle chaire Smart Port ?"
    answer = ask(question, index=shared_hashing_index)
    assert answer.refused and not answer.citations
    assert "Aucun passage pertinent ne donne de montant" in answer.answer
    english = ask("What is the budget of the new Smart Port chair?", index=shared_hashing_index)
    assert english.refused
    assert "No relevant passage gives an amount of money" in english.answer


def test_a_phone_number_of_someone_else_is_not_an_answer(shared_hashing_index: Path) -> None:
    # The corpus holds the phone numbers of press contacts, not Jean-Marc Perrin's.
    answer = ask(
        "Quel est le numéro de téléphone de Jean-Marc Perrin ?", index=shared_hashing_index
    )
    assert answer.refused
    assert "numéro de téléphone" in answer.answer


def test_phone_numbers_and_addresses_that_are_there_are_quoted(
    shared_hashing_index: Path,
) -> None:
    phone = ask("Quel est le numéro de téléphone d'Audrey Rivollet ?", index=shared_hashing_index)
    assert not phone.refused
    assert any("92 96 79 65" in c.quote for c in phone.citations)
    mail = ask("Quelle est l'adresse e-mail de Dominique Ruffat ?", index=shared_hashing_index)
    assert not mail.refused
    assert all("@" in c.quote for c in mail.citations)
    assert any("dominique.ruffat@sfr.fr" in c.quote for c in mail.citations)


@pytest.mark.parametrize(
    "question",
    [
        "Quels sont les projets de la liste adoptée par le comité de pilotage du smart port ?",
        "Quels projets le comité de pilotage du smart port a-t-il adoptés ?",
    ],
)
def test_a_list_missing_from_the_text_is_not_answered(
    shared_hashing_index: Path, question: str
) -> None:
    # The smart-port release announces "les projets retenus (liste ci-dessous)"; the list
    # was lost when the page was saved.
    answer = ask(question, index=shared_hashing_index)
    assert answer.refused and not answer.citations
    assert "liste ci-dessous" in answer.answer
    assert "ne figure pas dans le texte" in answer.answer


def test_the_pointing_sentence_still_answers_what_it_says(shared_hashing_index: Path) -> None:
    answer = ask(
        "Que souhaitent développer les membres du comité de pilotage smart port ?",
        index=shared_hashing_index,
    )
    assert not answer.refused
    assert any("volet académique" in c.quote for c in answer.citations)


def _projects(tmp_path: Path, listed: bool) -> Path:
    items = "\n- Projet Alpha : un guichet numérique.\n- Projet Beta : des capteurs.\n"
    text = (
        "Le comité de pilotage a adopté les projets retenus (liste ci-dessous) pour le port."
        + (items if listed else "\n")
        + "\nLa séance a été levée à midi après un déjeuner avec les partenaires."
    )
    path = tmp_path / "index"
    build_index_from_records(
        [{"id": "cr", "title": "Compte rendu du comité", "text": text}],
        index=path,
        settings=HASHING,
        show_progress=False,
    )
    return path


@pytest.mark.parametrize("listed", [True, False])
def test_a_pointer_is_refused_only_when_the_list_is_missing(tmp_path: Path, listed: bool) -> None:
    answer = ask("Quels sont les projets retenus ?", index=_projects(tmp_path, listed))
    assert answer.refused is not listed
    if listed:
        assert any("Projet" in c.quote for c in answer.citations)
    else:
        assert "liste ci-dessous" in answer.answer


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("Outre les projets retenus (liste ci-dessous), les membres…", True),
        ("Voir le programme ci-joint.", True),
        ("The selected projects (listed below) will start in May.", True),
        ("The partners are as follows:", True),
        ("The temperature fell below zero in January.", False),
        ("La Société, ci-après dénommée « le Prestataire », s'engage…", False),
    ],
)
def test_pointers_are_told_from_ordinary_words(text: str, points: bool) -> None:
    # A false pointer would refuse questions the sentence answers.
    assert bool(POINTER.search(text)) is points
