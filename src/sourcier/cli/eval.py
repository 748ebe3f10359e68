"""The ``sourcier eval`` command: options, ``--set`` overrides, output."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..evaluation.datasets import SPLITS
from ..evaluation.report import default_report_dir, save_report
from ..evaluation.run import METHODS, run
from ..settings import LLMSettings, Settings
from .options import llm_options


@click.command("eval")
@click.argument("dataset")
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="all",
    show_default=True,
    help="Questions to evaluate: dev/test halves split by article (corpus.jsonl sets).",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="Evaluate a fixed sample of N questions of the split.",
)
@click.option(
    "--index",
    "index_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index folder to build/reuse (default: index/eval-<dataset>-<hash>).",
)
@click.option(
    "--model",
    envvar="SOURCIER_MODEL",
    default=None,
    help="Embedding model (default multilingual-e5-small; sourcier/hashing-bow: fast).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set chunk_tokens=160 --set dense_weight=0.6.",
)
@click.option(
    "--methods",
    default=",".join(METHODS),
    show_default=True,
    help="Retrieval methods to compare (comma-separated).",
)
@click.option("--no-answers", is_flag=True, help="Retrieval only: do not call ask().")
@click.option(
    "--fresh",
    is_flag=True,
    help="Build a fresh index in a temporary folder (measures a full build).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write report.md/json and plots (default eval/reports/<dataset>-<date>).",
)
@click.option("--no-report", is_flag=True, help="Do not write report files.")
@llm_options
def eval_cmd(
    dataset: str,
    split: str,
    limit: int | None,
    index_path: Path | None,
    model: str | None,
    overrides: tuple[str, ...],
    methods: str,
    no_answers: bool,
    fresh: bool,
    as_json: bool,
    report_dir: Path | None,
    no_report: bool,
    llm: LLMSettings | None,
) -> None:
    """Measure retrieval, answers and speed on DATASET (seed, piaf, piaf-sample or a folder).

    A folder holds queries.jsonl ({"id", "question", "gold_ids", "answers",
    "answerable"}) and corpus.jsonl ({"id", "title", "text"}) or a corpus/ folder of
    documents (gold_ids are then file names). See eval/README.md.
    """
    settings = Settings().with_pairs(overrides)
    if model:
        settings = settings.with_(model=model)
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    report = run(
        dataset,
        settings=settings,
        split=split,
        limit=limit,
        index=index_path,
        methods=chosen,
        answers=not no_answers,
        fresh=fresh,
        llm=llm,
    )
    written: list[Path] = []
    if not no_report:
        target = report_dir if report_dir is not None else default_report_dir(report)
        written = save_report(report, target)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(report.to_text())
    if written:
        click.echo(f"Report: {written[0].parent}", err=as_json)
