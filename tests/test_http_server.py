"""The APIs on a real server (uvicorn on a loopback port): the real ``openai`` client,
clients that go away mid-stream, slow clients, raw hostile requests and many clients.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sourcier import ask, load_index
from sourcier.server.app import create_server
from sourcier.server.limits import guarded_protocol
from sourcier.ui import Access, ClientLimiter

SCS = "Qui préside le pôle SCS ?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root: Path, index: Path, *, header_seconds: float = 10.0, **options) -> Iterator[str]:
    import uvicorn

    copy = root / "index"
    shutil.copytree(index, copy)
    app = create_server(index=copy, upload_dir=root / "uploads", **options)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=guarded_protocol(header_seconds), log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, shared_hashing_index: Path):
    yield from _start(
        tmp_path_factory.mktemp("http"),
        shared_hashing_index,
        header_seconds=1.0,
        body_seconds=1.0,
        limiter=ClientLimiter(per_minute=0),
    )


def _exact(citations: list[dict], index: Path) -> None:
    idx = load_index(index)
    for c in citations:
        assert idx.document(c["doc_id"]).text[c["start"] : c["end"]] == c["quote"]


def test_the_openai_client_gets_the_answer_plain_and_streamed(
    url: str, shared_hashing_index
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    assert {m.id for m in client.models.list()} == {"sourcier", "sourcier-extractive"}
    expected = ask(SCS, index=shared_hashing_index)
    reply = client.chat.completions.create(
        model="sourcier", messages=[{"role": "user", "content": SCS}]
    )
    content = reply.choices[0].message.content
    assert content.replace("**", "").startswith(expected.answer) and "**Sources**" in content
    citations = reply.model_extra["citations"]
    assert [c["quote"] for c in citations] == [c.quote for c in expected.citations]
    _exact(citations, shared_hashing_index)
    stream = client.chat.completions.create(
        model="sourcier", messages=[{"role": "user", "content": SCS}], stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert len([p for p in pieces if p]) >= 2 and "".join(pieces) == content


def test_the_openai_client_reports_a_bad_request_as_its_error(url: str) -> None:
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="sourcier", messages=[{"role": "user", "content": ""}])
    assert "empty" in str(info.value) and "Traceback" not in str(info.value)


def test_a_login_protects_the_openai_endpoint_and_a_token_opens_it(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from openai import AuthenticationError, OpenAI

    from sourcier.server.tokens import TokenStore, tokens_path

    server = _start(tmp_path, shared_hashing_index, access=Access(users=(("alice", "pw"),)))
    base = next(server)
    try:
        token = TokenStore(tokens_path(tmp_path / "index")).create("chat-client")
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0).models.list()
        client = OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0)
        assert len(client.models.list().data) == 2
        page = httpx.get(f"{base}/api/v1/docs")
        assert page.status_code == 401
        basic = base64.b64encode(b"alice:pw").decode()
        page = httpx.get(f"{base}/api/v1/docs", headers={"Authorization": f"Basic {basic}"})
        assert page.status_code == 200
    finally:
        server.close()


def test_a_client_that_disconnects_mid_stream_gives_its_slots_back(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    reply = "Le pôle SCS est présidé par Jean-Pierre Henry [1]. " * 20
    llm = FakeListChatModel(responses=[reply], sleep=0.02)
    limiter = ClientLimiter(per_minute=0, in_flight=2)  # at most 2 running per client
    server = _start(tmp_path, shared_hashing_index, llm=llm, limiter=limiter)
    base = next(server)
    try:
        for _ in range(4):  # more than the client's 2 slots: each was given back
            with httpx.stream(
                "POST", f"{base}/api/v1/ask", json={"question": SCS, "stream": True}, timeout=30
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("event: delta"):
                        break  # hang up while the model is still writing
        deadline = time.monotonic() + 10
        while True:
            answer = httpx.post(f"{base}/api/v1/ask", json={"question": SCS}, timeout=30)
            if answer.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the abandoned streams are closed as the server notices
        assert answer.status_code == 200 and answer.json()["mode"] == "generative"
    finally:
        server.close()


def test_a_stream_may_last_longer_than_the_time_for_its_body(
    tmp_path: Path, shared_hashing_index: Path
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    reply = "Le pôle SCS est présidé par Jean-Pierre Henry [1]. " * 8
    llm = FakeListChatModel(responses=[reply], sleep=0.05)  # about 2 s of deltas
    server = _start(tmp_path, shared_hashing_index, llm=llm, body_seconds=0.5)
    base = next(server)
    try:
        started = time.monotonic()
        response = httpx.post(
            f"{base}/api/v1/ask", json={"question": SCS, "stream": True}, timeout=30
        )
        assert time.monotonic() - started > 0.5
        assert response.status_code == 200
        assert response.text.rstrip().split("\n")[0] == "event: delta"
        assert "event: answer" in response.text and "event: error" not in response.text
    finally:
        server.close()


def test_slow_clients_are_cut_off_and_hold_no_worker(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    slow = []
    for _ in range(30):  # slowloris: request heads that never end
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /api/v1/ask HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    started = time.monotonic()
    health = httpx.get(f"{url}/api/v1/health", timeout=5)
    assert health.status_code == 200 and time.monotonic() - started < 1.0
    body = socket.create_connection((host, int(port)))  # a body that never completes
    body.sendall(
        b"POST /api/v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"question":'
    )
    time.sleep(1.6)
    for s in slow:
        s.settimeout(2)
        assert s.recv(100) == b""  # closed by the server after its 1 s for a head
        s.close()
    body.settimeout(3)
    received = body.recv(4096).decode()
    body.close()
    assert received.startswith("HTTP/1.1 408")
    assert '"code":"body_timeout"' in received


def test_raw_header_injections_add_no_header_and_the_server_carries_on(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    for raw in (
        b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: 1\rSet-Cookie: pwned=1\r\n\r\n",
        b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Set-Cookie: pwned=1\r\n\r\n",
        b"GET /api/v1/health\r\nSet-Cookie: pwned=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        with socket.create_connection((host, int(port))) as s:
            s.settimeout(3)
            s.sendall(raw)
            received = s.recv(4096)
        # refused (400), or read as one folded header value: never a second header
        assert received.startswith((b"HTTP/1.1 400", b"HTTP/1.1 200")), received[:80]
        assert b"pwned" not in received and b"set-cookie" not in received.lower()
    assert httpx.get(f"{url}/api/v1/health").status_code == 200


def test_twenty_concurrent_clients_get_exact_answers(url: str, shared_hashing_index) -> None:
    questions = [SCS, "Quand les acteurs marseillais se rendent-ils à Helsinki ?"] * 10

    def one(question: str) -> dict:
        response = httpx.post(f"{url}/api/v1/ask", json={"question": question}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, questions))
    for answer in answers:
        _exact(answer["citations"], shared_hashing_index)
    first = {a["question"]: a["answer"] for a in answers}
    assert all(a["answer"] == first[a["question"]] for a in answers)
    assert json.dumps(answers).count("Traceback") == 0
