"""Evaluation data sets: questions with gold documents and answers, and their corpus.

A data set is a folder with ``queries.jsonl`` and a corpus, either

- ``corpus.jsonl``: ready-made passages ``{"id", "title", "text"}`` (PIAF; indexed with
  :func:`~sourcier.api.build_index_from_records`), gold documents named by record id; or
- documents as files: a ``corpus/`` sub-folder, or ``"corpus": "bundled"`` / a relative
  folder in an optional ``dataset.json``; gold documents named by file name (or path
  relative to the corpus folder).

Each line of ``queries.jsonl`` is ``{"id", "question", "gold_ids" | "gold_docs",
"answers", "answerable", "language"}``; only ``id`` and ``question`` are required.
A question without gold documents and with ``"answerable": false`` is one the corpus
cannot answer: it must be refused.

The questions of a corpus.jsonl data set are split into a ``dev`` and a ``test`` half
by a hash of the article title of their gold passage, so no article is in both halves
(:func:`split_of`). Tune on ``dev``; report ``test``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError

NAMED_DATASETS = ("seed", "piaf", "piaf-sample")
SPLITS = ("all", "dev", "test")
SPLIT_SALT = "sourcier-split-v1"

EVAL_DIR = Path(__file__).resolve().parents[3] / "eval"
_TAGS = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class Query:
    """One evaluation question.

    Attributes:
        id: unique within the data set.
        question: the text asked.
        gold: keys of the documents that answer it (record ids or file names).
        answers: accepted answer strings (verbatim in a gold document).
        answerable: False for a question the corpus cannot answer (must be refused).
        language: "fr", "en" or None when not given.
        group: what the dev/test split hashes (the gold article's title).
    """

    id: str
    question: str
    gold: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    answerable: bool = True
    language: str | None = None
    group: str = ""


@dataclass(frozen=True)
class Dataset:
    """A corpus and its questions.

    Attributes:
        name: short name (the folder name unless ``dataset.json`` says otherwise).
        folder: where it was loaded from.
        queries: the questions (after any split or limit).
        records: the passages of a ``corpus.jsonl`` data set, else empty.
        corpus_paths: the files or folders to index for a file-based data set, or
            None for the bundled corpus.
        corpus_root: the folder document keys are relative to (file-based data sets).
        info: the ``dataset.json`` content, if any.
        split: "all", "dev" or "test".
    """

    name: str
    folder: Path
    queries: tuple[Query, ...]
    records: tuple[dict[str, str], ...] = ()
    corpus_paths: tuple[Path, ...] | None = None
    corpus_root: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    split: str = "all"

    @property
    def from_records(self) -> bool:
        return bool(self.records)

    def select(self, split: str = "all", limit: int | None = None) -> Dataset:
        """The questions of one split, optionally a fixed sample of ``limit`` of them.

        The sample is deterministic: questions ordered by a hash of their id.
        """
        if split not in SPLITS:
            raise InputError(f"split ({split!r}) must be one of {', '.join(SPLITS)}")
        queries = [q for q in self.queries if split == "all" or split_of(q.group) == split]
        if limit is not None:
            if limit < 1:
                raise InputError(f"limit ({limit}) must be positive")
            ordered = sorted(queries, key=lambda q: _hash(f"limit:{q.id}"))[:limit]
            keep = {q.id for q in ordered}
            queries = [q for q in queries if q.id in keep]
        return replace(self, queries=tuple(queries), split=split)

    def doc_key(self, source: str) -> str:
        """The key gold lists use for the document indexed from ``source``."""
        if source.startswith("record:"):
            return source[len("record:") :]
        path = Path(source)
        if self.corpus_root is not None:
            try:
                return path.resolve().relative_to(self.corpus_root.resolve()).as_posix()
            except ValueError:
                pass
        return path.name


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)


def split_of(group: str) -> str:
    """ "dev" or "test" for an article title (or any group key), by a salted sha256.

    Deterministic and stable across machines and Python versions: the first 48 bits of
    ``sha256("sourcier-split-v1:" + group)``, even -> dev, odd -> test.
    """
    return "dev" if _hash(f"{SPLIT_SALT}:{group}") % 2 == 0 else "test"


def plain_title(title: str) -> str:
    """A title without HTML markup or surrounding spaces (PIAF titles carry ``<i>``)."""
    return " ".join(_TAGS.sub("", title).split())


def resolve_dataset(name_or_path: str | Path) -> Path:
    """The folder of a data set: an existing folder, or a named set in the checkout's eval/.

    Raises:
        InputError: neither a folder nor a known name.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name in NAMED_DATASETS:
        folder = EVAL_DIR / name
        if folder.is_dir():
            return folder
        raise InputError(
            f"the data set {name!r} lives in the eval/ folder of a sourcier source checkout, "
            "which this installation does not have; pass a data set folder instead"
        )
    raise InputError(
        f"no data set {name!r}: give {', '.join(NAMED_DATASETS)} or a folder with "
        "queries.jsonl and corpus.jsonl (or a corpus/ folder of documents)"
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err}") from err
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise InputError(f"{path}:{n}: not valid JSON ({err})") from err
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
    return rows


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(f"{where}: {name} must be a string or a list of strings")


def load_dataset(folder: str | Path) -> Dataset:
    """Load a data set folder (see the module docstring for the format).

    Args:
        folder: the folder, or one of the names ``seed``, ``piaf``, ``piaf-sample``.

    Returns:
        The data set with every question (use :meth:`Dataset.select` for a split).

    Raises:
        InputError: missing files, bad JSON, duplicate ids, or gold documents that
            are not in the corpus.
    """
    folder = resolve_dataset(folder)
    info: dict[str, Any] = {}
    manifest = folder / "dataset.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError as err:
            raise InputError(f"{manifest}: not valid JSON ({err})") from err
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise InputError(f"{folder} has no queries.jsonl")
    name = str(info.get("name") or folder.name)

    records: list[dict[str, str]] = []
    corpus_paths: tuple[Path, ...] | None = None
    corpus_root: Path | None = None
    known: set[str] = set()
    titles: dict[str, str] = {}
    if (folder / "corpus.jsonl").is_file():
        path = folder / "corpus.jsonl"
        for n, row in enumerate(_read_jsonl(path), start=1):
            rid, text = row.get("id"), row.get("text")
            if not isinstance(rid, str) or not rid or not isinstance(text, str):
                raise InputError(f"{path}: record {n} needs a string 'id' and 'text'")
            if rid in known:
                raise InputError(f"{path}: duplicate id {rid!r}")
            known.add(rid)
            title = row.get("title") if isinstance(row.get("title"), str) else ""
            titles[rid] = plain_title(title or "")
            records.append({"id": rid, "title": title or "", "text": text})
    else:
        corpus = info.get("corpus")
        if corpus == "bundled":
            from ..paths import bundled_corpus_dir

            corpus_root = bundled_corpus_dir()
            corpus_paths = None
        else:
            corpus_root = (folder / corpus) if isinstance(corpus, str) else folder / "corpus"
            if not corpus_root.is_dir():
                raise InputError(
                    f"{folder} has neither corpus.jsonl nor a corpus folder ({corpus_root})"
                )
            corpus_paths = (corpus_root,)
        known = {
            p.relative_to(corpus_root).as_posix() for p in corpus_root.rglob("*") if p.is_file()
        }
        known |= {k.rsplit("/", 1)[-1] for k in known}

    queries: list[Query] = []
    seen: set[str] = set()
    for n, row in enumerate(_read_jsonl(queries_path), start=1):
        where = f"{queries_path}:{n}"
        qid, question = row.get("id", f"q{n}"), row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{where}: 'question' must be non-empty text")
        qid = str(qid)
        if qid in seen:
            raise InputError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        gold = _strings(row.get("gold_ids", row.get("gold_docs")), where, "gold_ids")
        unknown = [g for g in gold if g not in known]
        if unknown:
            raise InputError(f"{where}: gold document(s) not in the corpus: {', '.join(unknown)}")
        answerable = row.get("answerable", True)
        if not isinstance(answerable, bool):
            raise InputError(f"{where}: 'answerable' must be true or false")
        if answerable and not gold:
            raise InputError(f"{where}: an answerable question needs gold documents")
        group = titles.get(gold[0], gold[0]) if gold else f"unanswerable:{qid}"
        language = row.get("language")
        queries.append(
            Query(
                id=qid,
                question=question.strip(),
                gold=gold,
                answers=_strings(row.get("answers"), where, "answers"),
                answerable=answerable,
                language=language if isinstance(language, str) else None,
                group=group,
            )
        )
    if not queries:
        raise InputError(f"{queries_path} holds no question")
    return Dataset(
        name=name,
        folder=folder,
        queries=tuple(queries),
        records=tuple(records),
        corpus_paths=corpus_paths,
        corpus_root=corpus_root,
        info=info,
    )


# --------------------------------------------------------------------------- running
