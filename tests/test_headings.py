"""Structure that answers respect: readers mark headings and title lines, answers never
quote them as evidence (unless a title is asked for), chunk labels name their section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sourcier import Settings, ask, build_index, load_index
from sourcier.assistant import Assistant
from sourcier.ingest.chunking import chunk_document
from sourcier.ingest.headings import mark_headings, paragraphs, section_at
from sourcier.ingest.loaders import load_document

HASHING = Settings(model="sourcier/hashing-bow")
SEED = Path(__file__).resolve().parents[1] / "eval" / "seed" / "queries.jsonl"


def test_headings_are_found_in_order_as_whole_paragraphs() -> None:
    text = "RAPPORT 2023\n\nIntroduction\n\nLe texte dit Financement.\n\nFinancement\n\nFin."
    assert [text[s:e] for s, e in paragraphs(text)][2] == "Le texte dit Financement."
    marked = mark_headings(
        text, [("Financement", 2), ("Absent", 1), ("  Introduction ", 1)], "RAPPORT 2023"
    )
    spans = {text[s:e]: level for s, e, level in marked}
    # "Introduction" comes after "Financement" in the reader's order: not found after it
    assert spans == {"RAPPORT 2023": 0, "Financement": 2}
    heading = text.index("Financement\n")
    assert section_at(marked, text.index("Fin.")) == (heading, heading + len("Financement"))
    assert section_at(marked, 3) is None  # the title line opens no section


def _docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("Rapport d'activité 2023", style="Title")
    document.add_heading("Gouvernance", level=1)
    document.add_paragraph("Le conseil s'est réuni quatre fois en 2023 à Marseille.")
    document.add_heading("Financement", level=2)
    document.add_paragraph("Le budget du pôle atteint 3 millions d'euros en 2023.")
    document.save(str(path))
    return path


def test_word_headings_are_marked_and_labels_name_the_section(tmp_path: Path) -> None:
    doc = load_document(_docx(tmp_path / "rapport.docx"))
    assert [(doc.text[s:e], level) for s, e, level in doc.headings] == [
        ("Rapport d'activité 2023", 0),
        ("Gouvernance", 1),
        ("Financement", 2),
    ]
    chunks = chunk_document(doc, chunk_tokens=16, overlap_tokens=0, count_tokens=_words)
    # a heading opens its chunk, never ends one
    assert [chunk.text.split("\n")[0] for chunk in chunks] == [
        "Rapport d'activité 2023",
        "Financement",
    ]
    assert [chunk.label for chunk in chunks] == [
        "Rapport d'activité 2023, § Gouvernance",
        "Rapport d'activité 2023, § Financement",
    ]


def _words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "note.md",
            "# Bilan\n\nLe port grandit.\n\n## Trafic\n\nDes conteneurs.\n",
            ["Bilan", "Trafic"],
        ),
        (
            "page.html",
            "<h1>Bilan</h1><p>Le port grandit.</p><h3>Trafic</h3><p>Des conteneurs.</p>",
            ["Bilan", "Trafic"],
        ),
        (
            "release.txt",
            "LE PORT DE MARSEILLE GRANDIT\n\nLe trafic progresse.\n",
            ["LE PORT DE MARSEILLE GRANDIT"],
        ),
    ],
)
def test_markdown_html_and_text_mark_their_headings(
    tmp_path: Path, name: str, content: str, expected: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    doc = load_document(path)
    assert [doc.text[s:e] for s, e, _ in doc.headings] == expected


def test_odt_and_pptx_headings(tmp_path: Path) -> None:
    from test_office import write_odt, write_pptx

    odt = load_document(write_odt(tmp_path / "c.odt"))
    assert [odt.text[s:e] for s, e, _ in odt.headings] == [
        "Le pôle Mer signe avec Toulon",
        "Financement",
    ]
    deck = load_document(write_pptx(tmp_path / "d.pptx"))
    assert [deck.text[s:e] for s, e, _ in deck.headings] == [
        "Bilan du port de Marseille",
        "Trafic",
        "Chiffres",
    ]


def test_no_seed_answer_quotes_a_title_line(shared_hashing_index: Path) -> None:
    idx = load_index(shared_hashing_index)
    questions = [json.loads(line)["question"] for line in SEED.read_text().splitlines()]
    for question in questions:
        answer = ask(question, index=shared_hashing_index)
        for c in answer.citations:
            document = idx.document(c.doc_id)
            assert c.quote.strip() != document.title.strip(), question
            assert not any(s <= c.start and c.end <= e for s, e, _ in document.headings), question


def test_a_question_about_the_title_may_quote_it(shared_hashing_index: Path) -> None:
    answer = ask(
        "Quel est le titre du communiqué sur le pôle SCS et le Massachusetts Institute of "
        "Technology ?",
        index=shared_hashing_index,
    )
    idx = load_index(shared_hashing_index)
    assert any(c.quote == idx.document(c.doc_id).title for c in answer.citations)


def test_a_heading_is_never_the_evidence_in_either_style(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _docx(folder / "rapport.docx")
    build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
    for style in ("sentences", "concise"):
        assistant = Assistant.open(tmp_path / "index").configure(answer_style=style)
        answer = assistant.ask("Quel est le financement du pôle ?")
        assert answer.citations, style
        assert all(c.quote != "Financement" for c in answer.citations), style
        assert any("3 millions" in c.quote for c in answer.citations), style


def test_pdf_headings_are_the_lines_set_larger_than_the_body(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Rapport 2023", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Le pôle réunit les chantiers navals de Toulon. " * 3)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, "Financement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Le budget du pôle atteint 3 millions d'euros en 2023.")
    pdf.output(str(tmp_path / "rapport.pdf"))
    doc = load_document(tmp_path / "rapport.pdf")
    assert [(doc.text[s:e], level) for s, e, level in doc.headings] == [
        ("Rapport 2023", 0),  # the largest line is the title
        ("Financement", 2),
    ]
    chunks = chunk_document(doc, chunk_tokens=30, overlap_tokens=0, count_tokens=_words)
    assert chunks[-1].label == "Rapport 2023, p. 2, § Financement"


def test_a_model_s_sentence_is_not_backed_by_a_heading(shared_hashing_index: Path) -> None:
    """The verifier of generative answers does not take a heading as evidence either,
    unless the question asks for a title."""
    from test_generative import _model

    idx = load_index(shared_hashing_index)
    doc = next(d for d in idx.snapshot.documents.values() if "scs-mit" in d.source)
    title = doc.text[slice(*doc.headings[0][:2])]
    assert title.startswith("LE POLE MONDIAL SOLUTIONS SECURISEES")
    reply = "Le pôle mondial SCS et le MIT signent un projet d'alliance stratégique [1]."
    question = "Quel projet le pôle SCS et le MIT signent-ils ?"
    answer = ask(question, index=shared_hashing_index, llm=_model(reply))
    assert all(c.quote != title for c in answer.citations)
    asked = "Quel est le titre du communiqué sur l'alliance entre le pôle SCS et le MIT ?"
    answer = ask(asked, index=shared_hashing_index, llm=_model(reply))
    assert answer.mode == "generative" and [c.quote for c in answer.citations] == [title]
