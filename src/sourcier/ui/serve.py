"""Serving the app: ``serve()`` and the ``sourcier serve`` command."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ..cli.options import llm_options
from ..errors import SourcierError
from .access import Access, access_from_options, hash_password, is_loopback
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
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
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
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
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
@click.option(
    "--auth",
    multiple=True,
    envvar="SOURCIER_AUTH",
    metavar="USER:PASSWORD",
    help="Require this login (repeatable; env SOURCIER_AUTH, several separated by spaces).",
)
@click.option(
    "--auth-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SOURCIER_AUTH_FILE",
    default=None,
    help="A file of user:scrypt$… lines (see `sourcier password`); env SOURCIER_AUTH_FILE.",
)
@click.option(
    "--read-only",
    is_flag=True,
    envvar="SOURCIER_READ_ONLY",
    help="No upload and no removal, in the page and in the API.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow uploads and removals on a non-loopback --host with no login.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0),
    default=None,
    metavar="N",
    help="Questions per minute per client (user, else browser session); 0: no limit. "
    "[default: 30, bursts of 10]",
)
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
    auth: tuple[str, ...],
    auth_file: Path | None,
    read_only: bool,
    insecure: bool,
    rate_limit: float | None,
) -> None:
    """Start the chat UI (Gradio) on http://HOST:PORT.

    Beyond this machine (--host 0.0.0.0), give a login (--auth, --auth-file) or
    --read-only; sourcier refuses to expose uploads and removals to anyone otherwise.
    """
    try:
        access = access_from_options(
            auth=auth, auth_file=auth_file, read_only=read_only, insecure=insecure
        )
        serve(
            index=index_path,
            host=host,
            port=port,
            upload_dir=upload_dir,
            open_browser=open_browser,
            llm=llm,
            llm_base_url=llm_base_url,
            llm_timeout=llm_timeout,
            access=access,
            rate_limit=rate_limit,
        )
    except SourcierError as err:
        raise click.ClickException(str(err)) from None


@click.command("password")
@click.argument("user")
@click.option("--password", default=None, help="The password (asked twice when not given).")
def password_cmd(user: str, password: str | None) -> None:
    """Print an auth-file line (USER:scrypt$…) for `sourcier serve --auth-file`.

    Only the line goes to stdout (the prompts go to stderr), so
    `sourcier password alice >> users.txt` works.
    """
    if ":" in user or not user.strip():
        raise click.BadParameter("a user name cannot be empty or contain ':'", param_hint="USER")
    if password is None:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
        )
    if not password:
        raise click.BadParameter("the password is empty", param_hint="--password")
    click.echo(f"{user.strip()}:{hash_password(password)}")
