"""What the UI does when the user acts: ask (streamed), open a document, list, upload
and remove documents, and the ``/ask`` API endpoint.

The handlers are thin: the work is in :class:`~sourcier.ui.library.Library` and the
``render_*`` functions. Gradio is imported inside the methods that need it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, SourcierError
from ..messages import say
from .library import Library
from .limits import ClientLimiter
from .page_view import page_images
from .render import (
    SOURCES_PLACEHOLDER,
    VIEWER_PLACEHOLDER,
    answer_markdown,
    doc_choice,
    escape_markdown,
    render_corpus,
    render_document,
    render_report,
    render_sources,
    status_html,
    stream_steps,
)

STREAM_SECONDS = 0.6
"""About how long the answer takes to stream in (it is computed first; this is display)."""

MAX_HISTORY_TURNS = 6
"""Earlier question/answer pairs passed to ``ask(history=...)``."""


def parse_filters(
    doc_ids: Sequence[str] | None, date_from: str | None, date_to: str | None
) -> dict[str, Any] | None:
    """The ``filters`` for ``ask()`` from the settings tab, or None when none is set.

    The dates are checked by the core (:class:`~sourcier.retrieve.Filters`), so the UI,
    the API and the CLI accept exactly the same ones.

    Raises:
        InputError: a date is not a real ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, or the
            range is reversed (:func:`~sourcier.messages.say` gives it in French).
    """
    from ..answer.filters import Filters

    ids = [d for d in (doc_ids or []) if d]
    values = {"doc_ids": ids, "date_from": date_from, "date_to": date_to}
    values = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}
    checked = Filters.coerce(values)
    if checked is None or not checked.active:
        return None
    return {"doc_ids": ids, "date_from": checked.date_from, "date_to": checked.date_to}


def question_problem(question: str | None, max_chars: int) -> str | None:
    """One French sentence saying why ``question`` cannot be asked (the core's check,
    :func:`~sourcier.question.check_text`), or None."""
    from ..answer.question import check_text

    try:
        check_text(question if question is not None else "", max_chars=max_chars)
    except InputError as err:
        return say(err, "fr")
    return None


class Handlers:
    """The event handlers of one app, over its shared :class:`Library`.

    Questions, from the chat or the API, go through ``limiter`` by client; errors are
    shown in French in the page and in English through the API.
    """

    def __init__(self, library: Library, *, limiter: ClientLimiter | None = None) -> None:
        self.library = library
        self.limiter = limiter or ClientLimiter()

    def respond(
        self,
        question,
        chat,
        history,
        k,
        mode,
        doc_ids,
        date_from,
        date_to,
        answer_mode=None,
        second_stage=None,
        *,
        client: str = "local",
    ):
        """Stream the answer into the chat; fill the sources panel; show it.

        A model's reply is shown as it comes (marked as not yet verified); it is then
        replaced by the verified answer, so no marker the verifier removed stays shown.
        ``client`` is who asks (see :func:`~sourcier.ui.limits.client_key`).
        """
        import gradio as gr

        chat = list(chat or [])
        history = list(history or [])
        keep = gr.update()

        def out(sources=keep, box=keep, tab=keep):
            return chat, history, sources, box, tab

        try:
            max_chars = self.library.index().settings.retrieval.max_question_chars
        except SourcierError as err:
            chat = _chat_error(chat, question, f"L’index n’est pas disponible : {say(err, 'fr')}")
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
        from ..types import Answer as _Answer
        from ..types import TextDelta

        answer = None
        written = ""
        unverified = "_(en cours, pas encore vérifié)_ "
        try:
            filters = parse_filters(doc_ids, date_from, date_to)
            with self.limiter.slot(client):
                for event in self.library.ask_stream(
                    question,
                    k=int(k) if k else None,
                    mode=mode or None,
                    history=history[-2 * MAX_HISTORY_TURNS :],
                    filters=filters,
                    generative=answer_mode != "extractive",
                    second_stage=second_stage or None,
                ):
                    if isinstance(event, TextDelta):
                        written += event.text
                        content = unverified + escape_markdown(written) + " ▌"
                        chat[-1] = {"role": "assistant", "content": content}
                        yield out()
                    elif isinstance(event, _Answer):
                        answer = event
        except SourcierError as err:
            chat[-1] = {"role": "assistant", "content": "⚠️ " + escape_markdown(say(err, "fr"))}
            yield out()
            return
        assert answer is not None
        sources = render_sources(answer, self.library.index())
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

    @staticmethod
    def new_conversation():
        """An empty chat, history and panels."""
        return [], [], SOURCES_PLACEHOLDER, VIEWER_PLACEHOLDER

    def open_doc(self, evt: Any) -> tuple[str, Any]:
        """The clicked span (``evt._data``: doc_id, start, end) in the document viewer."""
        import gradio as gr

        data = getattr(evt, "_data", None) or {}
        try:
            doc = self.library.index().document(str(data.get("doc_id", "")))
        except SourcierError:
            return status_html("error", "Ce document n’est plus dans l’index."), gr.Tabs(
                selected="document"
            )
        start, end = _int(data.get("start")), _int(data.get("end"))
        pages = page_images(doc, start, end) if start is not None and end is not None else []
        return render_document(doc, start, end, pages), gr.Tabs(selected="document")

    def corpus_view(self, selected=None):
        """The corpus table and both document pickers (keeping still-valid selections)."""
        import gradio as gr

        try:
            docs = self.library.index().documents()
        except SourcierError as err:
            return status_html("error", f"Index indisponible : {err}"), gr.update(), gr.update()
        choices = [(doc_choice(d), d.doc_id) for d in docs]
        ids = {d.doc_id for d in docs}
        kept = {} if selected is None else {"value": [i for i in selected if i in ids]}
        return (
            render_corpus(docs),
            gr.Dropdown(choices=choices, value=None),
            gr.Dropdown(choices=choices, **kept),
        )

    def upload(self, files, replace, progress):
        """Index the uploaded files; ``replace``: a file may replace one of the same name;
        ``progress`` is Gradio's progress tracker."""
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            return status_html("error", "Aucun fichier reçu."), *self.corpus_view(), None
        stage_names = {"read": "Lecture", "embed": "Indexation des passages"}

        def report_progress(stage: str, done: int, total: int) -> None:
            name = stage_names.get(stage, stage)
            progress((done, total) if total else None, desc=f"{name} {done}/{total}")

        progress(0, desc="Réception des fichiers")
        try:
            outcomes = self.library.add_uploads(
                [(p, Path(p).name) for p in paths],
                progress=report_progress,
                replace=bool(replace),
            )
        except SourcierError as err:
            message = status_html("error", f"L’ajout a échoué : {say(err, 'fr')}")
            return message, *self.corpus_view(), None
        return render_report(outcomes), *self.corpus_view(), None

    def remove(self, doc_id, selected):
        """Remove the chosen document (``CANCELLED`` when the confirmation was declined)."""
        if not doc_id:
            message = status_html("error", "Choisissez d’abord un document à retirer.")
        elif doc_id == CANCELLED:
            message = status_html("info", "Suppression annulée.")
        else:
            try:
                message = status_html("ok", self.library.remove(doc_id))
            except SourcierError as err:
                message = status_html("error", f"La suppression a échoué : {say(err, 'fr')}")
        return message, *self.corpus_view(selected)

    def ask_api(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        doc_ids: list[str] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        history: list[dict[str, str]] | None = None,
        answer_mode: str | None = None,
        *,
        client: str = "local",
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
            with self.limiter.slot(client):
                answer = self.library.ask(
                    question,
                    k=k,
                    mode=mode,
                    history=history,
                    filters=filters,
                    generative=answer_mode != "extractive",
                )
        except SourcierError as err:
            import gradio as gr

            raise gr.Error(_sentence(err), print_exception=False) from None
        return answer.to_dict()


CANCELLED = "__cancelled__"
"""What the removal confirmation sends when the user declines."""


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
