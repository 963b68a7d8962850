"""Retrieval backends behind the `Retriever` contract (toolgym.retrieval), chosen by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolgym.retrieval import Document, Retriever

BACKENDS: tuple[str, ...] = ("bm25s",)


def build_retriever(name: str, documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """Index `documents` with the backend called `name`; `kwargs` go to that backend's constructor."""
    if name == "bm25s":
        from .bm25 import BM25Retriever

        return BM25Retriever(documents, **kwargs)
    raise ValueError(f"unknown retriever backend {name!r}; expected one of {BACKENDS} or a Retriever object")


__all__ = ["BACKENDS", "build_retriever"]
