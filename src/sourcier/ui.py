"""The Gradio chat UI: streamed cited answers, sources, document viewer, corpus and settings.

Layout: the chat on the left; on the right, tabs for the sources of the last answer
(each ``[n]`` with its passage and the quoted span highlighted), a viewer for the whole
cleaned document, the corpus (list, upload, removal) and the query settings.

Everything shown from a document goes through :func:`html.escape` (HTML panels) or
:func:`escape_markdown` (the chat, which renders markdown), so a document containing
``<script>`` is displayed as text and never runs.

gradio is imported inside the functions that need it; importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import shutil
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from .errors import InputError, SourcierError
from .options import llm_options
from .settings import Settings

if TYPE_CHECKING:
    import gradio as gr

    from .index import DocumentInfo, Index
    from .types import Answer, Document

log = logging.getLogger(__name__)

ALLOWED_EXTENSIONS: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
"""What the upload accepts (the core's ``loaders.SUPPORTED_EXTENSIONS``)."""

MAX_UPLOAD_MB: float = Settings().max_file_mb
"""Upload size limit per file, in megabytes (the core's ``Settings.max_file_mb``)."""

CONTEXT_CHARS = 200
"""Characters of context shown before and after a quoted span in a source card."""

STREAM_SECONDS = 0.6
"""About how long the answer takes to stream in (it is computed first; this is display)."""

MAX_HISTORY_TURNS = 6
"""Earlier question/answer pairs passed to ``ask(history=...)``."""

EXAMPLES: tuple[str, ...] = (
    "Qui préside le pôle SCS ?",
    "Combien d'entreprises sont implantées sur le Technopôle de l'Arbois ?",
    "Quand les acteurs marseillais se rendent-ils à Helsinki ?",
    "Que veut développer la Brain Port Community ?",
    "Who is Federico Casalegno?",
    "How many competitiveness clusters were created in France?",
    # the documents do not say: sourcier declines, and says why
    "Quel est le budget de la nouvelle chaire Smart Port ?",
)

MODES: tuple[tuple[str, str], ...] = (
    ("Hybride : mots-clés + sens (recommandé)", "hybrid"),
    ("Sens seulement (dense)", "dense"),
)

_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

_TEXT = {
    "fr": {
        "sources": "Sources de la réponse",
        "open": "Ouvrir le document",
        "undated": "date inconnue",
        "refused": "Les documents ne permettent pas de répondre avec certitude.",
        "maybe": "Peut-être utile",
        "no_passage": "Aucun passage proche n'a été trouvé.",
        "missing": "Ce document n'est plus dans l'index.",
        "chars": "caractères",
        "passage": "passage",
    },
    "en": {
        "sources": "Sources of the answer",
        "open": "Open the document",
        "undated": "undated",
        "refused": "The documents do not support a confident answer.",
        "maybe": "Peut-être utile (possibly useful)",
        "no_passage": "No close passage was found.",
        "missing": "This document is no longer in the index.",
        "chars": "characters",
        "passage": "passage",
    },
}

_SOURCES_PLACEHOLDER = (
    '<div class="empty">Les sources de la réponse s’afficheront ici : chaque <b>[n]</b> '
    "de la réponse renvoie au passage cité, surligné dans son contexte.<br>"
    "<i>Each [n] in the answer points to the quoted passage.</i></div>"
)
_VIEWER_PLACEHOLDER = (
    '<div class="empty">Cliquez sur « Ouvrir le document » dans une source, ou sur un titre '
    "dans l’onglet Corpus, pour lire le document entier nettoyé, le passage cité surligné."
    "</div>"
)


class _DocumentSource(Protocol):
    def document(self, doc_id: str) -> Document: ...


# ----- pure helpers (unit-tested) ------------------------------------------------------


def escape_html(text: str) -> str:
    """``html.escape`` with quotes, for text and attribute values alike."""
    return html.escape(text, quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~$])")
_MD_LINE_START = re.compile(r"^(\s*\d*)([-+=](?!\d)|(?<=\d)[.)])", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Make ``text`` display literally in a markdown renderer (the Chatbot).

    Markdown punctuation gets a backslash (no link, image, emphasis, code, table or
    heading can be formed; list markers at a line start too), then ``&``, ``<`` and
    ``>`` become entities (no HTML tag can be formed). Newlines are kept.
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    escaped = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_date(iso: str | None, language: str = "fr") -> str | None:
    """``2011-06-06`` → ``6 juin 2011`` (``June 6, 2011`` in English); ``None`` stays None."""
    if not iso:
        return None
    months = _MONTHS.get(language, _MONTHS["fr"])
    parts = iso.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else None
        day = int(parts[2]) if len(parts) > 2 else None
    except ValueError:
        return iso
    if month is None or not 1 <= month <= 12:
        return str(year)
    if day is None:
        return f"{months[month - 1]} {year}"
    if language == "en":
        return f"{months[month - 1]} {day}, {year}"
    return f"{'1er' if day == 1 else day} {months[month - 1]} {year}"


def sanitize_filename(name: str, *, max_length: int = 120) -> str:
    """A safe file name for an upload: no folders, no hidden or reserved names.

    Only the last path component is kept (``../../etc/passwd`` → ``passwd``; both ``/``
    and ``\\`` count as separators), characters other than letters, digits, ``.``,
    ``-``, ``_``, spaces and parentheses become ``_``, leading dots and spaces are
    dropped, and the name is shortened to ``max_length`` keeping its extension.
    An empty result becomes ``document``.
    """
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/")
    name = name.rstrip("/ ").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"[^\w.\- ()]", "_", name)
    name = re.sub(r"\s+", " ", name)
    name = re.sub(r"\.{2,}", ".", name).strip(" ._-") or "document"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    ext = ext[:10]
    suffix = f".{ext}" if ext else ""
    stem = stem[: max(1, max_length - len(suffix))].rstrip(" .") or "document"
    return stem + suffix


_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


def check_upload(name: str, size: int, *, max_mb: float = MAX_UPLOAD_MB) -> str | None:
    """Why an upload is refused before reading it (one French sentence), or None."""
    suffix = Path(sanitize_filename(name)).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        got = f"« {suffix} »" if suffix else "sans extension"
        return f"type de fichier non pris en charge ({got}) ; formats acceptés : " + ", ".join(
            ALLOWED_EXTENSIONS
        )
    if size > max_mb * 1024 * 1024:
        return f"fichier trop volumineux ({size / 1024 / 1024:.1f} Mo ; limite {max_mb:g} Mo)"
    if size == 0:
        return "le fichier est vide"
    return None


def store_upload(src: str | Path, name: str, upload_dir: str | Path) -> Path:
    """Copy an uploaded file into ``upload_dir`` under a sanitised name; return the copy.

    The target is always directly inside ``upload_dir``, whatever ``name`` says; a file
    already there with the same name is replaced (an edited document replaces its older
    version in the index).
    """
    folder = Path(upload_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / sanitize_filename(name)).resolve()
    if target.parent != folder:  # cannot happen after sanitising; kept as a guard
        raise InputError(f"unsafe upload name {name!r}")
    tmp = folder / f".upload-{threading.get_ident()}-{time.monotonic_ns()}"
    shutil.copyfile(src, tmp)
    tmp.replace(target)
    return target


def _context(text: str, start: int, end: int, width: int = CONTEXT_CHARS) -> tuple[str, str]:
    """Up to ``width`` characters before ``start`` and after ``end``, cut at word breaks."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    before, after = text[lo:start], text[end:hi]
    if lo > 0:
        first = re.search(r"\s", before)
        before = "… " + (before[first.end() :] if first and first.end() < len(before) else before)
    if hi < len(text):
        last = max((m.start() for m in re.finditer(r"\s", after)), default=0)
        after = (after[:last] if last > 0 else after) + " …"
    return before, after


def _card(
    *,
    n: int | None,
    title: str,
    date: str,
    source: str,
    label: str | None,
    body: str,
    doc_id: str,
    start: int,
    end: int,
    open_text: str,
) -> str:
    number = f'<span class="src-n">[{n}]</span> ' if n is not None else ""
    file_name = Path(source).name or source
    meta = [
        escape_html(date),
        f'<span class="src-file" title="{escape_html(source)}">{escape_html(file_name)}</span>',
    ]
    if label:
        meta.append(escape_html(label))
    return (
        f'<article class="src-card" data-n="{n if n is not None else ""}">'
        f'<div class="src-head">{number}<span class="src-title">{escape_html(title)}</span></div>'
        f'<div class="src-meta">{" · ".join(meta)}</div>'
        f'<blockquote class="src-context">{body}</blockquote>'
        f'<button class="src-open" type="button" data-doc="{escape_html(doc_id)}" '
        f'data-start="{start}" data-end="{end}">{escape_html(open_text)} ↗</button>'
        "</article>"
    )


def _short_label(label: str | None) -> str | None:
    """The passage part of a chunk label ("Title…, §3" → "§3"); the title is shown already."""
    if not label:
        return None
    m = re.search(r"§\s*\d+\s*$", label)
    return m.group(0) if m else label


def _chunk_label(index: Any, chunk_id: str) -> str | None:
    try:
        return _short_label(index.chunk(chunk_id).label)
    except (AttributeError, SourcierError):
        return None


def render_sources(answer: Answer, index: _DocumentSource) -> str:
    """The sources panel for ``answer`` (HTML, every document-derived text escaped).

    One card per citation ``[n]``: title, date, file, chunk label, the passage around the
    quote (±``CONTEXT_CHARS``) with the exact span ``document.text[start:end]`` inside
    ``<mark>``, and an "Ouvrir le document" button carrying ``data-doc``, ``data-start``
    and ``data-end``. A refused answer says so and lists the closest passages under
    "Peut-être utile".
    """
    t = _TEXT.get(answer.language, _TEXT["fr"])
    parts: list[str] = []
    if answer.refused or not answer.citations:
        parts.append(f'<div class="src-refused">{escape_html(t["refused"])}</div>')
        hits = answer.hits[:3]
        if not hits:
            parts.append(f'<div class="empty">{escape_html(t["no_passage"])}</div>')
        else:
            parts.append(f'<h4 class="src-maybe">{escape_html(t["maybe"])}</h4>')
        for hit in hits:
            chunk = hit.chunk
            shown = chunk.text if len(chunk.text) <= 600 else chunk.text[:600].rsplit(" ", 1)[0]
            body = escape_html(shown) + (" …" if len(shown) < len(chunk.text) else "")
            parts.append(
                _card(
                    n=None,
                    title=hit.title,
                    date=format_date(hit.date_iso, answer.language) or t["undated"],
                    source=hit.source,
                    label=_short_label(chunk.label),
                    body=body,
                    doc_id=chunk.doc_id,
                    start=chunk.start,
                    end=chunk.end,
                    open_text=t["open"],
                )
            )
        return '<div class="src-list">' + "".join(parts) + "</div>"

    parts.append(f'<h4 class="src-heading">{escape_html(t["sources"])}</h4>')
    for c in answer.citations:
        text: str | None = None
        with contextlib.suppress(SourcierError):  # removed since the answer: quote only
            text = index.document(c.doc_id).text
        if text is not None and text[c.start : c.end] == c.quote:
            before, after = _context(text, c.start, c.end)
        else:  # the document changed or was removed since the answer
            before, after = "", (f" ({t['missing']})" if text is None else "")
        body = f"{escape_html(before)}<mark>{escape_html(c.quote)}</mark>{escape_html(after)}"
        parts.append(
            _card(
                n=c.n,
                title=c.title,
                date=format_date(c.date_iso, answer.language) or t["undated"],
                source=c.source,
                label=_chunk_label(index, c.chunk_id),
                body=body,
                doc_id=c.doc_id,
                start=c.start,
                end=c.end,
                open_text=t["open"],
            )
        )
    return '<div class="src-list">' + "".join(parts) + "</div>"


def render_document(doc: Document, start: int | None = None, end: int | None = None) -> str:
    """The whole cleaned document, escaped, with ``text[start:end]`` in ``<mark id="cite">``.

    Offsets outside the text (or ``None``) show the document without a highlight.
    """
    text = doc.text
    date = format_date(doc.date_iso) or doc.date_raw or "date inconnue"
    meta = (
        f"{escape_html(date)} · "
        f'<span class="doc-file" title="{escape_html(doc.source)}">'
        f"{escape_html(Path(doc.source).name or doc.source)}</span> · "
        f"{len(text):,} caractères".replace(",", "\u202f")
    )
    if start is not None and end is not None and 0 <= start < end <= len(text):
        body = (
            f'{escape_html(text[:start])}<mark id="cite">{escape_html(text[start:end])}</mark>'
            f"{escape_html(text[end:])}"
        )
    else:
        body = escape_html(text)
    return (
        f'<div class="doc-view" data-doc="{escape_html(doc.doc_id)}">'
        f'<div class="doc-head"><div class="doc-title">{escape_html(doc.title)}</div>'
        f'<div class="doc-meta">{meta}</div></div>'
        f'<div class="doc-text">{body}</div></div>'
    )


def render_corpus(docs: Sequence[DocumentInfo]) -> str:
    """The corpus table: title (opens the document), date, passages, file."""
    if not docs:
        return '<div class="empty">Aucun document indexé. Ajoutez-en ci-dessous.</div>'
    rows = []
    for d in docs:
        date = format_date(d.date_iso) or d.date_raw or "—"
        rows.append(
            "<tr>"
            '<td><button class="src-open doc-link" type="button" '
            f'data-doc="{escape_html(d.doc_id)}" data-start="-1" data-end="-1">'
            f"{escape_html(d.title)}</button></td>"
            f"<td>{escape_html(date)}</td>"
            f'<td class="num">{d.chunks}</td>'
            f'<td class="file" title="{escape_html(d.source)}">'
            f"{escape_html(Path(d.source).name or d.source)}</td>"
            "</tr>"
        )
    total = sum(d.chunks for d in docs)
    return (
        f'<div class="corpus-sum">{len(docs)} document(s) · {total} passages indexés</div>'
        '<table class="corpus"><thead><tr><th>Titre</th><th>Date</th><th>Passages</th>'
        "<th>Fichier</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file (for the report under the upload box)."""

    name: str
    status: str  # "indexed", "updated", "unchanged", "skipped"
    detail: str = ""


_STATUS = {
    "indexed": ("ok", "✓", "indexé"),
    "updated": ("ok", "✓", "mis à jour"),
    "unchanged": ("same", "=", "déjà dans l’index (même contenu)"),
    "skipped": ("bad", "✗", "ignoré"),
}


def render_report(outcomes: Sequence[UploadOutcome]) -> str:
    """The short upload report: one line per file, indexed or skipped and why."""
    lines = []
    for o in outcomes:
        cls, icon, word = _STATUS[o.status]
        detail = f" — {escape_html(o.detail)}" if o.detail else ""
        lines.append(f'<li class="{cls}">{icon} <b>{escape_html(o.name)}</b> : {word}{detail}</li>')
    return '<ul class="report">' + "".join(lines) + "</ul>"


def _message(kind: str, text: str) -> str:
    return f'<div class="msg {kind}">{escape_html(text)}</div>'


def answer_markdown(answer: Answer) -> str:
    """The chat text for ``answer``: escaped; each ``[n]`` marker a link to its span,
    then one line that says how it was made (and the answerer's notice, if any).

    A marker links to ``#cite/<doc_id>/<start>/<end>``; the sources panel's script opens
    that span in the document viewer when it is clicked (older answers included).
    """
    if answer.refused:
        note = (
            "Passages « peut-être utiles » : voir le panneau Sources."
            if answer.language == "fr"
            else "Possibly useful passages (« peut-être utile »): see the Sources panel."
        )
        body = f"⚠️ {escape_markdown(answer.answer)}\n\n_{escape_markdown(note)}_"
    elif answer.mode == "generative":
        body = _linked_markers(answer)
    else:
        body = _linked_quotes(answer)
    return body + "\n\n" + answer_footer(answer)


def answer_footer(answer: Answer) -> str:
    """ "Réponse extractive" / "Réponse générative (model), vérifiée phrase par phrase",
    plus the notice, as one italic line (escaped)."""
    fr = answer.language == "fr"
    if answer.mode == "generative":
        kept = sum(1 for s in answer.sentences if s.supported)
        line = (
            f"Réponse générative ({answer.model}), {kept} phrase(s) vérifiée(s) dans les sources"
            if fr
            else f"Generative answer ({answer.model}), {kept} sentence(s) verified in the sources"
        )
    else:
        line = "Réponse extractive : citations exactes" if fr else "Extractive answer: exact quotes"
    if answer.notice:
        line += f" · ⚠️ {answer.notice}"
    return f"_{escape_markdown(line)}_"


def _cite_link(c: Any) -> str:
    return f"[\\[{c.n}\\]](#cite/{c.doc_id}/{c.start}/{c.end})"


def _linked_markers(answer: Answer) -> str:
    """A generative answer: every ``[n]`` marker (they all point at citations) linked."""
    by_n = {c.n: c for c in answer.citations}
    parts, pos = [], 0
    for m in re.finditer(r"\[(\d+)\]", answer.answer):
        c = by_n.get(int(m.group(1)))
        if c is None:
            continue
        parts.append(escape_markdown(answer.answer[pos : m.start()]))
        parts.append(_cite_link(c))
        pos = m.end()
    parts.append(escape_markdown(answer.answer[pos:]))
    return "".join(parts)


def _linked_quotes(answer: Answer) -> str:
    """An extractive answer: the marker after each quote linked."""
    from .answer import marked

    text, parts, pos = answer.answer, [], 0
    for c in answer.citations:
        quote = marked(c.quote, c.n)
        at = text.find(quote, pos)
        if at < 0:  # not the text compose() writes: plain markers
            return escape_markdown(text)
        after_quote = at + len(c.quote)
        parts.append(escape_markdown(text[pos:after_quote]))
        parts.append(" " + _cite_link(c))
        pos = at + len(quote)
    parts.append(escape_markdown(text[pos:]))
    return "".join(parts)


def stream_steps(text: str, steps: int = 12) -> list[str]:
    """Growing prefixes of ``text`` ending at word breaks; the last one is ``text``."""
    words = re.findall(r"\S+\s*", text)
    if len(words) <= 1:
        return [text]
    size = max(1, -(-len(words) // steps))
    prefixes = ["".join(words[:i]).rstrip() for i in range(size, len(words), size)]
    return [*prefixes, text]


_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def parse_filters(
    doc_ids: Sequence[str] | None, date_from: str | None, date_to: str | None
) -> dict[str, Any] | None:
    """The ``filters`` for ``ask()`` from the settings tab, or None when none is set.

    Raises:
        InputError: a date is not ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (French message).
    """
    date_from = (date_from or "").strip() or None
    date_to = (date_to or "").strip() or None
    for label, value in (("de début", date_from), ("de fin", date_to)):
        if value and not _DATE.match(value):
            raise InputError(
                f"La date {label} « {value} » n’est pas reconnue : écrivez 2011, 2011-06 "
                "ou 2011-06-06."
            )
    if date_from and date_to and date_from[: len(date_to)] > date_to[: len(date_from)]:
        raise InputError(f"La date de début ({date_from}) est après la date de fin ({date_to}).")
    ids = [d for d in (doc_ids or []) if d]
    if not (ids or date_from or date_to):
        return None
    return {"doc_ids": ids, "date_from": date_from, "date_to": date_to}


def question_problem(question: str | None, max_chars: int) -> str | None:
    """One French sentence saying why ``question`` cannot be asked, or None."""
    text = (question or "").strip()
    if not text:
        return "La question est vide : écrivez une question dans la zone de saisie."
    if len(text) > max_chars:
        return (
            f"La question est trop longue ({len(text):,} caractères ; maximum {max_chars:,}) : "
            "raccourcissez-la.".replace(",", "\u202f")
        )
    return None


# ----- the shared index ------------------------------------------------------------------


class Library:
    """The one open Index a running app shares, its upload folder and its write lock.

    Reads use the current snapshot (reloaded when another process published a new
    generation); writes (upload, removal) are serialised by a thread lock here and by
    the index's own lock file across processes.
    """

    def __init__(
        self,
        index_path: Path,
        upload_dir: Path | None = None,
        *,
        llm: Any = None,
        llm_base_url: str | None = None,
        llm_timeout: float | None = None,
    ) -> None:
        self.path = Path(index_path)
        self.upload_dir = Path(upload_dir) if upload_dir else self.path / "uploads"
        self.llm: Any = None
        self.llm_name: str | None = None
        self.llm_timeout = llm_timeout
        if llm is not None:
            from .generative import model_name, resolve_llm

            self.llm = resolve_llm(llm, base_url=llm_base_url, timeout=llm_timeout)
            self.llm_name = model_name(self.llm)
        self._write_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._index: Index | None = None
        self._generation: str | None = None

    def index(self) -> Index:
        """The shared Index, switched to the live generation if it changed on disk."""
        from .api import load_index
        from .store import current_generation

        gen = current_generation(self.path)
        with self._load_lock:
            if self._index is None:
                self._index = load_index(self.path)
                self._generation = gen.name if gen else None
            elif gen is not None and gen.name != self._generation:
                self._index.reload()
                self._generation = gen.name
            return self._index

    def warm(self) -> Index:
        """The shared Index with its embedding model loaded (done once, under a lock)."""
        idx = self.index()
        with self._model_lock:
            _ = idx.embedder
        return idx

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Any] | None = None,
        filters: dict[str, Any] | None = None,
        generative: bool = True,
    ) -> Answer:
        """The final Answer of :meth:`ask_stream`."""
        from .types import Answer as _Answer

        answer = None
        for event in self.ask_stream(
            question, k=k, mode=mode, history=history, filters=filters, generative=generative
        ):
            if isinstance(event, _Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Any] | None = None,
        filters: dict[str, Any] | None = None,
        generative: bool = True,
    ) -> Iterator[Any]:
        """``api.ask_stream`` on the shared index, with the configured model when
        ``generative`` (and one is configured)."""
        from .api import ask_stream

        idx = self.warm() if mode != "bm25" else self.index()
        llm = self.llm if generative else None
        yield from ask_stream(
            question,
            index=idx,
            k=k,
            mode=mode,
            history=history,
            filters=filters,
            llm=llm,
            llm_timeout=self.llm_timeout,
        )

    def add_uploads(
        self,
        files: Sequence[tuple[str | Path, str]],
        *,
        progress: Callable[[str, int, int], None] | None = None,
        max_mb: float = MAX_UPLOAD_MB,
    ) -> list[UploadOutcome]:
        """Store uploads (``(temporary path, original name)``) and add them to the index.

        Files of another type, too large or empty are refused before being stored; files
        the core cannot read are reported with its reason and their copy is removed.
        """
        outcomes: dict[Path, UploadOutcome] = {}
        refused: list[UploadOutcome] = []
        with self._write_lock:
            stored: dict[Path, tuple[str, bytes | None]] = {}
            for src, name in files:
                shown = sanitize_filename(name)
                try:
                    size = Path(src).stat().st_size
                except OSError:
                    refused.append(UploadOutcome(shown, "skipped", "fichier illisible"))
                    continue
                problem = check_upload(name, size, max_mb=max_mb)
                if problem:
                    refused.append(UploadOutcome(shown, "skipped", problem))
                    continue
                target = self.upload_dir.resolve() / shown
                backup = target.read_bytes() if target.is_file() else None
                path = store_upload(src, name, self.upload_dir)
                stored[path] = (shown, backup)
            if not stored:
                return refused
            idx = self.warm()
            try:
                report = idx.add_files(list(stored), progress=progress)
            except BaseException:
                self._restore(stored, set(stored))
                raise
            self._generation = None  # re-read the generation name on next use
            chunks = {Path(d.source).resolve(): d.chunks for d in idx.documents()}
            skipped = {Path(s.path).resolve(): s.reason for s in report.skipped}
            indexed = {Path(p).resolve() for p in report.indexed}
            removed = {Path(p).resolve() for p in report.removed}
            failed = set()
            for path, (shown, _) in stored.items():
                if path in skipped:
                    outcomes[path] = UploadOutcome(shown, "skipped", skipped[path])
                    failed.add(path)
                elif path in indexed:
                    status = "updated" if path in removed else "indexed"
                    n = chunks.get(path, 0)
                    outcomes[path] = UploadOutcome(shown, status, f"{n} passage{'s' * (n > 1)}")
                else:
                    outcomes[path] = UploadOutcome(shown, "unchanged")
            self._restore(stored, failed)
        return [*outcomes.values(), *refused]

    @staticmethod
    def _restore(stored: dict[Path, tuple[str, bytes | None]], paths: set[Path]) -> None:
        """Put back (or delete) the stored copies of files that did not make it in."""
        for path in paths:
            backup = stored[path][1]
            try:
                if backup is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(backup)
            except OSError as err:  # pragma: no cover - best effort
                log.warning("could not restore %s: %s", path, err)

    def remove(self, doc_id: str) -> str:
        """Remove a document from the index (and its copy if it was uploaded here)."""
        with self._write_lock:
            idx = self.warm()
            doc = idx.document(doc_id)
            report = idx.remove(doc_id)
            self._generation = None
            source = Path(doc.source)
            folder = self.upload_dir.resolve()
            if source.is_file() and source.resolve().parent == folder:
                source.unlink(missing_ok=True)
        n = report.chunks_removed
        return f"« {doc.title} » a été retiré de l’index ({n} passage{'s' * (n > 1)})."


# ----- the Gradio app --------------------------------------------------------------------

# Gradio 6 ships only a 55-glyph subset of Source Sans Pro SemiBold, so bold text would mix
# fonts; bold headings use the system sans-serif (HEADING_FONT below) instead.
_HEADING_FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
_CSS_COMMON = """
mark { background: #fde68a; color: #111; padding: 0 2px; border-radius: 3px; }
.empty { opacity: 0.7; font-size: 0.92em; padding: 6px 2px; }
"""

_CSS_SOURCES = """
.src-list { display: flex; flex-direction: column; gap: 10px; }
.src-heading, .src-maybe { margin: 2px 0; font-size: 0.95em; font-family: HEADING_FONT; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 10px;
  padding: 10px 12px; background: var(--background-fill-secondary); }
.src-head { font-weight: 600; line-height: 1.3; font-family: HEADING_FONT; }
.src-n { color: var(--color-accent); margin-right: 2px; }
.src-meta { font-size: 0.85em; opacity: 0.75; margin: 3px 0 6px; }
.src-file { font-family: var(--font-mono); }
.src-context { margin: 0 0 8px; padding: 0 0 0 10px; border-left: 3px solid
  var(--color-accent-soft); font-size: 0.92em; line-height: 1.45; white-space: normal; }
.src-open { font-size: 0.85em; padding: 3px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
  font-family: HEADING_FONT; }
.src-open:hover { border-color: var(--color-accent); }
.src-refused { font-weight: 600; padding: 8px 10px; border-radius: 8px;
  background: #fff4e5; color: #7a4b00; font-family: HEADING_FONT; }
"""

_CSS_VIEWER = """
.doc-head { margin-bottom: 8px; }
.doc-title { font-weight: 700; font-size: 1.05em; font-family: HEADING_FONT; }
.doc-meta { font-size: 0.85em; opacity: 0.75; }
.doc-file { font-family: var(--font-mono); }
.doc-text { position: relative; white-space: pre-wrap; line-height: 1.5; max-height: 62vh;
  overflow-y: auto; padding: 10px 12px; border: 1px solid var(--border-color-primary);
  border-radius: 10px; background: var(--background-fill-secondary); font-size: 0.93em; }
"""

_CSS_CORPUS = """
.corpus-sum { font-size: 0.9em; opacity: 0.8; margin-bottom: 6px; }
table.corpus { width: 100%; border-collapse: collapse; font-size: 0.9em; }
table.corpus th, table.corpus td { text-align: left; padding: 5px 6px; vertical-align: top;
  border-bottom: 1px solid var(--border-color-primary); }
table.corpus td.num { text-align: right; }
table.corpus td.file { font-family: var(--font-mono); font-size: 0.9em; word-break: break-all; }
.doc-link { all: unset; cursor: pointer; color: var(--link-text-color, var(--color-accent)); }
.doc-link:hover { text-decoration: underline; }
"""

_CSS_STATUS = """
.report { list-style: none; padding: 0; margin: 4px 0; font-size: 0.92em; }
.report li { padding: 3px 0; }
.report b { font-family: HEADING_FONT; }
.report li.bad, .msg.error { color: #b42318; }
.msg { font-size: 0.92em; padding: 4px 0; }
.msg.ok { color: #067647; }
"""

_CSS_HEADER = """
.brand { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
.brand h1 { margin: 0; font-size: 1.6em; font-family: HEADING_FONT; }
.brand .tag { opacity: 0.75; }
"""


def _css(rules: str) -> str:
    return (_CSS_COMMON + rules).replace("HEADING_FONT", _HEADING_FONT)


# Clicking any [data-doc] button in the panel asks the server to open that document.
_JS_OPEN = """
const openSpan = (doc, start, end) =>
  trigger('open_doc', { doc_id: doc, start: Number(start), end: Number(end) });
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-doc]');
  if (!button || !element.contains(button)) return;
  openSpan(button.dataset.doc, button.dataset.start, button.dataset.end);
});
"""

# The sources panel also opens the span of an [n] marker clicked in the chat (its link
# is #cite/<doc_id>/<start>/<end>); one listener for the page, in the capture phase so
# the link is never followed.
_JS_SOURCES = (
    _JS_OPEN
    + """
if (!window.__sourcierCitations) {
  window.__sourcierCitations = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('#chat a[href*="#cite/"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    openSpan(...link.getAttribute('href').split('#cite/')[1].split('/'));
  }, true);
}
"""
)

# Scroll the viewer's own box so the highlighted span sits in its upper third.
_JS_SCROLL_BODY = """
  const mark = root.querySelector('mark#cite');
  const box = root.querySelector('.doc-text');
  if (box) box.scrollTop = 0;
  if (mark && box) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
"""
_JS_VIEWER = (
    "const scroll = () => { const root = element;"
    + _JS_SCROLL_BODY
    + "};\nwatch('value', () => { scroll(); setTimeout(scroll, 150); });\nscroll();"
)
_JS_AFTER_OPEN = (
    "() => { setTimeout(() => { const root = document.querySelector('#doc-viewer');"
    " if (!root) return;" + _JS_SCROLL_BODY + "}, 200); }"
)


def build_app(
    *,
    index: str | Path | None = None,
    upload_dir: Path | None = None,
    llm: Any = None,
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
) -> gr.Blocks:
    """The sourcier chat app, ready to ``launch()``.

    Args:
        index: the index folder (``None``: the default index, built from the bundled
            corpus if it does not exist yet).
        upload_dir: where uploaded files are kept (default ``<index>/uploads``).
        llm: a LangChain chat model or a ``provider:model`` string: answers are then
            generative by default (a setting switches back to extractive quotes).
        llm_base_url: the server of an ``llm`` string.
        llm_timeout: seconds the model may take before the extractive answer is shown.

    Returns:
        A ``gr.Blocks`` with the queue configured; its ``launch()`` defaults to the upload
        size limit. Named API endpoint: ``/ask`` (question first, everything else optional;
        returns ``Answer.to_dict()``).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
    """
    _offline_gradio()
    import gradio as gr

    from .api import ensure_index

    library = Library(
        ensure_index(index),
        upload_dir,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
    )
    library.index()  # fail now, in one line, if the index cannot be opened
    allowed = _allowed_extensions()

    # ---- event handlers (thin: the work is in Library and the render_* functions) ----

    def respond(question, chat, history, k, mode, doc_ids, date_from, date_to, answer_mode=None):
        """Stream the answer into the chat; fill the sources panel; show it.

        A model's reply is shown as it comes (marked as not yet verified); it is then
        replaced by the verified answer, so no marker the verifier removed stays shown.
        """
        chat = list(chat or [])
        history = list(history or [])
        keep = gr.update()

        def out(sources=keep, box=keep, tab=keep):
            return chat, history, sources, box, tab

        try:
            max_chars = library.index().settings.max_question_chars
        except SourcierError as err:
            chat = _chat_error(chat, question, f"L’index n’est pas disponible : {_sentence(err)}")
            yield out()
            return
        problem = question_problem(question, max_chars)
        if problem:
            shown = (question or "").strip()
            chat = _chat_error(chat, shown[:300] + ("…" if len(shown) > 300 else ""), problem)
            yield out(box=keep if shown else "")
            return
        question = question.strip()
        chat.append({"role": "user", "content": escape_markdown(question)})
        chat.append({"role": "assistant", "content": "_Recherche dans les documents…_"})
        yield out(box="")
        from .types import Answer as _Answer
        from .types import TextDelta

        answer = None
        written = ""
        unverified = "_(en cours, pas encore vérifié)_ "
        try:
            for event in library.ask_stream(
                question,
                k=int(k) if k else None,
                mode=mode or None,
                history=history[-2 * MAX_HISTORY_TURNS :],
                filters=parse_filters(doc_ids, date_from, date_to),
                generative=answer_mode != "extractive",
            ):
                if isinstance(event, TextDelta):
                    written += event.text
                    content = unverified + escape_markdown(written) + " ▌"
                    chat[-1] = {"role": "assistant", "content": content}
                    yield out()
                elif isinstance(event, _Answer):
                    answer = event
        except SourcierError as err:
            chat[-1] = {"role": "assistant", "content": "⚠️ " + escape_markdown(_sentence(err))}
            yield out()
            return
        assert answer is not None
        sources = render_sources(answer, library.index())
        steps = [] if written else stream_steps(answer.answer)
        for prefix in steps[:-1]:
            chat[-1] = {"role": "assistant", "content": escape_markdown(prefix) + " ▌"}
            yield out()
            time.sleep(STREAM_SECONDS / len(steps))
        chat[-1] = {"role": "assistant", "content": answer_markdown(answer)}
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer.answer},
        ]
        yield out(sources=sources, tab=gr.Tabs(selected="sources"))

    def new_conversation():
        return [], [], _SOURCES_PLACEHOLDER, _VIEWER_PLACEHOLDER

    def open_doc(evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        try:
            doc = library.index().document(str(data.get("doc_id", "")))
        except SourcierError:
            return _message("error", "Ce document n’est plus dans l’index."), gr.Tabs(
                selected="document"
            )
        start, end = _int(data.get("start")), _int(data.get("end"))
        return render_document(doc, start, end), gr.Tabs(selected="document")

    # Gradio finds EventData parameters through resolved type hints; with postponed
    # annotations "gr.EventData" cannot be resolved from this module's globals.
    open_doc.__annotations__["evt"] = gr.EventData

    def corpus_view(selected=None):
        """The corpus table and both document pickers (keeping still-valid selections)."""
        try:
            docs = library.index().documents()
        except SourcierError as err:
            return _message("error", f"Index indisponible : {err}"), gr.update(), gr.update()
        choices = [(_doc_choice(d), d.doc_id) for d in docs]
        ids = {d.doc_id for d in docs}
        kept = {} if selected is None else {"value": [i for i in selected if i in ids]}
        return (
            render_corpus(docs),
            gr.Dropdown(choices=choices, value=None),
            gr.Dropdown(choices=choices, **kept),
        )

    def upload(files, progress=gr.Progress()):  # noqa: B008 - Gradio's injection idiom
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            return _message("error", "Aucun fichier reçu."), *corpus_view(), None
        stage_names = {"read": "Lecture", "embed": "Indexation des passages"}

        def report_progress(stage: str, done: int, total: int) -> None:
            name = stage_names.get(stage, stage)
            progress((done, total) if total else None, desc=f"{name} {done}/{total}")

        progress(0, desc="Réception des fichiers")
        try:
            outcomes = library.add_uploads(
                [(p, Path(p).name) for p in paths], progress=report_progress
            )
        except SourcierError as err:
            message = _message("error", f"L’ajout a échoué : {_sentence(err)}")
            return message, *corpus_view(), None
        return render_report(outcomes), *corpus_view(), None

    def remove(doc_id, selected):
        if not doc_id:
            message = _message("error", "Choisissez d’abord un document à retirer.")
        elif doc_id == _CANCELLED:
            message = _message("info", "Suppression annulée.")
        else:
            try:
                message = _message("ok", library.remove(doc_id))
            except SourcierError as err:
                message = _message("error", f"La suppression a échoué : {_sentence(err)}")
        return message, *corpus_view(selected)

    def ask_api(
        question: str,
        k: int | None = None,
        mode: str | None = None,
        doc_ids: list[str] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        history: list[dict[str, str]] | None = None,
        answer_mode: str | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the indexed documents, with exact citations.

        answer_mode: "extractive" for verbatim quotes; otherwise the server's language
        model writes the answer when one is configured (every sentence verified).

        Returns the JSON form of a sourcier Answer: answer (text with [n] markers),
        refused, mode, model, sentences (text, citations, supported), language,
        citations (n, doc_id, title, source, chunk_id, quote, start, end, date_iso), hits
        and timings_ms.
        """
        try:
            filters = parse_filters(doc_ids, date_from, date_to)
            answer = library.ask(
                question,
                k=k,
                mode=mode,
                history=history,
                filters=filters,
                generative=answer_mode != "extractive",
            )
        except SourcierError as err:
            raise gr.Error(_sentence(err), print_exception=False) from None
        return answer.to_dict()

    # ---- layout ----

    with _blocks_class()(title="Sourcier — questions sur vos documents", fill_width=True) as demo:
        gr.HTML(
            '<div class="brand"><h1>Sourcier</h1><span class="tag">Posez vos questions à '
            "vos documents : chaque réponse cite ses sources, vérifiables d’un clic. "
            "<i>Ask in French or English.</i></span></div>",
            css_template=_css(_CSS_HEADER),
            js_on_load=None,
        )
        history = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=360):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="chat",
                    height=520,
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],
                    feedback_options=None,
                    group_consecutive_messages=False,
                    buttons=["copy"],
                    placeholder="Les réponses citent leurs passages avec des renvois **[n]**. "
                    "Essayez un exemple ci-dessous.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        show_label=False,
                        elem_id="question",
                        scale=5,
                        lines=1,
                        max_lines=6,
                        placeholder="Posez votre question… (français ou anglais / French or "
                        "English)",
                        autofocus=True,
                    )
                    send = gr.Button(
                        "Envoyer", variant="primary", scale=1, min_width=100, elem_id="send"
                    )
                with gr.Row():
                    clear = gr.Button("Nouvelle conversation", size="sm", variant="secondary")
                gr.Examples(
                    examples=[[q] for q in EXAMPLES],
                    inputs=[question],
                    label="Exemples / Examples",
                    examples_per_page=len(EXAMPLES),
                )
            with gr.Column(scale=4, min_width=340), gr.Tabs(selected="sources") as tabs:
                with gr.Tab("Sources", id="sources"):
                    sources = gr.HTML(
                        _SOURCES_PLACEHOLDER,
                        elem_id="sources",
                        css_template=_css(_CSS_SOURCES),
                        js_on_load=_JS_SOURCES,
                    )
                with gr.Tab("Document", id="document"):
                    viewer = gr.HTML(
                        _VIEWER_PLACEHOLDER,
                        elem_id="doc-viewer",
                        css_template=_css(_CSS_VIEWER),
                        js_on_load=_JS_VIEWER,
                    )
                with gr.Tab("Corpus", id="corpus"):
                    corpus = gr.HTML(
                        "", elem_id="corpus", css_template=_css(_CSS_CORPUS), js_on_load=_JS_OPEN
                    )
                    files = gr.File(
                        label=f"Ajouter des documents ({', '.join(allowed)} ; "
                        f"{MAX_UPLOAD_MB:g} Mo max. par fichier)",
                        file_count="multiple",
                        file_types=list(allowed),
                        elem_id="upload",
                        height=120,
                    )
                    upload_status = gr.HTML(
                        "", elem_id="upload-status", css_template=_css(_CSS_STATUS), js_on_load=None
                    )
                    with gr.Row():
                        to_remove = gr.Dropdown(
                            label="Retirer un document de l’index",
                            choices=[],
                            elem_id="remove-choice",
                            scale=4,
                        )
                        remove_btn = gr.Button(
                            "Retirer", variant="stop", scale=1, min_width=90, elem_id="remove"
                        )
                with gr.Tab("Réglages", id="settings"):
                    gr.Markdown(
                        "Ces réglages s’appliquent à la **prochaine question**. "
                        "_Settings apply to the next question._"
                    )
                    k = gr.Slider(
                        1, 10, value=5, step=1, label="Passages consultés (k)", elem_id="k"
                    )
                    mode = gr.Radio(
                        choices=list(MODES), value="hybrid", label="Recherche", elem_id="mode"
                    )
                    answer_mode = gr.Radio(
                        choices=[
                            ("Extractive : citations exactes, sans modèle", "extractive"),
                            (
                                f"Générative : {library.llm_name or 'aucun modèle configuré'}",
                                "generative",
                            ),
                        ],
                        value="generative" if library.llm is not None else "extractive",
                        interactive=library.llm is not None,
                        label="Réponse",
                        info=(
                            "Chaque phrase du modèle est vérifiée dans un passage cité."
                            if library.llm is not None
                            else "Pour un modèle : sourcier serve --llm openai:MODELE "
                            "--llm-base-url http://127.0.0.1:8080/v1"
                        ),
                        elem_id="answer-mode",
                    )
                    only_docs = gr.Dropdown(
                        label="Limiter aux documents (vide : tous)",
                        choices=[],
                        multiselect=True,
                        elem_id="only-docs",
                    )
                    with gr.Row():
                        date_from = gr.Textbox(
                            label="Depuis (date)",
                            placeholder="2011 ou 2011-06",
                            elem_id="date-from",
                        )
                        date_to = gr.Textbox(
                            label="Jusqu’à (date)", placeholder="2017-12", elem_id="date-to"
                        )

        # ---- wiring ----
        chat_inputs = [
            question, chatbot, history, k, mode, only_docs, date_from, date_to, answer_mode
        ]  # fmt: skip
        chat_outputs = [chatbot, history, sources, question, tabs]
        for trigger in (question.submit, send.click):
            trigger(
                respond,
                chat_inputs,
                chat_outputs,
                api_visibility="private",
                concurrency_limit=4,
                concurrency_id="ask",
            )
        clear.click(
            new_conversation,
            None,
            [chatbot, history, sources, viewer],
            api_visibility="private",
            queue=False,
        )
        for panel in (sources, corpus):
            panel.open_doc(
                open_doc, None, [viewer, tabs], api_visibility="private", queue=False
            ).then(None, js=_JS_AFTER_OPEN)
        corpus_outputs = [corpus, to_remove, only_docs]
        demo.load(corpus_view, [only_docs], corpus_outputs, api_visibility="private")
        files.upload(
            upload,
            [files],
            [upload_status, *corpus_outputs, files],
            api_name="upload",
            api_visibility="undocumented",
            concurrency_limit=1,
            concurrency_id="index-write",
        )
        remove_btn.click(
            remove,
            [to_remove, only_docs],
            [upload_status, *corpus_outputs],
            js=f"(d, s) => [(!d || confirm('Retirer ce document de l’index ?')) ? d : "
            f"'{_CANCELLED}', s]",
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="index-write",
        )
        gr.api(ask_api, api_name="ask", concurrency_limit=4, concurrency_id="ask")

    demo.queue(default_concurrency_limit=2)
    demo.sourcier_library = library  # type: ignore[attr-defined]  # for tests and serve()
    return demo


_CANCELLED = "__cancelled__"


def _allowed_extensions() -> tuple[str, ...]:
    try:
        from .loaders import SUPPORTED_EXTENSIONS
    except ImportError:  # pragma: no cover
        return ALLOWED_EXTENSIONS
    return tuple(e for e in ALLOWED_EXTENSIONS if e in SUPPORTED_EXTENSIONS)


def _offline_gradio() -> None:
    """Keep Gradio from calling home: its analytics and version check reach
    api.gradio.app at every start unless told not to. A user who sets
    GRADIO_ANALYTICS_ENABLED=True keeps them."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _blocks_class() -> type:
    """gr.Blocks whose ``launch()`` defaults to the upload size limit (also via app/app.py)."""
    import gradio as gr

    class SourcierBlocks(gr.Blocks):
        def launch(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("max_file_size", f"{MAX_UPLOAD_MB:g}mb")
            kwargs.setdefault("footer_links", ["api"])
            return super().launch(*args, **kwargs)

    return SourcierBlocks


def _doc_choice(d: DocumentInfo) -> str:
    title = d.title if len(d.title) <= 70 else d.title[:69].rstrip() + "…"
    date = format_date(d.date_iso)
    where = f"{date}, {Path(d.source).name}" if date else Path(d.source).name
    return f"{title} ({where})"


def _int(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def _sentence(err: BaseException) -> str:
    """An error as one sentence: first line, capitalised, with a final full stop."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _chat_error(chat: list[Any], question: str, problem: str) -> list[Any]:
    chat = list(chat)
    if question:
        chat.append({"role": "user", "content": escape_markdown(question)})
    chat.append({"role": "assistant", "content": "⚠️ " + escape_markdown(problem)})
    return chat


# ----- serving -----------------------------------------------------------------------------


def serve(
    *,
    index: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    open_browser: bool = False,
    upload_dir: Path | None = None,
    prevent_thread_lock: bool = False,
    llm: Any = None,
    llm_base_url: str | None = None,
    llm_timeout: float | None = None,
) -> Any:
    """Build the app and serve it (blocking unless ``prevent_thread_lock``).

    The default index is built from the bundled corpus first if it does not exist (this
    is said on stderr). Binds ``host`` (127.0.0.1 by default: this machine only).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
    """
    from .api import ensure_index

    target = ensure_index(index, announce=lambda m: print(m, file=sys.stderr, flush=True))
    demo = build_app(
        index=target,
        upload_dir=upload_dir,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_timeout=llm_timeout,
    )
    library: Library = demo.sourcier_library  # type: ignore[attr-defined]
    threading.Thread(target=_warm_quietly, args=(library,), daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Warning: serving on {host}: anyone who can reach this address can read, "
            "upload and remove documents.",
            file=sys.stderr,
            flush=True,
        )
    return demo.queue(default_concurrency_limit=2).launch(
        server_name=host,
        server_port=port,
        share=share,
        inbrowser=open_browser,
        prevent_thread_lock=prevent_thread_lock,
        show_error=False,
    )


def _warm_quietly(library: Library) -> None:
    try:
        library.warm()
    except Exception as err:  # noqa: BLE001 - the first question reports it properly
        log.warning("could not load the model in advance: %s", err)


@click.command("serve")
@click.option(
    "--index",
    "index_path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SOURCIER_INDEX",
    default=None,
    help="Index folder (default: the default index, built from the bundled corpus if missing; "
    "env SOURCIER_INDEX).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the UI to the network.",
)
@click.option(
    "--port",
    default=7860,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--upload-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where uploaded files are kept (default: INDEX/uploads).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in a web browser.")
@llm_options
def serve_cmd(
    index_path: Path | None,
    host: str,
    port: int,
    upload_dir: Path | None,
    open_browser: bool,
    llm: str | None,
    llm_base_url: str | None,
    llm_timeout: float | None,
) -> None:
    """Start the chat UI (Gradio) on http://HOST:PORT."""
    try:
        serve(
            index=index_path,
            host=host,
            port=port,
            upload_dir=upload_dir,
            open_browser=open_browser,
            llm=llm,
            llm_base_url=llm_base_url,
            llm_timeout=llm_timeout,
        )
    except SourcierError as err:
        raise click.ClickException(str(err)) from None
