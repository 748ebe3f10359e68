"""End to end in a real browser: headless Debian Chromium driven by Playwright.

The server runs in a subprocess (``sourcier.server.serve``) on a free loopback port, over a
temporary index of the bundled corpus built with the real default model. Screenshots go
to ``test-artifacts/`` (git-ignored); with ``SOURCIER_UPDATE_SCREENSHOT=1`` the answer
screenshot also replaces ``docs/ui-screenshot.png``, the README's picture.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port, wait_until_serving

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
README_SHOT = ROOT / "docs" / "ui-screenshot.png"
FESTIVAL = Path(__file__).parent / "ui_fixtures" / "festival-lumieres-gardanne.txt"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER = """
import sys
from sourcier import build_index
from sourcier.server.serve import serve

index, uploads, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
build_index(index=index, show_progress=False)
print("index ready", flush=True)
serve(index=index, port=port, upload_dir=uploads)
"""
STARTUP_SECONDS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app in a subprocess; yields its URL once it answers."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("browser")
    port = free_port()
    log_path = ARTIFACTS / "ui-server.log"
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(root / "index"), str(root / "uploads"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}/"
    try:

        def ready() -> bool:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        wait_until_serving(proc, ready, seconds=STARTUP_SECONDS, what="server", log=log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def pw():
    """One Playwright for the module (a second sync one cannot start inside the first)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def page(server: str, pw):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.set_default_timeout(60_000)
    page.goto(server)
    page.wait_for_selector("#question textarea")
    yield page
    browser.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@contextlib.contextmanager
def _served(demo, pw, *, timeout_ms: int) -> Iterator:
    """``demo`` served in this process on a free loopback port, and a French page open
    on it (the page loaded, nothing waited for); both closed afterwards."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    browser = None
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="fr-FR").new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(f"http://127.0.0.1:{port}/")
        yield page
    finally:
        if browser is not None:
            browser.close()
        demo.close()


def _ask(page, question: str) -> str:
    """Type a question, send it, wait for the streamed answer to finish; return its text."""
    bots = page.locator("#chat [data-testid='bot']")
    before = bots.count()
    page.fill("#question textarea", question)
    page.click("#send")
    page.wait_for_function(
        """([n]) => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            if (bots.length <= n) return false;
            const text = bots[bots.length - 1].innerText;
            return !text.includes("▌") && !text.includes("Recherche dans les documents");
        }""",
        arg=[before],
    )
    return bots.last.inner_text()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_ask_see_sources_open_document_upload_and_ask_again(page) -> None:
    # 1. the chat answers with [n] markers and the sources panel highlights the quote
    answer = _ask(page, "Qui préside le pôle SCS ?")
    assert "[1]" in answer
    page.wait_for_selector("#sources .src-card mark")
    henry = page.locator("#sources .src-card").filter(
        has=page.locator("mark", has_text="Jean-Pierre HENRY")
    )
    assert henry.count() >= 1, page.inner_text("#sources")
    card = henry.first
    assert "scs-mit-alliance-strategique.txt" in card.inner_text()
    # the chat holds one line, the asked fact in bold, the others as "Voir aussi"; each
    # quote stands once on the page, in its source card
    bubble = page.locator("#chat [data-testid='bot']").last
    assert bubble.locator("strong", has_text="Jean-Pierre HENRY").count() == 1
    assert "Voir aussi" in answer
    quotes = [
        " ".join(m.split()) for m in page.locator("#sources .src-card mark").all_inner_texts()
    ]
    shown = " ".join(page.inner_text("body").split())
    assert len(quotes) >= 2
    for quote in quotes:
        assert shown.count(quote) == 1, f"shown twice: {quote}"
    _shot(page, "01-answer-and-sources.png")
    if os.environ.get("SOURCIER_UPDATE_SCREENSHOT"):  # refresh the README's picture on demand
        page.screenshot(path=str(README_SHOT))

    # 2. clicking a [n] marker in the chat opens that quote in the document viewer
    first_quote = page.locator("#sources .src-card mark").first.inner_text()
    page.locator("#chat [data-testid='bot'] a[href*='#cite/']").first.click()
    mark = page.locator("#doc-viewer mark#cite")
    mark.wait_for()
    assert " ".join(mark.inner_text().split()) == " ".join(first_quote.split())
    assert "#" not in page.url, "the marker link was followed"
    page.get_by_role("tab", name="Sources").click()

    # 3. "Ouvrir le document" shows the whole document, scrolled to the highlighted span
    card.locator(".src-open").click()
    mark = page.locator("#doc-viewer mark#cite")
    mark.wait_for()
    assert "Jean-Pierre HENRY" in mark.inner_text()
    page.wait_for_timeout(400)  # the scroll happens just after the render
    box = page.locator("#doc-viewer .doc-text").bounding_box()
    spot = mark.bounding_box()
    assert box and spot
    assert (
        box["y"] - 1 <= spot["y"]
        and spot["y"] + min(spot["height"], 20) <= box["y"] + box["height"] + 1
    ), "the highlighted span is not scrolled into the viewer"
    _shot(page, "02-document-viewer.png")

    # 4. an empty question is one clear sentence in the chat
    page.fill("#question textarea", "")
    page.click("#send")
    page.wait_for_function(
        "() => document.querySelector('#chat').innerText.includes('La question est vide')"
    )

    # 5. upload a new document: indexed, listed, reported
    page.get_by_role("tab", name="Corpus").click()
    page.wait_for_selector("#corpus table.corpus")
    page.set_input_files("#upload input[type=file]", str(FESTIVAL))
    page.wait_for_selector("#upload-status .report", timeout=120_000)
    report = page.inner_text("#upload-status")
    assert FESTIVAL.name in report and "indexé" in report, report
    assert FESTIVAL.name in page.inner_text("#corpus")
    _shot(page, "03-upload.png")

    # 6. ... and it can be asked about right away; its markup is shown, never run
    answer = _ask(page, "Qui préside le Festival des lumières de Gardanne ?")
    assert "Zoé Marchetti" in answer and "[1]" in answer
    page.wait_for_selector("#sources .src-card mark")
    sources = page.inner_text("#sources")
    assert FESTIVAL.name in sources
    assert "<img src=x" in sources  # displayed as text
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("#sources img, #sources script").count() == 0
    _shot(page, "04-new-document-answer.png")

    # 7. remove the document again (after confirming): it leaves the corpus list
    page.get_by_role("tab", name="Corpus").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#remove-choice input")
    page.get_by_role("option").filter(has_text="Festival des lumières").first.click()
    page.click("#remove")
    page.wait_for_function(
        "() => document.querySelector('#upload-status').innerText.includes('retiré')"
    )
    assert FESTIVAL.name not in page.inner_text("#corpus")


def test_a_user_logs_in_before_the_chat(shared_hashing_index: Path, pw) -> None:
    """A served app with a login: the page asks for it, refuses a wrong password, and
    after the right one the chat answers (the app runs here, on the hashing index)."""
    from sourcier.ui import Access, build_app
    from sourcier.ui.access import hash_password

    demo = build_app(
        index=shared_hashing_index,
        access=Access(users=(("alice", hash_password("s3cret")),), read_only=True),
    )
    with _served(demo, pw, timeout_ms=60_000) as page:
        page.wait_for_selector("input[type=password]")
        assert page.query_selector("#question") is None  # no chat before the login
        assert "connectez-vous" in page.inner_text("body")

        def log_in(password: str) -> None:
            page.fill("input[data-testid=textbox]", "alice")
            page.fill("input[type=password]", password)
            page.get_by_role("button", name="Connexion").click()

        log_in("wrong")
        page.wait_for_timeout(1500)
        assert page.query_selector("#question") is None
        log_in("s3cret")
        page.wait_for_selector("#question textarea")
        page.fill("#question textarea", "Qui préside le pôle SCS ?")
        page.click("#send")
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('HENRY')")
        page.get_by_role("tab", name="Corpus").click()
        assert page.query_selector("#upload") is None  # read-only: no upload box
        assert "Lecture seule" in page.inner_text("#read-only")


def test_an_oversized_upload_is_held_back_in_french(
    shared_hashing_index: Path, tmp_path: Path, pw
) -> None:
    """The page checks type and size before sending: one French line under the box, no
    English toast, and the box still takes the next file."""
    import shutil

    from sourcier.ui import MAX_UPLOAD_MB, build_app

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    big = tmp_path / "rapport-complet.txt"
    big.write_bytes(b"mot " * int(MAX_UPLOAD_MB * 1024 * 1024 / 4 + 1024))
    demo = build_app(index=index, upload_dir=tmp_path / "uploads")
    with _served(demo, pw, timeout_ms=60_000) as page:
        page.wait_for_selector("#question textarea")
        page.get_by_role("tab", name="Corpus").click()
        page.set_input_files("#upload input[type=file]", str(big))
        page.wait_for_function(
            "() => document.querySelector('#upload-status').innerText.includes('limite')"
        )
        status = page.inner_text("#upload-status")
        assert "rapport-complet.txt" in status and "au-delà de la limite de 20" in status
        page.wait_for_timeout(1000)
        assert not page.query_selector_all("[data-testid=toast-body]")  # no English toast
        assert "Erreur" not in page.inner_text("#upload")  # the box is not stuck
        page.set_input_files("#upload input[type=file]", str(FESTIVAL))
        page.wait_for_function(
            "() => document.querySelector('#upload-status').innerText.includes('indexé')"
        )
        assert (tmp_path / "uploads" / FESTIVAL.name).is_file()
        assert not (tmp_path / "uploads" / big.name).exists()


@pytest.mark.llm_server
def test_a_model_answer_streams_unverified_then_settles_verified(
    shared_hashing_index: Path, tmp_path: Path, pw, llama_server: str
) -> None:
    """With `--llm`, the chat shows the model's words as they come, marked as not yet
    verified, then replaces them with the verified answer (or the extractive one with a
    notice): no unverified text or marker is left, every marker opens its exact span,
    and the extractive mode is one click away."""
    import re
    import shutil

    from sourcier import Settings, load_index
    from sourcier.ui import build_app

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    chat = Settings().with_(llm="openai:smollm2", llm_base_url=llama_server, llm_timeout=180)
    demo = build_app(index=index, llm=chat.llm)
    with _served(demo, pw, timeout_ms=240_000) as page:
        page.wait_for_selector("#question textarea")
        page.get_by_role("tab", name="Réglages").click()
        page.get_by_text(re.compile(r"Générative : \S*smollm2")).wait_for()  # names the model
        page.fill("#question textarea", "Qui préside le pôle SCS ?")
        page.click("#send")
        page.wait_for_function(  # the model's raw words, flagged, while it writes
            "() => document.querySelector('#chat').innerText.includes('pas encore vérifié')"
        )
        page.wait_for_function(
            """() => {
                const bots = document.querySelectorAll("#chat [data-testid='bot']");
                const text = bots.length ? bots[bots.length - 1].innerText : "";
                return /Réponse (générative|extractive)/.test(text) && !text.includes("▌");
            }"""
        )
        bot = page.locator("#chat [data-testid='bot']").last
        final = bot.inner_text()
        assert "pas encore vérifié" not in final
        assert re.search(r"Réponse générative \(\S*smollm2\)", final) or "⚠️" in final
        links = bot.locator("a[href^='#cite/']")
        shown = {int(n) for n in re.findall(r"\[(\d+)\]", final)}
        assert len(shown) == len({links.nth(i).inner_text() for i in range(links.count())})
        idx = load_index(index)
        for i in range(links.count()):
            _, doc_id, start, end = links.nth(i).get_attribute("href").split("/")
            assert 0 <= int(start) < int(end) <= len(idx.document(doc_id).text)
        if links.count():
            href = links.first.get_attribute("href")
            _, doc_id, start, end = href.split("/")
            links.first.click()
            mark = page.locator("#doc-viewer mark#cite")
            mark.wait_for()
            quote = idx.document(doc_id).text[int(start) : int(end)]
            assert " ".join(mark.inner_text().split()) == " ".join(quote.split())

        page.get_by_role("tab", name="Réglages").click()
        page.get_by_text("Extractive : citations exactes, sans modèle").click()
        before = page.locator("#chat [data-testid='bot']").count()
        page.fill("#question textarea", "Qui préside le pôle SCS ?")
        page.click("#send")
        page.wait_for_function(
            """([n]) => {
                const bots = document.querySelectorAll("#chat [data-testid='bot']");
                return bots.length > n &&
                    bots[bots.length - 1].innerText.includes("Réponse extractive");
            }""",
            arg=[before],
        )
        assert "HENRY" in page.locator("#chat [data-testid='bot']").last.inner_text()


def test_a_scanned_pdf_dropped_in_shows_its_quote_highlighted_on_the_page(
    tmp_path: Path, pw
) -> None:
    """The issue's promise: a user drops a scanned French PDF into the UI, asks, and
    sees the answer's quote highlighted on the page image, with "p. 2"."""
    from test_ocr import PAGES, needs_tesseract, scanned_pdf

    if needs_tesseract.args[0]:
        pytest.skip(needs_tesseract.kwargs["reason"])
    from sourcier import HASHING_MODEL, Settings, build_index
    from sourcier.ui import build_app

    index = tmp_path / "index"
    build_index(index=index, settings=Settings(model=HASHING_MODEL), show_progress=False)
    scan = scanned_pdf(tmp_path / "rapport-port-scan.pdf", PAGES)
    demo = build_app(index=index, upload_dir=tmp_path / "uploads")
    with _served(demo, pw, timeout_ms=120_000) as page:
        page.wait_for_selector("#question textarea")
        page.get_by_role("tab", name="Corpus").click()
        page.set_input_files("#upload input[type=file]", str(scan))
        page.wait_for_selector("#upload-status .report")
        assert "indexé" in page.inner_text("#upload-status")
        answer = _ask(page, "Qui est le directeur du port ?")
        assert "Paul Martin" in answer
        # card [1] holds the quote, or its place when the answer line is that whole quote
        card = page.locator("#sources .src-card").filter(
            has=page.locator("mark", has_text=re.compile("Paul Martin|ci-contre"))
        )
        assert "p. 2" in card.first.locator(".src-meta").inner_text()
        card.first.locator(".src-open").click()
        figure = page.locator("#doc-viewer .page-view")
        figure.first.wait_for()
        assert figure.first.locator(".page-head").inner_text() == "p. 2"
        image = figure.first.locator(".page-img img").bounding_box()
        marks = figure.first.locator(".page-hl")
        assert image and marks.count() >= 1
        for k in range(marks.count()):  # every highlight lies on the page image
            box = marks.nth(k).bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0
            assert (
                image["x"] - 1 <= box["x"]
                and box["x"] + box["width"] <= image["x"] + image["width"] + 1
            )
            assert (
                image["y"] - 1 <= box["y"]
                and box["y"] + box["height"] <= image["y"] + image["height"] + 1
            )
        assert (
            "Paul Martin" in page.locator("#doc-viewer mark#cite").inner_text()
        )  # the text view stays
        _shot(page, "05-scan-quote-on-the-page.png")
