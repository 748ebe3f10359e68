"""What a program pays to ask sourcier over HTTP, and how the server holds under load.

One run, one index, the same questions:

1. One client, sequential questions, three ways interleaved question by question:
   ``ask()`` in this process (the floor), ``POST /api/v1/ask`` and the Gradio route
   ``/ask`` through ``gradio_client``; p50 and p95 of each (untimed warm-up first).
2. ``--clients`` concurrent clients (threads with their own HTTP connection) asking
   ``--per-client`` questions each on ``/api/v1/ask``: errors, every quote checked
   against its document (``quote == text[start:end]``), throughput and latency; and
   meanwhile one page user asking through the Gradio route, whose latency is compared
   with the same calls on an idle server (is the UI still usable?).

The server is ``sourcier serve`` in a subprocess on a free loopback port, with no
per-client budget (``--rate-limit 0``), so the load reaches the answering gate.

    python benchmarks/http_api.py --json eval/reports/http-api-2026-12-08/http-api.json
    python benchmarks/http_api.py --index /tmp/ix --rounds 1 --clients 4 --per-client 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cold_start import WARM_QUESTIONS as QUESTIONS  # the same 8 questions: one set to compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=None, help="default: the default index")
    parser.add_argument(
        "--rounds", type=int, default=5, help="sequential passes over the questions"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from sourcier.api import ensure_index

    index = ensure_index(args.index, announce=lambda m: print(m, file=sys.stderr))
    port = _free_port()
    server = _start_server(index, port)
    try:
        url = f"http://127.0.0.1:{port}"
        result = {
            "machine": machine(),
            "index": str(index),
            "questions": len(QUESTIONS),
            "sequential": sequential(url, index, rounds=args.rounds),
            "concurrent": concurrent(url, index, clients=args.clients, each=args.per_client),
        }
    finally:
        server.terminate()
        server.wait(20)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(index: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    command = [
        sys.executable,
        "-m",
        "sourcier.cli",
        "serve",
        *("--index", str(index), "--port", str(port), "--rate-limit", "0"),
    ]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server stopped"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start in 180 s")


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(p95, 2), "n": len(ms)}


def sequential(url: str, index: Path, *, rounds: int) -> dict[str, object]:
    """One client: in-process ask(), the JSON API and the Gradio route, interleaved."""
    import httpx
    from gradio_client import Client

    from sourcier import Assistant

    assistant = Assistant.open(index)
    http = httpx.Client(base_url=url, timeout=60)
    gradio = Client(url + "/", verbose=False)
    ways = {
        "in_process": lambda q: assistant.ask(q).to_dict(),
        "api_v1": lambda q: http.post("/api/v1/ask", json={"question": q}).json(),
        "gradio_client": lambda q: gradio.predict(q, api_name="/ask"),
    }
    for question in QUESTIONS:  # warm-up, untimed
        answers = {name: way(question) for name, way in ways.items()}
        assert len({a["answer"] for a in answers.values()}) == 1, "the three ways disagree"
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for question in QUESTIONS:
            for name, way in ways.items():
                t = time.perf_counter()
                way(question)
                times[name].append(time.perf_counter() - t)
    out: dict[str, object] = {name: _percentiles(t) for name, t in times.items()}
    base = statistics.median(times["in_process"])
    out["api_v1_over_in_process_p50"] = round(statistics.median(times["api_v1"]) / base, 3)
    out["gradio_over_in_process_p50"] = round(statistics.median(times["gradio_client"]) / base, 3)
    return out


def concurrent(url: str, index: Path, *, clients: int, each: int) -> dict[str, object]:
    """``clients`` API clients at once, and one page user beside them."""
    import httpx
    from gradio_client import Client

    from sourcier import load_index

    texts = {
        d.doc_id: load_index(index).document(d.doc_id).text for d in load_index(index).documents()
    }
    gradio = Client(url + "/", verbose=False)
    idle = []
    for question in QUESTIONS[:4]:
        t = time.perf_counter()
        gradio.predict(question, api_name="/ask")
        idle.append(time.perf_counter() - t)

    latencies: list[float] = []
    problems: list[str] = []
    quotes = [0, 0]  # checked, exact
    lock = threading.Lock()
    done = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in range(each):
                question = QUESTIONS[(number + i) % len(QUESTIONS)]
                t = time.perf_counter()
                response = http.post("/api/v1/ask", json={"question": question})
                elapsed = time.perf_counter() - t
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        problems.append(f"{response.status_code} {response.text[:120]}")
                        continue
                    for c in response.json()["citations"]:
                        quotes[0] += 1
                        quotes[1] += texts[c["doc_id"]][c["start"] : c["end"]] == c["quote"]

    busy: list[float] = []

    def page_user() -> None:
        i = 0
        while not done.is_set():
            t = time.perf_counter()
            gradio.predict(QUESTIONS[i % 4], api_name="/ask")
            busy.append(time.perf_counter() - t)
            i += 1

    watcher = threading.Thread(target=page_user)
    started = time.perf_counter()
    watcher.start()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(problems),
        "error_samples": problems[:5],
        "quotes_checked": quotes[0],
        "quotes_exact": quotes[1],
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(latencies) / wall, 2),
        "latency": _percentiles(latencies),
        "page_user_idle": _percentiles(idle),
        "page_user_under_load": _percentiles(busy) if busy else None,
    }


def machine() -> dict[str, object]:
    """The CPU (name, family/model, the vector features that matter here) and cores."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = info.get("flags", "").split()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {
        "cpu": info.get("model name") or platform.processor() or "unknown",
        "family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "cores": os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
        "load_before": os.getloadavg()[0],
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
