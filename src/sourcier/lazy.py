"""Lazy re-exports: a package names its public face, imported on first use.

So ``import sourcier`` (or ``import sourcier.build``) costs nothing heavy: numpy, FAISS,
torch and gradio load only when a name that needs them is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def attach(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose public names live
    in its modules (``names``: name -> the module, relative to the package, that defines it).

    Usage, in a package's ``__init__``::

        __getattr__, __dir__, __all__ = attach(__name__, {"update_index": ".conductor"})
    """
    module_globals = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        module_globals[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*module_globals, *names})

    return __getattr__, __dir__, sorted(names)
