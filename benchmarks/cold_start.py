"""What one `sourcier` command pays before it answers: the cold start, stage by stage.

Every measurement runs in a fresh Python process, as a CLI call does; each is repeated
and the median kept. Stages, in one process: import (``sourcier.cli`` and the API, what
the command line loads before a command runs), opening the index's assistant, the first
query embedding (the model load plus one embedding), a second query embedding (warm),
the first answer (``ask`` with the model warm) and the warm ``ask()`` p50. Then the
wall time of whole commands: ``sourcier ask``, ``sourcier search --mode bm25`` and, for
reference, a bare ``import torch`` / ``import sentence_transformers``.

The index is built first if it is missing (about a minute). Timings depend on the
machine's load, printed with the results: compare rows of one run. ``--compare SRC``
measures another checkout's package too (its ``src`` folder), the runs interleaved, so
a change is timed before and after in one run.

    python benchmarks/cold_start.py                      # 3 repeats, a table
    python benchmarks/cold_start.py --repeats 5 --json out.json --markdown out.md
    python benchmarks/cold_start.py --compare ../before/src --index /tmp/ix
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "Qui préside le pôle SCS ?"
SEARCH = "alliance stratégique avec le MIT"
WARM_QUESTION = "Who chairs the SCS cluster?"

WARM_QUESTIONS = (
    "Qui préside le pôle SCS ?",
    "Combien d'entreprises sont implantées sur le Technopôle de l'Arbois ?",
    "Quand les acteurs marseillais se rendent-ils à Helsinki ?",
    "Que veut développer la Brain Port Community ?",
    "Who is Federico Casalegno?",
    "How many competitiveness clusters were created in France?",
    "Quel est le budget de la nouvelle chaire Smart Port ?",
    "Qui a signé l'accord avec le MIT ?",
)

# one process, stage by stage; prints one JSON line
_STAGES = r"""
import json, statistics, sys, time
index, question, warm = sys.argv[1:4]
warm_questions = json.loads(sys.argv[4])
t0 = time.perf_counter()
import sourcier.cli
from sourcier import api
t1 = time.perf_counter()
try:
    from sourcier import Assistant
    assistant = Assistant.open(index)
    embedder = assistant.embedder
    ask = assistant.ask
except ImportError:  # a checkout from before the Assistant (--compare with an old one)
    idx = api.load_index(index)
    embedder = idx.embedder
    def ask(q):
        return api.ask(q, index=idx)
t2 = time.perf_counter()
embedder.embed_queries([question])
t3 = time.perf_counter()
embedder.embed_queries([warm])
t4 = time.perf_counter()
answer = ask(question)
t5 = time.perf_counter()
for q in warm_questions:  # once untimed, then timed
    ask(q)
asks = []
for q in warm_questions * 3:
    t = time.perf_counter()
    ask(q)
    asks.append(time.perf_counter() - t)
print(json.dumps({
    "import": t1 - t0,
    "index_open": t2 - t1,
    "first_embedding": t3 - t2,
    "warm_embedding": t4 - t3,
    "model_load": (t3 - t2) - (t4 - t3),
    "answer": t5 - t4,
    "in_process_total": t5 - t0,
    "warm_ask_p50": statistics.median(asks),
    "torch_loaded": "torch" in sys.modules,
    "sentence_transformers_loaded": "sentence_transformers" in sys.modules,
    "onnxruntime_loaded": "onnxruntime" in sys.modules,
    "refused": answer.refused,
}))
"""

_STAGE_KEYS = (
    "import",
    "index_open",
    "model_load",
    "first_embedding",
    "warm_embedding",
    "answer",
    "in_process_total",
    "warm_ask_p50",
)


def _env(src: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if src is not None:  # another checkout's package, before this one's
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    return env


def _wall(cmd: list[str], src: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(src), check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def _load() -> dict[str, object]:
    """The machine's load now, and any heavy process seen (builds, tests, installs)."""
    busy = subprocess.run(
        ["pgrep", "-fa", "pytest|cc1plus|cmake|pip "], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    mine = str(os.getpid())
    busy = [line[:80] for line in busy if not line.startswith(mine + " ")]
    return {"loadavg_1m": round(os.getloadavg()[0], 2), "heavy_processes": busy}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(index: Path, *, repeats: int, src: Path | None = None) -> dict[str, object]:
    """Run every measurement ``repeats`` times in fresh processes; medians in seconds.

    ``src``: the ``src`` folder of another checkout to measure instead of this one.
    """
    return measure_trees(index, repeats=repeats, trees={"this": src})["this"]


def measure_trees(
    index: Path, *, repeats: int, trees: dict[str, Path | None], quick: bool = False
) -> dict[str, dict[str, object]]:
    """:func:`measure` for several checkouts, their runs interleaved (each repeat runs
    every tree in turn), so a drift of the machine's load touches them alike."""
    py = sys.executable
    cli = str(Path(py).with_name("sourcier"))
    runs: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    flags: dict[str, dict[str, object]] = {label: {} for label in trees}
    loads = [_load()]
    for _ in range(repeats):
        for label, src in trees.items():
            stages = subprocess.run(
                [
                    py,
                    "-c",
                    _STAGES,
                    str(index),
                    QUESTION,
                    WARM_QUESTION,
                    json.dumps(WARM_QUESTIONS),
                ],
                capture_output=True,
                text=True,
                env=_env(src),
                check=False,
            )
            if stages.returncode != 0:
                raise SystemExit(f"stage run failed ({label}): {stages.stderr.strip()[-2000:]}")
            row = json.loads(stages.stdout.strip().splitlines()[-1])
            for key in _STAGE_KEYS:
                runs[label].setdefault(key, []).append(row[key])
            flags[label] = {k: v for k, v in row.items() if k not in _STAGE_KEYS}
            commands = {
                "cli_ask": [cli, "ask", QUESTION, "--index", str(index)],
                "cli_search_bm25": [cli, "search", SEARCH, "--mode", "bm25", "--index", str(index)],
                "cli_help": [cli, "--help"],
                "import_sourcier": [py, "-c", "import sourcier"],
                "import_torch": [py, "-c", "import torch"],
                "import_sentence_transformers": [py, "-c", "import sentence_transformers"],
            }
            if quick:  # no reference imports (a smoke test)
                del commands["import_torch"], commands["import_sentence_transformers"]
            for key, cmd in commands.items():
                runs[label].setdefault(key, []).append(_wall(cmd, src))
        loads.append(_load())
    return {
        label: {
            "src": str(src) if src else None,
            "repeats": repeats,
            "median_s": {k: round(_median(v), 4) for k, v in runs[label].items()},
            "runs_s": {k: [round(x, 4) for x in v] for k, v in runs[label].items()},
            "flags": flags[label],
            "load": loads,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "cpu": _cpu_name(),
        }
        for label in trees
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


_LABELS = {
    "import": "import sourcier.cli.commands + api",
    "index_open": "open the index",
    "model_load": "model load (first - warm embedding)",
    "first_embedding": "first query embedding (load included)",
    "warm_embedding": "warm query embedding",
    "answer": "first answer (ask, model warm)",
    "in_process_total": "in-process total",
    "warm_ask_p50": "warm `ask()` p50 (8 questions x 3)",
    "cli_ask": "`sourcier ask` wall",
    "cli_search_bm25": "`sourcier search --mode bm25` wall",
    "cli_help": "`sourcier --help` wall",
    "import_sourcier": "`python -c 'import sourcier'` wall",
    "import_torch": "`python -c 'import torch'` wall",
    "import_sentence_transformers": "`python -c 'import sentence_transformers'` wall",
}


def to_markdown(result: dict[str, object], *, title: str = "cold start") -> str:
    """The medians as a markdown table, with the machine's load."""
    medians = result["median_s"]
    assert isinstance(medians, dict)
    loads = result["load"]
    assert isinstance(loads, list)
    avg = ", ".join(str(x["loadavg_1m"]) for x in loads)
    heavy = sorted({p for x in loads for p in x["heavy_processes"]})
    lines = [
        f"### {title} (median of {result['repeats']}, seconds)",
        "",
        f"{result['cpu']}, {result['cpus']} CPUs; load average (1 min) at each repeat: {avg}; "
        f"other heavy processes: {'; '.join(heavy) if heavy else 'none'}",
        "",
        "| stage | s |",
        "|---|---|",
    ]
    lines += [f"| {_LABELS.get(k, k)} | {v:.3f} |" for k, v in medians.items()]
    lines += ["", f"after an ask: {json.dumps(result['flags'])}"]
    return "\n".join(lines) + "\n"


def _ensure_index(index: Path) -> None:
    if (index / "CURRENT").exists():
        return
    print(f"building the bundled corpus's index in {index} ...", file=sys.stderr)
    cli = str(Path(sys.executable).with_name("sourcier"))
    subprocess.run([cli, "index", "--index", str(index)], check=True, env=_env())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path("index/default"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--title", default="cold start")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="write the table as markdown")
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="SRC",
        help="also measure the package in another checkout's src/ folder, runs interleaved",
    )
    ap.add_argument("--quick", action="store_true", help="skip the torch import references")
    args = ap.parse_args()
    _ensure_index(args.index)
    trees: dict[str, Path | None] = {"this": None}
    if args.compare:
        trees = {"other": args.compare.resolve(), "this": None}
    results = measure_trees(
        args.index.resolve(), repeats=args.repeats, trees=trees, quick=args.quick
    )
    tables = [to_markdown(r, title=f"{args.title}: {label}") for label, r in results.items()]
    print("\n".join(tables))
    if args.json:
        data = results if args.compare else results["this"]
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text("\n".join(tables), encoding="utf-8")


if __name__ == "__main__":
    main()
