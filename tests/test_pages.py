"""Pages through the whole path: a PDF's page boundaries survive cleaning exactly, and
every citation, hit, CLI line, source card and retriever document names its page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sourcier import Settings, ask, build_index, load_index, search
from sourcier.ingest.cleaning import clean_text
from sourcier.ingest.loaders import load_document
from sourcier.ingest.pages import join_pages, page_label, page_span
from sourcier.langchain import SourcierRetriever
from sourcier.ui.render import render_sources

HASHING = Settings(model="sourcier/hashing-bow")

PAGES = [
    "Rapport d'activité du pôle Mer Méditerranée.\n"
    "Le pôle réunit les chantiers navals de Toulon et les laboratoires de Marseille.",
    "Le financement du pôle atteint 3 millions d'euros en 2023.\n"
    "La présidente du pôle Mer est Marie Curie depuis le mois de mars.",
    "La lavande de Valensole fleurit en juillet sur le plateau.",
]

page_text = st.lists(
    st.sampled_from([*"abcdéè ÀZ.,;-\n\t\u00a0\u200b*[]:", "\n\n", "HYPERLINK ", "x" * 30, "mot "]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(page_text, max_size=6))
def test_page_starts_are_exact_offsets_into_the_cleaned_text(pages: list[str]) -> None:
    text, starts = join_pages(pages)
    assert clean_text(text) == text  # the joined text is cleaned text
    assert len(starts) == len(pages)
    assert list(starts) == sorted(starts) and (not starts or starts[0] == 0)
    for number, raw in enumerate(pages, start=1):
        cleaned = clean_text(raw)
        start = starts[number - 1]
        if cleaned:
            assert text[start : start + len(cleaned)] == cleaned
            assert page_span(starts, start, start + len(cleaned)) == (number, number)
    named = {page_span(starts, i, i + 1)[0] for i in range(len(text))}
    assert named <= {n for n, raw in enumerate(pages, start=1) if clean_text(raw)}


def test_page_span_and_label() -> None:
    starts = (0, 10, 10, 25)  # page 2 is empty: it starts where page 3 does
    assert page_span((), 3, 5) == (None, None)
    assert page_span(starts, 0, 10) == (1, 1)
    assert page_span(starts, 5, 12) == (1, 3) and page_span(starts, 10, 11) == (3, 3)
    assert page_span(starts, 20, 30) == (3, 4)
    assert page_label(17, 17) == "p. 17" and page_label(17, 18) == "pp. 17-18"
    assert page_label(None, None) == ""


def write_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    for page in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 8, page)
    pdf.output(str(path))
    return path


def test_a_pdf_keeps_its_pages(tmp_path: Path) -> None:
    doc = load_document(write_pdf(tmp_path / "rapport.pdf", PAGES))
    assert len(doc.pages) == 3
    for number, page in enumerate(PAGES, start=1):
        first_line = page.split("\n")[0]
        at = doc.text.index(first_line)
        assert doc.pages[number - 1] == at
        assert doc.page_span(at, at + len(first_line)) == (number, number)


def test_a_date_label_cut_from_the_start_moves_the_pages(tmp_path: Path) -> None:
    pages = [
        "date 2017-11 Les membres du pôle se réunissent à Nice.",
        "Deuxième page du compte rendu.",
    ]
    doc = load_document(write_pdf(tmp_path / "cr.pdf", pages))
    assert doc.date_iso == "2017-11" and doc.text.startswith("Les membres")
    assert doc.text[doc.pages[1] :] == "Deuxième page du compte rendu."


def test_a_broken_page_is_named_and_the_others_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf import PageObject

    real = PageObject.extract_text

    def extract(self: PageObject, *args: object, **kwargs: object) -> str:
        if "Valensole" in real(self):
            raise ValueError("broken content stream")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", extract)
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "rapport.pdf", PAGES)
    report = build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
    assert report.indexed == (str(folder / "rapport.pdf"),)
    assert report.notes == (
        (str(folder / "rapport.pdf"), "page 3 could not be read; the other pages are indexed"),
    )
    doc = next(iter(load_index(tmp_path / "index").snapshot.documents.values()))
    assert "Valensole" not in doc.text and "Marie Curie" in doc.text


@pytest.fixture(scope="module")
def pdf_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pdf") / "docs"
    folder.mkdir()
    write_pdf(folder / "rapport.pdf", PAGES)
    (folder / "note.txt").write_text("La présidente du club de voile est Jeanne Martin.")
    index = folder.parent / "index"
    build_index(folder, index=index, settings=HASHING, show_progress=False)
    return index


def test_a_citation_names_its_page(pdf_index: Path) -> None:
    answer = ask("Qui est la présidente du pôle Mer ?", index=pdf_index)
    assert not answer.refused
    cited = next(c for c in answer.citations if "Marie Curie" in c.quote)
    assert (cited.page, cited.page_end) == (2, 2)
    document = load_index(pdf_index).document(cited.doc_id)
    assert document.text[cited.start : cited.end] == cited.quote
    as_dict = answer.to_dict()["citations"][cited.n - 1]
    assert (as_dict["page"], as_dict["page_end"]) == (2, 2)
    for c in answer.citations:  # a text file's citation has no page
        if c.source.endswith("note.txt"):
            assert (c.page, c.page_end) == (None, None)


def test_hits_and_the_retriever_name_their_pages(pdf_index: Path) -> None:
    hits = search("financement du pôle en 2023", index=pdf_index, k=5)
    top = hits[0]
    assert top.source.endswith("rapport.pdf") and top.page is not None
    first, last = top.page, top.page_end
    assert top.to_dict()["page"] == first and top.to_dict()["page_end"] == last
    document = load_index(pdf_index).document(top.chunk.doc_id)
    assert document.page_span(top.chunk.start, top.chunk.end) == (first, last)
    docs = SourcierRetriever(index=pdf_index, k=5).invoke("financement du pôle en 2023")
    assert docs[0].metadata["page"] == first
    text_docs = [d for d in docs if d.metadata["source"].endswith("note.txt")]
    assert all(d.metadata["page"] is None for d in text_docs)


def test_the_source_card_shows_the_page(pdf_index: Path) -> None:
    answer = ask("Qui est la présidente du pôle Mer ?", index=pdf_index)
    html = render_sources(answer, load_index(pdf_index))
    assert '<span class="src-page">p. 2</span>' in html


def _ask(index: Path, *options: str) -> subprocess.CompletedProcess[str]:
    question = "Qui est la présidente du pôle Mer ?"
    command = [sys.executable, "-m", "sourcier.cli", "ask", question, "--index", str(index)]
    proc = subprocess.run([*command, *options], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_cli_prints_the_page_beside_the_span(pdf_index: Path) -> None:
    line = next(line for line in _ask(pdf_index).stdout.splitlines() if "rapport.pdf" in line)
    assert "rapport.pdf, p. 2, chars " in line
    citations = json.loads(_ask(pdf_index, "--json").stdout)["citations"]
    assert any(c["page"] == 2 for c in citations)


def test_an_index_of_segment_version_2_reads_and_its_pdfs_gain_pages_at_the_next_sync(
    tmp_path: Path,
) -> None:
    import sqlite3

    from sourcier.ingest.readers import READERS, Paged
    from sourcier.ingest.readers.pdf import read_pdf
    from sourcier.storage import segment

    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "rapport.pdf", PAGES)
    index = tmp_path / "index"

    def joined(data: bytes) -> tuple[str, None]:  # how PDFs were read before pages
        read = read_pdf(data)
        assert isinstance(read, Paged)
        return "\n\n".join(p for p in read.pages if p.strip()), None

    READERS.register(".pdf", joined)
    try:
        build_index(folder, index=index, settings=HASHING, show_progress=False)
    finally:
        READERS.register(".pdf", "sourcier.ingest.readers.pdf:read_pdf")
    for meta in (index / segment.SEGMENTS).glob("*/" + segment.META):  # as version 2 wrote it
        data = json.loads(meta.read_text())
        meta.write_text(json.dumps({**data, "version": 2}))
        db = sqlite3.connect(meta.parent / segment.DOCS_DB)
        db.execute("ALTER TABLE documents DROP COLUMN pages")
        db.execute("ALTER TABLE documents DROP COLUMN headings")
        db.commit()
        db.close()
    (index / "files.sqlite").unlink()  # and read with the older reader
    old = next(iter(load_index(index).snapshot.documents.values()))
    assert old.pages == ()
    assert search("financement", index=index)[0].page is None

    report = build_index(folder, index=index, settings=HASHING, show_progress=False)
    assert report.edited == (str(folder / "rapport.pdf"),)
    hit = search("financement du pôle en 2023", index=index)[0]
    assert hit.page is not None and len(load_index(index).document(hit.chunk.doc_id).pages) == 3
