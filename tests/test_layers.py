"""The package's layers: every import points down, so the tree reads as the data flows.

ground floor (types, errors, words, files, registry, lazy, paths)
  < settings, messages, analysis < ingest < embed < storage < build < answer
  < cache < assistant < api < langchain, evaluation, ui < server < cli

An import of a module of the same layer is allowed (inside a package, or between the
ground floor's modules); one of a higher layer is not, lazy or type-only alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sourcier

PACKAGE = Path(sourcier.__file__).parent

LAYERS: list[set[str]] = [
    {"types", "errors", "words", "files", "registry", "lazy", "paths", "machine"},
    {"settings", "messages", "analysis"},
    {"ingest"},
    {"embed"},
    {"storage"},
    {"build"},
    {"answer"},
    {"cache"},
    {"assistant"},
    {"api"},
    {"langchain", "evaluation", "ui"},
    {"server"},
    {"cli"},
    {"__init__"},
]


def _unit(module: str) -> str:
    """The top-level unit of a module: its package or its own name."""
    return module.split(".")[0]


def _layer(unit: str) -> int:
    for n, units in enumerate(LAYERS):
        if unit in units:
            return n
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS")


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported sourcier module, line) for every import."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        module = ".".join(parts)
        package = parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = (
                    [target]
                    if node.module
                    else [f"{target}.{a.name}".strip(".") for a in node.names]
                )
                found += [(module, t, node.lineno) for t in names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sourcier."):
                found.append((module, node.module[len("sourcier.") :], node.lineno))
    return found


def test_every_import_points_down_or_stays_in_its_layer() -> None:
    upward = [
        f"{src}:{line} imports {dst}"
        for src, dst, line in _imports()
        if dst and _layer(_unit(dst)) > _layer(_unit(src))
    ]
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def test_no_two_units_import_each_other() -> None:
    edges = {(_unit(s), _unit(d)) for s, d, _ in _imports() if d and _unit(s) != _unit(d)}
    both_ways = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not both_ways, both_ways
