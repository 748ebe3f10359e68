"""BM25 engines for a segmented index: update cost, query time, memory, ranking identity.

Engines (each skipped when its package is missing):

- ``today``: :class:`sourcier.lexical.BM25Index` (bm25s), rebuilt from all chunks on
  every change: the reference for ranking.
- ``segments``: :class:`sourcier.bm25_segments.SegmentedBM25`, per-segment postings
  scored with global statistics.
- ``fts5``: SQLite FTS5 over the pre-analysed terms, one table, its own ``bm25()``
  (k1 = 1.2, b = 0.75, but idf ``log((N - df + 0.5) / (df + 0.5))``, floored at 1e-6).
- ``tantivy``: the ``tantivy`` package over the pre-analysed terms (whitespace
  tokenizer), its BM25 (Lucene idf; lengths stored in one byte, deleted chunks still
  counted in the statistics until a merge).

Every engine gets the same French analysis (:func:`sourcier.lexical.analyze`), done
once and timed apart. Two corpora: PIAF (``eval/piaf``: 761 passages, 3,815 questions;
ranking identity against ``today``, one against ten segments, deletes against a
rebuild) and a synthetic corpus of N chunks recombined from PIAF sentences, plus two
rare tokens per chunk drawn from a Zipf law so that the vocabulary grows with N
(update costs, query p50/p95 at k = 100 with and without an ``allowed`` filter,
resident memory of a fresh process that loads the index and runs the queries, bytes on
disk). Timings depend on the machine's load: the load average is printed with them.

    python benchmarks/bm25_engines.py                         # PIAF + 100k chunks
    python benchmarks/bm25_engines.py --sizes 100000 1000000 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT / "eval" / "piaf"
K = 100
BUDGET_S = 40.0  # the most time spent timing one engine's queries in one mode
SCRATCH: str | None = None  # where tantivy builds; main() points it at its temporary folder


# -- engines -----------------------------------------------------------------------------


class Today:
    """BM25Index, rebuilt whole on every change."""

    name = "today"

    def __init__(self) -> None:
        self.terms: dict[int, list[str]] = {}
        self.index: Any = None
        self.folder: Path | None = None

    def build(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        self.terms = dict(zip(ids, terms, strict=True))
        self._rebuild()

    def _rebuild(self) -> None:
        from sourcier.analysis import BM25Index

        ids = list(self.terms)
        with _analysed({str(i): self.terms[i] for i in ids}):
            self.index = BM25Index.build([str(i) for i in ids], ids)
        if self.folder is not None:
            self.index.save(self.folder)

    def add(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        self.terms.update(zip(ids, terms, strict=True))
        self._rebuild()

    def delete(self, ids: Sequence[int]) -> None:
        for i in ids:
            self.terms.pop(i, None)
        self._rebuild()

    def save(self, folder: Path) -> None:
        self.folder = folder
        self.index.save(folder)

    @staticmethod
    def load(folder: Path) -> Any:
        from sourcier.analysis import BM25Index

        return BM25Index.load(folder)

    @staticmethod
    def search(index: Any, query: str, k: int, allowed: Any) -> list[tuple[int, float]]:
        return index.search(query, k=k, allowed=allowed)


class Segments:
    """SegmentedBM25: a new segment per change, tombstones for deletes."""

    name = "segments"

    def __init__(self) -> None:
        from sourcier.storage.bm25 import SegmentedBM25

        self.index = SegmentedBM25()
        self.folder: Path | None = None

    def build(self, terms: Sequence[list[str]], ids: Sequence[int], parts: int = 1) -> None:
        from sourcier.storage.bm25 import BM25Segment

        bounds = np.linspace(0, len(ids), parts + 1).astype(int)
        for a, b in zip(bounds, bounds[1:], strict=False):
            self.index = self.index.add(BM25Segment.from_terms(terms[a:b], ids[a:b]))

    def add(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        from sourcier.storage.bm25 import BM25Segment

        self.index = self.index.add(BM25Segment.from_terms(terms, ids))
        self._persist()

    def delete(self, ids: Sequence[int]) -> None:
        self.index = self.index.delete(ids)
        self._persist()

    def _persist(self) -> None:
        if self.folder is not None:
            self.index.save(self.folder)

    def save(self, folder: Path) -> None:
        self.folder = folder
        self.index.save(folder)

    @staticmethod
    def load(folder: Path) -> Any:
        from sourcier.storage.bm25 import SegmentedBM25

        return SegmentedBM25.load(folder)

    @staticmethod
    def search(index: Any, query: str, k: int, allowed: Any) -> list[tuple[int, float]]:
        return index.search(query, k=k, allowed=allowed)


class TenSegments(Segments):
    """SegmentedBM25 built as ten segments: the cost of not having merged."""

    name = "segments-10"

    def build(self, terms: Sequence[list[str]], ids: Sequence[int], parts: int = 10) -> None:
        super().build(terms, ids, parts=parts)


class Fts5:
    """One SQLite FTS5 table of analysed terms; SQLite keeps its own segments."""

    name = "fts5"

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None

    def _open(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS bm25 USING fts5(terms, detail=none)")
        return db

    def build(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        self.db = self._open(":memory:")
        self._insert(terms, ids)

    def _insert(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        assert self.db is not None
        with self.db:
            self.db.executemany(
                "INSERT INTO bm25(rowid, terms) VALUES (?, ?)",
                ((int(i), " ".join(t)) for i, t in zip(ids, terms, strict=True)),
            )

    def save(self, folder: Path) -> None:
        assert self.db is not None
        folder.mkdir(parents=True, exist_ok=True)
        disk = sqlite3.connect(folder / "bm25.sqlite")
        self.db.backup(disk)
        self.db.close()
        disk.execute("PRAGMA journal_mode=WAL")
        self.db = disk

    def add(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        self._insert(terms, ids)

    def delete(self, ids: Sequence[int]) -> None:
        assert self.db is not None
        with self.db:
            self.db.executemany("DELETE FROM bm25 WHERE rowid = ?", ((int(i),) for i in ids))

    @staticmethod
    def load(folder: Path) -> Any:
        return sqlite3.connect(folder / "bm25.sqlite")

    @staticmethod
    def search(db: Any, query: str, k: int, allowed: Any) -> list[tuple[int, float]]:
        from sourcier.analysis import analyze

        terms = analyze(query)
        if not terms or k <= 0:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        if allowed is None:
            rows = db.execute(
                "SELECT rowid, -bm25(bm25) FROM bm25 WHERE bm25 MATCH ? ORDER BY rank LIMIT ?",
                (match, k),
            )
        else:
            rows = db.execute(
                "SELECT rowid, -bm25(bm25) FROM bm25 WHERE bm25 MATCH ? AND rowid IN "
                "(SELECT value FROM json_each(?)) ORDER BY rank LIMIT ?",
                (match, json.dumps([int(i) for i in allowed]), k),
            )
        return [(int(i), float(s)) for i, s in rows]


class Tantivy:
    """A tantivy index of analysed terms (whitespace tokenizer, freqs, no positions)."""

    name = "tantivy"

    def __init__(self) -> None:
        self.index: Any = None
        self.writer: Any = None
        self.folder: Path | None = None
        self.terms: list[tuple[Sequence[list[str]], Sequence[int]]] = []

    @staticmethod
    def _schema() -> Any:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("id", stored=True, indexed=True, fast=True)
        builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
        return builder.build()

    def build(self, terms: Sequence[list[str]], ids: Sequence[int], parts: int = 1) -> None:
        # tantivy needs a folder; the build writes into a temporary one, moved by save()
        self.folder = Path(tempfile.mkdtemp(prefix="tantivy-", dir=SCRATCH))
        self._open(self.folder)
        bounds = np.linspace(0, len(ids), parts + 1).astype(int)
        for a, b in zip(bounds, bounds[1:], strict=False):
            self._insert(terms[a:b], ids[a:b])

    def _open(self, folder: Path) -> None:
        import tantivy

        self.index = tantivy.Index(self._schema(), path=str(folder))
        self.writer = self.index.writer(heap_size=64_000_000, num_threads=1)

    def _insert(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        import tantivy

        for i, t in zip(ids, terms, strict=True):
            self.writer.add_document(tantivy.Document(id=int(i), terms=" ".join(t)))
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = self.index.writer(heap_size=64_000_000, num_threads=1)

    def save(self, folder: Path) -> None:
        assert self.folder is not None
        self.writer = None
        gc.collect()
        shutil.move(str(self.folder), str(folder))
        self.folder = folder
        self._open(folder)

    def add(self, terms: Sequence[list[str]], ids: Sequence[int]) -> None:
        import tantivy

        for i, t in zip(ids, terms, strict=True):
            self.writer.add_document(tantivy.Document(id=int(i), terms=" ".join(t)))
        self.writer.commit()

    def delete(self, ids: Sequence[int]) -> None:
        for i in ids:
            self.writer.delete_documents_by_term("id", int(i))
        self.writer.commit()

    @staticmethod
    def load(folder: Path) -> Any:
        import tantivy

        index = tantivy.Index.open(str(folder))
        index.reload()
        return index

    @staticmethod
    def search(index: Any, query: str, k: int, allowed: Any) -> list[tuple[int, float]]:
        import tantivy

        from sourcier.analysis import analyze

        terms = analyze(query)
        if not terms or k <= 0:
            return []
        schema = index.schema
        should = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "terms", t)) for t in terms
        ]
        q = tantivy.Query.boolean_query(should)
        if allowed is not None:
            ids = [int(i) for i in allowed]
            if not ids:
                return []
            only = tantivy.Query.const_score_query(
                tantivy.Query.term_set_query(schema, "id", ids), 0.0
            )
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, only)])
        searcher = index.searcher()
        hits = searcher.search(q, k).hits
        return [(int(searcher.doc(addr)["id"][0]), float(score)) for score, addr in hits]


ENGINES: dict[str, Any] = {
    "today": Today,
    "segments": Segments,
    "segments-10": TenSegments,
    "fts5": Fts5,
    "tantivy": Tantivy,
}


def _available(name: str) -> bool:
    if name == "tantivy":
        try:
            import tantivy  # noqa: F401
        except ImportError:
            return False
    return True


@contextlib.contextmanager
def _analysed(cache: dict[str, list[str]]) -> Iterator[None]:
    """Make ``BM25Index.build`` take pre-analysed terms: its texts are cache keys."""
    from sourcier import analysis as lexical

    original = lexical.analyze
    lexical.analyze = lambda text: cache[text] if text in cache else original(text)  # type: ignore[assignment]
    try:
        yield
    finally:
        lexical.analyze = original


# -- corpora -----------------------------------------------------------------------------


def piaf() -> tuple[list[str], list[int], list[str]]:
    rows = [json.loads(line) for line in (PIAF / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["question"] for line in (PIAF / "queries.jsonl").open()]
    texts = [f"{r['title']}\n{r['text']}" for r in rows]  # as index.lexical_text
    return texts, list(range(len(texts))), queries


def synthetic(n: int, *, seed: int = 0) -> Iterator[str]:
    """N chunks of 4-8 PIAF sentences, plus two rare tokens each (Zipf over 10^6)."""
    texts, _, _ = piaf()
    sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s) > 20]
    rng = random.Random(seed)
    zipf = np.random.default_rng(seed).zipf(1.3, size=2 * n) % 1_000_000
    for i in range(n):
        body = " ".join(rng.choices(sentences, k=rng.randint(4, 8)))
        yield f"{body} ref{zipf[2 * i]} ref{zipf[2 * i + 1]}"


# -- measuring ---------------------------------------------------------------------------


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _timed(fn: Any, *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _analyse(texts: Sequence[str]) -> tuple[list[list[str]], float]:
    from sourcier.analysis import analyze

    started = time.perf_counter()
    terms = [analyze(t) for t in texts]
    return terms, time.perf_counter() - started


def compare(
    reference: list[tuple[int, float]], other: list[tuple[int, float]], *, scores: bool
) -> dict:
    """Top-k agreement; score differences only where the formula is the same."""
    ref_ids, got_ids = [i for i, _ in reference], [i for i, _ in other]
    same_order = ref_ids == got_ids
    diff = (
        max((abs(a[1] - b[1]) for a, b in zip(reference, other, strict=True)), default=0.0)
        if same_order and scores
        else None
    )
    overlap = len(set(ref_ids) & set(got_ids)) / len(ref_ids) if ref_ids else float(not got_ids)
    return {"same_order": same_order, "overlap": overlap, "score_diff": diff}


def _summary(rows: list[dict]) -> dict:
    diffs = [r["score_diff"] for r in rows if r["score_diff"] is not None]
    return {
        "questions": len(rows),
        "top10_overlap": statistics.fmean(r["overlap"] for r in rows),
        "exact_order": sum(r["same_order"] for r in rows) / len(rows),
        "max_score_diff": max(diffs) if diffs else None,
    }


def piaf_identity(engines: list[str]) -> dict:
    """Ranking vs today on PIAF: one build, ten segments, 10% deleted."""
    texts, ids, queries = piaf()
    terms, _ = _analyse(texts)
    today = Today()
    today.build(terms, ids)
    rng = random.Random(1)
    deleted = sorted(rng.sample(ids, len(ids) // 10))
    kept = [i for i in ids if i not in set(deleted)]
    rebuilt = Today()
    rebuilt.build([terms[i] for i in kept], kept)
    report: dict[str, Any] = {"load": _load()}
    for name in engines:
        if name in ("today", "segments-10"):
            continue
        out = {}
        for label, parts in (("1 segment", 1), ("10 segments", 10)):
            engine = ENGINES[name]()
            if name in ("segments", "tantivy"):
                engine.build(terms, ids, parts=parts)
            else:  # fts5: ten transactions
                bounds = np.linspace(0, len(ids), parts + 1).astype(int)
                engine.build(terms[: bounds[1]], ids[: bounds[1]])
                for a, b in zip(bounds[1:], bounds[2:], strict=False):
                    engine.add(terms[a:b], ids[a:b])
            handle = _handle(engine)
            rows = [
                compare(
                    today.index.search(q, k=10),
                    engine.search(handle, q, 10, None),
                    scores=name == "segments",
                )
                for q in queries
            ]
            out[label] = _summary(rows)
            if parts == 10:
                engine.delete(deleted)
                handle = _handle(engine)
                rows = [
                    compare(
                        rebuilt.index.search(q, k=10),
                        engine.search(handle, q, 10, None),
                        scores=name == "segments",
                    )
                    for q in queries
                ]
                out["10 segments, 10% deleted vs rebuild"] = _summary(rows)
        report[name] = out
    return report


def _handle(engine: Any) -> Any:
    """What the engine's search() takes, right after a change (no save)."""
    if isinstance(engine, Today | Segments):
        return engine.index
    if isinstance(engine, Fts5):
        return engine.db
    engine.index.reload()
    return engine.index


def _probe(name: str, folder: str, queries_path: str, allowed_path: str) -> None:
    """In a fresh process: load, query, report times and resident memory."""
    import psutil

    import sourcier.analysis  # noqa: F401  (imports are not the index's memory)

    engine = ENGINES[name]
    queries = json.loads(Path(queries_path).read_text())
    allowed_sets = json.loads(Path(allowed_path).read_text())
    small, half = set(allowed_sets["small"]), set(allowed_sets["half"])
    if name == "tantivy":
        import tantivy  # noqa: F401
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    started = time.perf_counter()
    handle = engine.load(Path(folder))
    load_s = time.perf_counter() - started
    for q in queries[:20]:  # warm caches
        engine.search(handle, q, K, None)
    out: dict[str, Any] = {"load_s": load_s}
    for label, allowed in (("all", None), ("allowed 2000", small), ("allowed half", half)):
        times: list[float] = []
        for q in queries:
            started = time.perf_counter()
            engine.search(handle, q, K, allowed)
            times.append(time.perf_counter() - started)
            if sum(times) > BUDGET_S:  # a slow engine is timed on fewer questions
                break
        times.sort()
        out[label] = {
            "p50_ms": 1000 * times[len(times) // 2],
            "p95_ms": 1000 * times[int(len(times) * 0.95)],
            "questions": len(times),
        }
    out["rss_mb"] = (process.memory_info().rss - before) / 2**20
    print(json.dumps(out))


def scale(
    n: int, engines: list[str], work: Path, *, queries: list[str], report: dict, save: Any
) -> None:
    """Build, update and query costs at n synthetic chunks, into ``report``."""
    print(f"[{n}] generating and analysing ...", file=sys.stderr, flush=True)
    texts = list(synthetic(n + 1000))
    terms, analyse_s = _analyse(texts)
    ids = list(range(1_000_000_000, 1_000_000_000 + len(texts)))
    base_terms, base_ids = terms[:n], ids[:n]
    extra_terms, extra_ids = terms[n:], ids[n:]
    rng = random.Random(2)
    allowed = {"small": rng.sample(base_ids, 2000), "half": rng.sample(base_ids, n // 2)}
    (work / "queries.json").write_text(json.dumps(queries))
    (work / "allowed.json").write_text(json.dumps(allowed))
    report.update(
        {
            "chunks": n,
            "terms_per_chunk": statistics.fmean(len(t) for t in base_terms),
            "vocabulary": len({t for doc in base_terms for t in doc}),
            "analyse_s": analyse_s,
            "analyse_one_ms": 1000 * analyse_s / len(texts),
        }
    )
    del texts
    for name in engines:
        print(f"[{n}] {name} (load {_load()}) ...", file=sys.stderr, flush=True)
        gc.collect()
        engine = ENGINES[name]()
        folder = work / name
        row: dict[str, Any] = {"load_at_start": _load()}
        row["build_s"] = _timed(engine.build, base_terms, base_ids)
        row["save_s"] = _timed(engine.save, folder)
        row["disk_mb"] = _bytes(folder) / 2**20
        probe = subprocess.run(
            [sys.executable, __file__, "--probe", name, str(folder)]
            + [str(work / "queries.json"), str(work / "allowed.json")],
            capture_output=True,
            text=True,
            check=True,
        )
        row.update(json.loads(probe.stdout.strip().splitlines()[-1]))
        # updates, each made durable (saved / committed) as the store would
        row["add_one_s"] = _timed(engine.add, extra_terms[:1], extra_ids[:1])
        row["add_1000_s"] = _timed(engine.add, extra_terms[1:], extra_ids[1:])
        row["delete_one_s"] = _timed(engine.delete, base_ids[:1])
        row["delete_1000_s"] = _timed(engine.delete, base_ids[1:1001])
        handle = _handle(engine)
        times: list[float] = []
        for q in queries[:200]:
            started = time.perf_counter()
            engine.search(handle, q, K, None)
            times.append(time.perf_counter() - started)
            if sum(times) > BUDGET_S / 4:
                break
        row["p50_ms_after_updates"] = 1000 * sorted(times)[len(times) // 2]
        if isinstance(engine, Segments):
            row["segments_after_updates"] = len(engine.index.segments)
            row["merge_all_s"] = _timed(lambda e=engine: setattr(e, "index", e.index.merge()))
        row["disk_mb_after_updates"] = _bytes(folder) / 2**20
        row["load_at_end"] = _load()
        report[name] = row
        save()
        del engine
        shutil.rmtree(folder, ignore_errors=True)


def markdown(report: dict) -> str:
    len_queries = report.get("queries", 0)
    lines = ["## PIAF ranking vs today's BM25Index (top 10, 3,815 questions)", ""]
    ident = report.get("piaf", {"load": "-"})
    lines += [
        f"load average: {ident['load']}",
        "",
        "| engine | build | top-10 overlap | exact order | max score diff |",
        "|---|---|---|---|---|",
    ]
    for name, rows in ident.items():
        if name == "load":
            continue
        for label, r in rows.items():
            diff = "-" if r["max_score_diff"] is None else f"{r['max_score_diff']:.2e}"
            lines.append(
                f"| {name} | {label} | {r['top10_overlap']:.4f} | {r['exact_order']:.4f} | {diff} |"
            )
    for s in report["scales"]:
        if not s:
            continue
        lines += [
            "",
            f"## {s['chunks']:,} synthetic chunks ({s['terms_per_chunk']:.0f} terms each, "
            f"vocabulary {s['vocabulary']:,}; analysis {s['analyse_s']:.0f} s, "
            f"{s['analyse_one_ms']:.2f} ms a chunk, the same for every engine)",
            "",
            "| engine | build s | disk MB | load s | RSS MB | p50 / p95 ms | allowed 2000 "
            "p50 / p95 | allowed half p50 / p95 | add 1 s | add 1000 s | delete 1 s | "
            "delete 1000 s | p50 after | load avg |",
            "|" + "---|" * 14,
        ]
        for name in ENGINES:
            r = s.get(name)
            if r is None or "add_one_s" not in r:
                continue

            def pp(key: str, r: dict = r) -> str:
                n = r[key].get("questions")
                return f"{r[key]['p50_ms']:.2f} / {r[key]['p95_ms']:.2f}" + (
                    f" ({n} q)" if n and n < len_queries else ""
                )

            lines.append(
                f"| {name} | {r['build_s']:.1f} | {r['disk_mb']:.0f} | {r['load_s']:.2f} | "
                f"{r['rss_mb']:.0f} | {pp('all')} | {pp('allowed 2000')} | "
                f"{pp('allowed half')} | {r['add_one_s']:.3f} | {r['add_1000_s']:.3f} | "
                f"{r['delete_one_s']:.3f} | {r['delete_1000_s']:.3f} | "
                f"{r['p50_ms_after_updates']:.2f} | {r['load_at_start']} → {r['load_at_end']} |"
            )
        for name in ("segments", "segments-10"):
            if name in s:
                seg = s[name]
                lines.append(
                    f"\n{name}: {seg['segments_after_updates']} segments after the updates; "
                    f"merging them all took {seg['merge_all_s']:.2f} s."
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--queries", type=int, default=500, help="PIAF questions timed")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--skip-piaf", action="store_true", help="no ranking comparison")
    parser.add_argument("--probe", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        _probe(*args.probe)
        return
    engines = [e for e in args.engines.split(",") if _available(e)]
    print(f"engines: {', '.join(engines)}; load {_load()}", file=sys.stderr, flush=True)
    _, _, questions = piaf()
    queries = random.Random(3).sample(questions, min(args.queries, len(questions)))
    report: dict[str, Any] = {"engines": engines, "queries": len(queries), "scales": []}

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))

    with tempfile.TemporaryDirectory(prefix="bm25-engines-") as tmp:
        global SCRATCH
        SCRATCH = tmp
        if not args.skip_piaf:
            report["piaf"] = piaf_identity(engines)
            save()
        for n in args.sizes:
            report["scales"].append({})
            scale(n, engines, Path(tmp), queries=queries, report=report["scales"][-1], save=save)
    text = markdown(report)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(text)


if __name__ == "__main__":
    main()
