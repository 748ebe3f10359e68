"""The concise extractive style: the clause or the standalone line that holds the fact."""

from __future__ import annotations

from pathlib import Path

import pytest

from sourcier import Assistant, ConfigError, Settings, load_index
from sourcier.answer.candidates import Candidate
from sourcier.answer.concise import clauses, shows_entity, standalone_lines, trim
from sourcier.answer.question import parse_question
from sourcier.api import ask
from sourcier.types import Chunk, Hit


def _concise(index: Path):
    return Assistant.open(index).configure(answer_style="concise")


def _candidate(text: str, start: int = 0) -> Candidate:
    chunk = Chunk("c", "d", 0, 0, len(text), text, "doc, §1")
    hit = Hit(1, 1.0, chunk, "Titre", "doc.txt")
    return Candidate(hit, start, start + len(text), text, 1.0, 1.0, 0.9)


def test_who_question_gets_the_name_in_one_short_line(shared_hashing_index: Path) -> None:
    answer = ask("Qui préside le pôle SCS ?", index=_concise(shared_hashing_index))
    assert not answer.refused
    assert "Jean-Pierre HENRY" in answer.answer
    assert len(answer.answer) <= 80 and not answer.answer.startswith("Selon")
    idx = load_index(shared_hashing_index)
    for c in answer.citations:
        assert idx.document(c.doc_id).text[c.start : c.end] == c.quote


def test_apposition_keeps_the_name_before_the_role(shared_hashing_index: Path) -> None:
    answer = ask("Qui est le président de l'UPE 13 ?", index=_concise(shared_hashing_index))
    assert answer.answer.startswith("Johan Bencivenga, président de l’UPE 13")


def test_the_sentences_style_is_one_setting_away(shared_hashing_index: Path) -> None:
    sentences = Assistant.open(shared_hashing_index).configure(answer_style="sentences")
    answer = ask("Qui préside le pôle SCS ?", index=sentences)
    assert answer.answer.startswith("Selon les documents :")


def test_clauses_split_at_punctuation_not_inside_numbers() -> None:
    text = "Il a levé 3,2 millions, selon le pôle ; le reste (à venir) suit."
    pieces = [text[s:e] for s, e in clauses(text)]
    assert pieces == ["Il a levé 3,2 millions", "selon le pôle", "le reste", "à venir", "suit."]


def test_trim_cuts_to_the_clause_with_the_asked_thing() -> None:
    q = parse_question("Qui dirige le laboratoire MIT Mobile Experience ?")
    c = _candidate(
        "Federico Casalegno, Directeur du laboratoire du MIT Mobile Experience, rappelle que "
        "les villes européennes sont des terrains d'expérimentation remarquables pour de "
        "nouveaux usages."
    )
    weights = {t: 1.0 for t in q.terms}
    cut = trim(c, q, weights)
    assert cut.text == "Federico Casalegno, Directeur du laboratoire du MIT Mobile Experience"
    assert c.text[cut.start - c.start : cut.end - c.start] == cut.text


def test_the_subject_of_the_question_is_not_its_answer() -> None:
    q = parse_question("Qui préside le pôle SCS ?")
    assert not shows_entity(q, "Président du Pôle SCS.")
    assert shows_entity(q, "commente Jean-Pierre HENRY, Président du Pôle SCS.")
    count = parse_question("Combien d'accords la Fondation a-t-elle signés ?")
    assert shows_entity(count, "la Fondation a signé 45 accords de coopération")
    assert not shows_entity(count, "CICA- 2229 route des Crêtes, créée en 1984")


def test_a_date_line_after_an_announcing_sentence_answers_when() -> None:
    text = (
        "La Fondation vous remercie pour votre participation les :\n Le Forum\n\n"
        "17 & 18 Novembre 2011\n\n\nCICA- 2229 route des Crêtes – 06560 Sophia-Antipolis\n\n"
    )
    anchor = _candidate(text[: text.index(":") + 1])
    when = parse_question("Quelles sont les dates du forum ?")
    lines = [text[s:e] for s, e in standalone_lines(anchor, when, text)]
    assert lines == ["17 & 18 Novembre 2011"]
    both = parse_question("Où et quand aura lieu le forum ?")
    assert [text[s:e] for s, e in standalone_lines(anchor, both, text)] == [
        "17 & 18 Novembre 2011",
        "CICA- 2229 route des Crêtes – 06560 Sophia-Antipolis",
    ]


def test_answer_style_is_validated() -> None:
    with pytest.raises(ConfigError, match="answer_style"):
        Settings().with_(answer_style="short")


def test_a_runners_standalone_line_does_not_replace_a_best_sentence_that_answers(
    shared_hashing_index: Path,
) -> None:
    """The year is in the best sentence; the date line under another sentence's colon
    ("... les :" then "17 & 18 Novembre 2011") is not the answer."""
    answer = ask(
        "En quelle année la Fondation Sophia Antipolis a-t-elle été créée ?",
        index=_concise(shared_hashing_index),
    )
    assert "1984" in answer.answer and "Novembre 2011" not in answer.answer
