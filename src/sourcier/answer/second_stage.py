"""The second stage: a scorer that re-orders the fused first-stage hits.

:class:`SecondStage` is the slot; :data:`SECOND_STAGES` holds the implementations by
name, chosen with ``Settings.retrieval.second_stage`` (``--set second_stage=NAME`` in
the CLI and ``sourcier eval``, the "Second étape" setting in the UI). A reranker is one
module with a class like :class:`KeepOrder` plus one line in that table.

Only one ships, on purpose: every rescoring idea measured on PIAF moved the first
stage's quality by less than a point (``docs/decisions.md``); :class:`KeepOrder` keeps
the first-stage order, so the slot is exercised by the tests and a real reranker (a
cross-encoder, when one is shippable) drops in by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..registry import Registry

if TYPE_CHECKING:
    from ..settings import Settings
    from ..types import Hit
    from .protocol import Context
    from .question import Question


class SecondStage(Protocol):
    """A second-stage scorer: re-orders the fused first-stage hits.

    ``depth`` first-stage hits are passed in, best first; the ones returned, best
    first, are cut to ``k``. The same slot serves ``search()`` and ``ask()``.
    """

    depth: int

    def rescore(self, question: Question, hits: list[Hit], context: Context) -> list[Hit]: ...


@dataclass(frozen=True)
class KeepOrder:
    """The first-stage order, through the second-stage slot.

    It looks at the ``depth`` best fused hits and returns them as they came, so answers
    are those of no second stage; its use is to show (and test) the slot end to end.
    """

    depth: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> KeepOrder:
        return cls(depth=max(20, settings.retrieval.k))

    def rescore(self, question: Question, hits: list[Hit], context: Context) -> list[Hit]:
        return list(hits)


NONE = "none"
"""The name that means no second stage (the default)."""

SECOND_STAGES: Registry = Registry("second stage", {"keep": KeepOrder})
"""Second stages by name; each entry has ``from_settings(settings) -> SecondStage``."""


def second_stage_for(settings: Settings) -> SecondStage | None:
    """The second stage the settings name, or ``None`` for ``"none"``.

    Raises:
        ConfigError: no second stage has that name (the known ones are listed).
    """
    name = settings.retrieval.second_stage
    if name == NONE:
        return None
    stage: SecondStage = SECOND_STAGES.get(name).from_settings(settings)
    return stage
