"""Which documents a search may return: by id, by source, by date range."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..types import Document

_ISO = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?")


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some documents.

    Attributes:
        doc_ids: only these document ids.
        sources: only documents whose source equals, or ends with, one of these
            (so a bare file name works).
        date_from / date_to: ISO ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` bounds, inclusive.
            A document matches when its own date (at its own precision) overlaps the
            range; undated documents are excluded as soon as a bound is given.

    Raises:
        InputError: a date that is malformed or not in the calendar (``2011-13``,
            ``2011-02-30``), dates in the wrong order, or ids/sources that are not a
            list of strings. Each error has a ``code`` (see :mod:`sourcier.messages`).
    """

    doc_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("doc_ids", "sources"):
            object.__setattr__(self, name, _strings(name, getattr(self, name)))
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                _check_date(name, value)
        if self.date_from and self.date_to and _low(self.date_from) > _high(self.date_to):
            raise InputError(
                f"date_from ({self.date_from}) is after date_to ({self.date_to})",
                code="filter_date_order",
                date_from=self.date_from,
                date_to=self.date_to,
            )

    @classmethod
    def coerce(cls, value: Filters | Mapping[str, Any] | None) -> Filters | None:
        """Accept a Filters, a plain dict with the same keys, or None.

        Raises:
            InputError: not a mapping, an unknown key, or a bad value (see the class).
        """
        if value is None or isinstance(value, Filters):
            return value
        if not isinstance(value, Mapping):
            kind = type(value).__name__
            raise InputError(
                f"filters must be a mapping, not {kind}", code="filters_type", type=kind
            )
        unknown = set(value) - {"doc_ids", "sources", "date_from", "date_to"}
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise InputError(f"unknown filter(s): {names}", code="filters_unknown", names=names)
        return cls(
            doc_ids=value.get("doc_ids") or (),
            sources=value.get("sources") or (),
            date_from=value.get("date_from") or None,
            date_to=value.get("date_to") or None,
        )

    @property
    def active(self) -> bool:
        return bool(self.doc_ids or self.sources or self.date_from or self.date_to)

    def allows(self, doc: Document) -> bool:
        if self.doc_ids and doc.doc_id not in self.doc_ids:
            return False
        if self.sources and not any(
            doc.source == s or doc.source.endswith("/" + s.lstrip("/")) for s in self.sources
        ):
            return False
        if self.date_from or self.date_to:
            if not doc.date_iso:
                return False
            if self.date_from and _high(doc.date_iso) < _low(self.date_from):
                return False
            if self.date_to and _low(doc.date_iso) > _high(self.date_to):
                return False
        return True


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list of texts as a tuple; a bare string or anything else is refused."""
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    kind = type(value).__name__
    raise InputError(
        f"{name} must be a list of strings, not {kind}: {value!r}"[:200],
        code="filter_list_type",
        name=name,
        type=kind,
    )


def _check_date(name: str, value: Any) -> None:
    """A ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` date that exists in the calendar."""
    if not isinstance(value, str) or not _ISO.fullmatch(value):
        raise InputError(
            f"{name} ({value!r}) must look like 2011, 2011-06 or 2011-06-06",
            code="filter_date_format",
            name=name,
            value=str(value),
        )
    parts = [int(p) for p in value.split("-")]
    problem = None
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        problem = f"there is no month {parts[1]:02d}"
    elif len(parts) > 2:
        days = calendar.monthrange(parts[0], parts[1])[1]
        if not 1 <= parts[2] <= days:
            month = calendar.month_name[parts[1]]
            problem = f"{month} {parts[0]} has {days} days"
    if problem:
        raise InputError(
            f"{name} ({value!r}) is not a date in the calendar: {problem}",
            code="filter_date_invalid",
            name=name,
            value=value,
        )


def _low(iso: str) -> str:
    return (iso + "-01-01")[:10] if len(iso) == 4 else (iso + "-01")[:10]


def _high(iso: str) -> str:
    return (iso + "-12-31")[:10] if len(iso) == 4 else (iso + "-31")[:10]
