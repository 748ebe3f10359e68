"""Every answer of some evaluation sets, field by field, to prove a change changed none.

Writes one JSON line per question: the answer text, refusal and reason, support,
language, mode, the retrieval query, the sentences, the citations (with their spans)
and the hits (chunk, rank, scores), everything ``Answer.to_dict()`` holds except the
timings. Run it before and after a change, then compare the two folders:

    python benchmarks/answer_snapshot.py --out /tmp/before seed piaf-sample premise
    ... change the code ...
    python benchmarks/answer_snapshot.py --out /tmp/after seed piaf-sample premise
    python benchmarks/answer_snapshot.py --compare /tmp/before /tmp/after

``--index-files`` also builds the bundled corpus into a fresh folder and records the
build report (without its time) and a checksum of every index file (the manifest
without its ``written_at``), so that the bytes on disk can be compared too.

Only the public API is used: ``build_index``, ``build_index_from_records``, ``ask``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

SETS = {
    # name -> (data set, split)
    "seed": ("seed", "all"),
    "piaf-sample": ("piaf-sample", "all"),
    "piaf-test": ("piaf", "test"),
    "premise": ("eval/premise", "all"),
    "premise-piaf": ("eval/premise-piaf", "all"),
}


def _corpus_prefix() -> str:
    from sourcier.paths import bundled_corpus_dir

    return str(bundled_corpus_dir()) + "/"


def _round(value: Any) -> Any:
    """Floats to 6 decimals; the bundled corpus's folder written as ``<corpus>/`` (so two
    checkouts in other folders compare equal)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, str):
        return value.replace(_corpus_prefix(), "<corpus>/")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def answer_fields(answer: Any) -> dict[str, Any]:
    """What an answer says, without how long it took."""
    data = answer.to_dict()
    data.pop("timings_ms", None)
    return _round(data)


def snapshot_set(
    name: str, out: Path, index_root: Path, *, limit: int | None, settings: Any = None
) -> int:
    from sourcier import ask, build_index, build_index_from_records
    from sourcier.evaluation.datasets import load_dataset

    dataset_name, split = SETS[name]
    dataset = load_dataset(dataset_name).select(split, limit)
    index = index_root / Path(dataset_name).name
    if dataset.from_records:
        build_index_from_records(
            list(dataset.records), index=index, settings=settings, show_progress=False
        )
    else:
        paths = list(dataset.corpus_paths) if dataset.corpus_paths is not None else None
        build_index(paths, index=index, settings=settings, show_progress=False)
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
        for query in dataset.queries:
            row = {"id": query.id, **answer_fields(ask(query.question, index=index))}
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return len(dataset.queries)


def _sqlite_digest(path: Path) -> str:
    """A checksum of every table's rows (paths of the bundled corpus as ``<corpus>/``):
    the database's content, whatever folder the checkout is in."""
    import sqlite3

    digest = hashlib.sha256()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        digest.update(repr(schema).encode())
        for table in [name for kind, name, _ in schema if kind == "table"]:
            digest.update(table.encode())
            for row in db.execute(f'SELECT * FROM "{table}"'):
                digest.update(repr(tuple(_round(v) for v in row)).encode())
    finally:
        db.close()
    return digest.hexdigest()


def index_files(out: Path, index_root: Path, *, settings: Any = None) -> None:
    """The build report and the checksum of every file of a fresh bundled-corpus index
    (a database's checksum is its rows', see :func:`_sqlite_digest`)."""
    from sourcier import build_index

    index = index_root / "bundled"
    report = _round(build_index(index=index, settings=settings, show_progress=False).to_dict())
    report.pop("seconds", None)
    report["index_path"] = "<index>"
    files = {}
    for path in sorted(p for p in index.rglob("*") if p.is_file()):
        rel = path.relative_to(index).as_posix()
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("written_at", None)
            data = json.dumps(manifest, sort_keys=True).encode()
        if path.name == "LOCK":
            continue
        if path.suffix == ".sqlite":
            files[rel] = _sqlite_digest(path)
            continue
        files[rel] = hashlib.sha256(data).hexdigest()
    (out / "index-files.json").write_text(
        json.dumps({"report": report, "files": files}, indent=1, sort_keys=True)
    )


def compare(before: Path, after: Path) -> int:
    """Print every difference between two snapshots; return how many answers differ."""
    differing = 0
    for old_file in sorted(before.glob("*.jsonl")):
        new_file = after / old_file.name
        if not new_file.exists():
            print(f"{old_file.name}: missing in {after}")
            differing += 1
            continue
        old = {r["id"]: r for r in map(json.loads, old_file.read_text().splitlines())}
        new = {r["id"]: r for r in map(json.loads, new_file.read_text().splitlines())}
        changed = [i for i in old if old[i] != new.get(i)]
        extra = set(new) - set(old)
        print(f"{old_file.stem}: {len(old)} answers, {len(changed)} differ, {len(extra)} new")
        for i in changed[:20]:
            fields = sorted(k for k in old[i] if old[i].get(k) != (new.get(i) or {}).get(k))
            print(f"  {i}: {', '.join(fields)}")
        differing += len(changed) + len(extra)
    files = before / "index-files.json"
    if files.exists():
        a, b = json.loads(files.read_text()), json.loads((after / files.name).read_text())
        same_report = a["report"] == b["report"]
        changed_files = sorted(
            k for k in set(a["files"]) | set(b["files"]) if a["files"].get(k) != b["files"].get(k)
        )
        print(
            f"index files: report {'identical' if same_report else 'DIFFERS'}, "
            f"{len(a['files'])} files, {len(changed_files)} differ {changed_files[:10]}"
        )
        differing += (not same_report) + len(changed_files)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help=f"which sets: {', '.join(SETS)} (default: all)")
    parser.add_argument("--out", type=Path, help="folder for the snapshot")
    parser.add_argument("--index-root", type=Path, help="where the indexes go (default: temp)")
    parser.add_argument("--limit", type=int, help="only this many questions per set")
    parser.add_argument("--model", help="the embedding model (default: the default one)")
    parser.add_argument("--index-files", action="store_true", help="also the bundled index")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return 1 if compare(*args.compare) else 0
    if args.out is None:
        parser.error("--out is needed (or --compare)")
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = None
    if args.model:
        from sourcier import Settings

        settings = Settings(model=args.model)
    with tempfile.TemporaryDirectory(prefix="sourcier-snapshot-") as tmp:
        root = args.index_root or Path(tmp)
        for name in args.sets or list(SETS):
            n = snapshot_set(name, args.out, root, limit=args.limit, settings=settings)
            print(f"{name}: {n} answers", file=sys.stderr)
        if args.index_files:
            index_files(args.out, root, settings=settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
