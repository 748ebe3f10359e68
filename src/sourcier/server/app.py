"""One server for the page and the APIs: ``/`` the Gradio chat, ``/api/v1`` the JSON
API, ``/v1`` the OpenAI-compatible endpoint, all on one port, with one login, one
read-only switch and one per-client budget."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ui.access import Access
from ..ui.limits import ClientLimiter
from .guard import Guard
from .limits import BodyLimits
from .service import Service
from .tokens import TokenStore, tokens_path

if TYPE_CHECKING:
    from fastapi import FastAPI

UPLOAD_FILES_AT_ONCE = 10
"""Files one API upload may carry (each within the upload size limit)."""


def create_server(
    *,
    index: str | Path | None = None,
    upload_dir: Path | None = None,
    llm: Any = None,
    access: Access | None = None,
    limiter: ClientLimiter | None = None,
    body_seconds: float = 30.0,
) -> FastAPI:
    """The ASGI app of ``sourcier serve`` (run it with uvicorn, or :func:`serve`).

    Args:
        index: the index folder (``None``: the default index, built if missing).
        upload_dir / llm: as for :func:`sourcier.ui.build_app`.
        access: login and read-only mode, for the page and the APIs alike.
        limiter: the per-client question budget the page and the APIs share.
        body_seconds: time a client has to send a request body (408 after).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
    """
    from fastapi import FastAPI

    from ..ui.layout import AUTH_MESSAGE, build_app
    from ..ui.uploads import MAX_UPLOAD_MB
    from .chat_completions import create_openai_app
    from .rest import JsonBodies, create_rest_app

    access = access or Access()
    limiter = limiter or ClientLimiter()
    demo = build_app(index=index, upload_dir=upload_dir, llm=llm, access=access, limiter=limiter)
    library = demo.sourcier_library  # type: ignore[attr-defined]
    service = Service(
        library=library,
        guard=Guard(access, TokenStore(tokens_path(library.path))),
        limiter=limiter,
    )
    max_upload = int(MAX_UPLOAD_MB * (1 << 20)) * UPLOAD_FILES_AT_ONCE + (1 << 20)
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    rest = BodyLimits(
        JsonBodies(create_rest_app(service)), max_upload=max_upload, body_seconds=body_seconds
    )
    chat = BodyLimits(create_openai_app(service), max_upload=0, body_seconds=body_seconds)
    root.mount("/api/v1", rest)
    root.mount("/v1", chat)
    root.state.sourcier_service = service
    root.state.sourcier_demo = demo
    _mount_page(root, demo, access, auth_message=AUTH_MESSAGE, max_mb=MAX_UPLOAD_MB)
    return root


def _mount_page(
    root: FastAPI, demo: Any, access: Access, *, auth_message: str, max_mb: float
) -> None:
    import gradio as gr

    gr.mount_gradio_app(
        root,
        demo,
        path="",
        auth=access.check if access.login else None,
        auth_message=auth_message if access.login else None,
        max_file_size=f"{max_mb:g}mb",
        footer_links=["api"],
        show_error=False,
    )
