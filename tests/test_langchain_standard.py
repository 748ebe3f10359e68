"""LangChain's own standard retriever tests (``langchain-tests``), sync and async, run
against ``SourcierRetriever`` on the bundled corpus: the integration keeps LangChain's
contract (a per-call ``k`` included), which other chains rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from sourcier.langchain import SourcierRetriever


class TestSourcierRetrieverStandard(RetrieversIntegrationTests):
    index_path: Path

    @pytest.fixture(autouse=True)
    def _bundled_index(self, shared_hashing_index: Path) -> None:
        type(self).index_path = shared_hashing_index

    @property
    def retriever_constructor(self) -> type[SourcierRetriever]:
        return SourcierRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.index_path}

    @property
    def retriever_query_example(self) -> str:
        return "Qui préside le pôle SCS ?"


def test_a_per_call_k_mode_and_filter_override_the_retriever_s_own(
    shared_hashing_index: Path,
) -> None:
    retriever = SourcierRetriever(index=shared_hashing_index, k=5)
    assert len(retriever.invoke("Qui préside le pôle SCS ?")) == 5
    assert len(retriever.invoke("Qui préside le pôle SCS ?", k=2)) == 2
    only = retriever.invoke(
        "le port de Marseille",
        k=3,
        mode="bm25",
        filters={"sources": ["smart-port-aix-marseille-2017.txt"]},
    )
    assert only and all(
        d.metadata["source"].endswith("smart-port-aix-marseille-2017.txt") for d in only
    )
    assert len(retriever.invoke("Qui préside le pôle SCS ?")) == 5  # the call changed nothing
