"""A ``gradio_client.Client`` for a sourcier server that reaches no other host.

``gradio_client`` sends telemetry to huggingface.co from every new Client unless the
environment says not to (its ``analytics_enabled=False`` argument is not enough: it
falls back to ``GRADIO_ANALYTICS_ENABLED``, which defaults to on). :func:`connect` turns
that off first; a user who set ``GRADIO_ANALYTICS_ENABLED`` or ``HF_HUB_*`` keeps it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradio_client import Client

DEFAULT_URL = "http://127.0.0.1:7860/"


def quiet_environment() -> None:
    """Turn off gradio_client's and huggingface_hub's calls home (unless set already)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def connect(
    url: str = DEFAULT_URL, *, auth: tuple[str, str] | None = None, **options: Any
) -> Client:
    """A client of the sourcier server at ``url``: ``connect().predict(q, api_name="/ask")``.

    Args:
        url: the server (``sourcier serve`` listens on http://127.0.0.1:7860/).
        auth: ``(user, password)`` when the server requires a login.
        options: passed to ``gradio_client.Client``.
    """
    quiet_environment()
    from gradio_client import Client

    options.setdefault("verbose", False)
    return Client(url, auth=auth, analytics_enabled=False, **options)
