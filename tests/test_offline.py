"""Offline means offline: serving the UI and answering through it reaches no other host."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every attempt to resolve or reach a non-loopback host, refused and recorded."""
    tried: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name not in LOOPBACK and not name.startswith("127."):
            tried.append(name)
            raise OSError(f"blocked by the test: {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if (
            self.family in (socket.AF_INET, socket.AF_INET6)
            and host not in LOOPBACK
            and not str(host).startswith("127.")
        ):
            tried.append(str(host))
            raise OSError(f"blocked by the test: {host}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


def test_serving_and_asking_reach_no_other_host(
    shared_hashing_index: Path, outside: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    from sourcier.ui import build_app

    demo = build_app(index=shared_hashing_index)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/", timeout=30) as r:
            assert r.status == 200
        args = ["Qui préside le pôle SCS ?", None, None, [], None, None, [], None]
        body = json.dumps({"data": args}).encode()
        req = urllib.request.Request(
            f"{base}/gradio_api/call/ask", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            event_id = json.load(r)["event_id"]
        with urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event_id}", timeout=60) as r:
            stream = r.read().decode()
        assert "HENRY" in stream  # the answer came back through the API
    finally:
        demo.close()
    assert outside == [], f"tried to reach: {sorted(set(outside))}"


def test_the_python_client_reaches_no_other_host(
    shared_hashing_index: Path, outside: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's client (sourcier.ui.connect), with a login, against a served app."""
    for name in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    from sourcier.ui import Access, build_app, connect
    from sourcier.ui.access import hash_password

    access = Access(users=(("alice", hash_password("s3cret")),))
    demo = build_app(index=shared_hashing_index, access=access)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = connect(f"http://127.0.0.1:{port}/", auth=("alice", "s3cret"))
        answer = client.predict("Qui préside le pôle SCS ?", api_name="/ask")
        assert "HENRY" in answer["answer"]
        client.close()
        time.sleep(1.0)  # gradio_client's telemetry runs in a background thread
    finally:
        demo.close()
    assert outside == [], f"tried to reach: {sorted(set(outside))}"
