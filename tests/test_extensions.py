"""The extension points: each is one module plus one registration line.

A vector store, a second stage, an answerer and a file reader are registered here the
way docs/architecture.md shows, and each is then chosen by name (settings, ``--set``,
the eval command) and exercised end to end. Nested settings refuse unknown names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from sourcier import (
    HASHING_MODEL,
    Assistant,
    ConfigError,
    Settings,
    build_index,
    load_index,
    search,
)
from sourcier.answer.answerers import ANSWERERS
from sourcier.answer.protocol import Context, Draft, cite, marked
from sourcier.answer.second_stage import SECOND_STAGES, KeepOrder
from sourcier.cli.commands import main
from sourcier.ingest.loaders import discover, load_document
from sourcier.ingest.readers import READERS
from sourcier.settings import GROUPS, SHORT_NAMES
from sourcier.storage import generations
from sourcier.storage.vectors import VECTOR_STORES
from sourcier.types import Hit

HASHING = Settings(model=HASHING_MODEL)
QUESTIONS = ["Qui préside le pôle SCS ?", "smart port Marseille", "Nokia Helsinki"]


def _hits(index: Path | Assistant, question: str, **options: object) -> list[tuple[str, float]]:
    return [(h.chunk.chunk_id, round(h.score, 5)) for h in search(question, index=index, **options)]


# --------------------------------------------------------------------------- vector store


@pytest.fixture
def numpy_store() -> Iterator[str]:
    VECTOR_STORES.register("numpy", "numpy_store:NumpyVectors")  # the one line
    yield "numpy"
    VECTOR_STORES.unregister("numpy")


def test_a_vector_store_in_one_module_builds_and_searches_an_index(
    numpy_store: str, corpus_dir: Path, tmp_path: Path, shared_hashing_index: Path
) -> None:
    index = tmp_path / "index"
    settings = HASHING.with_(vector_store=numpy_store)
    build_index(corpus_dir, index=index, settings=settings, show_progress=False)
    (segment,) = generations.live_segments(index)
    assert json.loads((segment / "segment.json").read_text())["vector_store"] == "numpy"
    assert sorted(p.name for p in (segment / "dense").iterdir()) == ["numpy.json", "numpy.npz"]
    assert load_index(index).snapshot.dense.kinds == ["numpy"]
    for question in QUESTIONS:  # FAISS's exact search, but for its float16 copies on disk
        for mode in ("dense", "hybrid"):
            mine = _hits(index, question, mode=mode)
            faiss = _hits(shared_hashing_index, question, mode=mode)
            assert [c for c, _ in mine] == [c for c, _ in faiss]
            assert [s for _, s in mine] == pytest.approx([s for _, s in faiss], abs=1e-3)
    # the default store is not recorded, so segments written before read as FAISS
    (default,) = generations.live_segments(shared_hashing_index)
    assert "vector_store" not in json.loads((default / "segment.json").read_text())


def test_an_unknown_vector_store_is_refused_with_the_known_ones(
    corpus_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"unknown vector store 'qdrant' \(known: faiss\)"):
        build_index(
            corpus_dir,
            index=tmp_path / "i",
            settings=HASHING.with_(vector_store="qdrant"),
            show_progress=False,
        )


# --------------------------------------------------------------------------- second stage


@dataclasses.dataclass(frozen=True)
class Reverse:
    """A second stage that turns the first-stage order around (to see the slot act)."""

    depth: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> Reverse:
        return cls(depth=settings.retrieval.k)

    def rescore(self, question: object, hits: list[Hit], context: Context) -> list[Hit]:
        return hits[::-1]


@pytest.fixture
def reverse() -> Iterator[str]:
    SECOND_STAGES.register("reverse", Reverse)  # the one line
    yield "reverse"
    SECOND_STAGES.unregister("reverse")


def test_the_shipped_second_stage_keeps_the_first_stage_answers(
    shared_hashing_index: Path,
) -> None:
    plain = Assistant.open(shared_hashing_index)
    kept = plain.configure(second_stage="keep")
    assert isinstance(kept.second_stage(), KeepOrder) and plain.second_stage() is None
    for question in QUESTIONS:
        a, b = plain.ask(question), kept.ask(question)
        assert "second_stage" in b.timings_ms and "second_stage" not in a.timings_ms
        assert (a.answer, a.citations, a.refused) == (b.answer, b.citations, b.refused)
        assert [h.chunk.chunk_id for h in a.hits] == [h.chunk.chunk_id for h in b.hits]


def test_a_registered_second_stage_reorders_hits_by_name(
    reverse: str, shared_hashing_index: Path
) -> None:
    first = _hits(shared_hashing_index, QUESTIONS[0], k=5)
    turned = _hits(shared_hashing_index, QUESTIONS[0], k=5, second_stage=reverse)
    assert turned == first[::-1]
    configured = Assistant.open(shared_hashing_index).configure(second_stage=reverse)
    hits = configured.search(QUESTIONS[0], k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]  # ranks follow the new order
    assert [h.chunk.chunk_id for h in hits] == [c for c, _ in turned]


def test_the_second_stage_is_chosen_from_the_cli_and_eval(
    reverse: str, shared_hashing_index: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["search", QUESTIONS[0], "--index", str(shared_hashing_index), "--json", "-k", "5"]
    plain = json.loads(runner.invoke(main, args).stdout)
    turned = json.loads(runner.invoke(main, [*args, "--set", "second_stage=reverse"]).stdout)
    assert [h["chunk_id"] for h in turned] == [h["chunk_id"] for h in plain][::-1]
    bad = runner.invoke(main, [*args, "--set", "second_stage=nope"])
    assert bad.exit_code == 1
    assert bad.stderr.strip() == ("Error: unknown second stage 'nope' (known: keep, reverse)")
    from sourcier.cli.eval import eval_cmd

    report = runner.invoke(
        eval_cmd,
        ["seed", "--set", "second_stage=keep", "--model", HASHING_MODEL, "--json", "--no-report"]
        + ["--no-answers", "--index", str(tmp_path / "eval")],
    )
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["settings"]["retrieval"]["second_stage"] == "keep"


# --------------------------------------------------------------------------- answerer


class FirstSentence:
    """An answerer that quotes the first sentence of the best passage, nothing else."""

    mode = "first-sentence"

    @classmethod
    def from_settings(cls, settings: Settings, chat_model: object = None) -> FirstSentence:
        return cls()

    def rewrite(self, question: object) -> None:
        return None

    def stream(
        self, question: object, hits: Sequence[Hit], evidence: object, context: Context
    ) -> Iterator[str | Draft]:
        hit = hits[0]
        start, end = context.snapshot.sentences[hit.chunk.chunk_id][0][:2]
        quote = context.snapshot.documents[hit.chunk.doc_id].text[start:end]
        yield Draft(marked(quote, 1), (cite(1, hit, start, end, quote),), mode=self.mode)


def test_a_registered_answerer_answers_by_name(shared_hashing_index: Path) -> None:
    ANSWERERS.register("first-sentence", FirstSentence)  # the one line
    try:
        assistant = Assistant.open(shared_hashing_index)
        answer = assistant.ask(QUESTIONS[0], answerer="first-sentence")
        assert answer.mode == "first-sentence" and len(answer.citations) == 1
        quote = answer.citations[0]
        text = assistant.index.document(quote.doc_id).text
        assert text[quote.start : quote.end] == quote.quote  # verified like any answer
        by_settings = assistant.configure(answerer="first-sentence").ask(QUESTIONS[0])
        assert by_settings.answer == answer.answer
    finally:
        ANSWERERS.unregister("first-sentence")


def test_answerers_that_cannot_work_are_one_line_errors(shared_hashing_index: Path) -> None:
    with pytest.raises(ConfigError, match="unknown answerer 'oracle'"):
        Assistant.open(shared_hashing_index).ask(QUESTIONS[0], answerer="oracle")
    with pytest.raises(ConfigError, match="needs a chat model"):
        Assistant.open(shared_hashing_index).ask(QUESTIONS[0], answerer="generative")


# --------------------------------------------------------------------------- file reader


def read_csv(data: bytes) -> tuple[str, str | None]:
    """A reader in one function: each row of a CSV file becomes a line."""
    rows = data.decode("utf-8").splitlines()
    return "\n".join(row.replace(";", " : ") for row in rows[1:]), rows[0].split(";")[0]


def test_a_registered_reader_makes_its_files_indexable(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pôles.csv").write_text(
        "Pôles de Provence;ville\nSCS;Rousset\nCapenergies;Aix-en-Provence\n", "utf-8"
    )
    assert discover([folder])[0] == []  # not a supported type yet
    READERS.register(".csv", read_csv)  # the one line
    try:
        (found,), _ = discover([folder])
        doc = load_document(found)
        assert doc.title == "Pôles de Provence" and "SCS : Rousset" in doc.text
        build_index(folder, index=tmp_path / "index", settings=HASHING, show_progress=False)
        assert search("Capenergies", index=tmp_path / "index", k=1)[0].source == str(found)
    finally:
        READERS.unregister(".csv")


# --------------------------------------------------------------------------- settings


def test_settings_are_nested_by_concern_and_refuse_unknown_names() -> None:
    s = Settings().with_(k=8, answer_style="concise", llm_timeout=5)
    assert (s.retrieval.k, s.answer.style, s.llm.timeout) == (8, "concise", 5.0)
    assert s.with_({"retrieval.k": 3}).get("k") == 3
    assert Settings.from_dict(s.to_dict()) == s
    assert set(s.to_dict()) == set(GROUPS) == {"model", "index", "retrieval", "answer", "llm"}
    with pytest.raises(ConfigError, match="unknown setting 'chunk_size'"):
        Settings().with_(chunk_size=100)
    with pytest.raises(ConfigError, match=r"unknown setting retrieval\.kk"):
        Settings.from_dict({"retrieval": {"kk": 3}})
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        Settings().with_pairs(["k"])
    with pytest.raises(ConfigError, match="'huit' is not a valid k"):
        Settings().with_pairs(["k=huit"])
    assert Settings().with_pairs(["query_prefix=none", "embed_title=no"]).model.query_prefix is None
    # every field has a short name (no two fields share one: a name is one field)
    paths = set(SHORT_NAMES.values())
    fields = {f"{g}.{f.name}" for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}
    assert paths == fields
