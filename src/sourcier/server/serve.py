"""Serving the app: ``serve()`` (the ``sourcier serve`` command is :mod:`sourcier.cli.serve`).

One uvicorn server holds the page (``/``), the JSON API (``/api/v1``) and the
OpenAI-compatible endpoint (``/v1``); see :mod:`sourcier.server`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..ui.access import Access, is_loopback
from ..ui.library import Library
from ..ui.limits import ClientLimiter

log = logging.getLogger(__name__)


def serve(
    *,
    index: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    open_browser: bool = False,
    upload_dir: Path | None = None,
    prevent_thread_lock: bool = False,
    llm: Any = None,
    access: Access | None = None,
    rate_limit: float | None = None,
) -> Any:
    """Build the app and serve it (blocking unless ``prevent_thread_lock``).

    The default index is built from the bundled corpus first if it does not exist (this
    is said on stderr). Binds ``host`` (127.0.0.1 by default: this machine only).
    ``access`` sets the login and read-only mode; a non-loopback ``host`` with write
    access and no login is refused before anything is loaded.
    ``rate_limit``: questions per minute per client (default 30; 0: no limit).

    Returns:
        With ``prevent_thread_lock``: the running ``uvicorn.Server`` (its ``should_exit``
        stops it) once it accepts connections; otherwise nothing, when it stops.

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
        ConfigError: write access would be exposed with no login, or the port is taken.
    """
    import uvicorn

    from ..api import ensure_index
    from .app import create_server
    from .limits import guarded_protocol

    access = access or Access()
    access.check_exposure(host)
    target = ensure_index(index, announce=lambda m: print(m, file=sys.stderr, flush=True))
    app = create_server(
        index=target,
        upload_dir=upload_dir,
        llm=llm,
        access=access,
        limiter=None if rate_limit is None else ClientLimiter(per_minute=rate_limit),
    )
    library: Library = app.state.sourcier_service.library
    threading.Thread(target=_warm_quietly, args=(library,), daemon=True).start()
    if not is_loopback(host) and not access.login:
        what = "read" if access.read_only else "read, upload and remove documents"
        print(
            f"Warning: serving on {host} with no login: anyone who can reach it can {what}.",
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(app, host=host, port=port, http=guarded_protocol(), log_level="warning")
    server = uvicorn.Server(config)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(
        f"sourcier: the page at {url}/ , the API at {url}/api/v1/docs , "
        f"OpenAI-compatible at {url}/v1",
        file=sys.stderr,
        flush=True,
    )
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url + "/",)).start()
    if not prevent_thread_lock:
        _run(server)
        return None
    thread = threading.Thread(target=_run, args=(server,), daemon=True, name="sourcier-server")
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        raise _port_taken(host, port)
    return server


def _run(server: Any) -> None:
    """Run ``server`` until it stops (uvicorn exits the process when it cannot bind)."""
    try:
        server.run()
    except SystemExit:
        if not server.started:
            raise _port_taken(server.config.host, server.config.port) from None
        raise


def _port_taken(host: str, port: int) -> ConfigError:
    return ConfigError(
        f"cannot listen on {host}:{port}: the port is taken or the address is not this "
        "machine's (choose another with --port)",
        code="port_taken",
        host=host,
        port=port,
    )


def _warm_quietly(library: Library) -> None:
    try:
        library.warm()
    except Exception as err:  # noqa: BLE001 - the first question reports it properly
        log.warning("could not load the model in advance: %s", err)
