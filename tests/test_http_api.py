"""The HTTP API (/api/v1) and the OpenAI-compatible endpoint (/v1), in process.

The app is the one ``sourcier serve`` runs (page and APIs on one ASGI app), over a copy
of the hashing-embedder index; a real server is in tests/test_http_server.py.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sourcier import ask, load_index
from sourcier.server.app import create_server
from sourcier.server.tokens import TokenStore, tokens_path
from sourcier.ui import Access, ClientLimiter

SCS = "Qui préside le pôle SCS ?"
FR = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}


def _app(root: Path, index: Path, **options):
    copy = root / "index"
    if not copy.exists():
        shutil.copytree(index, copy)
    options.setdefault("limiter", ClientLimiter(per_minute=0))
    return create_server(index=copy, upload_dir=root / "uploads", **options), copy


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_hashing_index: Path):
    app, index = _app(tmp_path_factory.mktemp("api"), shared_hashing_index)
    return TestClient(app), index


def _exact(answer: dict, index: Path) -> None:
    idx = load_index(index)
    for c in answer["citations"]:
        assert idx.document(c["doc_id"]).text[c["start"] : c["end"]] == c["quote"]


def _events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        event = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((event, data))
    return out


# ----- /api/v1/ask and /search -----------------------------------------------------------------


def test_ask_returns_the_same_answer_json_as_the_python_api(served) -> None:
    client, index = served
    response = client.post("/api/v1/ask", json={"question": SCS, "k": 4})
    assert response.status_code == 200
    got = response.json()
    expected = ask(SCS, index=index, k=4).to_dict()
    for key in ("answer", "refused", "language", "mode", "citations", "sentences"):
        assert got[key] == expected[key], key
    assert [h["chunk_id"] for h in got["hits"]] == [h["chunk_id"] for h in expected["hits"]]
    assert got["citations"] and not got["refused"]
    _exact(got, index)


def test_a_body_sent_as_curl_d_sends_it_is_read_as_json(served) -> None:
    client, _ = served
    response = client.post(
        "/api/v1/ask",
        content=json.dumps({"question": SCS}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.json()["citations"]


def test_ask_streams_server_sent_events_ending_with_the_answer(served) -> None:
    client, index = served
    response = client.post("/api/v1/ask", json={"question": SCS, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1][0] == "answer" and [e for e, _ in events].count("answer") == 1
    final = json.loads(events[-1][1])
    assert final["answer"] == client.post("/api/v1/ask", json={"question": SCS}).json()["answer"]
    _exact(final, index)


def test_ask_honours_filters_history_and_answer_mode(served) -> None:
    client, index = served
    docs = client.get("/api/v1/documents").json()["documents"]
    helsinki = next(d for d in docs if "Helsinki" in d["title"])
    body = {"question": SCS, "filters": {"doc_ids": [helsinki["doc_id"]]}, "k": 3}
    answer = client.post("/api/v1/ask", json=body).json()
    assert {h["doc_id"] for h in answer["hits"]} == {helsinki["doc_id"]}
    follow = {
        "question": "Et qui est son directeur ?",
        "history": [{"role": "user", "content": SCS}, {"role": "assistant", "content": "…"}],
        "answer_mode": "extractive",
    }
    reply = client.post("/api/v1/ask", json=follow).json()
    assert reply["mode"] == "extractive"
    assert "SCS" in reply["retrieval_query"]  # the follow-up leans on the history


def test_search_returns_k_hits_best_first(served) -> None:
    client, _ = served
    hits = client.post("/api/v1/search", json={"query": "Helsinki", "k": 2}).json()["hits"]
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]
    assert all({"doc_id", "chunk_id", "start", "end", "text"} <= set(h) for h in hits)


def test_health_says_the_generation_size_and_models(served) -> None:
    client, index = served
    health = client.get("/api/v1/health").json()
    idx = load_index(index)
    assert health["generation"] == idx.generation
    assert health["documents"] == len(idx.documents()) == 5
    assert health["model"] == idx.settings.model.name
    assert health["chat_model"] is None and health["read_only"] is False


def test_openapi_schema_and_its_page_list_every_route(served) -> None:
    client, _ = served
    schema = client.get("/api/v1/openapi.json").json()
    assert {"/ask", "/search", "/documents", "/documents/{doc_id}", "/health"} <= set(
        schema["paths"]
    )
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "POST" in page.text and "/ask" in page.text
    assert "<script" not in page.text  # nothing to fetch from a CDN: works offline


# ----- errors as data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "english", "french"),
    [
        ({"question": "   "}, "question_empty", "empty", "vide"),
        ({"question": SCS, "k": 0}, "k_invalid", "k must be", "nombre de passages"),
        ({"question": SCS, "k": "many"}, "bad_request", "k", "k"),
        ({"question": SCS, "mode": "psychic"}, "bad_request", "mode", "mode"),
        (
            {"question": SCS, "filters": {"date_from": "2023-13"}},
            "filter_date_invalid",
            "2023-13",
            "calendrier",
        ),
        ({"question": SCS, "filters": {"colour": "red"}}, "bad_request", "colour", "colour"),
        ({"k": 3}, "bad_request", "question", "question"),
    ],
)
def test_a_bad_request_is_a_400_with_a_code_and_a_one_line_message(
    served, body, code, english, french
) -> None:
    client, _ = served
    for headers, word in (({}, english), (FR, french)):
        response = client.post("/api/v1/ask", json=body, headers=headers)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == code
        assert word in error["message"] and "\n" not in error["message"]
        assert "Traceback" not in response.text


def test_the_message_follows_accept_language(served) -> None:
    client, _ = served
    en = client.post("/api/v1/ask", json={"question": ""}).json()["error"]["message"]
    fr = client.post("/api/v1/ask", json={"question": ""}, headers=FR).json()["error"]["message"]
    assert en != fr and "vide" in fr and "empty" in en


def test_malformed_json_is_a_400(served) -> None:
    client, _ = served
    response = client.post(
        "/api/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_request",
        "message": "invalid request: the body is not valid JSON",
    }


def test_an_unknown_document_is_a_404_without_the_server_path(served) -> None:
    client, index = served
    response = client.delete("/api/v1/documents/0123456789abcdef", headers=FR)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "document_not_found"
    assert str(index) not in response.text


def test_a_10_mb_json_body_is_refused_with_413_before_it_is_read(served) -> None:
    client, _ = served
    big = json.dumps({"question": "a" * (10 << 20)})
    response = client.post("/api/v1/ask", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"a" * (1 << 20)

    response = client.post(
        "/api/v1/ask", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


# ----- documents: upload and removal -------------------------------------------------------------


def test_upload_indexes_the_file_then_removal_takes_it_out(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    app, index = _app(tmp_path, shared_hashing_index)
    client = TestClient(app)
    text = "La Fête des lanternes de Gardanne réunit 4 000 visiteurs chaque hiver.\n"
    response = client.post(
        "/api/v1/documents", files={"files": ("lanternes.txt", text.encode(), "text/plain")}
    )
    assert response.status_code == 200
    report = response.json()
    assert report["files"][0]["status"] == "indexed" and report["documents"] == 6
    answer = client.post("/api/v1/ask", json={"question": "Combien de visiteurs à Gardanne ?"})
    assert "4 000" in answer.json()["citations"][0]["quote"]
    doc = next(
        d for d in client.get("/api/v1/documents").json()["documents"] if "lanternes" in d["source"]
    )
    removed = client.delete(f"/api/v1/documents/{doc['doc_id']}")
    assert removed.status_code == 200 and removed.json()["removed"] == doc["doc_id"]
    assert len(client.get("/api/v1/documents").json()["documents"]) == 5
    assert not (tmp_path / "uploads" / "lanternes.txt").exists()


def test_an_upload_named_with_a_path_stays_in_the_upload_folder(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    app, _ = _app(tmp_path, shared_hashing_index)
    client = TestClient(app)
    response = client.post(
        "/api/v1/documents",
        files={"files": ("../../x.txt", b"Un texte sur le port de Marseille.\n", "text/plain")},
    )
    assert response.status_code == 200
    assert response.json()["files"][0]["name"] == "x.txt"
    assert (tmp_path / "uploads" / "x.txt").is_file()
    assert not (tmp_path / "x.txt").exists() and not (tmp_path.parent / "x.txt").exists()


def test_an_unsupported_type_is_415_and_too_large_is_413(
    tmp_path: Path, shared_hashing_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, index = _app(tmp_path, shared_hashing_index)
    client = TestClient(app)
    before = client.get("/api/v1/health").json()["generation"]
    response = client.post(
        "/api/v1/documents", files={"files": ("run.exe", b"MZ\x90\x00", "application/x-dosexec")}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_type"
    response = client.post(
        "/api/v1/documents", files={"files": ("empty.txt", b"", "text/plain")}, headers=FR
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "empty"
    import sourcier.ui.uploads as uploads

    monkeypatch.setattr(uploads, "MAX_UPLOAD_MB", 0.001)  # 1 KiB, so the test sends little
    response = client.post(
        "/api/v1/documents", files={"files": ("big.txt", b"x" * 5000, "text/plain")}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert client.get("/api/v1/health").json()["generation"] == before  # nothing written
    assert not any((tmp_path / "uploads").glob("*")) if (tmp_path / "uploads").exists() else True


def test_a_header_injection_attempt_goes_nowhere(served) -> None:
    client, _ = served
    response = client.delete("/api/v1/documents/x%0d%0aSet-Cookie:%20pwned=1")
    assert response.status_code == 404
    assert "set-cookie" not in response.headers and "pwned" not in str(response.headers)
    response = client.post(
        "/api/v1/documents",
        files={"files": ("a.txt\r\nX-Injected: 1\r\n\r\n.txt", b"Un texte.\n", "text/plain")},
    )
    assert response.status_code == 200 and "x-injected" not in response.headers
    assert response.json()["files"][0]["name"].count("\n") == 0


# ----- login, tokens, read-only, budget ----------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, shared_hashing_index: Path):
    root = tmp_path_factory.mktemp("api-auth")
    access = Access(users=(("alice", "s3cret"),))
    app, index = _app(root, shared_hashing_index, access=access)
    return TestClient(app), index


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/ask"),
        ("post", "/api/v1/search"),
        ("get", "/api/v1/documents"),
        ("get", "/api/v1/health"),
        ("get", "/api/v1/docs"),
        ("get", "/api/v1/openapi.json"),
        ("delete", "/api/v1/documents/abc"),
        ("get", "/v1/models"),
        ("post", "/v1/chat/completions"),
    ],
)
def test_with_a_login_every_route_answers_401_without_credentials(guarded, method, path) -> None:
    client, _ = guarded
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_basic_login_and_bearer_tokens_open_the_api_until_revoked(guarded) -> None:
    client, index = guarded
    assert client.get("/api/v1/health", headers=_basic("alice", "s3cret")).status_code == 200
    assert client.get("/api/v1/health", headers=_basic("alice", "wrong")).status_code == 401
    assert client.get("/api/v1/health", headers=_basic("mallory", "s3cret")).status_code == 401
    store = TokenStore(tokens_path(index))
    token = store.create("ci")
    stored = tokens_path(index).read_text()
    assert token not in stored and (tokens_path(index).stat().st_mode & 0o777) == 0o600
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/ask", json={"question": SCS}, headers=bearer).status_code == 200
    assert client.get("/v1/models", headers=bearer).status_code == 200
    store.revoke("ci")
    response = client.get("/api/v1/health", headers=bearer)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert client.get("/api/v1/health", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_read_only_server_has_no_writing_routes(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    app, _ = _app(tmp_path, shared_hashing_index, access=Access(read_only=True))
    client = TestClient(app)
    upload = client.post("/api/v1/documents", files={"files": ("a.txt", b"texte", "text/plain")})
    assert upload.status_code == 405 and upload.json()["error"]["code"] == "method_not_allowed"
    assert client.delete("/api/v1/documents/abc").status_code in (404, 405)
    assert len(client.get("/api/v1/documents").json()["documents"]) == 5
    assert client.get("/api/v1/health").json()["read_only"] is True
    assert "/documents" not in client.get("/api/v1/openapi.json").json()["paths"].get(
        "/documents", {}
    ).get("post", {}).get("summary", "")


def test_a_client_over_its_budget_gets_429_with_retry_after(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    limiter = ClientLimiter(per_minute=6, burst=2)
    app, _ = _app(tmp_path, shared_hashing_index, limiter=limiter)
    client = TestClient(app)
    codes = [client.post("/api/v1/ask", json={"question": SCS}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = client.post("/api/v1/ask", json={"question": SCS}, headers=FR)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "client_rate"
    assert "attendez" in response.json()["error"]["message"]


# ----- the OpenAI-compatible endpoint ------------------------------------------------------------


def test_models_lists_the_index_as_models(served) -> None:
    client, _ = served
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert {m["id"] for m in models["data"]} == {"sourcier", "sourcier-extractive"}


def test_chat_completion_is_the_answer_with_sources_and_structured_citations(served) -> None:
    client, index = served
    body = {"model": "sourcier", "messages": [{"role": "user", "content": SCS}]}
    reply = client.post("/v1/chat/completions", json=body).json()
    expected = ask(SCS, index=index)
    content = reply["choices"][0]["message"]["content"]
    assert reply["object"] == "chat.completion" and reply["choices"][0]["finish_reason"] == "stop"
    assert content.replace("**", "").startswith(expected.answer)
    if expected.marked is not None:  # the asked fact in bold
        assert f"**{expected.marked.text}**" in content
    assert "**Sources**" in content and "[1] " in content.split("**Sources**")[1]
    assert [c["quote"] for c in reply["citations"]] == [c.quote for c in expected.citations]
    _exact({"citations": reply["citations"]}, index)


def test_chat_streams_chunks_ending_with_done(served) -> None:
    client, _ = served
    body = {"messages": [{"role": "user", "content": SCS}], "stream": True}
    events = _events(client.post("/v1/chat/completions", json=body).text)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    plain = client.post("/v1/chat/completions", json=body | {"stream": False}).json()
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"]


def test_a_question_the_documents_do_not_answer_is_a_normal_reply(served) -> None:
    client, _ = served
    question = "Quel est le budget de la nouvelle chaire Smart Port ?"
    body = {"messages": [{"role": "user", "content": question}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    reply = response.json()
    assert reply["refused"] is True and reply["citations"] == []
    assert reply["choices"][0]["message"]["content"] == ask(question, index=served[1]).answer


def test_chat_history_comes_from_the_earlier_turns(served) -> None:
    client, _ = served
    first = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": SCS}]}
    )
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": SCS},
        first.json()["choices"][0]["message"],
        {"role": "user", "content": [{"type": "text", "text": "Et son directeur ?"}]},
    ]
    reply = client.post("/v1/chat/completions", json={"messages": messages}).json()
    assert reply["choices"][0]["message"]["content"]
    bad = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "Hi"}]}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "chat_no_question"
    assert bad.json()["error"]["type"] == "invalid_request_error"


def test_token_commands_show_a_token_once_and_keep_only_its_hash(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from click.testing import CliRunner

    from sourcier.cli import main

    index = tmp_path / "index"
    shutil.copytree(shared_hashing_index, index)
    runner = CliRunner()
    made = runner.invoke(main, ["token", "create", "--index", str(index), "laptop"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert TokenStore(tokens_path(index)).owner(token) == "laptop"
    assert token not in tokens_path(index).read_text()
    again = runner.invoke(main, ["token", "create", "--index", str(index), "laptop"])
    assert again.exit_code == 1 and "revoke it first" in again.output
    listed = runner.invoke(main, ["token", "list", "--index", str(index)])
    assert "laptop" in listed.output and token not in listed.output
    assert runner.invoke(main, ["token", "revoke", "--index", str(index), "laptop"]).exit_code == 0
    assert TokenStore(tokens_path(index)).owner(token) is None
    gone = runner.invoke(main, ["token", "revoke", "--index", str(index), "laptop"])
    assert gone.exit_code == 1 and "no token named" in gone.output
    nowhere = runner.invoke(main, ["token", "create", "--index", str(tmp_path / "none"), "x"])
    assert nowhere.exit_code == 1 and "no index" in nowhere.output


@pytest.mark.parametrize(
    "body",
    [
        [],
        "question",
        {"question": 42},
        {"question": None},
        {"question": SCS, "k": 10**30},
        {"question": SCS, "k": -1},
        {"question": SCS, "history": "hello"},
        {"question": SCS, "history": [{"role": "system", "content": "x"}]},
        {"question": SCS, "history": [{"role": "user"}]},
        {"question": SCS, "filters": {"doc_ids": "abc"}},
        {"question": SCS, "filters": {"date_from": "2024", "date_to": "2020"}},
        {"question": SCS, "answer_mode": "poetic"},
        {"question": "x" * 100_000},
        {"question": "\x00\ud800"},
    ],
)
def test_no_user_input_gets_a_500(served, body) -> None:
    client, _ = served
    response = client.post("/api/v1/ask", content=json.dumps(body))
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in response.text


def test_a_generative_stream_sends_drafts_then_the_verified_answer(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    reply = "Le pôle SCS est présidé par Jean-Pierre Henry [1]. Il a 500 salariés [2]."
    app, index = _app(tmp_path, shared_hashing_index, llm=FakeListChatModel(responses=[reply]))
    client = TestClient(app)
    assert client.get("/api/v1/health").json()["chat_model"] == "FakeListChatModel"
    events = _events(client.post("/api/v1/ask", json={"question": SCS, "stream": True}).text)
    kinds = [kind for kind, _ in events]
    assert kinds.count("delta") >= 2 and kinds[-1] == "answer"
    draft = "".join(json.loads(data)["text"] for kind, data in events if kind == "delta")
    final = json.loads(events[-1][1])
    assert "500" in draft and "500" not in final["answer"]  # the unsupported sentence is gone
    assert final["mode"] == "generative"
    _exact(final, index)


def test_a_failing_model_is_a_notice_in_the_stream_not_an_error(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Broken(FakeListChatModel):
        def _stream(self, *args, **kwargs):
            raise ConnectionError("Connection refused")

    app, _ = _app(tmp_path, shared_hashing_index, llm=Broken(responses=["x"]))
    events = _events(
        TestClient(app).post("/api/v1/ask", json={"question": SCS, "stream": True}).text
    )
    notices = [json.loads(data)["message"] for kind, data in events if kind == "notice"]
    assert notices and "Connection refused" in notices[0]
    assert events[-1][0] == "answer" and json.loads(events[-1][1])["mode"] == "extractive"


def test_the_reply_bolds_the_marked_fact_and_shows_each_quote_once() -> None:
    from sourcier.answer.glance import compose_line
    from sourcier.server.chat_completions import Reply
    from sourcier.types import Answer, AnswerSentence, Citation, Marked

    text = "Le pôle est présidé par Jean Dupont. Il compte 300 membres."
    one = Citation(1, "d", "Communiqué", "/c/a.txt", "c1", text[:36], 0, 36)
    two = Citation(2, "d", "Communiqué", "/c/a.txt", "c2", text[37:], 37, len(text))
    answer = Answer(
        question="Qui préside le pôle ?",
        answer=compose_line(one.quote, (2,), language="fr"),
        refused=False,
        language="fr",
        mode="extractive",
        citations=(one, two),
        sentences=(AnswerSentence(one.quote, (1,), True),),
        see_also=(2,),
        marked=Marked(1, "d", 24, 35, "Jean Dupont"),
    )
    content = Reply(answer, "sourcier").content()
    assert content.startswith("Le pôle est présidé par **Jean Dupont**. [1] — Voir aussi [2]")
    assert content.count("Jean Dupont") == 1  # the whole-line quote is not listed again
    assert "[1] Communiqué\n" in content and content.count("Il compte 300 membres.") == 1
