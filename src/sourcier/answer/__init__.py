"""Answering: the question, retrieval (+ second stages), the refusal gate, the answerers
and the verifier; :class:`sourcier.assistant.Assistant` runs them in order."""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Question": ".question",
        "parse_question": ".question",
        "Filters": ".filters",
        "Request": ".request",
        "check_request": ".request",
        "retrieve": ".retrieve",
        "SecondStage": ".second_stage",
        "SECOND_STAGES": ".second_stage",
        "Answerer": ".protocol",
        "Context": ".protocol",
        "Draft": ".protocol",
        "ANSWERERS": ".answerers",
        "Evidence": ".refusal",
    },
)
