"""Bounds on what one request may cost the server, whoever sends it.

- A body: at most ``max_json`` bytes for JSON, ``max_upload`` for a multipart upload
  (413 at once when ``Content-Length`` says more, else as soon as more arrives), read
  within ``body_seconds`` (408 otherwise), so a slow sender cannot hold a handler.
- Headers: a connection that has not sent a whole request head within
  ``HEADER_SECONDS`` is closed (:func:`guarded_protocol`; uvicorn's own h11 protocol
  waits for ever). Connections wait on the event loop, never on a worker thread.
- Questions: at most ``running`` answered at once, ``waiting`` more queued
  (:class:`Gate`); beyond, 503 with ``Retry-After``. The Gradio page keeps its own
  queue and threads, so a flood of API calls leaves the page usable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from .problems import ApiError, body, language

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER_SECONDS = 10.0
"""Time a client has to send a whole request head."""

MAX_JSON_BYTES = 1 << 20
"""A JSON request body at most (1 MiB: a question, its history and options)."""


def too_large(limit: int) -> ApiError:
    """413 for a body over ``limit`` bytes."""
    mib = f"{limit / (1 << 20):g}"
    return ApiError(
        413,
        "body_too_large",
        f"the request body is larger than {mib} MiB",
        f"Le corps de la requête dépasse {mib} Mio.",
    )


def too_slow(seconds: float) -> ApiError:
    """408 for a body not received in time."""
    return ApiError(
        408,
        "body_timeout",
        f"the request body was not received within {seconds:g} s",
        f"Le corps de la requête n’est pas arrivé en {seconds:g} s.",
    )


class BodyLimits:
    """ASGI middleware bounding each request body's size and arrival time.

    A body over the limit or too slow raises :class:`~.problems.ApiError` where the
    route reads it, so the app's handler answers it as data (413, 408).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json: int = MAX_JSON_BYTES,
        max_upload: int,
        body_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.max_json = max_json
        self.max_upload = max_upload
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_upload if multipart else self.max_json
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            lang = language(headers.get(b"accept-language", b"").decode("latin-1"))
            await _refuse(send, too_large(limit), lang)
            return
        deadline = time.monotonic() + self.body_seconds
        received = 0
        complete = False

        async def bounded() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: a stream waiting for the client to leave
                return await receive()
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except asyncio.TimeoutError:
                raise too_slow(self.body_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)


async def _refuse(send: Send, err: ApiError, lang: str) -> None:
    message = err.french if lang == "fr" else err.english
    payload = json.dumps(body(err.code, message), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Gate:
    """At most ``running`` questions answered at once and ``waiting`` queued."""

    def __init__(self, *, running: int = 4, waiting: int = 64) -> None:
        self.running = running
        self.waiting = waiting
        self._queued = 0
        self._semaphore: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one answering slot (queued while all are busy).

        Raises:
            ApiError: 503, ``waiting`` questions are queued already.
        """
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.running)
        if self._queued >= self.waiting:
            raise ApiError(
                503,
                "server_busy",
                "the server is answering too many questions: try again in a moment",
                "Le serveur répond à trop de questions : réessayez dans un instant.",
                {"Retry-After": "1"},
            )
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._semaphore.release()


def guarded_protocol(header_seconds: float = HEADER_SECONDS) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head is late.

    A timer starts when the connection opens and again after each response; it is
    stopped as soon as a whole request head has arrived. uvicorn's own keep-alive timer
    is stopped by any byte received, so a client sending one byte at a time would
    otherwise hold its connection for ever.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_seconds, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol
