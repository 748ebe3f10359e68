"""Tests for sourcier.ingest.loaders: discovery, readers, cleaning, titles, dates, bad files."""

from __future__ import annotations

import builtins
import hashlib
import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sourcier.errors import InputError, LoadError
from sourcier.ingest.cleaning import clean_text
from sourcier.ingest.dates import find_date
from sourcier.ingest.loaders import discover, load_document
from sourcier.ingest.readers import SUPPORTED_EXTENSIONS
from sourcier.ingest.readers.markdown import strip_markup
from sourcier.ingest.titles import find_title
from sourcier.paths import bundled_corpus_dir
from sourcier.types import Document

FRENCH = (
    "Le pôle a été créé à Nice en 2005 ; ça marche très bien.\n\n"
    "L’œuvre « collective » de l’équipe… Première réunion à Sophia, garçon."
)
LATIN1_FRENCH = (
    "Le pôle a été créé à Nice en 2005 ; ça marche très bien.\n\n"
    "L'équipe « collective » se réunit à Sophia, où naît le projet du garçon."
)


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode(encoding)
    path.write_bytes(content)
    return path


# --------------------------------------------------------------------------- discover


def test_supported_extensions() -> None:
    documents = {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".odt", ".pptx"}
    images = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}  # read by OCR
    assert frozenset(documents | images) == SUPPORTED_EXTENSIONS


def test_discover_walks_sorted_skips_hidden_and_reports_unsupported(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "b")
    write(tmp_path / "a.md", "a")
    write(tmp_path / "sub" / "c.HTML", "<p>c</p>")
    write(tmp_path / "sub" / "deeper" / "d.pdf", b"%PDF")
    write(tmp_path / ".hidden.txt", "h")
    write(tmp_path / ".git" / "config.txt", "g")
    write(tmp_path / "~$lock.docx", b"x")
    write(tmp_path / "table.xlsx", b"x")
    write(tmp_path / "README", "no extension")

    files, skipped = discover([tmp_path])

    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a.md",
        "b.txt",
        "sub/c.HTML",
        "sub/deeper/d.pdf",
    ]
    assert all(f.is_absolute() for f in files)
    codes = {Path(s.path).name: s.code for s in skipped}
    assert codes == {
        ".git": "hidden_folder",  # reported once, not walked
        ".hidden.txt": "hidden_file",
        "README": "readme",
        "table.xlsx": "unsupported_type",
    }
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["table.xlsx"] == "unsupported file type .xlsx"
    assert "name it to index it" in reasons[".hidden.txt"]
    assert "name the file itself" in reasons["README"]
    assert discover([tmp_path]) == (files, skipped)  # deterministic


def test_readmes_are_left_out_of_a_folder_but_indexed_when_named(tmp_path: Path) -> None:
    for name in ("README.md", "readme.txt", "Readme.fr.md", "README", "sub/README.html"):
        write(tmp_path / name, "# Notes\n\nCe dossier contient des communiqués.")
    write(tmp_path / "readme-first.txt", "Un vrai document dont le nom commence par readme.")
    write(tmp_path / "sub" / "doc.txt", "Un document.")
    write(tmp_path / ".env.md", "caché")

    files, skipped = discover([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "readme-first.txt",
        "sub/doc.txt",
    ]
    assert sorted(
        Path(s.path).relative_to(tmp_path).as_posix() for s in skipped if s.code == "readme"
    ) == [
        "README",
        "README.md",
        "Readme.fr.md",
        "readme.txt",
        "sub/README.html",
    ]
    named, none = discover([tmp_path / "README.md", tmp_path / ".env.md"])
    assert named == [tmp_path / "README.md", tmp_path / ".env.md"] and none == []


def test_discover_accepts_files_and_deduplicates(tmp_path: Path) -> None:
    doc = write(tmp_path / "docs" / "a.txt", "a")
    os.symlink(doc, tmp_path / "docs" / "alias.txt")
    files, skipped = discover([doc, tmp_path / "docs", str(doc)])
    assert files == [doc]
    assert skipped == []


def test_discover_unsupported_file_given_directly(tmp_path: Path) -> None:
    path = write(tmp_path / "data.xyz", "x")
    files, skipped = discover([path])
    assert files == []
    assert [(s.path, s.reason) for s in skipped] == [(str(path), "unsupported file type .xyz")]


def test_discover_missing_folder_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="folder not found: .*nowhere"):
        discover([missing])
    with pytest.raises(InputError, match="not found: .*gone.txt"):
        discover([tmp_path / "gone.txt"])


def test_discover_symlink_loops_and_broken_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "ok.txt", "fine")
    os.symlink(root / "b.txt", root / "a.txt")  # a -> b -> a
    os.symlink(root / "a.txt", root / "b.txt")
    os.symlink(root, root / "parent")  # a folder that contains itself
    os.symlink(tmp_path / "missing.txt", root / "broken.txt")

    files, skipped = discover([root])

    assert files == [root / "ok.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["a.txt"] == "symbolic link loop"
    assert reasons["b.txt"] == "symbolic link loop"
    assert "symbolic link loop" in reasons["parent"]
    assert "broken symbolic link" in reasons["broken.txt"]


def test_discover_loop_given_directly_is_skipped(tmp_path: Path) -> None:
    os.symlink(tmp_path / "y.txt", tmp_path / "x.txt")
    os.symlink(tmp_path / "x.txt", tmp_path / "y.txt")
    files, skipped = discover([tmp_path / "x.txt"])
    assert files == []
    assert skipped[0].reason == "symbolic link loop"


# --------------------------------------------------------------------------- text encodings


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_txt_encodings_without_mojibake(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / f"doc-{encoding}.txt", FRENCH, encoding)
    doc = load_document(path)
    assert doc.text == FRENCH
    assert "\ufeff" not in doc.text


def test_txt_latin1(tmp_path: Path) -> None:
    # latin-1 cannot encode œ ’ …, so this sample keeps to the letters it has.
    path = write(tmp_path / "latin1.txt", LATIN1_FRENCH, "latin-1")
    assert load_document(path).text == LATIN1_FRENCH


def test_short_cp1252_and_latin1_lines(tmp_path: Path) -> None:
    # charset-normalizer alone reads these as cp1250 ("ŕ" for "à").
    for encoding, text in [
        ("cp1252", "Élève modèle à Nîmes, l’œuvre…"),
        ("latin-1", "Élève modèle à Nîmes, reçu."),
    ]:
        path = write(tmp_path / f"short-{encoding}.txt", text, encoding)
        assert load_document(path).text == text


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "u16.txt", "\ufeff" + FRENCH, "utf-16-le")
    assert load_document(path).text == FRENCH


# --------------------------------------------------------------------------- formats


def test_markdown_keeps_words_drops_syntax(tmp_path: Path) -> None:
    md = (
        "---\nauthor: x\n---\n"
        "# Le *grand* titre\n\n"
        "Un paragraphe avec **gras**, _italique_ et un [lien](https://example.org) "
        "vers `code`.\n\n"
        "## Sous-titre ##\n\n"
        "* premier point\n"
        "* second point\n\n"
        "> Une citation\n\n"
        "| Nom | Rôle du membre dans le pôle de compétitivité régional |\n"
        "|-----|------|\n"
        "| Jean-Pierre Henry | président du pôle de compétitivité, depuis longtemps |\n\n"
        "![logo](logo.png)\n\n"
        "```\nprint('x')\n```\n"
        "snake_case_name reste intact.\n"
    )
    doc = load_document(write(tmp_path / "note.md", md))
    assert doc.title == "Le grand titre"
    assert doc.text.split("\n\n") == [
        "Le grand titre",
        "Un paragraphe avec gras, italique et un lien vers code.",
        "Sous-titre",
        "- premier point",
        "- second point",
        "Une citation",
        "Nom | Rôle du membre dans le pôle de compétitivité régional",
        "Jean-Pierre Henry | président du pôle de compétitivité, depuis longtemps",
        "logo",
        "print('x')",
        "snake_case_name reste intact.",
    ]


def test_markdown_front_matter_title(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "fm.md", '---\ntitle: "Mon titre"\n---\nTexte.\n'))
    assert doc.title == "Mon titre"
    assert doc.text == "Texte."


def test_html_blocks_title_and_dropped_elements(tmp_path: Path) -> None:
    html = """<!doctype html><html><head><meta charset="windows-1252">
    <title>Site | Accueil</title><style>p {color: red}</style></head>
    <body><nav><a href="/">Menu</a></nav>
    <h1>Le p\xf4le SCS et le MIT</h1>
    <p>Premier   paragraphe,
       sur deux lignes.</p>
    <script>var x = "cach\xe9";</script>
    <div>Deuxi\xe8me<br>ligne</div>
    <table><tr><td>Nom</td><td>T\xe9l</td></tr></table>
    <!-- un commentaire -->
    </body></html>"""
    doc = load_document(write(tmp_path / "page.html", html.encode("latin-1")))
    assert doc.title == "Le pôle SCS et le MIT"
    assert doc.text.split("\n\n") == [
        "Le pôle SCS et le MIT",
        "Premier paragraphe, sur deux lignes.",
        "Deuxième",
        "ligne",
        "Nom | Tél",
    ]


def test_html_title_from_title_tag(tmp_path: Path) -> None:
    html = "<html><head><title>Titre de page</title></head><body><p>Corps.</p></body></html>"
    doc = load_document(write(tmp_path / "p.htm", html))
    assert doc.title == "Titre de page"
    assert doc.text == "Corps."


def test_real_pdf(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Le pôle SCS signe un accord", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 10, "Sophia-Antipolis le 6 juin 2011", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 10, "La Fondation a été créée en 1984 ; elle réunit élèves et experts.")
    path = tmp_path / "release.pdf"
    pdf.output(str(path))

    doc = load_document(path)
    assert "Le pôle SCS signe un accord" in doc.text
    assert "La Fondation a été créée en 1984" in doc.text
    assert doc.title == "Le pôle SCS signe un accord"
    assert (doc.date_raw, doc.date_iso) == ("6 juin 2011", "2011-06-06")
    assert doc.language == "fr"


def test_real_docx_paragraphs_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Communiqué de presse")
    document.add_heading("Alliance stratégique SCS – MIT", level=1)
    document.add_paragraph("Le pôle SCS et le MIT signent un accord à Boston.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Contact"
    table.cell(0, 1).text = "Téléphone"
    table.cell(1, 0).text = "Audrey"
    table.cell(1, 1).text = "04 92 96 79 65"
    document.add_paragraph("Fin du communiqué.")
    path = tmp_path / "release.docx"
    document.save(str(path))

    doc = load_document(path)
    assert doc.title == "Alliance stratégique SCS – MIT"
    assert doc.text.split("\n\n") == [
        "Communiqué de presse",
        "Alliance stratégique SCS – MIT",
        "Le pôle SCS et le MIT signent un accord à Boston.",
        "Contact | Téléphone",
        "Audrey | 04 92 96 79 65",
        "Fin du communiqué.",
    ]


# --------------------------------------------------------------------------- bad files


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="^file is empty$"):
        load_document(write(tmp_path / "empty.txt", b""))


def test_whitespace_only_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="only whitespace"):
        load_document(write(tmp_path / "blank.txt", " \n\n\t \u00a0\n"))


def test_only_debris_leaves_no_text(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no text left after cleaning"):
        load_document(write(tmp_path / "debris.txt", "[image: image1.emf]\n\ufffd ** \n"))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        bytes(range(256)) * 4,
        bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17]) * 20,
    ],
)
def test_binary_named_txt(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(LoadError, match="binary file"):
        load_document(write(tmp_path / "image.txt", content))


def test_corrupt_pdf(tmp_path: Path) -> None:
    content = b"%PDF-1.4\n" + os.urandom(2048)
    with pytest.raises(LoadError, match="corrupt or unreadable PDF"):
        load_document(write(tmp_path / "broken.pdf", content))
    with pytest.raises(LoadError, match="PDF"):
        load_document(write(tmp_path / "random.pdf", os.urandom(4096)))


def test_pdf_without_text(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50)
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    with pytest.raises(LoadError, match="no extractable text"):
        load_document(path)


def test_corrupt_docx(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="corrupt or unreadable .docx"):
        load_document(write(tmp_path / "broken.docx", os.urandom(4096)))
    import zipfile

    path = tmp_path / "not-word.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    with pytest.raises(LoadError, match="corrupt or unreadable .docx"):
        load_document(path)


def test_oversize_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.txt", "x" * 3000)
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(os.fspath(file)) == path:
            raise AssertionError("the file content was read before the size check")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    with pytest.raises(LoadError, match=r"^file is 2\.9 KB, over the 1 KB limit$"):
        load_document(path, max_bytes=1024)


def test_oversize_message_in_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "sparse.txt"
    with open(path, "wb") as fh:  # sparse: 50 MB on paper, nothing on disk
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(LoadError, match=r"^file is 50\.0 MB, over the 20 MB limit$"):
        load_document(path)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.txt", "contenu")
    real_open = builtins.open

    def denied(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(os.fspath(file)) == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(LoadError, match="^permission denied$"):
        load_document(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_chmod(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", "contenu")
    path.chmod(0)
    try:
        with pytest.raises(LoadError, match="permission denied"):
            load_document(path)
    finally:
        path.chmod(0o644)


def test_unsupported_missing_folder_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"unsupported file type \.xyz"):
        load_document(write(tmp_path / "a.xyz", "x"))
    with pytest.raises(LoadError, match="file not found"):
        load_document(tmp_path / "missing.txt")
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(LoadError, match="is a folder"):
        load_document(tmp_path / "folder.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(LoadError, match="not a regular file"):
        load_document(tmp_path / "pipe.txt")
    files, skipped = discover([tmp_path])
    assert (str(tmp_path / "pipe.txt"), "not a regular file") in {
        (s.path, s.reason) for s in skipped
    }


def test_source_and_doc_id(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "Bonjour à tous.\n")
    doc = load_document(path)
    assert doc.source == str(path)
    assert doc.doc_id == hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
    assert load_document(path, source="corpus/a.txt").source == "corpus/a.txt"
    assert load_document(str(path)).doc_id == doc.doc_id


# --------------------------------------------------------------------------- clean_text


def test_clean_text_removes_word_processor_debris() -> None:
    raw = (
        "        Sophia le 6 juin 2011   \n"
        "[image: image1.emf] Une première journée.\n\n\n\n"
        'Email\u00a0: \ufffd HYPERLINK "mailto:a@b.fr" \ufffda@b.fr\ufffd\n'
        'Dans « \ufffd HYPERLINK "http://x.eu/a.pdf" \ufffdUne politique \ufffd» du 28.\n'
        "**la 3^{ème} région**\u202fet l\u2019e\u0301quipe\r\n"
        "co\ufffdt\tcassé\u200b\n"
    )
    assert clean_text(raw) == (
        "Sophia le 6 juin 2011\n\n"
        "Une première journée.\n\n"
        "Email : a@b.fr\n\n"
        "Dans « Une politique » du 28.\n\n"
        "la 3ème région et l\u2019équipe\n\n"
        "cot cassé"
    )


def test_clean_text_joins_hard_wrapped_lines_only() -> None:
    wrapped = (
        "Les principaux acteurs marseillais de l'informatique et de la\n"
        "téléphonie mobile se rendent au siège de Nokia à Helsinki le 29\n"
        "septembre pour une journée d'échanges.\n"
        "- un point de liste qui ne doit pas être collé au précédent"
    )
    assert clean_text(wrapped).split("\n\n") == [
        "Les principaux acteurs marseillais de l'informatique et de la téléphonie mobile se "
        "rendent au siège de Nokia à Helsinki le 29 septembre pour une journée d'échanges.",
        "- un point de liste qui ne doit pas être collé au précédent",
    ]
    contacts = (
        "Valérie VERNAZ Tél. +33 (0)4 96 11 60 04 GSM +33 (0)6 85 90 60 04\n"
        "Audrey RIVOLLET - Tél : + 33 (0)4 92 96 79 65 audrey.rivollet@pole-scs.org"
    )
    assert clean_text(contacts).count("\n\n") == 1
    assert clean_text("COMMUNIQUE DE PRESSE\nUn titre") == "COMMUNIQUE DE PRESSE\n\nUn titre"


def test_clean_text_empty() -> None:
    assert clean_text("") == ""
    assert clean_text(" \n\n \u00a0 ") == ""


def test_strip_markup() -> None:
    assert strip_markup("<b>Le</b> [pôle](http://x) **SCS**") == "Le pôle SCS"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_text_is_idempotent_and_nfc(raw: str) -> None:
    once = clean_text(raw)
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert "\n\n\n" not in once
    assert once == once.strip()


DEBRIS = st.sampled_from(
    [
        "[image: image1.emf]",
        '\ufffd HYPERLINK "mailto:a@b.fr" \ufffd',
        "**",
        "^{ème}",
        "\u00a0",
        "\u202f",
        "\ufffd",
        "\n\n\n",
        "\r\n",
        " \t ",
        "e\u0301",
        "« ",
        "’",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(DEBRIS, st.text(alphabet="abcé *[]^{}:-\n", max_size=8))))
def test_clean_text_idempotent_on_debris_mixtures(parts: list[str]) -> None:
    once = clean_text("".join(parts))
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


# --------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("COMMUNIQUE DE PRESSE\n\nLe vrai titre\n\nCorps.", "Le vrai titre"),
        ("Communiqué de presse\n\n« Un titre cité »\n\nCorps.", "Un titre cité"),
        ("Sophia-Antipolis le 6 juin 2011\n\nTitre après la date", "Titre après la date"),
        ("27/06\n\nTitre", "Titre"),
        ("Marseille, le jeudi 16 novembre 2017\n\nLe titre", "Le titre"),
        ("Paris, le 3 mars 2020\n\nPress release\n\nThe title.", "The title"),
        ("Nouvelles tendances :\n\nMeilleures pratiques\n\nCorps.",
         "Nouvelles tendances : Meilleures pratiques"),
        ("# Un titre markdown\n\nCorps", "Un titre markdown"),
        ("“Marseille-Helsinki : un partenariat“ prochainement\n\nCorps",
         "Marseille-Helsinki : un partenariat"),
        ("LE POLE SCS SIGNE UN ACCORD.\n\nCorps", "LE POLE SCS SIGNE UN ACCORD"),
        ("", ""),
        ("12/05/2020\n\n2020-05-12", ""),
    ],
)  # fmt: skip
def test_find_title(text: str, title: str) -> None:
    assert find_title(text) == title


def test_find_title_prose_first_line_is_shortened() -> None:
    text = (
        "date 2017-11 Les membres du comité de pilotage du smart port réunis jeudi 16 novembre "
        "2017 à la préfecture ont adopté collectivement une première série de projets destinés "
        "à tirer parti de la transition numérique. Deuxième phrase."
    )
    title = find_title(text)
    assert title.startswith("Les membres du comité de pilotage du smart port")
    assert title.endswith("…")
    assert len(title) <= 151
    assert not title.startswith("date")


@pytest.mark.parametrize(
    ("content", "text", "date_iso"),
    [
        # the label becomes the document's date; no quote starts with it any more
        (" date 2017-11 Les membres du comité se sont réunis.", "Les membres du", "2017-11"),
        ("Date : 12/03/2017\n\nLe comité s'est réuni.", "Le comité s'est réuni.", "2017-03-12"),
        # not a label, or nothing after it: the text is kept whole
        ("date limite : 12 mars 2017. Inscrivez-vous.", "date limite : 12", "2017-03-12"),
        ("Le 6 juin 2011, le forum ouvre.", "Le 6 juin 2011, le forum ouvre.", "2011-06-06"),
        ("date 2017-11", "date 2017-11", "2017-11"),
    ],
)  # fmt: skip
def test_a_leading_date_label_moves_to_the_metadata(
    tmp_path: Path, content: str, text: str, date_iso: str
) -> None:
    doc = load_document(write(tmp_path / "note.txt", content))
    assert doc.text.startswith(text)
    assert doc.date_iso == date_iso


def test_find_title_long_heading_truncated_on_word_boundary() -> None:
    heading = " ".join(["mot"] * 100)
    title = find_title(heading)
    assert len(title) <= 201
    assert title.endswith("mot…")


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date 2017-11 Les membres du comité", ("2017-11", "2017-11")),
        ("Sophia-Antipolis le 6 juin 2011\nCOMMUNIQUE", ("6 juin 2011", "2011-06-06")),
        ("Titre\n\n27/06\n\nJohan Bencivenga a rencontré", ("27/06", None)),
        ("Titre\n\nMarseille, 27/06 2016\n\nCorps", ("27/06", "2016-06-27")),
        ("17 & 18 Novembre 2011", ("17 & 18 Novembre 2011", "2011-11-17")),
        ("réunis jeudi 16 novembre 2017 à la préfecture", ("16 novembre 2017", "2017-11-16")),
        ("Nice, June 6, 2011 — Today", ("June 6, 2011", "2011-06-06")),
        ("London, 6 June 2011", ("6 June 2011", "2011-06-06")),
        ("le 1er mars 2020", ("1er mars 2020", "2020-03-01")),
        ("Paris, le 03/04/2019", ("03/04/2019", "2019-04-03")),
        ("Publié le 2019-04-03", ("2019-04-03", "2019-04-03")),
        ("en juin 2011 le forum", ("juin 2011", "2011-06")),
        ("Date : 2017\n\nTexte", ("2017", "2017")),
        ("Aucune date ici, seulement 2005 et 71 pôles.", (None, None)),
        ("réuni le 12 décembre, le conseil a approuvé", (None, None)),  # not a dateline
        ("Tél. 04.92.96.79.65 et 1.5 points", (None, None)),
        ("le 31 février 2011", ("février 2011", "2011-02")),  # impossible day: month only
    ],
)
def test_find_date(text: str, expected: tuple[str | None, str | None]) -> None:
    assert find_date(text) == expected


def test_find_date_prefers_header_then_first_full_date() -> None:
    header = "Nice, le 6 juin 2011\n\n" + "Texte. " * 100 + "Rendez-vous le 17 novembre 2011."
    assert find_date(header) == ("6 juin 2011", "2011-06-06")
    late = "Texte sans date. " * 40 + "Le 28 octobre 2010, puis le 17 novembre 2011."
    assert find_date(late) == ("28 octobre 2010", "2010-10-28")


# --------------------------------------------------------------------------- the bundled corpus

EXPECTED_CORPUS = {
    "forum-clusters-excellence-sophia-2011.txt": (
        "Nouvelles tendances des Clusters d’excellence : "
        "Meilleures pratiques et outils innovants à l’international",
        "6 juin 2011",
        "2011-06-06",
    ),
    "marseille-helsinki-partenariat-it.txt": (
        "Marseille-Helsinki : towards a promising partnership in IT",
        None,
        None,
    ),
    "scs-mit-alliance-strategique.txt": (
        "LE POLE MONDIAL SOLUTIONS SECURISEES COMMUNICANTES (SCS) ET LE MASSACHUSETTS "
        "INSTITUTE OF TECHNOLOGY DE BOSTON (MIT) SIGNENT UN PROJET D'ALLIANCE STRATEGIQUE",
        None,
        None,
    ),
    "smart-port-aix-marseille-2017.txt": (
        "Les membres du comité de pilotage du smart port réunis jeudi 16 novembre 2017 à la "
        "préfecture ont adopté collectivement une première série de projets…",
        "2017-11",
        "2017-11",
    ),
    "technopole-arbois-mediterranee.txt": (
        "Technopôle de l’environnement Arbois Méditerranée : AMP, champion de l’innovation",
        "27/06",
        None,
    ),
}


@pytest.fixture(scope="module")
def corpus_docs() -> dict[str, Document]:
    files, skipped = discover([bundled_corpus_dir()])
    assert [(Path(s.path).name, s.code) for s in skipped] == [("README.md", "readme")]
    return {f.name: load_document(f) for f in files if f.suffix == ".txt"}


def test_corpus_files_found(corpus_docs: dict[str, Document]) -> None:
    assert sorted(corpus_docs) == sorted(EXPECTED_CORPUS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CORPUS))
def test_corpus_document(corpus_docs: dict[str, Document], name: str) -> None:
    doc = corpus_docs[name]
    text = doc.text
    for debris in ("[image:", "HYPERLINK", "\ufffd", "**", "^{", "\u00a0", "\r"):
        assert debris not in text
    assert "\n\n\n" not in text
    assert all(line == line.strip() for line in text.split("\n"))
    assert unicodedata.is_normalized("NFC", text)
    assert clean_text(text) == text
    title, date_raw, date_iso = EXPECTED_CORPUS[name]
    assert doc.title == title
    assert doc.title.upper() != "COMMUNIQUE DE PRESSE"
    assert (doc.date_raw, doc.date_iso) == (date_raw, date_iso)
    assert doc.language == "fr"
    assert doc.doc_id == hashlib.sha256(text.encode("utf-8")).hexdigest()
    again = load_document(Path(doc.source))
    assert again.doc_id == doc.doc_id


def test_corpus_hyperlink_text_is_kept(corpus_docs: dict[str, Document]) -> None:
    text = corpus_docs["forum-clusters-excellence-sophia-2011.txt"].text
    assert "Email : dominique.ruffat@sfr.fr" in text
    assert "« Une politique industrielle intégrée à l'ère de la mondialisation »" in text
    scs = corpus_docs["scs-mit-alliance-strategique.txt"].text
    assert "la 3ème région européenne" in scs
