"""Questions built on a false premise are refused, saying what the documents lack."""

from __future__ import annotations

from pathlib import Path

from conftest import HASHING
from sourcier import ask, build_index
from sourcier.answer.question import parse_question
from sourcier.answer.refusal import constraints


def test_a_place_the_documents_do_not_hold_is_refused(shared_hashing_index: Path) -> None:
    answer = ask(
        "Les acteurs marseillais de l'informatique se rendent-ils à Stockholm ?",
        index=shared_hashing_index,
    )
    assert answer.refused and answer.reason == "premise" and not answer.citations
    assert "« Stockholm »" in answer.answer
    en = ask("Who runs the MIT laboratory in Paris?", index=shared_hashing_index)
    assert en.refused and "“Paris”" in en.answer


def test_a_year_or_number_that_is_not_there_is_refused(shared_hashing_index: Path) -> None:
    answer = ask(
        "Combien de pôles de compétitivité ont été créés en 2020 ?", index=shared_hashing_index
    )
    assert answer.refused and answer.reason == "premise" and "2020" in answer.answer
    true_year = ask(
        "Combien de pôles de compétitivité ont été créés en 2005 ?", index=shared_hashing_index
    )
    assert true_year.reason != "premise"


def test_a_follow_up_with_no_earlier_turn_is_not_guessed(shared_hashing_index: Path) -> None:
    alone = ask("Et qui le préside ?", index=shared_hashing_index)
    assert alone.refused and alone.reason == "follow_up" and not alone.citations
    history = [{"role": "user", "content": "Quel accord le pôle SCS a-t-il signé avec le MIT ?"}]
    followed = ask("Et qui le préside ?", index=shared_hashing_index, history=history)
    assert not followed.refused


def test_names_of_the_documents_pass(shared_hashing_index: Path) -> None:
    for question in (
        "Qui préside le pôle SCS ?",
        "Qui dirige le laboratoire MIT Mobile Experience ?",
        "Quand les acteurs marseillais se rendent-ils au siège de Nokia à Helsinki ?",
    ):
        assert ask(question, index=shared_hashing_index).reason != "premise", question


def test_a_near_name_is_not_the_name(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "villages.txt").write_text(
        "Les villages du plateau\n\nLe village de TestA2 compte 312 habitants et une école.\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    build_index(corpus_dir, index=index, settings=HASHING, show_progress=False)
    right = ask("Combien d'habitants compte le village de TestA2 ?", index=index)
    assert not right.refused and any("312" in c.quote for c in right.citations)
    for _ in range(3):  # the same every time
        wrong = ask("Combien d'habitants compte le village de TestB2 ?", index=index)
        assert wrong.refused and wrong.reason == "premise" and "TestB2" in wrong.answer


def test_constraints_are_names_and_numbers_not_question_words() -> None:
    q = parse_question(
        "Quand le 7ème Forum de l'Observatoire Européen a-t-il lieu à Sophia en 2011 ?"
    )
    assert constraints(q) == ["Forum", "Observatoire Européen", "Sophia", "2011"]
    en = parse_question("Which Finnish company hosts the Marseille delegation in November?")
    assert constraints(en) == ["Marseille"]
    decade = parse_question("Qui dirigeait la communauté à la fin des années 80 ?")
    assert constraints(decade) == []
