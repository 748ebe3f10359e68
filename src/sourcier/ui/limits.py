"""A per-client budget of questions, so one client cannot starve the others.

Gradio's queue runs at most a few questions at once (``concurrency_limit``) in arrival
order; a client that sends a hundred questions would fill it for minutes. Each client
(the logged-in user, else the browser or API session, else the address) gets a token
bucket (``burst`` questions at once, refilled at ``per_minute``) and at most
``in_flight`` questions running. A question over budget is refused at once, in one
line, so the queue moves on to the other clients' questions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import InputError


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    running: int = 0


@dataclass
class ClientLimiter:
    """Token buckets by client key (thread-safe).

    Attributes:
        per_minute: questions a client may ask per minute, sustained (0: no limit).
        burst: questions a client may ask at once before the rate applies.
        in_flight: questions of one client that may be running at the same time.
    """

    per_minute: float = 30.0
    burst: int = 10
    in_flight: int = 2
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """Hold one of ``client``'s question slots while the body runs.

        Raises:
            InputError: the client has ``in_flight`` questions running, or has used up
                its budget (the message says how long to wait).
        """
        self._take(client)
        try:
            yield
        finally:
            with self._lock:
                self._buckets[client].running -= 1

    def _take(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            if client not in self._buckets:
                self._forget_idle(now)
                self._buckets[client] = _Bucket(float(self.burst), now)
            bucket = self._buckets[client]
            if self.per_minute > 0:
                self._spend(bucket, now)
            bucket.running += 1

    def _spend(self, bucket: _Bucket, now: float) -> None:
        """Refill ``bucket`` for the time passed, then take one question from it."""
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.running >= self.in_flight:
            raise InputError(
                f"{bucket.running} of your questions are still being answered; wait for "
                "them before asking another",
                code="client_busy",
                running=bucket.running,
            )
        if bucket.tokens < 1.0:
            wait = max(1, round((1.0 - bucket.tokens) / rate))
            raise InputError(
                f"too many questions at once: wait {wait} s before asking another",
                code="client_rate",
                seconds=wait,
            )
        bucket.tokens -= 1.0

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that are full again and idle, so memory stays bounded."""
        if len(self._buckets) < 1024:
            return
        full = self.burst / (self.per_minute / 60.0) if self.per_minute > 0 else 0.0
        for key in [k for k, b in self._buckets.items() if not b.running and now - b.stamp > full]:
            del self._buckets[key]


def client_key(request: object) -> str:
    """Who sent a Gradio request: the logged-in user, else the session, else the address."""
    username = getattr(request, "username", None)
    if username:
        return f"user:{username}"
    session = getattr(request, "session_hash", None)
    if session:
        return f"session:{session}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return f"host:{host or 'unknown'}"
