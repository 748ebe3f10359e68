"""Answerers by name: ``Settings.answer.answerer`` picks one.

"extractive" quotes the best sentences (no model); "generative" has a chat model write
the answer, every sentence verified. "auto", the default, is generative when a chat
model is configured and extractive otherwise. An answerer is one module with a class
implementing :class:`~sourcier.answer.protocol.Answerer` and a
``from_settings(settings, chat_model)`` constructor, plus one line in this table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    from ..settings import Settings
    from .protocol import Answerer

AUTO = "auto"

ANSWERERS: Registry = Registry(
    "answerer",
    {
        "extractive": "sourcier.answer.extractive:ExtractiveAnswerer",
        "generative": "sourcier.answer.generative:GenerativeAnswerer",
    },
)


def answerer_for(settings: Settings, chat_model: Any = None, name: str | None = None) -> Answerer:
    """The answerer ``name`` (default: the settings'), built from the settings.

    Raises:
        ConfigError: no answerer has that name, or it needs a chat model and has none.
    """
    name = name or settings.answer.answerer
    if name == AUTO:
        name = "generative" if chat_model is not None else "extractive"
    answerer: Answerer = ANSWERERS.get(name).from_settings(settings, chat_model)
    return answerer
