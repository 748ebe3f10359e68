"""What every API route shares: the library, the login check, the budgets, and the way
errors become data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import SourcierError
from ..ui.access import Access
from ..ui.limits import ClientLimiter
from .guard import Guard
from .limits import Gate
from .problems import ApiError, body, language, message_of, retry_after, status_of

if TYPE_CHECKING:
    from ..ui.library import Library

log = logging.getLogger(__name__)


@dataclass
class Service:
    """The state the API routes share (one per served app).

    Attributes:
        library: the served index (the same object the page uses).
        guard: the login check.
        limiter: the per-client question budget (the page's).
        gate: how many questions the API answers at once.
    """

    library: Library
    guard: Guard
    limiter: ClientLimiter
    gate: Gate = field(default_factory=Gate)

    @property
    def access(self) -> Access:
        """The server's access rules."""
        return self.guard.access

    def identify(self, request: Request) -> str:
        """The client key of ``request`` (a FastAPI dependency of every route).

        Raises:
            ApiError: 401 without valid credentials where a login is required.
        """
        host = request.client.host if request.client else None
        client = self.guard.client(request.headers.get("authorization"), host)
        request.state.client = client
        return client

    def answer_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``ask()`` options from a request's fields (empty filters dropped)."""
        filters = options.get("filters")
        if filters is not None and not any(v for v in filters.values()):
            filters = None
        return {
            "k": options.get("k"),
            "mode": options.get("mode"),
            "filters": filters,
            "history": options.get("history"),
            "generative": options.get("answer_mode") != "extractive",
        }


def install_errors(app: FastAPI, *, openai_shape: bool = False) -> None:
    """Make every refusal of ``app`` a JSON ``{"error": {"code", "message"}}`` (with
    ``type``, as OpenAI's clients expect, when ``openai_shape``); never a traceback."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    def respond(request: Request, status: int, code: str, message: str, headers=None):
        from fastapi.responses import JSONResponse

        payload = body(code, message)
        if openai_shape:
            kind = "invalid_request_error" if status < 500 else "server_error"
            payload["error"] |= {"type": kind, "param": None}
        return JSONResponse(payload, status_code=status, headers=headers)

    async def on_api_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, ApiError)
        fr = language(request.headers.get("accept-language")) == "fr"
        text = err.french if fr else err.english
        return respond(request, err.status, err.code, text, err.headers)

    async def on_core_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, SourcierError)
        lang = language(request.headers.get("accept-language"))
        status = status_of(err)
        return respond(
            request, status, err.code or "error", message_of(err, lang), retry_after(err)
        )

    async def on_bad_request(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        lang = language(request.headers.get("accept-language"))
        return respond(request, 400, "bad_request", _validation_message(err, lang))

    async def on_http(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        if isinstance(err.__cause__, ApiError):  # FastAPI wraps what failed reading the body
            return await on_api_error(request, err.__cause__)
        lang = language(request.headers.get("accept-language"))
        code, en, fr = _HTTP_TEXT.get(
            err.status_code, ("http_error", str(err.detail), str(err.detail))
        )
        return respond(request, err.status_code, code, fr if lang == "fr" else en, err.headers)

    async def on_bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        lang = language(request.headers.get("accept-language"))
        message = (
            "Erreur interne du serveur ; son journal en donne le détail."
            if lang == "fr"
            else "internal server error; the server log has the details"
        )
        return respond(request, 500, "internal_error", message)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(SourcierError, on_core_error)
    app.add_exception_handler(RequestValidationError, on_bad_request)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)


_HTTP_TEXT = {
    404: ("not_found", "no such route", "Cette route n’existe pas."),
    405: (
        "method_not_allowed",
        "this method is not allowed here (a read-only server has no writing routes)",
        "Cette méthode n’est pas permise ici (un serveur en lecture seule n’a pas de route "
        "d’écriture).",
    ),
}


def _validation_message(err: Any, lang: str) -> str:
    """The first problem of a request that does not fit its schema, in one line."""
    problems = err.errors()
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":
        if lang == "fr":
            return "Requête invalide : le corps n’est pas du JSON valide."
        return "invalid request: the body is not valid JSON"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    what = str(first.get("msg", "invalid request"))[:200]
    more = len(problems) - 1
    if lang == "fr":
        tail = f" (et {more} autre{'s' * (more > 1)} problème{'s' * (more > 1)})" if more else ""
        return f"Requête invalide : {where} : {what}{tail}."
    tail = f" (and {more} more)" if more else ""
    return f"invalid request: {where}: {what}{tail}"
