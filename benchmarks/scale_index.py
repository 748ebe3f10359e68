"""The segmented index at scale: build, add 1, remove 1, merge, disk, memory, query time.

The corpus is synthetic French text: sentences of PIAF (``eval/piaf``) and of the
bundled press releases, shuffled and recombined into documents of 4 to 9 sentences
(about one chunk each), plus two rare tokens per document drawn from a Zipf law so that
the vocabulary grows with the corpus as a real archive's does. Documents are given as
records (no file parsing), embedded with the 512-d hashing embedder
(``sourcier/hashing-bow``), so that embedding costs almost nothing and what is measured
is the index's own cost. At 200,000 chunks and above the dense part is ANN.

For each size it reports:

- ``build``: one ``update_index`` of every document into a new index;
- ``add_1`` / ``remove_1``: median of 5 ``update_index`` calls that add one new
  document or remove one (the writer's whole call, lock to publish; ``embed_1`` is the
  part spent embedding that document), and the same as a share of ``build``;
- ``reload``: an open ``Index`` switching to the new generation after such a change
  (it reuses the segments it has loaded);
- ``merge``: ``optimize`` of the index the adds and removes left (segments -> 1);
- ``open``: opening the index in a fresh process; ``rss_mb``: that process's resident
  memory after opening it and running the queries, minus its memory before opening;
- ``search_p50`` / ``search_p95``: warm ``search()`` (hybrid, k = 5) over 200 PIAF
  questions, one thread;
- ``disk``: bytes per chunk of everything on disk (text and sentence vectors included),
  and per part.

With ``--files``, the same documents are written as text files (1,000 per folder, dated
an hour back, as a folder a user syncs is) and synced with ``build_index(folder)``, the
way a user re-indexes a folder: ``full`` (the first build), then the median of 3 syncs
each with ``nothing`` changed, one file added (``add_1``), one removed (``remove_1``),
one touched but identical (``touch_1``) and one edited (``edit_1``), and the add and
the nothing-changed sync as a share of the full build.

    python benchmarks/scale_index.py --sizes 10000 100000 --json out.json
    python benchmarks/scale_index.py --docs 20000          # the issue's 20k documents
    python benchmarks/scale_index.py --sizes --files 20000 100000   # folder syncs

Timings depend on the machine's load: the load average is printed with them. Run it
alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sourcier import HASHING_MODEL, Document, Index, Settings  # noqa: E402
from sourcier.build import LocalEmbedding, Sources, optimize_index, update_index  # noqa: E402
from sourcier.embed import load_embedder  # noqa: E402

HASHING = Settings(model=HASHING_MODEL)


def sentences() -> list[str]:
    pool: list[str] = []
    for line in (ROOT / "eval" / "piaf" / "corpus.jsonl").read_text().splitlines():
        pool += re.split(r"(?<=[.!?])\s+", json.loads(line)["text"])
    for f in sorted((ROOT / "corpus").glob("*.txt")):
        pool += re.split(r"(?<=[.!?])\s+|\n+", f.read_text())
    return [s.strip() for s in pool if len(s.strip()) > 30]


def documents(n: int, pool: list[str], seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    zipf = [1.0 / (r + 1) ** 1.1 for r in range(200_000)]
    rare = rng.choices(range(200_000), weights=zipf, k=2 * n)
    docs = []
    for i in range(n):
        body = " ".join(rng.sample(pool, rng.randint(4, 9)))
        text = f"{body} Réf. mot{rare[2 * i]} code{rare[2 * i + 1]}."
        docs.append(
            Document(
                doc_id=hashlib.sha256(text.encode()).hexdigest(),
                source=f"record:scale-{seed}-{i:08d}",
                title=f"Communiqué {i}",
                text=text,
                language="fr",
            )
        )
    return docs


def disk(path: Path) -> dict[str, float]:
    """Bytes of the live generation, by part: its segments, manifest and journal. (Right
    after a merge the segments it replaced stay on disk until the next write, for
    readers of the generation before; they are not counted.)"""
    from sourcier.storage import generations

    parts: dict[str, int] = {}
    files = [f for seg in generations.live_segments(path) for f in seg.rglob("*") if f.is_file()]
    files += [f for f in generations.current_generation(path).rglob("*") if f.is_file()]
    files += [path / n for n in ("CURRENT", generations.JOURNAL) if (path / n).is_file()]
    for f in files:
        rel = f.relative_to(path).parts
        key = rel[2] if rel[0] == "segments" and len(rel) > 2 else rel[0]
        key = {"sentence_scales.npy": "sentences.npy"}.get(key, key)
        key = "manifest" if key.startswith("gen-") else key
        parts[key] = parts.get(key, 0) + f.stat().st_size
    return dict(sorted(parts.items()))


_PROBE = """
import json, resource, sys, time, statistics
sys.path.insert(0, sys.argv[3])
import numpy, faiss
from sourcier import Index, search
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
before = rss()
t = time.perf_counter()
idx = Index.open(sys.argv[1])
opened = time.perf_counter() - t
questions = json.loads(open(sys.argv[2]).read())
for q in questions[:20]:
    search(q, index=idx, k=5)
times = []
for q in questions:
    t = time.perf_counter()
    search(q, index=idx, k=5)
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"open_s": opened, "rss_mb": rss() - before,
    "search_p50_ms": 1000 * statistics.median(times),
    "search_p95_ms": 1000 * times[int(0.95 * len(times))]}))
"""


def probe(path: Path, questions: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(questions), str(ROOT / "src")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def phase(name: str, path: Path, n_docs: int) -> dict[str, Any]:
    """Run one phase in a fresh process (so each one's memory is its own)."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--path", str(path), "--docs", str(n_docs)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if out.returncode:
        raise SystemExit(f"phase {name} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_phase(name: str, path: Path, n_docs: int) -> dict[str, Any]:
    pool = sentences()
    if name == "build":
        docs = documents(n_docs, pool)
        t = time.perf_counter()
        report = update_index(path, Sources(documents=tuple(docs)), settings=HASHING)
        return {
            "build_s": time.perf_counter() - t,
            "chunks": report.chunks_added,
            "segments_after_build": report.segments,
        }
    if name == "update":
        live = Index.open(path)
        embedder = load_embedder(live.settings.model)

        def stage(settings: Settings) -> LocalEmbedding:
            return LocalEmbedding(embedder, batch_size=settings.model.batch_size)

        extra = documents(5, pool, seed=len(live))  # new to this index
        gone = list(live.snapshot.documents)[:5]
        adds, removes, embeds, reloads = [], [], [], []
        for doc in extra:
            t = time.perf_counter()
            r = update_index(path, Sources(documents=(doc,), sync=False), embedding=stage)
            adds.append(time.perf_counter() - t)
            assert r.chunks_added >= 1
            t = time.perf_counter()
            embedder.embed_passages([doc.text])
            embeds.append(time.perf_counter() - t)
            t = time.perf_counter()
            live.reload()
            reloads.append(time.perf_counter() - t)
        for doc_id in gone:
            t = time.perf_counter()
            r = update_index(path, Sources(remove_ids=frozenset({doc_id})), embedding=stage)
            removes.append(time.perf_counter() - t)
            assert r.chunks_removed >= 1
        return {
            "add_1_all_s": adds,
            "remove_1_all_s": removes,
            "add_1_s": statistics.median(adds),
            "embed_1_s": statistics.median(embeds),
            "remove_1_s": statistics.median(removes),
            "reload_s": statistics.median(reloads),
            "segments_before_merge": r.segments,
        }
    if name == "merge":
        t = time.perf_counter()
        merged = optimize_index(path)
        return {"merge_s": time.perf_counter() - t, "merge_chunks": merged.chunks_written}
    raise SystemExit(f"unknown phase {name}")


def measure(
    n_docs: int, scratch: Path, questions: Path, reuse: Path | None = None
) -> dict[str, Any]:
    path = reuse or scratch / f"index-{n_docs}"
    record = path / "bench-build.json"
    if reuse is not None and record.is_file():
        built = json.loads(record.read_text())
    else:
        built = phase("build", path, n_docs)
        record.write_text(json.dumps(built))
    build, chunks = built["build_s"], built["chunks"]
    print(f"  {n_docs} documents, {chunks} chunks: build {build:.1f} s", flush=True)
    before = probe(path, questions)
    size = disk(path)
    update = phase("update", path, n_docs)
    merge = phase("merge", path, n_docs)
    total = sum(size.values())
    result = {
        "documents": n_docs,
        "chunks": chunks,
        "build_s": build,
        **update,
        "add_1_share": update["add_1_s"] / build,
        "remove_1_share": update["remove_1_s"] / build,
        **merge,
        **before,
        "disk_bytes_per_chunk": total / chunks,
        "disk_parts_bytes_per_chunk": {k: v / chunks for k, v in size.items()},
    }
    if reuse is None:
        shutil.rmtree(path)
    return result


def folder_sync(n_files: int, scratch: Path, *, repeats: int = 3) -> dict[str, Any]:
    """Time ``build_index`` of a folder of ``n_files`` text files, then of syncs of it
    after one small change each (see the module's docstring)."""
    from sourcier import build_index

    folder, index = scratch / f"files-{n_files}", scratch / f"files-index-{n_files}"
    docs = documents(n_files + 3 * repeats, sentences(), seed=11)
    files = [folder / f"{i // 1000:03d}" / f"doc-{i:06d}.txt" for i in range(n_files)]
    files += [folder / "000" / f"new-{k}.txt" for k in range(len(docs) - n_files)]
    for f, doc in zip(files[:n_files], docs[:n_files], strict=True):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(doc.text, encoding="utf-8")
    past = time.time_ns() - 3600 * 10**9
    for f in files[:n_files]:
        os.utime(f, ns=(past, past))

    def sync(change: Any = None) -> float:
        if change is not None:
            change()
        t = time.perf_counter()
        build_index(folder, index=index, settings=HASHING, show_progress=False)
        return time.perf_counter() - t

    def add(k: int) -> Any:
        return lambda: files[n_files + k].write_text(docs[n_files + k].text, encoding="utf-8")

    def edit(k: int) -> Any:
        return lambda: files[k].write_text(docs[k].text + " Mis à jour.", encoding="utf-8")

    def touch(k: int) -> Any:
        return lambda: os.utime(files[k], ns=(past + k + 1, past + k + 1))

    full = sync()
    times = {
        "nothing": [sync() for _ in range(repeats)],
        "add_1": [sync(add(k)) for k in range(repeats)],
        "remove_1": [sync(files[n_files + k].unlink) for k in range(repeats)],
        "touch_1": [sync(touch(k)) for k in range(repeats)],
        "edit_1": [sync(edit(repeats + k)) for k in range(repeats)],
    }
    shutil.rmtree(folder)
    shutil.rmtree(index)
    result: dict[str, Any] = {"files": n_files, "full_s": full}
    for name, values in times.items():
        result[f"{name}_s"] = statistics.median(values)
        result[f"{name}_all_s"] = values
    result["add_1_share"] = result["add_1_s"] / full
    result["nothing_share"] = result["nothing_s"] / full
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[10_000, 100_000],
        help="corpus sizes in chunks (about one document each)",
    )
    parser.add_argument("--docs", type=int, nargs="*", default=[], help="corpus sizes in documents")
    parser.add_argument(
        "--files", type=int, nargs="*", default=[], help="folder sizes in files, synced"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="measure an index this script built and kept (skips the build)",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.path, args.docs[0])))
        return
    pool = sentences()
    probe_docs = documents(2000 if args.sizes else 0, pool, seed=7)
    scratch = Path(tempfile.mkdtemp(prefix="sourcier-scale-"))
    try:
        per_doc = 1.0
        if args.sizes:  # sizes in chunks: how many chunks a document makes, measured
            r = update_index(
                scratch / "probe", Sources(documents=tuple(probe_docs)), settings=HASHING
            )
            per_doc = r.chunks_added / len(probe_docs)
            shutil.rmtree(scratch / "probe")
        qs = [
            json.loads(line)["question"]
            for line in (ROOT / "eval" / "piaf" / "queries.jsonl").read_text().splitlines()[:200]
        ]
        questions = scratch / "questions.json"
        questions.write_text(json.dumps(qs))
        sizes = [round(n / per_doc) for n in args.sizes] + list(args.docs)
        results = []
        for n_docs in sizes:
            print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
            results.append(measure(n_docs, scratch, questions, args.reuse))
            print(json.dumps(results[-1], indent=1), flush=True)
        for n_files in args.files:
            print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
            results.append(folder_sync(n_files, scratch))
            print(json.dumps(results[-1], indent=1), flush=True)
        out = {
            "machine": f"{os.cpu_count()} cores, {platform()}",
            "chunks_per_document": per_doc,
            "results": results,
        }
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def platform() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
