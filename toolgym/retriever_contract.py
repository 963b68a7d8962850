"""The retriever contract shared by environments, backends and the retrieval server.

Every backend (bm25s, pyserini, faiss, hybrid, remote, a reranker stage) is a `Retriever`:
one batched call, `search(queries, k) -> list[list[Hit]]`, one hit list per query, best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable


class Hit(NamedTuple):
    """One retrieved document: its id, the backend's score, and its text for the agent."""

    doc_id: str
    score: float
    title: str
    text: str


@dataclass(frozen=True)
class Document:
    """A corpus entry. `title` may be empty; `text` is the body the agent reads."""

    doc_id: str
    title: str
    text: str


@runtime_checkable
class Retriever(Protocol):
    """Batched top-k search over a corpus."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]: ...
