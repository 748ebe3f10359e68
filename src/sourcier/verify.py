"""The verifier: every citation is an exact span of its document.

Every draft passes through :func:`check_spans` before an Answer is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .types import Citation, Document


def check_spans(citations: Sequence[Citation], documents: Mapping[str, Document]) -> None:
    """Assert that every quote is exactly its span of the document text.

    Raises:
        AssertionError: a quote differs from its span (a bug, never a user error).
    """
    for c in citations:
        text = documents[c.doc_id].text
        if text[c.start : c.end] != c.quote:
            raise AssertionError(f"citation [{c.n}] does not match its span in {c.source}")
