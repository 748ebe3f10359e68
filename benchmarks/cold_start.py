"""What one `sourcier` command pays before it answers: the cold start, stage by stage.

Every measurement runs in a fresh Python process, as a CLI call does; each is repeated
and the median kept. Stages, in one process: import (``sourcier.cli`` and the API, what
the command line loads before a command runs), index open (``load_index``), the first
query embedding (the model load plus one embedding), a second query embedding (warm),
and the first answer (``ask`` with the model warm). Then the wall time of whole commands:
``sourcier ask``, ``sourcier search --mode bm25`` and, for reference, a bare
``import torch`` / ``import sentence_transformers``.

The default index is built first if it is missing (about a minute). Timings depend on
the machine's load, printed with the results: compare rows of one run.

    python benchmarks/cold_start.py                      # 3 repeats, a table
    python benchmarks/cold_start.py --repeats 5 --json out.json --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "Qui préside le pôle SCS ?"
SEARCH = "alliance stratégique avec le MIT"
WARM_QUESTION = "Who chairs the SCS cluster?"

# one process, stage by stage; prints one JSON line
_STAGES = r"""
import json, sys, time
index, question, warm = sys.argv[1:4]
t0 = time.perf_counter()
import sourcier.cli.commands
from sourcier import api
t1 = time.perf_counter()
idx = api.load_index(index)
t2 = time.perf_counter()
idx.embedder.embed_queries([question])
t3 = time.perf_counter()
idx.embedder.embed_queries([warm])
t4 = time.perf_counter()
answer = api.ask(question, index=idx)
t5 = time.perf_counter()
print(json.dumps({
    "import": t1 - t0,
    "index_open": t2 - t1,
    "first_embedding": t3 - t2,
    "warm_embedding": t4 - t3,
    "model_load": (t3 - t2) - (t4 - t3),
    "answer": t5 - t4,
    "in_process_total": t5 - t0,
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
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return env


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
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


def measure(index: Path, *, repeats: int) -> dict[str, object]:
    """Run every measurement ``repeats`` times in fresh processes; medians in seconds."""
    py = sys.executable
    cli = str(Path(py).with_name("sourcier"))
    runs: dict[str, list[float]] = {}
    flags: dict[str, object] = {}
    loads = [_load()]
    for _ in range(repeats):
        stages = subprocess.run(
            [py, "-c", _STAGES, str(index), QUESTION, WARM_QUESTION],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
        )
        if stages.returncode != 0:
            raise SystemExit(f"stage run failed: {stages.stderr.strip()[-2000:]}")
        row = json.loads(stages.stdout.strip().splitlines()[-1])
        for key in _STAGE_KEYS:
            runs.setdefault(key, []).append(row[key])
        flags = {k: v for k, v in row.items() if k not in _STAGE_KEYS}
        commands = {
            "cli_ask": [cli, "ask", QUESTION, "--index", str(index)],
            "cli_search_bm25": [cli, "search", SEARCH, "--mode", "bm25", "--index", str(index)],
            "cli_help": [cli, "--help"],
            "import_sourcier": [py, "-c", "import sourcier"],
            "import_torch": [py, "-c", "import torch"],
            "import_sentence_transformers": [py, "-c", "import sentence_transformers"],
        }
        for key, cmd in commands.items():
            runs.setdefault(key, []).append(_wall(cmd))
        loads.append(_load())
    return {
        "repeats": repeats,
        "median_s": {k: round(_median(v), 3) for k, v in runs.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "flags": flags,
        "load": loads,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


_LABELS = {
    "import": "import sourcier.cli.commands + api",
    "index_open": "open the index",
    "model_load": "model load (first - warm embedding)",
    "first_embedding": "first query embedding (load included)",
    "warm_embedding": "warm query embedding",
    "answer": "first answer (ask, model warm)",
    "in_process_total": "in-process total",
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
        f"load average (1 min) at each repeat: {avg}; {result['cpus']} CPUs; "
        f"other heavy processes: {'; '.join(heavy) if heavy else 'none'}",
        "",
        "| stage | s |",
        "|---|---|",
    ]
    lines += [f"| {_LABELS.get(k, k)} | {v:.3f} |" for k, v in medians.items()]
    lines += ["", f"after an ask: {json.dumps(result['flags'])}"]
    return "\n".join(lines) + "\n"


def _ensure_index(index: Path) -> None:
    from sourcier.storage.store import index_exists

    if index_exists(index):
        return
    print(f"building the default index in {index} (about a minute) ...", file=sys.stderr)
    cli = str(Path(sys.executable).with_name("sourcier"))
    subprocess.run([cli, "index", "--index", str(index)], check=True, env=_env())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path("index/default"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--title", default="cold start")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="write the table as markdown")
    args = ap.parse_args()
    _ensure_index(args.index)
    result = measure(args.index.resolve(), repeats=args.repeats)
    table = to_markdown(result, title=args.title)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
