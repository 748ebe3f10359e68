"""A real OpenAI-compatible server on 127.0.0.1: llama.cpp serving SmolLM2-135M (GGUF).

The model is tiny and its answers are poor, which is the point: whatever it writes,
``ask()`` must end in a verified answer (or the extractive one with a notice), every
quote must be its exact span, and nothing may raise. The server is started and
stopped here; CI installs it with the ``llm-server`` extra.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import free_port
from sourcier import Answer, Index, ask

pytestmark = [pytest.mark.slow, pytest.mark.llm_server]

QUESTIONS = [
    "Qui préside le pôle SCS ?",
    "Which Finnish company hosts the meeting with the Marseille delegation?",
    "Quelles sont les dates du 7ème Forum des pôles de compétitivité ?",
]


@pytest.fixture(scope="module")
def server(llama_server: str) -> str:
    return llama_server


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
    port = free_port()  # nothing listens there
    answer = ask(
        QUESTIONS[0],
        index=real_index,
        llm="openai:smollm2",
        llm_base_url=f"http://127.0.0.1:{port}/v1",
    )
    assert answer.mode == "extractive" and answer.citations
    assert answer.notice and "\n" not in answer.notice
