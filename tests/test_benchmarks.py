"""Every benchmark script in benchmarks/ runs, on a tiny input, through public APIs.

They are measurement tools, not timed tests: these only check that each one still runs
against today's code and writes the figures it promises (so none can rot unnoticed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sourcier import HASHING_MODEL

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
HAS_RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) is not None


def _run(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_every_kept_script_has_a_smoke_test() -> None:
    kept = {p.name for p in BENCH.glob("*.py")}
    tested = {
        "answer_line.py",
        "answer_snapshot.py",
        "cold_start.py",
        "compare_langchain.py",
        "dense_ann.py",
        "http_api.py",
        "index_speed.py",
        "ocr_pages.py",
        "ray_ingest.py",
        "scale_index.py",
        "threads.py",
    }
    assert kept <= tested, f"benchmarks without a smoke test: {sorted(kept - tested)}"


def test_answer_line_measures_both_styles_in_one_run(tmp_path: Path) -> None:
    args = ["--datasets", "seed", "--limit", "6", "--model", HASHING_MODEL]
    _run("answer_line.py", *args, "--index-root", str(tmp_path / "ix"), "--out", str(tmp_path))
    seed = json.loads((tmp_path / "results.json").read_text())["seed"]
    before, after = seed["styles"]["sentences"], seed["styles"]["glance"]
    assert seed["questions"] == 6 and seed["refusals_changed"] == []
    assert after["on_screen_containment"] >= before["containment"]
    assert after["answer_chars_p50"] < before["answer_chars_p50"]
    assert before["marked"] == 0 and after["quote_mismatches"] == 0
    assert "| seed | on_screen_containment |" in (tmp_path / "table.md").read_text()


def test_answer_snapshot_records_answers_and_compares_them(tmp_path: Path) -> None:
    args = ["seed", "--limit", "3", "--model", HASHING_MODEL, "--index-root", str(tmp_path / "ix")]
    _run("answer_snapshot.py", *args, "--out", str(tmp_path / "a"), "--index-files")
    rows = [json.loads(line) for line in (tmp_path / "a" / "seed.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(
        {"answer", "citations", "refused", "hits"} <= set(r) for r in rows
    )
    assert "timings_ms" not in rows[0]
    assert json.loads((tmp_path / "a" / "index-files.json").read_text())["files"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    same = _run("answer_snapshot.py", "--compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert "3 answers, 0 differ" in same.stdout
    changed = rows[0] | {"answer": "autre chose"}
    lines = [json.dumps(changed)] + [json.dumps(r) for r in rows[1:]]
    (tmp_path / "b" / "seed.jsonl").write_text("\n".join(lines) + "\n")
    differ = subprocess.run(
        [sys.executable, str(BENCH / "answer_snapshot.py"), "--compare"]
        + [str(tmp_path / "a"), str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert differ.returncode == 1 and "1 differ" in differ.stdout and "answer" in differ.stdout


def test_cold_start_times_the_stages_and_the_commands(shared_hashing_index: Path) -> None:
    out = Path(shared_hashing_index).parent / "cold.json"
    _run(
        "cold_start.py",
        *("--index", str(shared_hashing_index), "--repeats", "1", "--quick"),
        *("--json", str(out)),
    )
    medians = json.loads(out.read_text())["median_s"]
    assert {"import", "index_open", "answer", "warm_ask_p50", "cli_ask"} <= set(medians)
    assert all(v >= 0 for v in medians.values())


def test_http_api_times_the_three_ways_and_checks_every_quote_under_load(
    shared_hashing_index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "http.json"
    _run(
        "http_api.py",
        *("--index", str(shared_hashing_index), "--rounds", "1", "--clients", "3"),
        *("--per-client", "2", "--json", str(out)),
    )
    result = json.loads(out.read_text())
    assert {"in_process", "api_v1", "gradio_client"} <= set(result["sequential"])
    load = result["concurrent"]
    assert load["requests"] == 6 and load["errors"] == 0
    assert load["quotes_exact"] == load["quotes_checked"] > 0
    assert result["machine"]["cpu"]


def test_scale_index_measures_build_updates_merge_and_search(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    _run("scale_index.py", "--sizes", "--docs", "40", "--json", str(out))
    (row,) = json.loads(out.read_text())["results"]
    assert row["documents"] == 40 and row["chunks"] >= 40
    assert {"add_1_s", "remove_1_s", "merge_s", "search_p50_ms"} <= set(row)


def test_dense_ann_compares_exact_and_ann_search(tmp_path: Path) -> None:
    out = tmp_path / "dense.md"
    args = ("--sizes", "2000", "--queries", "20", "--model", HASHING_MODEL, "--out", str(out))
    _run("dense_ann.py", *args)
    assert "recall@10" in out.read_text()


@pytest.mark.slow
def test_index_speed_measures_paths_quality_overlap_and_syncs(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    _run("index_speed.py", "--tiny", "--model", HASHING_MODEL, "--json", str(out), timeout=600)
    result = json.loads(out.read_text())
    assert result["cpu"]["auto"].split()[0] in {"float32", "bfloat16"}
    for path in result["speed"]["paths"].values():
        assert path["passages_per_s"] > 0 and path["share_of_gemm"] > 0
    assert result["quality"]["seed_answers"]["questions"] == 61
    assert result["quality"]["seed_cosines"]["passage_min"] > 0.999
    assert result["overlap"]["overlapped_s"] > 0 and result["overlap"]["sequential_s"] > 0
    (sync,) = result["syncs"]
    assert sync["files"] == 200 and sync["nothing_s"] < sync["full_s"]


def test_ocr_pages_times_a_page_and_measures_its_accuracy(tmp_path: Path) -> None:
    from sourcier.ingest import ocr

    if ocr.missing() or ocr.pdf_renderer_missing():
        pytest.skip("Tesseract with French data, or pypdfium2, is not installed (make ocr-deps)")
    out = tmp_path / "ocr.json"
    _run("ocr_pages.py", "--pages", "1", "--json", str(out))
    summary = json.loads(out.read_text())["summary"]
    assert summary["pages"] == 1 and summary["ocr_s_per_page_median"] > 0
    assert summary["scanned_pdf_s_per_page"] > 0
    assert 0.9 < summary["accuracy_weighted"] <= 1.0


@pytest.mark.slow
def test_threads_times_query_embedding() -> None:
    proc = _run(
        "threads.py",
        *("--threads", "1", "--backends", "onnx", "--queries", "3"),
        *("--hog", "0", "--concurrency", "1"),
    )
    assert "onnx" in proc.stdout


@pytest.mark.slow
def test_compare_langchain_runs_both_pipelines_on_a_tiny_set(tmp_path: Path) -> None:
    records = [
        json.loads(line)
        for line in (ROOT / "eval" / "piaf-sample" / "corpus.jsonl").read_text().splitlines()
    ][:6]
    ids = {r["id"] for r in records}
    queries = [
        json.loads(line)
        for line in (ROOT / "eval" / "piaf-sample" / "queries.jsonl").read_text().splitlines()
    ]
    queries = [q for q in queries if set(q.get("gold_ids", [])) <= ids][:8]
    data = tmp_path / "tiny"
    data.mkdir()
    (data / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (data / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    out = tmp_path / "out"
    _run(
        "compare_langchain.py",
        *("--dataset", str(data), "--repeats", "1", "--latency-questions", "4"),
        *("--work", str(tmp_path / "work"), "--out", str(out)),
        timeout=600,
    )
    result = json.loads((out / "benchmark.json").read_text())
    assert {"sourcier", "langchain", "bm25_plain"} <= set(result["quality"])


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'sourcier[ray]'")
def test_ray_ingest_times_local_and_ray_embedding() -> None:
    proc = _run(
        "ray_ingest.py",
        *("--copies", "1", "--workers", "1", "--batch-sizes", "8", "--model", HASHING_MODEL),
        timeout=600,
    )
    assert "ray-1" in proc.stdout and "local" in proc.stdout
