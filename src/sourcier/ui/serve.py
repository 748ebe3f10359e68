"""Serving the app: ``serve()`` and the ``sourcier serve`` command."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ..errors import SourcierError
from ..options import llm_options
from .layout import build_app
from .library import Library

log = logging.getLogger(__name__)


def serve(
    *,
    index: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    open_browser: bool = False,
    upload_dir: Path | None = None,
    prevent_thread_lock: bool = False,
    llm: Any = None,
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
) -> Any:
    """Build the app and serve it (blocking unless ``prevent_thread_lock``).

    The default index is built from the bundled corpus first if it does not exist (this
    is said on stderr). Binds ``host`` (127.0.0.1 by default: this machine only).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
    """
    from ..api import ensure_index

    target = ensure_index(index, announce=lambda m: print(m, file=sys.stderr, flush=True))
    demo = build_app(
        index=target,
        upload_dir=upload_dir,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
    )
    library: Library = demo.sourcier_library  # type: ignore[attr-defined]
    threading.Thread(target=_warm_quietly, args=(library,), daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Warning: serving on {host}: anyone who can reach this address can read, "
            "upload and remove documents.",
            file=sys.stderr,
            flush=True,
        )
    return demo.queue(default_concurrency_limit=2).launch(
        server_name=host,
        server_port=port,
        share=share,
        inbrowser=open_browser,
        prevent_thread_lock=prevent_thread_lock,
        show_error=False,
    )


def _warm_quietly(library: Library) -> None:
    try:
        library.warm()
    except Exception as err:  # noqa: BLE001 - the first question reports it properly
        log.warning("could not load the model in advance: %s", err)


@click.command("serve")
@click.option(
    "--index",
    "index_path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SOURCIER_INDEX",
    default=None,
    help="Index folder (default: the default index, built from the bundled corpus if missing; "
    "env SOURCIER_INDEX).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the UI to the network.",
)
@click.option(
    "--port",
    default=7860,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--upload-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where uploaded files are kept (default: INDEX/uploads).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in a web browser.")
@llm_options
def serve_cmd(
    index_path: Path | None,
    host: str,
    port: int,
    upload_dir: Path | None,
    open_browser: bool,
    llm: str | None,
    llm_base_url: str | None,
    llm_timeout: float | None,
) -> None:
    """Start the chat UI (Gradio) on http://HOST:PORT."""
    try:
        serve(
            index=index_path,
            host=host,
            port=port,
            upload_dir=upload_dir,
            open_browser=open_browser,
            llm=llm,
            llm_base_url=llm_base_url,
            llm_timeout=llm_timeout,
        )
    except SourcierError as err:
        raise click.ClickException(str(err)) from None
