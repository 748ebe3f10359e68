"""``sourcier serve`` (the chat UI and its API) and ``sourcier password`` (auth-file lines).

The UI's modules are imported when a command runs, so ``sourcier --help`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

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
    """Start the chat UI (Gradio) on http://HOST:PORT.

    Beyond this machine (--host 0.0.0.0), give a login (--auth, --auth-file) or
    --read-only; sourcier refuses to expose uploads and removals to anyone otherwise.
    """
    from ..ui.access import access_from_options
    from ..ui.serve import serve

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
