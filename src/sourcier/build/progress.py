"""How a build tells where it is: a callback ``(stage, done, total)``, progress bars, or both."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a build runs (stage: "read", "embed")."""


class Reporter:
    """Reports a build's stages to a callback and to tqdm bars on stderr.

    Args:
        callback: called as ``callback(stage, done, total)``.
        show: progress bars (``None``: only when stderr is a terminal).
    """

    def __init__(self, callback: ProgressCallback | None = None, show: bool | None = None) -> None:
        self.callback = callback
        self.show = show

    @contextlib.contextmanager
    def stage(
        self,
        name: str,
        total: int,
        *,
        desc: str,
        unit: str,
        offset: int = 0,
        overall: int | None = None,
    ) -> Iterator[Callable[[int], None]]:
        """A bar for one stage; the block gets ``tick(n)`` to call as ``n`` more are done.

        The callback hears ``(name, offset + done, overall)``: a stage run in parts (one
        segment at a time) reports over the whole build.
        """
        bar = self.bar(desc, total=total, unit=unit)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            bar.update(n)
            if self.callback is not None:
                self.callback(name, offset + done, total if overall is None else overall)

        try:
            yield tick
        finally:
            bar.close()

    def bar(self, desc: str, **kwargs: Any) -> Any:
        """A tqdm bar that shows when this reporter shows bars."""
        from tqdm.auto import tqdm

        disable = None if self.show is None else not self.show
        return tqdm(desc=desc, disable=disable, **kwargs)
