"""What the UI shows, as HTML or markdown strings: source cards, the document viewer, the
corpus table, the upload report and the chat text of an answer.

Everything shown from a document goes through :func:`html.escape` (HTML panels) or
:func:`escape_markdown` (the chat, which renders markdown), so a document containing
``<script>`` is displayed as text and never runs. Pure functions: no gradio here.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..answer.glance import line_parts, whole_line_citation
from ..errors import SourcierError
from ..ingest.pages import page_label
from ..words import MONTHS_EN, MONTHS_FR

if TYPE_CHECKING:
    from ..answer.glance import LineParts
    from ..storage.reader import DocumentInfo
    from ..types import Answer, Citation, Document, Marked
    from .page_view import PageImage

CONTEXT_CHARS = 200
"""Characters of context shown before and after a quoted span in a source card."""

_MONTHS = {"fr": MONTHS_FR, "en": tuple(m.capitalize() for m in MONTHS_EN)}

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
        "in_chat": "[la phrase citée en réponse, ci-contre]",
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
        "in_chat": "[the sentence quoted as the answer, in the chat]",
    },
}

SOURCES_PLACEHOLDER = (
    '<div class="empty">Les sources de la réponse s’afficheront ici : chaque <b>[n]</b> '
    "de la réponse renvoie au passage cité, surligné dans son contexte.<br>"
    "<i>Each [n] in the answer points to the quoted passage.</i></div>"
)
VIEWER_PLACEHOLDER = (
    '<div class="empty">Cliquez sur « Ouvrir le document » dans une source, ou sur un titre '
    "dans l’onglet Corpus, pour lire le document entier nettoyé, le passage cité surligné."
    "</div>"
)


class _DocumentSource(Protocol):
    def document(self, doc_id: str) -> Document: ...


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


def _context(
    text: str,
    start: int,
    end: int,
    width: int = CONTEXT_CHARS,
    *,
    floor: int = 0,
    ceiling: int | None = None,
) -> tuple[str, str]:
    """Up to ``width`` characters before ``start`` and after ``end``, cut at word breaks,
    and never before ``floor`` nor after ``ceiling`` (where another card's quote is, so
    that no quote is shown twice)."""
    top = len(text) if ceiling is None else min(ceiling, len(text))
    lo, hi = max(0, floor, start - width), min(top, end + width)
    before, after = text[lo:start], text[end:hi]
    if lo > floor:  # cut by the width: at a word break
        first = re.search(r"\s", before)
        before = before[first.end() :] if first and first.end() < len(before) else before
    if lo > 0:
        before = "… " + before.lstrip()
    if hi < top:
        last = max((m.start() for m in re.finditer(r"\s", after)), default=0)
        after = after[:last] if last > 0 else after
    if hi < len(text):
        after = after.rstrip() + " …"
    return before, after


def _card(
    *,
    n: int | None,
    title: str,
    date: str,
    source: str,
    label: str | None,
    page: str,
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
    if page:
        meta.append(f'<span class="src-page">{escape_html(page)}</span>')
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
    """The section part of a chunk label ("Title…, §3" → "§3", "Title, p. 4, § Budget" →
    "§ Budget"); the title and the page are shown already."""
    if not label:
        return None
    m = re.search(r"§(?:\s*\d+\s*$| [^§]+$)", label)
    return m.group(0) if m else label


def _chunk_label(index: Any, chunk_id: str) -> str | None:
    try:
        return _short_label(index.chunk(chunk_id).label)
    except (AttributeError, SourcierError):
        return None


def render_sources(answer: Answer, index: _DocumentSource) -> str:
    """The sources panel for ``answer`` (HTML, every document-derived text escaped).

    One card per citation ``[n]``: title, date, file, chunk label, the passage around the
    quote (±``CONTEXT_CHARS``, stopping where another card's quote starts, so that no
    quote is shown twice) with the exact span ``document.text[start:end]`` inside
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
                    page=page_label(hit.page, hit.page_end),
                    body=body,
                    doc_id=chunk.doc_id,
                    start=chunk.start,
                    end=chunk.end,
                    open_text=t["open"],
                )
            )
        return '<div class="src-list">' + "".join(parts) + "</div>"

    parts.append(f'<h4 class="src-heading">{escape_html(t["sources"])}</h4>')
    in_chat = whole_line_citation(answer)
    for c in answer.citations:
        text: str | None = None
        with contextlib.suppress(SourcierError):  # removed since the answer: quote only
            text = index.document(c.doc_id).text
        if text is not None and text[c.start : c.end] == c.quote:
            others = [o for o in answer.citations if o.doc_id == c.doc_id and o is not c]
            floor = max((o.end for o in others if o.end <= c.start), default=0)
            ceiling = min((o.start for o in others if o.start >= c.end), default=None)
            before, after = _context(text, c.start, c.end, floor=floor, ceiling=ceiling)
        else:  # the document changed or was removed since the answer
            before, after = "", (f" ({t['missing']})" if text is None else "")
        quote = _quote_html(c, answer.marked)
        if c.n == in_chat:  # the chat shows this very sentence: its place, not a second copy
            quote = f'<span class="in-chat">{escape_html(t["in_chat"])}</span>'
        body = f"{escape_html(before)}<mark>{quote}</mark>{escape_html(after)}"
        parts.append(
            _card(
                n=c.n,
                title=c.title,
                date=format_date(c.date_iso, answer.language) or t["undated"],
                source=c.source,
                label=_chunk_label(index, c.chunk_id),
                page=page_label(c.page, c.page_end),
                body=body,
                doc_id=c.doc_id,
                start=c.start,
                end=c.end,
                open_text=t["open"],
            )
        )
    return '<div class="src-list">' + "".join(parts) + "</div>"


def _quote_html(c: Citation, fact: Marked | None) -> str:
    """A quote, escaped, with the answer's marked fact in bold when it lies in it."""
    if fact is None or fact.n != c.n or not c.start <= fact.start < fact.end <= c.end:
        return escape_html(c.quote)
    s, e = fact.start - c.start, fact.end - c.start
    return (
        f'{escape_html(c.quote[:s])}<b class="fact">{escape_html(c.quote[s:e])}</b>'
        f"{escape_html(c.quote[e:])}"
    )


def render_document(
    doc: Document,
    start: int | None = None,
    end: int | None = None,
    pages: Sequence[PageImage] = (),
) -> str:
    """The whole cleaned document, escaped, with ``text[start:end]`` in ``<mark id="cite">``.

    Offsets outside the text (or ``None``) show the document without a highlight.
    ``pages`` (:func:`sourcier.ui.page_view.page_images`) are shown above the text: each
    page image with the span's boxes highlighted over it.
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
        f"{''.join(_page_figure(p) for p in pages)}"
        f'<div class="doc-text">{body}</div></div>'
    )


def _page_figure(page: PageImage) -> str:
    """One page image with its highlight boxes (positions in % of the image: no
    document text reaches this HTML)."""
    marks = "".join(
        f'<div class="page-hl" style="left:{left * 100:.3f}%;top:{top * 100:.3f}%;'
        f'width:{width * 100:.3f}%;height:{height * 100:.3f}%"></div>'
        for left, top, width, height in page.boxes
    )
    note = (
        ""
        if page.located
        else (
            '<div class="page-note">La citation n’a pas été retrouvée sur l’image de la page '
            "(le fichier a changé depuis l’indexation ?).</div>"
        )
    )
    return (
        f'<figure class="page-view" data-page="{page.page}">'
        f'<figcaption class="page-head">p. {page.page}</figcaption>{note}'
        f'<div class="page-img"><img alt="p. {page.page}" src="{page.data_uri()}">{marks}</div>'
        "</figure>"
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


def status_html(kind: str, text: str) -> str:
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
    elif (line := line_parts(answer)) is not None:
        body = _linked_line(answer, line)
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


def _linked_line(answer: Answer, line: LineParts) -> str:
    """A glance answer: the line, its marked fact in bold, its marker and the "see also"
    markers linked to their quotes."""
    by_n = {c.n: c for c in answer.citations}
    fact = f"**{escape_markdown(line.fact)}**" if line.fact.strip() else escape_markdown(line.fact)
    text = escape_markdown(line.before) + fact + escape_markdown(line.after)
    text += " " + _cite_link(by_n[line.n])
    if line.see_also:
        links = " ".join(_cite_link(by_n[n]) for n in line.see_also if n in by_n)
        text += f" — {escape_markdown(line.label)} {links}"
    return text


def _linked_quotes(answer: Answer) -> str:
    """An extractive answer: the marker after each quote linked."""
    from ..answer.protocol import marked

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


def doc_choice(d: DocumentInfo) -> str:
    title = d.title if len(d.title) <= 70 else d.title[:69].rstrip() + "…"
    date = format_date(d.date_iso)
    where = f"{date}, {Path(d.source).name}" if date else Path(d.source).name
    return f"{title} ({where})"
