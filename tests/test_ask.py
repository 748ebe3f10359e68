"""ask() and search() with the hashing embedder: citations, refusal, language, history, filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from sourcier import Answer, Assistant, InputError, ask, load_index, search
from sourcier.answer.question import is_follow_up, normalise_history, retrieval_query


def _check_citations(answer: Answer, index_path: Path) -> None:
    idx = load_index(index_path)
    for c in answer.citations:
        assert idx.document(c.doc_id).text[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer


def test_the_answer_is_one_line_with_the_asked_fact_marked(shared_hashing_index: Path) -> None:
    answer = ask("Qui préside le pôle SCS ?", index=shared_hashing_index)
    assert not answer.refused
    assert answer.language == "fr"
    assert 1 <= len(answer.citations) <= 3
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    # one line: the best quote's clause, its marker, the runners-up as "see also"
    line = answer.sentences[0].text
    assert line in answer.citations[0].quote
    see_also = " ".join(f"[{c.n}]" for c in answer.citations[1:])
    assert answer.see_also == tuple(c.n for c in answer.citations[1:])
    assert answer.answer == f"{line} [1]" + (f" — Voir aussi {see_also}" if see_also else "")
    assert all(c.quote not in answer.answer for c in answer.citations[1:])
    # the asked fact, marked with its exact span inside the quote of [1]
    assert answer.marked is not None and answer.marked.text == "Jean-Pierre HENRY"
    first = answer.citations[0]
    assert answer.marked.n == 1 and first.start <= answer.marked.start < first.end
    text = load_index(shared_hashing_index).document(answer.marked.doc_id).text
    assert text[answer.marked.start : answer.marked.end] == "Jean-Pierre HENRY"
    assert all(
        c.source.endswith("scs-mit-alliance-strategique.txt")
        for c in answer.citations
        if "HENRY" in c.quote
    )
    _check_citations(answer, shared_hashing_index)


def test_the_sentences_style_still_quotes_every_sentence(shared_hashing_index: Path) -> None:
    glance = ask("Qui préside le pôle SCS ?", index=shared_hashing_index)
    sentences = Assistant.open(shared_hashing_index).configure(answer_style="sentences")
    answer = ask("Qui préside le pôle SCS ?", index=sentences)
    assert answer.answer.startswith("Selon les documents")
    assert all(f"{c.quote} [{c.n}]" in answer.answer for c in answer.citations)
    assert answer.see_also == () and answer.marked is None
    # the same quotes either way: only how they are shown differs
    assert {c.quote for c in answer.citations} == {c.quote for c in glance.citations}


def test_a_question_that_asks_for_no_kind_of_thing_marks_nothing(
    shared_hashing_index: Path,
) -> None:
    answer = ask("Que veut développer la Brain Port Community ?", index=shared_hashing_index)
    assert not answer.refused and answer.marked is None
    assert answer.to_dict()["marked"] is None


def test_quotes_are_sentences_not_whole_chunks(shared_hashing_index: Path) -> None:
    answer = ask("Combien de pôles de compétitivité mondiaux ?", index=shared_hashing_index)
    assert not answer.refused
    for c in answer.citations:
        chunk = load_index(shared_hashing_index).chunk(c.chunk_id)
        assert chunk.start <= c.start < c.end <= chunk.end
        assert len(c.quote) < len(chunk.text) or len(chunk.text) < 200
    assert any("71" in c.quote for c in answer.citations)


def test_out_of_corpus_question_is_refused_in_its_language(shared_hashing_index: Path) -> None:
    fr = ask("Qui a gagné la coupe du monde 2018 ?", index=shared_hashing_index)
    assert fr.refused and not fr.citations
    assert "ne contiennent pas" in fr.answer
    assert fr.hits, "closest passages are still offered"
    en = ask("Who won the football world cup in 2018?", index=shared_hashing_index)
    assert en.refused and en.language == "en"
    assert "do not contain" in en.answer


def test_english_question_gets_english_framing(shared_hashing_index: Path) -> None:
    answer = ask("When do the Marseille companies travel to Helsinki?", index=shared_hashing_index)
    assert answer.language == "en"
    if not answer.refused:
        assert "Voir aussi" not in answer.answer and "Selon" not in answer.answer
        if answer.see_also:
            assert "See also [2]" in answer.answer
        _check_citations(answer, shared_hashing_index)


def test_follow_up_uses_history(shared_hashing_index: Path) -> None:
    history = [
        {"role": "user", "content": "Quel accord le pôle SCS a-t-il signé avec le MIT ?"},
        {"role": "assistant", "content": "Selon les documents : ... [1]"},
    ]
    answer = ask("Et qui le préside ?", index=shared_hashing_index, history=history)
    assert "SCS" in answer.retrieval_query
    assert not answer.refused
    assert any("HENRY" in c.quote for c in answer.citations)
    alone = ask("Et qui le préside ?", index=shared_hashing_index)
    assert alone.retrieval_query == "Et qui le préside ?"


def test_history_shapes_and_follow_up_detection() -> None:
    pairs = normalise_history([("Qu'est-ce que le pôle SCS ?", "Un pôle.")])
    msgs = normalise_history([{"role": "user", "content": "Qu'est-ce que le pôle SCS ?"}])
    assert pairs[0] == msgs[0]
    assert is_follow_up("Et qui le préside ?")
    assert is_follow_up("What about MIT?")
    assert not is_follow_up("Combien de pôles de compétitivité ont été créés en France ?")
    assert retrieval_query("Combien de pôles de compétitivité ont été créés ?", pairs) == (
        "Combien de pôles de compétitivité ont été créés ?"
    )
    with pytest.raises(InputError):
        normalise_history([42])


def test_filters_restrict_documents_and_dates(shared_hashing_index: Path) -> None:
    hits = search(
        "pôle",
        index=shared_hashing_index,
        k=10,
        filters={"sources": ["forum-clusters-excellence-sophia-2011.txt"]},
    )
    assert hits and all(
        h.source.endswith("forum-clusters-excellence-sophia-2011.txt") for h in hits
    )
    dated = search(
        "pôle",
        index=shared_hashing_index,
        k=10,
        filters={"date_from": "2017", "date_to": "2017-12"},
    )
    assert dated and all(h.date_iso and h.date_iso.startswith("2017") for h in dated)
    assert (
        search("pôle", index=shared_hashing_index, filters={"date_from": "1990", "date_to": "1991"})
        == []
    )
    with pytest.raises(InputError, match="date_from"):
        search("pôle", index=shared_hashing_index, filters={"date_from": "juin"})


def test_modes_and_k(shared_hashing_index: Path) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        hits = search("Helsinki Nokia", index=shared_hashing_index, k=3, mode=mode)
        assert 1 <= len(hits) <= 3
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert hits[0].source.endswith("marseille-helsinki-partenariat-it.txt")
    assert len(search("pôle", index=shared_hashing_index, k=7)) == 7


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("   \n", "empty"), ("x" * 2001, "2,001 characters")],
)
def test_bad_questions_are_one_line_errors(
    shared_hashing_index: Path, question: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as err:
        ask(question, index=shared_hashing_index)
    assert "\n" not in str(err.value)


def test_json_form_has_the_contract_fields(shared_hashing_index: Path) -> None:
    d = ask("Qui préside le pôle SCS ?", index=shared_hashing_index).to_dict()
    assert {"question", "answer", "refused", "language", "citations", "hits", "timings_ms"} <= set(
        d
    )
    assert {"n", "doc_id", "title", "source", "chunk_id", "quote", "start", "end"} <= set(
        d["citations"][0]
    )
    assert {
        "rank",
        "score",
        "doc_id",
        "title",
        "source",
        "chunk_id",
        "start",
        "end",
        "text",
    } <= set(d["hits"][0])
    assert {"embed_query", "dense", "bm25", "fusion", "answer", "total"} <= set(d["timings_ms"])


def test_langchain_retriever_returns_cited_documents(shared_hashing_index: Path) -> None:
    from langchain_core.retrievers import BaseRetriever

    from sourcier.langchain import SourcierRetriever

    retriever = SourcierRetriever(index=load_index(shared_hashing_index), k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Helsinki Nokia")
    assert len(docs) == 3
    meta = docs[0].metadata
    assert meta["source"].endswith("marseille-helsinki-partenariat-it.txt")
    text = load_index(shared_hashing_index).document(meta["doc_id"]).text
    assert text[meta["start"] : meta["end"]] == docs[0].page_content
