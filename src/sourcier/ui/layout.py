"""The Gradio app: the layout of the chat, its side panels and settings, and the wiring
of each event to its handler (:mod:`sourcier.ui.handlers`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .access import Access
from .handlers import CANCELLED, Handlers
from .library import Library
from .limits import ClientLimiter, client_key
from .render import SOURCES_PLACEHOLDER, VIEWER_PLACEHOLDER
from .style import (
    CSS_CORPUS,
    CSS_HEADER,
    CSS_SOURCES,
    CSS_STATUS,
    CSS_VIEWER,
    JS_AFTER_OPEN,
    JS_OPEN,
    JS_SOURCES,
    JS_VIEWER,
    css,
    upload_guard_js,
)
from .uploads import ALLOWED_EXTENSIONS, MAX_UPLOAD_MB, guard_messages

if TYPE_CHECKING:
    import gradio as gr

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

AUTH_MESSAGE = "Sourcier : connectez-vous pour interroger les documents (log in to continue)."

MODES: tuple[tuple[str, str], ...] = (
    ("Hybride : mots-clés + sens (recommandé)", "hybrid"),
    ("Sens seulement (dense)", "dense"),
)


def build_app(
    *,
    index: str | Path | None = None,
    upload_dir: Path | None = None,
    llm: Any = None,
    access: Access | None = None,
    limiter: ClientLimiter | None = None,
) -> gr.Blocks:
    """The sourcier chat app, ready to ``launch()``.

    Args:
        index: the index folder (``None``: the default index, built from the bundled
            corpus if it does not exist yet).
        upload_dir: where uploaded files are kept (default ``<index>/uploads``).
        llm: a LangChain chat model, a ``provider:model`` string, or the ``llm``
            settings (model, server, time-out): answers are then generative by default
            (a setting switches back to extractive quotes).
        access: login and read-only mode (default: no login, uploads and removals on).
            A read-only app has no upload box, no removal and no endpoint that writes.
        limiter: the per-client question budget (default: :class:`ClientLimiter`).

    Returns:
        A ``gr.Blocks`` with the queue configured; its ``launch()`` defaults to the upload
        size limit and to ``access``'s login, and refuses to expose write access with no
        login (:meth:`Access.check_exposure`). Named API endpoint: ``/ask`` (question
        first, everything else optional; returns ``Answer.to_dict()``).

    Raises:
        IndexNotFoundError: ``index`` names a folder with no index.
    """
    _offline_gradio()
    import gradio as gr

    from ..answer.second_stage import NONE, SECOND_STAGES
    from ..api import ensure_index

    access = access or Access()
    library = Library(
        ensure_index(index),
        upload_dir,
        llm=llm,
        read_only=access.read_only,
    )
    library.index()  # fail now, in one line, if the index cannot be opened
    handlers = Handlers(library, limiter=limiter)

    # Gradio injects EventData, Request and Progress by the parameters' resolved type
    # hints and default values, so these stay closures here; with postponed annotations
    # the hints are set by hand.
    def open_doc(evt: gr.EventData):
        return handlers.open_doc(evt)

    def upload(files, replace, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        return handlers.upload(files, replace, progress)

    def respond(
        question,
        chat,
        history,
        k,
        mode,
        doc_ids,
        date_from,
        date_to,
        answer_mode,
        second_stage,
        request,
    ):
        yield from handlers.respond(
            question,
            chat,
            history,
            k,
            mode,
            doc_ids,
            date_from,
            date_to,
            answer_mode,
            second_stage,
            client=client_key(request),
        )

    def ask_api(
        question: str,
        k: int | None = None,
        mode: str | None = None,
        doc_ids: list[str] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        history: list[dict[str, str]] | None = None,
        answer_mode: str | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        return handlers.ask_api(
            question,
            k,
            mode,
            doc_ids,
            date_from,
            date_to,
            history,
            answer_mode,
            client=client_key(request),
        )

    ask_api.__doc__ = handlers.ask_api.__doc__
    open_doc.__annotations__["evt"] = gr.EventData
    respond.__annotations__["request"] = gr.Request
    ask_api.__annotations__["request"] = gr.Request

    # ---- layout ----

    with _blocks_class()(title="Sourcier — questions sur vos documents", fill_width=True) as demo:
        gr.HTML(
            '<div class="brand"><h1>Sourcier</h1><span class="tag">Posez vos questions à '
            "vos documents : chaque réponse cite ses sources, vérifiables d’un clic. "
            "<i>Ask in French or English.</i></span></div>",
            css_template=css(CSS_HEADER),
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
                        SOURCES_PLACEHOLDER,
                        elem_id="sources",
                        css_template=css(CSS_SOURCES),
                        js_on_load=JS_SOURCES,
                    )
                with gr.Tab("Document", id="document"):
                    viewer = gr.HTML(
                        VIEWER_PLACEHOLDER,
                        elem_id="doc-viewer",
                        css_template=css(CSS_VIEWER),
                        js_on_load=JS_VIEWER,
                    )
                with gr.Tab("Corpus", id="corpus"):
                    corpus = gr.HTML(
                        "", elem_id="corpus", css_template=css(CSS_CORPUS), js_on_load=JS_OPEN
                    )
                    if access.can_write:
                        files = gr.File(
                            label=f"Ajouter des documents ({', '.join(ALLOWED_EXTENSIONS)} ; "
                            f"{MAX_UPLOAD_MB:g} Mo max. par fichier)",
                            file_count="multiple",
                            file_types=list(ALLOWED_EXTENSIONS),
                            elem_id="upload",
                            height=120,
                        )
                        replace = gr.Checkbox(
                            False,
                            label="Remplacer un fichier déjà envoyé sous le même nom "
                            "(sinon il est gardé sous un autre nom)",
                            elem_id="replace",
                        )
                    else:
                        gr.Markdown(
                            "_Lecture seule : l’ajout et le retrait de documents sont "
                            "désactivés sur ce serveur._",
                            elem_id="read-only",
                        )
                    upload_status = gr.HTML(
                        "",
                        elem_id="upload-status",
                        css_template=css(CSS_STATUS),
                        js_on_load=upload_guard_js(
                            guard_messages(),
                            list(ALLOWED_EXTENSIONS),
                            int(MAX_UPLOAD_MB * 1024 * 1024),
                        )
                        if access.can_write
                        else None,
                    )
                    with gr.Row(visible=access.can_write):
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
                    second_stage = gr.Dropdown(
                        choices=[("Aucune (ordre de la recherche)", NONE)]
                        + [(name, name) for name in SECOND_STAGES.names()],
                        value=library.settings.retrieval.second_stage,
                        label="Seconde étape (réordonne les passages trouvés)",
                        elem_id="second-stage",
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
            question, chatbot, history, k, mode, only_docs, date_from, date_to, answer_mode,
            second_stage,
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
            handlers.new_conversation,
            None,
            [chatbot, history, sources, viewer],
            api_visibility="private",
            queue=False,
        )
        for panel in (sources, corpus):
            panel.open_doc(
                open_doc, None, [viewer, tabs], api_visibility="private", queue=False
            ).then(None, js=JS_AFTER_OPEN)
        corpus_outputs = [corpus, to_remove, only_docs]
        demo.load(handlers.corpus_view, [only_docs], corpus_outputs, api_visibility="private")
        if access.can_write:  # a read-only app has no event that could write
            files.upload(
                upload,
                [files, replace],
                [upload_status, *corpus_outputs, files],
                api_name="upload",
                api_visibility="undocumented",
                concurrency_limit=1,
                concurrency_id="index-write",
            )
            remove_btn.click(
                handlers.remove,
                [to_remove, only_docs],
                [upload_status, *corpus_outputs],
                js=f"(d, s) => [(!d || confirm('Retirer ce document de l’index ?')) ? d : "
                f"'{CANCELLED}', s]",
                api_visibility="private",
                concurrency_limit=1,
                concurrency_id="index-write",
            )
        gr.api(ask_api, api_name="ask", concurrency_limit=4, concurrency_id="ask")

    configure_queue(demo)
    demo.sourcier_library = library  # type: ignore[attr-defined]  # for tests and serve()
    demo.sourcier_access = access  # type: ignore[attr-defined]
    return demo


QUEUE_SIZE = 256
"""Events waiting in the queue at most; beyond, Gradio refuses at once ("queue full")."""


def configure_queue(demo: gr.Blocks) -> None:
    """Two events at a time by default (questions: 4, index writes: 1), and a bounded
    wait list, so a flood is refused instead of piling up without end."""
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)


def _offline_gradio() -> None:
    """Keep Gradio from calling home: its analytics and version check reach
    api.gradio.app at every start unless told not to. A user who sets
    GRADIO_ANALYTICS_ENABLED=True keeps them."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _blocks_class() -> type:
    """gr.Blocks whose ``launch()`` defaults to the upload size limit and the app's login,
    and refuses to expose write access with no login (also via app/app.py)."""
    import os

    import gradio as gr

    class SourcierBlocks(gr.Blocks):
        def launch(self, *args: Any, **kwargs: Any) -> Any:
            access: Access = getattr(self, "sourcier_access", None) or Access()
            host = kwargs.get("server_name") or os.environ.get("GRADIO_SERVER_NAME") or ""
            access.check_exposure(host or "127.0.0.1")
            if access.login:
                kwargs.setdefault("auth", access.check)
                kwargs.setdefault("auth_message", AUTH_MESSAGE)
            kwargs.setdefault("max_file_size", f"{MAX_UPLOAD_MB:g}mb")
            kwargs.setdefault("footer_links", ["api"])
            return super().launch(*args, **kwargs)

    return SourcierBlocks
