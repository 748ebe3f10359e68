"""A question and its options, checked before anything slow happens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..settings import MODES, Settings
from .filters import Filters
from .question import Question, check_text, parse_question


@dataclass(frozen=True)
class Request:
    """A question and its options, checked: what ``ask`` and ``search`` go on with."""

    question: Question
    filters: Filters | None
    changes: dict[str, Any]  # query settings to change (k, mode)
    answerer: str | None = None  # an answerer by name, for this question only


def check_request(
    question: Any,
    *,
    history: Sequence[Any] | None = None,
    k: Any = None,
    mode: Any = None,
    filters: Filters | Mapping[str, Any] | None = None,
    max_chars: int | None = None,
    what: str = "question",
    answerer: str | None = None,
) -> Request:
    """Check a question and its options before anything slow happens.

    ``ask``, ``search`` and the CLI call it before opening (or building) the index and
    loading the model, so a bad date is refused in milliseconds.

    Args:
        question: the question (or search query).
        history: earlier turns, as for :func:`ask`.
        k: passages to retrieve, 1 to 100.
        mode: "hybrid", "dense" or "bm25".
        filters: as for :func:`ask`.
        max_chars: the longest question accepted (default: ``Settings().max_question_chars``).
        what: "question" or "query", as the messages name it.
        answerer: an answerer by name for this question (default: the settings').

    Returns:
        The parsed question, the filters, and the query settings to change.

    Raises:
        InputError: any of them is unusable; the error has a ``code`` (see
            :mod:`sourcier.messages`).
    """
    limit = max_chars if max_chars is not None else Settings().retrieval.max_question_chars
    text = check_text(question, max_chars=limit, what=what)
    changes = _query_changes(k=k, mode=mode)
    parsed_filters = Filters.coerce(filters)
    parsed = parse_question(text, history=history, max_chars=limit)
    return Request(parsed, parsed_filters, changes, answerer)


def _query_changes(**values: Any) -> dict[str, Any]:
    changes = {k: v for k, v in values.items() if v is not None}
    k = changes.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100):
        raise InputError(
            f"k must be a whole number from 1 to 100, not {k!r}", code="k_invalid", value=repr(k)
        )
    mode = changes.get("mode")
    if mode is not None and mode not in MODES:
        raise InputError(
            f"mode ({mode!r}) must be one of {', '.join(MODES)}",
            code="mode_invalid",
            value=str(mode),
        )
    return changes
