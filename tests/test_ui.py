"""The chat UI: pure rendering helpers, uploads, and the Gradio API through gradio_client.

Fast: everything runs on the hashing embedder. The real-browser test is test_ui_browser.py.
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sourcier import HASHING_MODEL, InputError, Settings, ask, build_index, load_index
from sourcier.ingest.readers import SUPPORTED_EXTENSIONS
from sourcier.messages import say
from sourcier.types import Answer, AnswerSentence, Citation, Document
from sourcier.ui import (
    ALLOWED_EXTENSIONS,
    Access,
    ClientLimiter,
    Library,
    answer_markdown,
    check_upload,
    escape_markdown,
    format_date,
    parse_filters,
    question_problem,
    render_corpus,
    render_document,
    render_report,
    render_sources,
    sanitize_filename,
    store_upload,
    stream_steps,
)
from sourcier.ui.access import hash_password

FIXTURES = Path(__file__).parent / "ui_fixtures"
FESTIVAL = FIXTURES / "festival-lumieres-gardanne.txt"
SCRIPT_TEXT = (
    "<script>alert('xss')</script> Rapport de la commission Zorglub\n\n"
    "La commission Zorglub a siégé à Pertuis le 3 mai 2022. "
    'Elle recommande <img src=x onerror="alert(1)"> la création d\'un jardin partagé.\n'
)
# gradio's queue trips pandas deprecation warnings that are none of our business
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

MARK = re.compile(r"<mark(?: id=\"cite\")?>(.*?)</mark>", re.DOTALL)


def _text_of(fragment: str) -> str:
    """What a browser would display for an HTML fragment (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# ----- file names and uploads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\System32\\evil.docx", "evil.docx"),
        ("/abs/path/notes.md", "notes.md"),
        (".bashrc.txt", "bashrc.txt"),
        ("..", "document"),
        ("", "document"),
        ("rapport annuel 2023 (final).pdf", "rapport annuel 2023 (final).pdf"),
        ("café crème.txt", "café crème.txt"),
        ("a<b>c:d|e?f*.txt", "a_b_c_d_e_f_.txt"),
        ("x\x00y\n.txt", "xy.txt"),
        ("CON.txt", "_CON.txt"),
        ("notes..txt", "notes.txt"),
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_sanitize_filename_keeps_the_extension_of_long_names() -> None:
    name = sanitize_filename("é" * 300 + ".docx")
    assert len(name) <= 120
    assert name.endswith(".docx")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_sanitize_filename_always_gives_one_safe_component(name: str) -> None:
    clean = sanitize_filename(name)
    assert clean and "/" not in clean and "\\" not in clean
    assert not clean.startswith((".", " "))
    assert clean not in (".", "..")
    folder = Path("/srv/uploads")
    assert (folder / clean).resolve().parent == folder


def test_store_upload_keeps_traversal_names_inside_the_folder(tmp_path: Path) -> None:
    src = tmp_path / "incoming.txt"
    src.write_text("contenu", encoding="utf-8")
    uploads = tmp_path / "a" / "uploads"
    stored = store_upload(src, "../../etc/passwd.txt", uploads)
    assert stored == (uploads / "passwd.txt").resolve()
    assert stored.read_text(encoding="utf-8") == "contenu"
    assert not (tmp_path / "etc").exists() and not (tmp_path / "a" / "etc").exists()
    assert [p.name for p in uploads.iterdir()] == ["passwd.txt"]


def test_check_upload() -> None:
    assert check_upload("notes.md", 10) is None
    refused = check_upload("virus.exe", 10)
    assert refused and "non pris en charge (.exe)" in refused and ".docx" in refused
    assert "sans extension" in (check_upload("../../etc/passwd", 10) or "")
    too_big = check_upload("big.pdf", 3 * 1024 * 1024, max_mb=2) or ""
    assert "3\u00a0Mo" in too_big and "limite de 2\u00a0Mo" in too_big
    assert "vide" in (check_upload("empty.txt", 0) or "")
    assert {".txt", ".md", ".html", ".pdf", ".docx", ".odt", ".pptx", ".png"} <= set(
        ALLOWED_EXTENSIONS
    )  # what the readers' table holds
    assert set(ALLOWED_EXTENSIONS) == SUPPORTED_EXTENSIONS


# ----- escaping and rendering ---------------------------------------------------------------


def test_escape_markdown_neutralises_html_and_markdown() -> None:
    raw = "<script>alert(1)</script> [1] **gras** ![i](http://x/y.png) <b>b</b> & $$x$$"
    out = escape_markdown(raw)
    assert "<" not in out and ">" not in out
    assert "&lt;script&gt;" in out
    assert "\\[1\\]" in out and "\\*\\*gras\\*\\*" in out and "\\!\\[i\\]" in out
    assert "&amp;" in out


def test_answer_markdown_keeps_markers_and_flags_refusals() -> None:
    ok = Answer(question="q", answer="Oui <b>vraiment</b> [1]", refused=False, language="fr")
    body, footer = answer_markdown(ok).split("\n\n")
    assert body == "Oui &lt;b&gt;vraiment&lt;/b&gt; \\[1\\]"
    assert footer == "_Réponse extractive : citations exactes_"
    no = Answer(question="q", answer="Rien.", refused=True, language="fr")
    assert answer_markdown(no).startswith("⚠️ Rien")
    assert "peut-être utiles" in answer_markdown(no)


def test_markers_link_to_their_exact_span(shared_hashing_index: Path) -> None:
    answer = ask("Qui préside le pôle SCS ?", index=shared_hashing_index)
    assert answer.citations
    md = answer_markdown(answer)
    links = re.findall(r"\[\\\[(\d+)\\\]\]\(#cite/([0-9a-f]+)/(\d+)/(\d+)\)", md)
    assert [int(n) for n, *_ in links] == [c.n for c in answer.citations]
    idx = load_index(shared_hashing_index)
    for (_, doc_id, start, end), c in zip(links, answer.citations, strict=True):
        assert idx.document(doc_id).text[int(start) : int(end)] == c.quote
    # the quotes themselves stay escaped text: no other link can be formed
    assert md.count("](") == len(answer.citations)


def test_the_chat_shows_the_line_with_the_fact_in_bold_and_no_other_quote(
    shared_hashing_index: Path,
) -> None:
    index = load_index(shared_hashing_index)
    answer = ask("Qui préside le pôle SCS ?", index=index)
    assert len(answer.citations) >= 2 and answer.marked is not None
    body = answer_markdown(answer).split("\n\n")[0]
    assert "**Jean-Pierre HENRY**" in body and "Voir aussi" in body
    for c in answer.citations[1:]:
        assert escape_markdown(c.quote) not in body
    # the source card of [1] shows the fact in bold inside its highlighted quote
    cards = render_sources(answer, index)
    assert cards.count('<b class="fact">Jean-Pierre HENRY</b>') == 1


def test_the_extractive_answer_given_after_a_model_keeps_its_links(
    shared_hashing_index: Path,
) -> None:
    answer = ask("Qui préside le pôle SCS ?", index=shared_hashing_index)
    rejected = AnswerSentence("Le pôle est présidé par Jules Verne.", (), False, True)
    fallback = dataclasses.replace(
        answer, sentences=(*answer.sentences, rejected), notice="Le modèle n’a pas répondu."
    )
    md = answer_markdown(fallback)
    assert md.count("](#cite/") == len(answer.citations) and "Jules Verne" not in md


def test_a_quote_that_looks_like_markup_stays_text() -> None:
    quote = "Voir [ceci](http://x) et <b>cela</b> [2]"
    c = Citation(
        n=1, doc_id="ab12", title="t", source="s", chunk_id="c", quote=quote, start=3, end=44
    )
    answer = Answer(
        question="q",
        answer=f"Selon les documents : {quote} [1]",
        refused=False,
        language="fr",
        citations=(c,),
    )
    md = answer_markdown(answer)
    assert md.split("\n\n")[0].endswith(" [\\[1\\]](#cite/ab12/3/44)")
    assert "\\[ceci\\]\\(http://x\\)" in md and "&lt;b&gt;" in md and "\\[2\\]" in md


def _doc(text: str, **kw: str) -> Document:
    return Document(
        doc_id="d" * 64,
        source="/corpus/évil <x>.txt",
        title=kw.get("title", "T"),
        text=text,
        date_iso=kw.get("date_iso"),
    )


def test_render_document_escapes_and_marks_the_exact_span() -> None:
    text = "Début <script>alert(1)</script>\nLe président est Jean-Pierre HENRY. Fin & suite."
    start = text.index("Jean-Pierre")
    end = text.index(". Fin")
    out = render_document(_doc(text, title="<i>Titre</i>", date_iso="2011-06-06"), start, end)
    assert "<script" not in out and "<i>" not in out
    assert "&lt;script&gt;" in out and "&lt;i&gt;Titre&lt;/i&gt;" in out
    marks = MARK.findall(out)
    assert len(marks) == 1 and html.unescape(marks[0]) == text[start:end]
    body = out.split('<div class="doc-text">', 1)[1]
    assert _text_of(body) == text
    assert "6 juin 2011" in out and "évil &lt;x&gt;.txt" in out


@pytest.mark.parametrize(("start", "end"), [(None, None), (-1, 5), (5, 5), (0, 10_000)])
def test_render_document_without_a_valid_span_has_no_mark(start, end) -> None:
    out = render_document(_doc("Un texte court."), start, end)
    assert "<mark" not in out and "Un texte court." in out


def test_render_sources_highlights_each_quote_in_its_context(shared_hashing_index) -> None:
    index = load_index(shared_hashing_index)
    answer = ask("Qui préside le pôle SCS ?", index=index)
    assert answer.citations and not answer.refused
    out = render_sources(answer, index)
    marks = MARK.findall(out)
    assert len(marks) == len(answer.citations)
    for c, mark in zip(answer.citations, marks, strict=True):
        shown = _text_of(mark)
        assert shown == index.document(c.doc_id).text[c.start : c.end] == c.quote
        assert f'data-doc="{c.doc_id}" data-start="{c.start}" data-end="{c.end}"' in out
        assert f"[{c.n}]" in out
        assert html.escape(Path(c.source).name) in out
    assert out.count("Ouvrir le document") == len(answer.citations)


def test_render_sources_context_is_bounded(shared_hashing_index) -> None:
    index = load_index(shared_hashing_index)
    answer = ask("Qui préside le pôle SCS ?", index=index)
    out = render_sources(answer, index)
    for block, c in zip(
        re.findall(r'<blockquote class="src-context">(.*?)</blockquote>', out, re.DOTALL),
        answer.citations,
        strict=True,
    ):
        shown = _text_of(block).replace("… ", "").replace(" …", "")
        assert c.quote in shown
        assert len(shown) <= len(c.quote) + 2 * 200


def test_no_card_shows_another_cards_quote_in_its_context() -> None:
    text = "Avant tout. " + " ".join(f"Phrase numéro {k} du communiqué." for k in range(1, 9))
    doc = Document(doc_id="d" * 64, source="/c/a.txt", title="T", text=text)
    spans = [(text.index(f"Phrase numéro {k} "), text.index(f"{k} du communiqué.") + 17)
             for k in (3, 4, 6)]  # fmt: skip
    cites = tuple(
        Citation(n=n, doc_id=doc.doc_id, title="T", source=doc.source, chunk_id="c",
                 quote=text[s:e], start=s, end=e)
        for n, (s, e) in enumerate(spans, start=1)
    )  # fmt: skip
    answer = Answer(question="q", answer="x [1]", refused=False, language="fr", citations=cites)
    blocks = re.findall(
        r'<blockquote class="src-context">(.*?)</blockquote>',
        render_sources(answer, _OneDoc(doc)),
        re.DOTALL,
    )
    page = " ".join(_text_of(b) for b in blocks)
    for c in cites:
        assert page.count(c.quote) == 1, c.quote
    assert "Phrase numéro 5" in page and "Phrase numéro 2" in page  # context is still shown


class _OneDoc:
    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def document(self, doc_id: str) -> Document:
        if doc_id != self.doc.doc_id:
            raise InputError(f"no document {doc_id!r}")
        return self.doc


def test_render_sources_escapes_document_text() -> None:
    doc = _doc(SCRIPT_TEXT, title="<script>alert('xss')</script> Rapport")
    start = SCRIPT_TEXT.index("Elle recommande")
    end = SCRIPT_TEXT.index("partagé.") + len("partagé.")
    citation = Citation(
        1,
        doc.doc_id,
        doc.title,
        "/x/<b>bad</b>.txt",
        "c1",
        SCRIPT_TEXT[start:end],
        start,
        end,
        "2022-05-03",
    )
    answer = Answer("q", "Réponse [1]", False, "fr", citations=(citation,))
    out = render_sources(answer, _OneDoc(doc))
    assert "<script" not in out and "<img" not in out and "<b>bad" not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=" in out
    assert html.unescape(MARK.findall(out)[0]) == SCRIPT_TEXT[start:end]
    assert "3 mai 2022" in out


def test_render_sources_for_a_refusal_offers_closest_passages(shared_hashing_index) -> None:
    index = load_index(shared_hashing_index)
    hits = ask("Qui préside le pôle SCS ?", index=index).hits
    refused = Answer(
        "q", "Les documents ne contiennent pas cette information.", True, "fr", hits=hits
    )
    out = render_sources(refused, index)
    assert "ne permettent pas de répondre" in out and "Peut-être utile" in out
    assert "<mark" not in out
    assert out.count('class="src-card"') == min(3, len(hits))
    empty = render_sources(Answer("q", "Non.", True, "en"), index)
    assert "No close passage" in empty


def test_render_corpus_and_report_escape_names(shared_hashing_index) -> None:
    docs = load_index(shared_hashing_index).documents()
    out = render_corpus(docs)
    assert f"{len(docs)} document(s)" in out
    assert all(html.escape(d.title) in out for d in docs)
    assert out.count('class="src-open doc-link"') == len(docs)
    from sourcier.ui import UploadOutcome

    report = render_report([UploadOutcome("<b>x</b>.txt", "skipped", "raison <i>")])
    assert "<b>x" not in report and "&lt;b&gt;x&lt;/b&gt;.txt" in report and "ignoré" in report


def test_format_date() -> None:
    assert format_date("2011-06-06") == "6 juin 2011"
    assert format_date("2011-06-01") == "1er juin 2011"
    assert format_date("2017-11") == "novembre 2017"
    assert format_date("2011") == "2011"
    assert format_date("2011-06-06", "en") == "June 6, 2011"
    assert format_date(None) is None


def test_parse_filters() -> None:
    assert parse_filters(None, "", " ") is None
    assert parse_filters(["abc"], "2011", "2017-12") == {
        "doc_ids": ["abc"],
        "date_from": "2011",
        "date_to": "2017-12",
    }
    # the core's date checks, said in French in the page
    with pytest.raises(InputError) as bad:
        parse_filters([], "juin 2011", None)
    assert "juin 2011" in say(bad.value, "fr") and "2011-06" in say(bad.value, "fr")
    with pytest.raises(InputError) as month_13:
        parse_filters([], "2011-13", None)  # was accepted, then matched nothing
    assert "2011-13" in say(month_13.value, "fr")
    with pytest.raises(InputError) as reversed_range:
        parse_filters([], "2018", "2017-12")
    assert "postérieure à la date de fin" in say(reversed_range.value, "fr")


def test_question_problem() -> None:
    assert "vide" in (question_problem("   ", 2000) or "")
    assert "au-delà de la limite de 2\u202f000" in (question_problem("x" * 2001, 2000) or "")
    assert question_problem("Qui ?", 2000) is None


def test_stream_steps_grow_to_the_full_text() -> None:
    text = "Selon les documents : Jean-Pierre HENRY préside le pôle SCS. [1]"
    steps = stream_steps(text, steps=4)
    assert steps[-1] == text
    assert all(text.startswith(s) for s in steps)
    assert len(steps) <= 5
    assert stream_steps("Mot") == ["Mot"]


def test_importing_the_ui_does_not_import_gradio() -> None:
    code = "import sys, sourcier.ui; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----- the shared index: uploads and removal --------------------------------------------------


@pytest.fixture
def library(tmp_path: Path, shared_hashing_index: Path) -> Library:
    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    return Library(index)


def test_upload_is_indexed_and_answerable_at_once(library: Library) -> None:
    progress: list[tuple[str, int, int]] = []
    outcomes = library.add_uploads(
        [(FESTIVAL, FESTIVAL.name)], progress=lambda *a: progress.append(a)
    )
    assert [(o.name, o.status) for o in outcomes] == [(FESTIVAL.name, "indexed")]
    assert progress and progress[-1][1] == progress[-1][2]
    stored = library.upload_dir / FESTIVAL.name
    assert stored.read_bytes() == FESTIVAL.read_bytes()
    answer = library.ask("Qui préside le Festival des lumières de Gardanne ?")
    assert not answer.refused
    assert any(
        "Zoé Marchetti" in c.quote and c.source == str(stored.resolve()) for c in answer.citations
    )


def _upload_sources(library: Library) -> list[str]:
    folder = library.upload_dir.resolve()
    return sorted(
        Path(d.source).name for d in library.index().documents() if Path(d.source).parent == folder
    )


def test_a_file_of_the_same_name_is_kept_beside_unless_replace(
    library: Library, tmp_path: Path
) -> None:
    first = tmp_path / "notes.txt"
    first.write_text("Compte rendu\n\nLe budget du club de voile est de 4 000 euros.\n", "utf-8")
    assert library.add_uploads([(first, "notes.txt")])[0].status == "indexed"
    assert library.add_uploads([(first, "notes.txt")])[0].status == "unchanged"
    old = (library.upload_dir / "notes.txt").read_bytes()
    first.write_text("Compte rendu\n\nLe budget du club de voile est de 9 000 euros.\n", "utf-8")
    kept = library.add_uploads([(first, "notes.txt")])[0]
    # never overwritten silently: the new file is kept under a free name, and it says so
    assert (kept.status, kept.name) == ("indexed", "notes (2).txt")
    assert "notes.txt" in kept.detail and "notes (2).txt" in kept.detail
    assert (library.upload_dir / "notes.txt").read_bytes() == old
    assert _upload_sources(library) == ["notes (2).txt", "notes.txt"]
    # asked to replace: the older version goes, in the folder and in the index
    first.write_text("Compte rendu\n\nLe budget du club de voile est de 7 000 euros.\n", "utf-8")
    replaced = library.add_uploads([(first, "notes.txt")], replace=True)[0]
    assert (replaced.status, replaced.name) == ("updated", "notes.txt")
    assert "7 000" in (library.upload_dir / "notes.txt").read_text("utf-8")
    assert _upload_sources(library) == ["notes (2).txt", "notes.txt"]
    quotes = " ".join(
        c.quote for c in library.ask("Quel est le budget du club de voile ?").citations
    )
    assert "4 000" not in quotes


def test_the_same_file_under_another_name_leaves_no_copy(library: Library, tmp_path: Path) -> None:
    first = tmp_path / "notes.txt"
    first.write_text("Compte rendu\n\nLe budget du club de voile est de 4 000 euros.\n", "utf-8")
    library.add_uploads([(first, "notes.txt")])
    again = library.add_uploads([(first, "copie des notes.txt")])[0]
    assert again.status == "unchanged" and "notes.txt" in again.detail
    assert sorted(p.name for p in library.upload_dir.iterdir()) == ["notes.txt"]
    assert _upload_sources(library) == ["notes.txt"]  # the indexed source is not renamed
    # same text, other bytes (an .md of the same words): still one copy, one source
    other = tmp_path / "notes.md"
    other.write_text(first.read_text("utf-8"), "utf-8")
    twin = library.add_uploads([(other, "notes.md")])[0]
    assert twin.status == "unchanged" and "notes.txt" in twin.detail
    assert sorted(p.name for p in library.upload_dir.iterdir()) == ["notes.txt"]
    assert _upload_sources(library) == ["notes.txt"]


def test_an_interrupted_copy_leaves_nothing_behind(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sourcier.ui.uploads as uploads

    src = tmp_path / "gros.txt"
    src.write_text("Un document. " * 1000, "utf-8")
    before = _upload_sources(library)

    def copy_half(a: Path, b: Path) -> None:
        Path(b).write_bytes(Path(a).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(uploads.shutil, "copyfile", copy_half)
    with pytest.raises(OSError):
        library.add_uploads([(src, "gros.txt")])
    assert not library.upload_dir.exists() or list(library.upload_dir.iterdir()) == []
    assert _upload_sources(library) == before
    # a crash (no cleanup at all) leaves a hidden temporary file: the next start clears it
    library.upload_dir.mkdir(exist_ok=True)
    (library.upload_dir / ".upload-1-2").write_bytes(b"partial")
    Library(library.path)
    assert list(library.upload_dir.iterdir()) == []


def test_bad_uploads_are_reported_and_not_kept(library: Library, tmp_path: Path) -> None:
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x00\x01")
    empty = tmp_path / "vide.txt"
    empty.write_bytes(b"")
    fake_pdf = tmp_path / "faux.pdf"
    fake_pdf.write_bytes(b"ceci n'est pas un PDF")
    before = len(library.index().documents())
    outcomes = library.add_uploads([(exe, exe.name), (empty, empty.name), (fake_pdf, "faux.pdf")])
    by_name = {o.name: o for o in outcomes}
    assert {o.status for o in outcomes} == {"skipped"}
    assert "non pris en charge" in by_name["tool.exe"].detail
    assert "vide" in by_name["vide.txt"].detail
    assert by_name["faux.pdf"].detail  # the core's one-line reason
    assert len(library.index().documents()) == before
    assert not library.upload_dir.exists() or not any(library.upload_dir.iterdir())


def test_remove_deletes_the_document_and_its_uploaded_copy(library: Library) -> None:
    library.add_uploads([(FESTIVAL, FESTIVAL.name)])
    doc = next(d for d in library.index().documents() if d.source.endswith(FESTIVAL.name))
    message = library.remove(doc.doc_id)
    assert "retiré" in message and doc.title in message
    assert not (library.upload_dir / FESTIVAL.name).exists()
    assert doc.doc_id not in {d.doc_id for d in library.index().documents()}
    with pytest.raises(InputError):
        library.remove(doc.doc_id)


def test_library_sees_writes_made_by_another_process(library: Library, tmp_path: Path) -> None:
    assert len(library.index().documents()) == 5
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(FESTIVAL, extra / FESTIVAL.name)
    build_index(
        extra, index=library.path, settings=Settings(model=HASHING_MODEL), show_progress=False
    )
    assert len(library.index().documents()) == 6


# ----- the running app, through gradio_client -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_hashing_index: Path):
    """The app on a free loopback port, over a private copy of the hashing index."""
    from sourcier.ui import build_app

    root = tmp_path_factory.mktemp("ui-server")
    index = root / "index"
    shutil.copytree(shared_hashing_index, index)
    # no question budget here: the module's tests share one client session
    demo = build_app(index=index, upload_dir=root / "uploads", limiter=ClientLimiter(per_minute=0))
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    yield {"url": url, "index": index, "uploads": root / "uploads", "root": root}
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def test_api_ask_returns_the_answer_json_with_exact_citations(client, server) -> None:
    result = client.predict("Qui préside le pôle SCS ?", api_name="/ask")
    for key in ("question", "answer", "refused", "language", "citations", "hits", "timings_ms"):
        assert key in result
    assert result["refused"] is False and "[1]" in result["answer"]
    index = load_index(server["index"])
    for c in result["citations"]:
        assert set(c) >= {"n", "doc_id", "title", "source", "chunk_id", "quote", "start", "end"}
        assert index.document(c["doc_id"]).text[c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in result["answer"]


def test_api_ask_optional_parameters(client, server) -> None:
    docs = load_index(server["index"]).documents()
    smart_port = next(d for d in docs if "smart-port" in d.source)
    result = client.predict(
        "Quels projets ont été adoptés ?",
        k=2,
        mode="dense",
        doc_ids=[smart_port.doc_id],
        api_name="/ask",
    )
    assert 0 < len(result["hits"]) <= 2
    assert {h["doc_id"] for h in result["hits"]} == {smart_port.doc_id}
    dated = client.predict(
        "pôles de compétitivité", date_from="2011", date_to="2011-12", api_name="/ask"
    )
    assert {h["date"][:4] for h in dated["hits"]} == {"2011"}
    follow = client.predict(
        "Et qui le préside ?",
        history=[
            {"role": "user", "content": "Parle-moi du pôle SCS et du MIT."},
            {"role": "assistant", "content": "Le pôle SCS a signé une alliance [1]."},
        ],
        api_name="/ask",
    )
    assert "SCS" in follow["retrieval_query"]


@pytest.mark.parametrize(
    ("question", "kwargs", "expected"),
    [
        ("   ", {}, "empty"),
        ("x" * 2001, {}, "2,000"),
        ("Qui ?", {"date_from": "juin"}, "must look like 2011"),
        ("Qui ?", {"date_from": "2011-13"}, "2011-13"),
    ],
)
def test_api_errors_are_one_clear_sentence(client, question, kwargs, expected) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(question, **kwargs, api_name="/ask")
    message = str(info.value)
    assert expected in message
    assert "Traceback" not in message and "\n" not in message.strip()


def _launch(index: Path, **options):
    from sourcier.ui import build_app

    demo = build_app(index=index, **options)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    return demo, url


def test_twenty_clients_get_answers_while_one_floods(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    demo, url = _launch(index)  # the default per-client budget
    try:
        flooder = Client(url, verbose=False)
        flood = [
            flooder.submit(f"Qui préside le pôle SCS ? ({i})", api_name="/ask") for i in range(60)
        ]
        questions = [
            "Qui préside le pôle SCS ?",
            "Combien d'entreprises sont implantées sur le Technopôle de l'Arbois ?",
            "Who is Federico Casalegno?",
            "Quand les acteurs marseillais se rendent-ils à Helsinki ?",
        ] * 5
        questions = questions[:19]

        def ask_as_a_new_client(question: str) -> dict:
            return Client(url, verbose=False).predict(question, api_name="/ask")

        with ThreadPoolExecutor(max_workers=19) as pool:
            results = list(pool.map(ask_as_a_new_client, questions))
        for q, r in zip(questions, results, strict=True):
            assert r["question"] == q and r["answer"]  # nobody else was refused or starved
        refused = answered = 0
        for job in flood:
            try:
                job.result(timeout=120)
                answered += 1
            except AppError as err:
                assert "too many questions" in str(err).lower() or "still being" in str(err)
                refused += 1
        assert answered >= 10 and refused >= 30  # the burst was served, the flood refused
    finally:
        demo.close()


def test_with_a_login_the_api_refuses_calls_without_credentials(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    import httpx
    from gradio_client import Client

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    access = Access(users=(("alice", hash_password("s3cret")),))
    demo, url = _launch(index, access=access)
    try:
        base = url.rstrip("/")
        body = {"data": ["Qui préside le pôle SCS ?"]}
        for method, path, kwargs in (
            ("POST", "/gradio_api/call/ask", {"json": body}),
            ("POST", "/gradio_api/queue/join", {"json": body}),
            ("POST", "/gradio_api/upload", {"files": [("files", ("a.txt", b"x", "text/plain"))]}),
            ("GET", "/config", {}),
        ):
            response = httpx.request(method, base + path, **kwargs)
            assert response.status_code == 401, path
        with pytest.raises(Exception, match="(?i)login|credentials|auth|401"):
            Client(url, verbose=False)
        with pytest.raises(Exception):  # noqa: B017 - any refusal; checked as a 401 above
            Client(url, auth=("alice", "wrong"), verbose=False)
        answer = Client(url, auth=("alice", "s3cret"), verbose=False).predict(
            "Qui préside le pôle SCS ?", api_name="/ask"
        )
        assert "HENRY" in answer["answer"]
    finally:
        demo.close()


def test_read_only_refuses_uploads_and_removals_through_the_api(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    import httpx
    from gradio_client import Client, handle_file

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    before = [d.doc_id for d in load_index(index).documents()]
    demo, url = _launch(index, upload_dir=tmp_path / "uploads", access=Access(read_only=True))
    try:
        client = Client(url, verbose=False)
        assert "/upload" not in client.view_api(print_info=False, return_format="dict")[
            "named_endpoints"
        ] and "/upload" not in str(client.endpoints)
        with pytest.raises(Exception):  # noqa: B017 - no such endpoint: refused, whatever the form
            client.predict([handle_file(str(FESTIVAL))], False, api_name="/upload")
        response = httpx.post(
            url.rstrip("/") + "/gradio_api/call/upload", json={"data": [[], False]}
        )
        assert response.status_code >= 400
        config = httpx.get(url.rstrip("/") + "/config").json()
        ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
        assert "upload" not in ids and "read-only" in ids
        assert "replace" not in ids
        # questions still work
        assert "HENRY" in client.predict("Qui préside le pôle SCS ?", api_name="/ask")["answer"]
    finally:
        demo.close()
    assert [d.doc_id for d in load_index(index).documents()] == before
    assert not (tmp_path / "uploads").exists()


def test_a_read_only_library_refuses_writes(library: Library, tmp_path: Path) -> None:
    read_only = Library(library.path, read_only=True)
    doc = read_only.index().documents()[0]
    with pytest.raises(InputError) as err:
        read_only.add_uploads([(FESTIVAL, FESTIVAL.name)])
    assert "lecture seule" in say(err.value, "fr")
    with pytest.raises(InputError):
        read_only.remove(doc.doc_id)
    assert doc.doc_id in {d.doc_id for d in read_only.index().documents()}


def _upload_over_http(url: str, name: str, content: bytes) -> str:
    """Send a file as a browser (or an attacker) would; return the server's temporary path."""
    import httpx

    response = httpx.post(
        url.rstrip("/") + "/gradio_api/upload", files=[("files", (name, content, "text/plain"))]
    )
    response.raise_for_status()
    return response.json()[0]


def test_path_traversal_upload_is_stored_inside_the_upload_folder(client, server) -> None:
    from gradio_client import handle_file

    content = "Note\n\nLa salle Mistral ouvre à 7 h 45 le samedi.\n".encode()
    remote = _upload_over_http(server["url"], "../../etc/passwd.txt", content)
    status, *_ = client.predict([handle_file(remote)], False, api_name="/upload")
    assert "indexé" in status
    stored = server["uploads"] / "passwd.txt"
    assert stored.read_bytes() == content
    assert not (server["root"] / "etc").exists()
    assert not (server["uploads"].parent.parent / "etc").exists()
    assert all(p.parent == server["uploads"] for p in server["uploads"].rglob("*"))
    answer = client.predict("À quelle heure ouvre la salle Mistral ?", api_name="/ask")
    assert any(c["source"] == str(stored.resolve()) for c in answer["citations"])


def test_script_document_is_shown_escaped(client, server, tmp_path: Path) -> None:
    from gradio_client import handle_file

    doc = tmp_path / "commission.txt"
    doc.write_text(SCRIPT_TEXT, encoding="utf-8")
    status, corpus, *_ = client.predict([handle_file(doc)], False, api_name="/upload")
    assert "indexé" in status
    assert "<script" not in corpus and "&lt;script&gt;" in corpus
    result = client.predict("Que recommande la commission Zorglub ?", api_name="/ask")
    index = load_index(server["index"])
    panel = render_sources(Answer(**{**_answer_fields(result), "hits": ()}), index)
    assert "<script" not in panel and "<img" not in panel
    assert "&lt;img src=x onerror=" in panel or "&lt;script&gt;" in panel


def _answer_fields(result: dict) -> dict:
    citations = tuple(Citation(**c) for c in result["citations"])
    return {
        "question": result["question"],
        "answer": result["answer"],
        "refused": result["refused"],
        "language": result["language"],
        "citations": citations,
    }


def test_bad_upload_over_the_api_is_one_sentence(client, tmp_path: Path) -> None:
    from gradio_client import handle_file

    bad = tmp_path / "image.pdf"
    bad.write_bytes(b"\x89PNG not a pdf at all")
    status, *_ = client.predict([handle_file(bad)], False, api_name="/upload")
    assert "ignoré" in status and "Traceback" not in status


def test_uploads_over_the_size_limit_are_refused_by_the_server(server) -> None:
    import httpx

    from sourcier.ui import MAX_UPLOAD_MB

    big = b"a" * int((MAX_UPLOAD_MB + 1) * 1024 * 1024)
    response = httpx.post(
        server["url"].rstrip("/") + "/gradio_api/upload",
        files=[("files", ("big.txt", big, "text/plain"))],
    )
    assert response.status_code == 413


# ----- the command ------------------------------------------------------------------------------


def test_serve_command_options_and_defaults() -> None:
    from click.testing import CliRunner

    from sourcier.cli.serve import serve_cmd

    out = CliRunner().invoke(serve_cmd, ["--help"])
    assert out.exit_code == 0
    for option in ("--index", "--host", "--port", "--upload-dir", "127.0.0.1", "7860"):
        assert option in out.output


def test_serve_command_reports_a_missing_index_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sourcier.cli.serve import serve_cmd

    out = CliRunner().invoke(serve_cmd, ["--index", str(tmp_path / "nothing")])
    assert out.exit_code == 1
    assert out.output.startswith("Error: no index at")
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


# ----- generative mode -----------------------------------------------------------------------


def test_library_streams_a_model_reply_then_the_verified_answer(
    shared_hashing_index: Path,
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from sourcier.types import TextDelta
    from sourcier.ui import Library

    reply = "Le pôle SCS est présidé par Jean-Pierre Henry [1]. Il a 500 salariés [2]."
    library = Library(shared_hashing_index, llm=FakeListChatModel(responses=[reply]))
    assert library.llm_name == "FakeListChatModel"
    events = list(library.ask_stream("Qui préside le pôle SCS ?"))
    assert any(isinstance(e, TextDelta) for e in events)
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.mode == "generative"
    md = answer_markdown(answer)
    body, footer = md.split("\n\n")
    assert "500" not in body and "[\\[2\\]]" not in body  # the removed sentence is gone
    links = re.findall(r"\(#cite/([0-9a-f]+)/(\d+)/(\d+)\)", body)
    assert len(links) == len(answer.citations) == 1
    idx = load_index(shared_hashing_index)
    doc_id, start, end = links[0]
    assert idx.document(doc_id).text[int(start) : int(end)] == answer.citations[0].quote
    assert "Réponse générative \\(FakeListChatModel\\)" in footer and "⚠️" in footer
    plain = library.ask("Qui préside le pôle SCS ?", generative=False)
    assert plain.mode == "extractive" and plain.model is None


def test_a_line_that_is_a_whole_quote_stands_in_the_chat_only() -> None:
    from sourcier.answer.glance import compose_line
    from sourcier.types import AnswerSentence

    text = "Avant tout. Le pôle est présidé par Jean Dupont. Il compte 300 membres. Fin."
    doc = Document(doc_id="d" * 64, source="/c/a.txt", title="T", text=text)
    spans = [
        (text.index("Le pôle"), text.index(" Il compte")),
        (text.index("Il compte"), text.index(" Fin")),
    ]
    cites = tuple(
        Citation(n=n, doc_id=doc.doc_id, title="T", source=doc.source, chunk_id="c",
                 quote=text[s:e], start=s, end=e)
        for n, (s, e) in enumerate(spans, start=1)
    )  # fmt: skip
    line = cites[0].quote
    answer = Answer(
        question="Qui préside le pôle ?",
        answer=compose_line(line, (2,), language="fr"),
        refused=False,
        language="fr",
        mode="extractive",
        citations=cites,
        sentences=(AnswerSentence(line, (1,), True),),
        see_also=(2,),
    )
    chat = answer_markdown(answer)
    sources = _text_of(render_sources(answer, _OneDoc(doc)))
    assert "Jean Dupont" in chat and "Jean Dupont" not in sources  # shown once, in the chat
    assert "ci-contre" in sources and "Avant tout." in sources  # where it sits, in context
    assert sources.count(cites[1].quote) == 1 and cites[1].quote not in chat
