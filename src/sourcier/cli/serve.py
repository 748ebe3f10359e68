"""``sourcier serve`` (the chat UI and its APIs), ``sourcier password`` (auth-file lines)
and ``sourcier token`` (API tokens).

The UI's modules are imported when a command runs, so ``sourcier --help`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import SourcierError
from ..settings import LLMSettings
from .options import index_option, llm_options


@click.command("serve")
@index_option(
    "Index folder (default: the default index, built from the bundled corpus if missing; "
    "env SOURCIER_INDEX)."
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
    llm: LLMSettings | None,
    auth: tuple[str, ...],
    auth_file: Path | None,
    read_only: bool,
    insecure: bool,
    rate_limit: float | None,
) -> None:
    """Start the chat UI on http://HOST:PORT, with the HTTP API under /api/v1 (reference
    at /api/v1/docs) and an OpenAI-compatible endpoint under /v1, on the same port.

    Beyond this machine (--host 0.0.0.0), give a login (--auth, --auth-file) or
    --read-only; sourcier refuses to expose uploads and removals to anyone otherwise.
    """
    from ..server.serve import serve
    from ..ui.access import access_from_options

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
    from ..ui.access import hash_password

    click.echo(f"{user.strip()}:{hash_password(password)}")


@click.group("token")
def token_cmd() -> None:
    """API tokens for `sourcier serve --auth …` (Authorization: Bearer TOKEN).

    A token is shown once, when it is made; the index keeps only its hash.
    """


@token_cmd.command("create")
@index_option("Index folder whose server the token opens (default: the default index).")
@click.argument("name")
def token_create(index_path: Path | None, name: str) -> None:
    """Make a token called NAME and print it (only the token goes to stdout)."""
    store = _token_store(index_path)
    try:
        token = store.create(name)
    except SourcierError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Token {name!r} created; it is shown only now:", err=True)
    click.echo(token)


@token_cmd.command("revoke")
@index_option("Index folder (default: the default index).")
@click.argument("name")
def token_revoke(index_path: Path | None, name: str) -> None:
    """Revoke the token NAME (a running server refuses it from its next request)."""
    try:
        _token_store(index_path).revoke(name)
    except SourcierError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Token {name!r} revoked.")


@token_cmd.command("list")
@index_option("Index folder (default: the default index).")
def token_list(index_path: Path | None) -> None:
    """The tokens' names and creation dates (never the tokens)."""
    try:
        tokens = _token_store(index_path).list()
    except SourcierError as err:
        raise click.ClickException(str(err)) from None
    if not tokens:
        click.echo("No token.")
    for token in tokens:
        click.echo(f"{token.name}\t{token.created}")


def _token_store(index_path: Path | None) -> Any:
    from ..paths import default_index_dir
    from ..server.tokens import TokenStore, tokens_path

    folder = index_path if index_path is not None else default_index_dir()
    if not (folder / "CURRENT").exists():
        raise click.ClickException(
            f"no index at {folder}: build it first (sourcier index), or give --index"
        )
    return TokenStore(tokens_path(folder))
