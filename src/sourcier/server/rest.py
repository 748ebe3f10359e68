"""The JSON API under ``/api/v1``: ask, search, the documents, health.

Every route needs the server's login when it has one (``Authorization``: Basic or
Bearer); a read-only server has no writing route. Answers are ``Answer.to_dict()``,
the JSON form of ``sourcier ask --json``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile

from ..errors import InputError, SourcierError
from .problems import ApiError, language, message_of
from .problems import body as problem_body
from .schemas import AskBody, SearchBody
from .service import Service, install_errors
from .streaming import in_thread, sse

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Questions answered from the indexed documents, each answer with its evidence: the "
    "document, the passage and the exact character span of every quote. Errors are "
    '{"error": {"code", "message"}}, the message in the language of Accept-Language '
    "(French or English)."
)


def create_rest_app(service: Service) -> FastAPI:
    """The ``/api/v1`` application (mounted by :func:`sourcier.server.app.create_server`)."""
    from importlib.metadata import version

    from fastapi.responses import HTMLResponse, JSONResponse

    __version__ = version("sourcier")
    from . import docs_page

    app = FastAPI(
        title="sourcier HTTP API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(service.identify)],
    )
    install_errors(app)
    library = service.library

    @app.post("/ask", summary="Answer a question, with exact citations")
    async def ask(body: AskBody, request: Request) -> Any:
        """The answer as ``sourcier ask --json`` gives it: ``answer`` (with ``[n]``
        markers), ``refused``, ``citations`` (``doc_id``, ``quote``, ``start``, ``end``,
        ``page``…), ``sentences``, ``hits``, ``timings_ms``.

        With ``"stream": true``: server-sent events ``delta`` (``{"text"}``, unverified
        text while a chat model writes), ``notice`` (``{"message"}``), then one
        ``answer`` (the final, verified answer, as above)."""
        client = request.state.client
        options = service.answer_options(body.options())
        if body.stream:
            lang = language(request.headers.get("accept-language"))
            return await _stream(service, client, body.question, options, lang)
        from starlette.concurrency import run_in_threadpool

        with service.limiter.slot(client):
            async with service.gate.slot():
                answer = await run_in_threadpool(library.ask, body.question, **options)
        return JSONResponse(answer.to_dict())

    @app.post("/search", summary="The best passages for a query")
    async def search(body: SearchBody, request: Request) -> Any:
        """The hits, best first: ``doc_id``, ``title``, ``chunk_id``, ``start``, ``end``,
        ``page``, ``text``, ``score`` and the score of each retriever."""
        from starlette.concurrency import run_in_threadpool

        from ..api import search as find

        client = request.state.client
        options = body.model_dump(exclude={"query"}, exclude_none=True)

        def run() -> list[dict[str, Any]]:
            hits = find(body.query, index=library.warm(), **options)
            return [hit.to_dict() for hit in hits]

        with service.limiter.slot(client):
            async with service.gate.slot():
                hits = await run_in_threadpool(run)
        return {"query": body.query, "hits": hits}

    @app.get("/documents", summary="The indexed documents")
    def documents() -> Any:
        """Each document: ``doc_id``, ``title``, ``source``, ``date_iso``, ``language``,
        ``chunks``, ``chars``."""
        import dataclasses

        return {"documents": [dataclasses.asdict(d) for d in library.index().documents()]}

    @app.get("/health", summary="Is the server ready, on what")
    def health() -> Any:
        """The index generation and size, the embedding model, whether a chat model
        writes answers, and whether the server is read-only."""
        index = library.index()
        return {
            "status": "ok",
            "generation": index.generation,
            "documents": len(index.documents()),
            "model": index.settings.model.name,
            "chat_model": library.llm_name,
            "read_only": not service.access.can_write,
            "version": __version__,
        }

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Any:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> Any:
        return docs_page.render(app.openapi())

    if not service.access.can_write:
        return app

    @app.post("/documents", summary="Upload documents and index them")
    def upload(
        files: Annotated[list[UploadFile], File(description="One or more documents.")],
        replace: Annotated[bool, Form()] = False,
    ) -> Any:
        """Multipart upload (field ``files``), indexed incrementally. A file of a type
        sourcier does not read is refused with 415, one too large with 413, before
        anything is stored. Answers with each file's outcome (``indexed``,
        ``updated``, ``unchanged`` or ``skipped``, with the reason) and the index's new
        generation."""
        _check_uploads(files)
        folder = Path(tempfile.mkdtemp(prefix="sourcier-api-"))
        try:
            staged = []
            for number, item in enumerate(files):
                path = folder / f"{number}.upload"
                with path.open("wb") as out:
                    shutil.copyfileobj(item.file, out)
                staged.append((path, item.filename or ""))
            outcomes = library.add_uploads(staged, replace=replace)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        index = library.index()
        return {
            "files": [{"name": o.name, "status": o.status, "detail": o.detail} for o in outcomes],
            "generation": index.generation,
            "documents": len(index.documents()),
        }

    @app.delete("/documents/{doc_id}", summary="Remove a document from the index")
    def remove(doc_id: str) -> Any:
        """Removes the document (and its copy when it was uploaded to this server);
        404 for an id the index does not hold."""
        document = library.index().document(doc_id)
        message = library.remove(doc_id)
        return {"removed": doc_id, "title": document.title, "message": message}

    return app


class JsonBodies:
    """ASGI wrapper reading every non-multipart body as JSON, whatever its declared type,
    so ``curl -d '{"question": …}'`` (sent as a form) works as documented."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            declared = dict(scope["headers"]).get(b"content-type", b"")
            if not declared.startswith(b"multipart/"):
                scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
        await self.app(scope, receive, send)


def _check_uploads(files: list[Any]) -> None:
    """Refuse the whole upload before storing anything: 415 for a type sourcier does not
    read, 413 for a file too large, 400 for an empty one."""
    from ..ui import uploads

    if not files:
        raise InputError("no file in the upload (field 'files')", code="no_file")
    for item in files:
        size = item.size if item.size is not None else _size(item.file)
        refusal = uploads.upload_refusal(item.filename or "", size, max_mb=uploads.MAX_UPLOAD_MB)
        if refusal is None:
            continue
        name = (item.filename or "")[-120:]
        raise InputError(f"{name}: {refusal.reason}", code=refusal.code, **refusal.params)


def _size(file: Any) -> int:
    position = file.tell()
    file.seek(0, 2)
    size = int(file.tell())
    file.seek(position)
    return size


async def _stream(
    service: Service, client: str, question: str, options: dict[str, Any], lang: str
) -> Any:
    """The answer as server-sent events; a refusal before the first event is plain JSON
    (400, 429…), since no stream has started yet."""
    from fastapi.responses import StreamingResponse

    held = AsyncExitStack()  # given back in reverse: the stream, the gate, the budget
    held.enter_context(service.limiter.slot(client))
    try:
        await held.enter_async_context(service.gate.slot())
        stream = in_thread(service.library.ask_stream(question, **options))
        held.push_async_callback(stream.aclose)
        first = await stream.__anext__()
    except BaseException:
        await held.aclose()
        raise

    async def body() -> Any:
        from ..types import Answer, Notice, TextDelta

        try:
            item = first
            while True:
                if isinstance(item, TextDelta):
                    yield sse({"text": item.text}, event="delta")
                elif isinstance(item, Notice):
                    yield sse({"message": item.text}, event="notice")
                elif isinstance(item, Answer):
                    yield sse(item.to_dict(), event="answer")
                try:
                    item = await stream.__anext__()
                except StopAsyncIteration:
                    return
        except SourcierError as err:  # after the stream started: said as its last event
            yield sse(problem_body(err.code or "error", message_of(err, lang)), event="error")
        except Exception:
            log.exception("the answer stream failed")
            message = "internal error" if lang != "fr" else "Erreur interne du serveur."
            yield sse(problem_body("internal_error", message), event="error")
        finally:
            import anyio

            with anyio.CancelScope(shield=True):
                await held.aclose()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


__all__ = ["ApiError", "create_rest_app"]
