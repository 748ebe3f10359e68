"""Serving the app: ``serve()`` (the ``sourcier serve`` command is :mod:`sourcier.cli.serve`)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from .access import Access, is_loopback
from .layout import build_app
from .library import Library
from .limits import ClientLimiter

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
    access: Access | None = None,
    rate_limit: float | None = None,
) -> Any:
    """Build the app and serve it (blocking unless ``prevent_thread_lock``).

    The default index is built from the bundled corpus first if it does not exist (this
    is said on stderr). Binds ``host`` (127.0.0.1 by default: this machine only).
    ``access`` sets the login and read-only mode; a non-loopback ``host`` (or ``share``)
    with write access and no login is refused before anything is loaded.
    ``rate_limit``: questions per minute per client (default 30; 0: no limit).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
        ConfigError: write access would be exposed with no login.
    """
    from ..api import ensure_index

    access = access or Access()
    access.check_exposure("0.0.0.0" if share else host)
    target = ensure_index(index, announce=lambda m: print(m, file=sys.stderr, flush=True))
    demo = build_app(
        index=target,
        upload_dir=upload_dir,
        llm=llm,
        access=access,
        limiter=None if rate_limit is None else ClientLimiter(per_minute=rate_limit),
    )
    library: Library = demo.sourcier_library  # type: ignore[attr-defined]
    threading.Thread(target=_warm_quietly, args=(library,), daemon=True).start()
    if not is_loopback(host) and not access.login:
        what = "read" if access.read_only else "read, upload and remove documents"
        print(
            f"Warning: serving on {host} with no login: anyone who can reach it can {what}.",
            file=sys.stderr,
            flush=True,
        )
    return demo.launch(
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
