"""The float type passages are embedded in, chosen from what the CPU computes natively.

A CPU with native bfloat16 arithmetic (Intel's AMX, AVX512-BF16 on Intel and AMD, Arm's
BF16 extension) runs a small encoder's forward pass two to three times faster in
bfloat16 than in float32, with vectors within a cosine of 0.9999 of float32's
(``benchmarks/index_speed.py`` measures both). Elsewhere bfloat16 is emulated and slower,
so ``"auto"`` (the default of ``ModelSettings.precision``) takes it only where the CPU
has it. Vectors are stored as float32 whatever the precision, so an index built on one
machine is read and extended on any other.

What runs is detected at run time from the CPU's flags (``/proc/cpuinfo`` on Linux;
elsewhere nothing is detected and float32 runs), never assumed.
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NATIVE_BF16 = ("amx_bf16", "avx512_bf16", "bf16")
"""CPU flags (as Linux names them) that mean native bfloat16 arithmetic, best first:
Intel AMX tiles, AVX-512 BF16 dot products, Arm's BF16 extension."""


@dataclass(frozen=True)
class Precision:
    """What passages are embedded in, and why.

    Attributes:
        dtype: ``"float32"`` or ``"bfloat16"``.
        reason: why, in a few words ("the CPU has avx512_bf16").
    """

    dtype: str
    reason: str

    def __str__(self) -> str:
        return f"{self.dtype} ({self.reason})"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where they cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            return frozenset(value.split())
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> str | None:
    """The flag that gives this CPU native bfloat16 arithmetic, or ``None``."""
    flags = cpu_flags() if flags is None else flags
    return next((f for f in NATIVE_BF16 if f in flags), None)


def choose(setting: str, device: str, *, flags: frozenset[str] | None = None) -> Precision:
    """The precision passages are embedded in on ``device`` for ``setting``.

    ``"auto"`` takes bfloat16 on a CPU with native bfloat16 and float32 elsewhere (on a
    GPU too: its own fast types are for the user to choose); ``"float32"`` and
    ``"bfloat16"`` are taken as given.
    """
    if setting != "auto":
        return Precision(setting, "set in the settings")
    if not device.startswith("cpu"):
        return Precision("float32", f"the default on {device}")
    found = native_bf16(flags)
    if found is None:
        where = platform.machine() or "this CPU"
        return Precision("float32", f"{where} has no native bfloat16")
    return Precision("bfloat16", f"the CPU has {found}")
