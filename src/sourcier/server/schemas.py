"""The request bodies of the HTTP API (pydantic models, so the OpenAPI page documents
them and a body that does not fit is a 400 saying which field)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _unicode(text: str) -> str:
    """Refuse a lone surrogate (JSON can carry one; no text can be written with it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text is not valid Unicode (a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class Filters(BaseModel):
    """Restrict the search to some documents or dates (``YYYY``, ``YYYY-MM`` or
    ``YYYY-MM-DD``)."""

    model_config = ConfigDict(extra="forbid")
    doc_ids: list[str] | None = None
    sources: list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: Text


class SearchBody(BaseModel):
    """``POST /search``."""

    model_config = ConfigDict(extra="forbid")
    query: Text = Field(description="What to look for, in French or English.")
    k: int | None = Field(None, description="How many passages (default: the index's).")
    mode: Literal["hybrid", "dense", "bm25"] | None = None
    filters: Filters | None = None


class AskBody(BaseModel):
    """``POST /ask``."""

    model_config = ConfigDict(extra="forbid")
    question: Text = Field(description="The question, in French or English.")
    k: int | None = Field(None, description="Passages to read (default: the index's).")
    mode: Literal["hybrid", "dense", "bm25"] | None = None
    filters: Filters | None = None
    history: list[Turn] | None = Field(None, description="Earlier turns, oldest first.")
    answer_mode: Literal["extractive", "generative"] | None = Field(
        None,
        description="extractive: verbatim quotes; generative (default when the server "
        "has a chat model): the model writes, every sentence verified.",
    )
    stream: bool = Field(
        False, description="Server-sent events: delta, notice, then answer (the final one)."
    )

    def options(self) -> dict[str, Any]:
        """The fields as plain values."""
        return self.model_dump(exclude={"question", "stream"}, exclude_none=True)


class Message(BaseModel):
    """One message of an OpenAI chat request (``content``: text, or text parts)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: Text | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (the text parts joined; images and other parts ignored)."""
        if isinstance(self.content, str):
            return self.content
        parts = [p.get("text", "") for p in self.content or [] if p.get("type") == "text"]
        return "\n".join(str(p) for p in parts)


class ChatBody(BaseModel):
    """``POST /v1/chat/completions`` (OpenAI's fields; sampling ones are accepted and
    ignored, since sourcier's answer is built from the documents)."""

    model_config = ConfigDict(extra="allow")
    model: str = "sourcier"
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
