"""An OpenAI-compatible endpoint under ``/v1``, so any chat client can ask sourcier.

``GET /v1/models`` lists the index as two models: ``sourcier`` (the server's chat model
writes when it has one, every sentence verified; else quotes) and
``sourcier-extractive`` (verbatim quotes only). ``POST /v1/chat/completions`` takes the
last user message as the question and the earlier turns as its history. The reply is
the answer with its ``[n]`` markers and a short "Sources" list; the citations also come
as data in a top-level ``citations`` field. A question the documents do not answer gets
a normal reply that says so.

Streaming sends OpenAI's ``chat.completion.chunk`` events, ending with ``[DONE]``. The
text streamed is the verified answer: a model's unverified draft is never shown, so
the first words come when the answer is checked, and then arrive sentence by sentence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request

from ..errors import InputError
from ..types import Answer
from .schemas import ChatBody
from .service import Service, install_errors
from .streaming import sse

MODELS = {"sourcier": "generative", "sourcier-extractive": "extractive"}
MAX_HISTORY_MESSAGES = 12
"""Earlier messages kept as history (the six last question/answer pairs)."""


def create_openai_app(service: Service) -> FastAPI:
    """The ``/v1`` application (mounted by :func:`sourcier.server.app.create_server`)."""
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(
        title="sourcier, OpenAI-compatible",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(service.identify)],
    )
    install_errors(app, openai_shape=True)

    @app.get("/models")
    def models() -> Any:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "sourcier"}
            for name in MODELS
        ]
        return {"object": "list", "data": data}

    @app.post("/chat/completions")
    async def chat(body: ChatBody, request: Request) -> Any:
        client = request.state.client
        question, history = split_messages(body)
        options: dict[str, Any] = {
            "history": history or None,
            "generative": MODELS.get(body.model, "generative") == "generative",
        }
        with service.limiter.slot(client):
            async with service.gate.slot():
                answer = await run_in_threadpool(service.library.ask, question, **options)
        reply = Reply(answer, body.model)
        if body.stream:
            headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
            return StreamingResponse(
                reply.chunks(), media_type="text/event-stream", headers=headers
            )
        return JSONResponse(reply.completion())

    return app


def split_messages(body: ChatBody) -> tuple[str, list[dict[str, str]]]:
    """The question (the last user message) and the history (the turns before it).

    Raises:
        InputError: no user message, or the last message is not the user's.
    """
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InputError("the last message must be the user's question", code="chat_no_question")
    earlier = [(m.role, strip_sources(m.text())) for m in turns[:-1][-MAX_HISTORY_MESSAGES:]]
    history = [{"role": role, "content": text} for role, text in earlier if text]
    return turns[-1].text(), history


SOURCES_HEADING = "**Sources**"


def strip_sources(text: str) -> str:
    """An earlier reply of ours without its Sources list and bold (the client sends it
    back)."""
    head, _, _ = text.partition("\n\n" + SOURCES_HEADING)
    return head.replace("**", "").strip()


class Reply:
    """An answer in OpenAI's shapes."""

    def __init__(self, answer: Answer, model: str) -> None:
        self.answer = answer
        self.model = model
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())

    def content(self) -> str:
        """The answer with its markers (the marked fact in bold), then the sources."""
        return self.text() + self.sources()

    def text(self) -> str:
        """The answer's text; in an answer line, the marked fact is in bold."""
        from ..answer.glance import line_parts

        line = line_parts(self.answer)
        if line is None or not line.fact:
            return self.answer.answer
        plain = line.before + line.fact + line.after
        bold = f"{line.before}**{line.fact}**{line.after}"
        return self.answer.answer.replace(plain, bold, 1)

    def sources(self) -> str:
        """Title, page and quote of each citation (a quote the line shows whole is not
        repeated)."""
        from ..answer.glance import whole_line_citation
        from ..ui.render import escape_markdown

        shown = whole_line_citation(self.answer)
        lines = []
        for c in self.answer.citations:
            where = escape_markdown(c.title or c.doc_id)
            if c.page is not None:
                where += (
                    f", p. {c.page}"
                    if c.page_end in (None, c.page)
                    else f", p. {c.page}-{c.page_end}"
                )
            quote = "" if c.n == shown else f" : « {escape_markdown(_short(c.quote))} »"
            lines.append(f"[{c.n}] {where}{quote}")
        return f"\n\n{SOURCES_HEADING}\n\n" + "\n".join(lines) if lines else ""

    def extra(self) -> dict[str, Any]:
        return {
            "citations": [c.to_dict() for c in self.answer.citations],
            "refused": self.answer.refused,
        }

    def completion(self) -> dict[str, Any]:
        """The whole ``chat.completion`` object."""
        usage = self.answer.usage or {}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.content()},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": int(usage.get("input_tokens", 0) or 0),
                "completion_tokens": int(usage.get("output_tokens", 0) or 0),
                "total_tokens": int(usage.get("total_tokens", 0) or 0),
            },
            **self.extra(),
        }

    def chunks(self) -> Iterator[str]:
        """``chat.completion.chunk`` events: the role, the content sentence by sentence,
        the end (with the citations), then ``[DONE]``."""
        yield sse(self._chunk({"role": "assistant", "content": ""}))
        for piece in self._pieces():
            yield sse(self._chunk({"content": piece}))
        yield sse(self._chunk({}, finish="stop") | self.extra())
        yield sse("[DONE]")

    def _pieces(self) -> Iterator[str]:
        whole = self.text()
        texts = [s.text for s in self.answer.sentences] or [whole]
        joined = ""
        for text in texts:
            start = whole.find(text, len(joined))
            if start < 0:
                break
            piece = whole[len(joined) : start + len(text)]
            joined += piece
            yield piece
        if joined != whole:
            yield whole[len(joined) :]
        if self.answer.citations:
            yield self.sources()

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


def _short(quote: str, limit: int = 240) -> str:
    quote = " ".join(quote.split())
    return quote if len(quote) <= limit else quote[: limit - 1].rstrip() + "…"
