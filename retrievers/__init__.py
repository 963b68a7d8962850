"""Retrieval backends behind the `Retriever` contract (toolgym.retriever_contract), chosen by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolgym.retriever_contract import Document, Retriever

from .index import build_index, load_index

BACKENDS: tuple[str, ...] = ("bm25s", "pyserini", "faiss", "hybrid", "remote")


def build_retriever(name: str, documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """Index `documents` with the backend called `name`; `kwargs` go to that backend's constructor.

    Any backend takes `rerank="ce:<model>"|"hf:<model>"|Reranker` (and `rerank_depth`, default 50) to
    re-score its top hits with a cross-encoder (see rerank.py).
    """
    if kwargs.get("rerank") is not None:
        from .rerank import RerankRetriever

        reranker, depth = kwargs.pop("rerank"), kwargs.pop("rerank_depth", 50)
        return RerankRetriever(build_retriever(name, documents, **kwargs), reranker, depth=depth)
    kwargs.pop("rerank", None)
    if name == "faiss":  # dense; kwargs: encoder (spec or Encoder, default st:minilm), index_type, ... (see dense)
        from .dense import FaissRetriever

        return FaissRetriever(documents, kwargs.pop("encoder", "st:minilm"), **kwargs)
    if name == "hybrid":  # kwargs: first/second backend names (+ first_kwargs/second_kwargs), fusion, ... (see hybrid)
        from .hybrid import HybridRetriever

        first = build_retriever(kwargs.pop("first", "bm25s"), documents, **kwargs.pop("first_kwargs", {}))
        second = build_retriever(kwargs.pop("second", "faiss"), documents, **kwargs.pop("second_kwargs", {}))
        return HybridRetriever(first, second, **kwargs)
    if name == "bm25s":
        from .bm25 import BM25Retriever

        return BM25Retriever(documents, **kwargs)
    if name == "pyserini":  # Lucene via Anserini; kwargs: index_dir, k1, b, threads, heap (see pyserini_backend)
        from .pyserini_backend import PyseriniRetriever

        return PyseriniRetriever.from_documents(documents, kwargs.pop("index_dir", None), **kwargs)
    if name == "remote":  # the corpus lives on the server; `documents` only checks it is the same size
        from .remote import remote_for_documents

        return remote_for_documents(documents, **kwargs)
    raise ValueError(f"unknown retriever backend {name!r}; expected one of {BACKENDS} or a Retriever object")


__all__ = ["BACKENDS", "build_index", "build_retriever", "load_index"]
