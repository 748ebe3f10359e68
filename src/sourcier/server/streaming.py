"""Server-sent events from the assistant's (blocking) event stream.

The assistant yields its events in a worker thread, one at a time; when the client goes
away the stream is closed in that thread (shielded from the cancellation), so the
question's budget slot and answering slot are always given back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


async def in_thread(events: Iterator[T]) -> AsyncGenerator[T, None]:
    """``events``, each advanced in a worker thread; closed there when done or cancelled."""
    import anyio
    from starlette.concurrency import run_in_threadpool

    try:
        while True:
            item = await run_in_threadpool(next, events, _END)
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        with anyio.CancelScope(shield=True):
            close = getattr(events, "close", None)
            if close is not None:
                await run_in_threadpool(close)


def sse(data: Any, *, event: str | None = None) -> str:
    """One server-sent event (``data`` as JSON, or as is when it is a string)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"
