"""The machine this process runs on, as far as sourcier sizes its work by it."""

from __future__ import annotations

import os


def cores() -> int:
    """The CPU cores this process may use (its affinity where the OS says, else the
    machine's count), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
