"""The glance answer's rules on their own: when the asked fact is marked, and how a long
lead sentence is cut for the answer line (no index needed)."""

from __future__ import annotations

import pytest

from sourcier.analysis import analyze
from sourcier.answer.glance import LONG, compose_line, focus, mark_span
from sourcier.answer.question import parse_question


def _mark(question: str, line: str) -> str | None:
    q = parse_question(question)
    weights = {t: 1.0 for t in q.terms}
    span = mark_span(q, line, 0, len(line), weights)
    return None if span is None else line[span[0] : span[1]]


def test_the_one_asked_fact_beside_the_question_words_is_marked() -> None:
    line = "Jean-Pierre HENRY, Président du Pôle SCS."
    assert _mark("Qui préside le pôle SCS ?", line) == "Jean-Pierre HENRY"
    line = "Le camp du Struthof fut libéré le 9 mai 1945 par les Alliés."
    assert _mark("Quand fut libéré le camp du Struthof ?", line) == "9 mai 1945"


@pytest.mark.parametrize(
    ("question", "line"),
    [
        # two names of the asked kind: unsure
        ("Qui préside le pôle SCS ?", "Jean-Pierre HENRY et Federico Casalegno président le pôle."),
        # the name shares a word with the question: its subject, not its answer
        (
            "Qui est le principal adversaire de Poulidor ?",
            "a pour principal adversaire Raymond Poulidor",
        ),
        # "who is X" asks what X is, not for a name
        ("Qui est Federico Casalegno ?", "Federico Casalegno conclut : merci à Provence Promotion"),
        # too few words of its own to be sure of the line
        ("Quand a-t-il arrêté ?", "l'aventure s'arrête en 1970"),
        # a count is never marked
        ("Combien d'entreprises sont sur le site ?", "110 entreprises sont sur le site."),
        # a fact far from the question's words
        (
            "Quand le conseil a-t-il approuvé l'accord ?",
            "Le conseil a approuvé l'accord, présenté par les membres fondateurs depuis 1995.",
        ),
    ],
)
def test_nothing_is_marked_when_unsure(question: str, line: str) -> None:
    assert _mark(question, line) is None


def test_a_long_sentence_is_shown_from_its_clauses_around_the_question_words() -> None:
    sentence = (
        "Dans le cadre d'une mission économique organisée depuis plusieurs mois avec les "
        "partenaires du territoire, les principaux acteurs marseillais de l'informatique se "
        "rendent au siège de Nokia à Helsinki le 29 septembre prochain, pour une journée "
        "d'échanges, avec la ferme volonté de créer de nouveaux partenariats durables, "
        "et de préparer les suivants."
    )
    q = parse_question(
        "Dans le siège de quelle entreprise les acteurs marseillais se rendent-ils ?"
    )
    s, e = focus(sentence, q, {t: 1.0 for t in q.terms})
    shown = sentence[s:e]
    assert len(sentence) > LONG >= len(shown) and "siège de Nokia" in shown
    assert set(analyze("acteurs marseillais")) <= set(analyze(shown))


def test_the_line_names_its_runners_up_in_the_question_language() -> None:
    assert compose_line("Une phrase.", (2, 3), language="fr") == (
        "Une phrase. [1] — Voir aussi [2] [3]"
    )
    assert compose_line("A line.", (2,), language="en") == "A line. [1] — See also [2]"
    assert compose_line("Seule.", (), language="fr") == "Seule. [1]"
