"""Errors as data: every refusal of the HTTP API is ``{"error": {"code", "message"}}``.

The message comes from the error catalogue (:mod:`sourcier.messages`) in the language of
the request's ``Accept-Language`` (French or English); the status says what kind of
problem it is. No response body ever holds a traceback, and a server path in a message
is cut to its last part.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import IndexNotFoundError, InputError, ModelError, SourcierError
from ..messages import say

log = logging.getLogger(__name__)

STATUS_BY_CODE: Mapping[str, int] = {
    "document_not_found": 404,
    "read_only": 405,
    "client_busy": 429,
    "client_rate": 429,
    "server_busy": 503,
    "unsupported_type": 415,
    "no_extension": 415,
    "too_large": 413,
    "body_too_large": 413,
    "body_timeout": 408,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
}


class ApiError(Exception):
    """A refusal of the HTTP layer itself (no login, a body too large, a busy server).

    Attributes:
        status: the HTTP status.
        code: the stable name, as in the error catalogue.
        english / french: the message in each language.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        english: str,
        french: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(english)
        self.status = status
        self.code = code
        self.english = english
        self.french = french
        self.headers = dict(headers or {})


def language(accept_language: str | None) -> str:
    """``"fr"`` or ``"en"``: the first of the two the header prefers (English if neither)."""
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        if base not in ("fr", "en"):
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q or (q == best_q and position == 0):
            best, best_q = base, q
    return best


def body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of a refusal."""
    return {"error": {"code": code, "message": message}}


def status_of(err: SourcierError) -> int:
    """The HTTP status of a core error: by its code, else by its kind."""
    if err.code is not None and err.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[err.code]
    if isinstance(err, InputError):
        return 400
    if isinstance(err, (ModelError, IndexNotFoundError)):
        return 503
    return 400 if err.code else 500


def message_of(err: SourcierError, lang: str) -> str:
    """The one-line message of ``err`` in ``lang``, with no server path in it."""
    text = say(err, lang).strip().splitlines()[0] if str(err).strip() else err.code or ""
    params = getattr(err, "params", {}) or {}
    for key in ("path", "index"):
        value = params.get(key)
        if isinstance(value, str) and value and value in text:
            text = text.replace(value, Path(value).name or "…")
    return text


def retry_after(err: SourcierError) -> dict[str, str]:
    """A ``Retry-After`` header for a client over its budget (whole seconds)."""
    if err.code == "client_rate":
        seconds = err.params.get("seconds", 1)
        return {"Retry-After": str(max(1, int(seconds) if isinstance(seconds, int) else 1))}
    if err.code in ("client_busy", "server_busy"):
        return {"Retry-After": "1"}
    return {}
