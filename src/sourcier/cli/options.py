"""Command-line options shared by several commands (``ask``, ``search``, ``serve``, ``eval``).

Environment variables are read here, at the command-line edge, and nowhere else.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from ..settings import Settings

LLM_OPTIONS = [
    click.option(
        "--llm",
        envvar="SOURCIER_LLM",
        default=None,
        help="Write the answer with a chat model, every sentence verified: provider:model, "
        "e.g. openai:qwen2.5 (with --llm-base-url for llama.cpp, vLLM, LM Studio) or "
        "ollama:llama3 (env SOURCIER_LLM). Default: extractive quotes, no model.",
    ),
    click.option(
        "--llm-base-url",
        envvar="SOURCIER_LLM_BASE_URL",
        default=None,
        help="The model server, e.g. http://127.0.0.1:8080/v1 (env SOURCIER_LLM_BASE_URL). "
        "API keys come from the provider's usual variable (OPENAI_API_KEY ...).",
    ),
    click.option(
        "--llm-timeout",
        type=click.FloatRange(min=0.1),
        envvar="SOURCIER_LLM_TIMEOUT",
        default=None,
        help="Seconds the model may take before the extractive answer is shown (default 60).",
    ),
]


def index_option(help: str) -> Any:
    """``--index DIR`` (env ``SOURCIER_INDEX``), given to the command as ``index_path``."""
    return click.option(
        "--index",
        "index_path",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="SOURCIER_INDEX",
        default=None,
        help=help,
    )


SET_OPTION = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a setting for this call, e.g. --set k=8, --set answer_style=concise, "
    "--set second_stage=keep (repeatable; names in `sourcier.Settings`).",
)


def llm_options(f: Any) -> Any:
    """Add ``--llm``, ``--llm-base-url`` and ``--llm-timeout`` to a command, which gets
    them as one ``llm`` argument: the ``llm`` settings (``None`` without ``--llm``).

    Raises:
        ConfigError: a time-out that cannot work (checked when the command runs).
    """

    @functools.wraps(f)
    def command(
        *args: Any,
        llm: str | None = None,
        llm_base_url: str | None = None,
        llm_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        chat = None
        if llm is not None:
            changes = {"llm": llm, "llm_base_url": llm_base_url, "llm_timeout": llm_timeout}
            chat = Settings().with_({k: v for k, v in changes.items() if v is not None}).llm
        return f(*args, llm=chat, **kwargs)

    for option in reversed(LLM_OPTIONS):
        command = option(command)
    return command
