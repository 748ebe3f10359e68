"""sourcier: French-first, offline question answering with cited, verifiable passages."""

from __future__ import annotations

__version__ = "0.1.0"
