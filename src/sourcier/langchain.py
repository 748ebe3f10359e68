"""A LangChain retriever over a sourcier index, so it plugs into any LangChain chain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .api import search
from .storage.reader import Index


class SourcierRetriever(BaseRetriever):
    """Hybrid sourcier retrieval as a LangChain ``BaseRetriever``.

    Each LangChain ``Document`` carries the chunk text as ``page_content`` and, in its
    metadata, everything needed to cite it: ``doc_id``, ``title``, ``source``,
    ``chunk_id``, ``start``/``end`` (offsets into the cleaned document), ``page`` and
    ``page_end`` (1-based, for a PDF or slides; ``None`` otherwise), ``rank``, ``score``
    and ``date``.

    ``k``, ``mode`` and ``filters`` can also be given per call, as LangChain's retriever
    contract has it (its standard tests run in CI: ``tests/test_langchain_standard.py``).

    Example:
        >>> retriever = SourcierRetriever(index=load_index(), k=4)
        >>> retriever.invoke("Qui préside le pôle SCS ?")
        >>> retriever.invoke("Qui préside le pôle SCS ?", k=1)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any = None
    """An open ``Index``, a path, or None for the default index."""
    k: int = 5
    mode: str = "hybrid"
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        mode: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[LCDocument]:
        """The passages for ``query``; ``k``, ``mode`` and ``filters`` given to
        ``invoke`` (``retriever.invoke(query, k=1)``) override the retriever's own for
        that call."""
        hits = search(
            query,
            index=self.index,
            k=self.k if k is None else k,
            mode=self.mode if mode is None else mode,
            filters=self.filters if filters is None else filters,
        )
        return [
            LCDocument(
                page_content=h.chunk.text,
                id=h.chunk.chunk_id,
                metadata={k: v for k, v in h.to_dict().items() if k != "text"},
            )
            for h in hits
        ]


__all__ = ["Index", "SourcierRetriever"]
