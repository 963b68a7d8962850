"""The one table of retrieval backends: each name, how it is built over documents, and (for the
backends with an on-disk index) how its index is written and loaded.

Everything that chooses a backend by name reads `BACKEND_TABLE`: `build_retriever` (Search-v0,
the server's `--corpus`, the evaluators), `index.build_index` / `index.load_index`, the `toolgym
index build --backend` choices and the retrieval benchmark. Backend modules are imported only when
their backend is used (faiss, pyserini and torch are heavy and optional), and they never import
this module, so there is no import cycle between the table and the backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document, Retriever

from .manifest import IndexMismatchError

# (store, directory, params, progress) -> None: index a document store into `directory`.
IndexWriter = Callable[[Any, Path, dict[str, Any], bool], None]


@dataclass(frozen=True)
class Backend:
    """One retrieval backend. `write_index` / `index_class` are None for backends without an index folder."""

    name: str
    summary: str
    build: Callable[..., Retriever]
    """`build(documents, **kwargs)`: a retriever over in-memory documents."""
    write_index: IndexWriter | None = None
    """Writes an index directory (backend files + manifest) from a document store."""
    index_class: Callable[[], Any] | None = None
    """Returns the class whose `load(directory, **options)` opens that directory."""
    reports_progress: bool = False
    """True when `write_index` shows its own progress (otherwise the caller shows a spinner)."""


# --- bm25s ----------------------------------------------------------------------------------------


def _bm25s_class() -> Any:
    from .bm25 import BM25Retriever

    return BM25Retriever


def _build_bm25s(documents: Sequence[Document], **kwargs: Any) -> Retriever:
    return _bm25s_class()(documents, **kwargs)


def _write_bm25s(store: Any, directory: Path, params: dict[str, Any], progress: bool) -> None:
    _bm25s_class()(store, **params).save(directory)


# --- pyserini (Lucene via Anserini) ---------------------------------------------------------------


def _pyserini_class() -> Any:
    from .pyserini_backend import PyseriniRetriever

    return PyseriniRetriever


def _build_pyserini(documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """kwargs: index_dir (default: a temporary folder), k1, b, threads, heap (see pyserini_backend)."""
    return _pyserini_class().from_documents(documents, kwargs.pop("index_dir", None), **kwargs)


def _write_pyserini(store: Any, directory: Path, params: dict[str, Any], progress: bool) -> None:
    _pyserini_class().build(store, directory, progress=progress, **params)


# --- faiss (dense, with an encoder) ---------------------------------------------------------------


def _faiss_class() -> Any:
    from .dense import FaissRetriever

    return FaissRetriever


def _build_faiss(documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """kwargs: encoder (a spec or Encoder, default st:minilm), index_type, ... (see dense)."""
    return _faiss_class()(documents, kwargs.pop("encoder", "st:minilm"), **kwargs)


def _write_faiss(store: Any, directory: Path, params: dict[str, Any], progress: bool) -> None:
    params = dict(params)
    spec = params.pop("encoder", None)
    if not spec:
        raise ValueError('the faiss backend needs an encoder spec, e.g. encoder="st:minilm" (--encoder st:minilm)')
    _faiss_class()(store, spec, **params).save(directory)  # params: index_type, ..., and encoder options


# --- hybrid and remote (no index folder of their own) ---------------------------------------------


def _build_hybrid(documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """kwargs: first/second backend names (+ first_kwargs/second_kwargs), fusion, ... (see hybrid)."""
    from .hybrid import HybridRetriever

    first = build_retriever(kwargs.pop("first", "bm25s"), documents, **kwargs.pop("first_kwargs", {}))
    second = build_retriever(kwargs.pop("second", "faiss"), documents, **kwargs.pop("second_kwargs", {}))
    return HybridRetriever(first, second, **kwargs)


def _build_remote(documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """The corpus lives on the server; `documents` only checks it is the same size (see remote)."""
    from .remote import remote_for_documents

    return remote_for_documents(documents, **kwargs)


BACKEND_TABLE: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("bm25s", "in-process BM25 (bm25s), Lucene scoring", _build_bm25s, _write_bm25s, _bm25s_class),
        Backend("pyserini", "Lucene BM25 via Anserini (Java)", _build_pyserini, _write_pyserini, _pyserini_class, True),
        Backend("faiss", "dense vectors (FAISS) with an encoder", _build_faiss, _write_faiss, _faiss_class, True),
        Backend("hybrid", "fusion of two backends (RRF or weighted)", _build_hybrid),
        Backend("remote", "a retrieval server speaking Search-R1's protocol", _build_remote),
    )
}
BACKENDS: tuple[str, ...] = tuple(BACKEND_TABLE)
"""Every backend name `build_retriever` accepts."""
INDEX_BACKENDS: tuple[str, ...] = tuple(name for name, b in BACKEND_TABLE.items() if b.write_index is not None)
"""The backends with an index folder (`toolgym index build --backend`)."""


def index_backend(name: str) -> Backend:
    """The table entry of an on-disk backend, or IndexMismatchError naming the known ones."""
    backend = BACKEND_TABLE.get(name)
    if backend is None or backend.write_index is None:
        raise IndexMismatchError(f"unknown index backend {name!r}; expected one of {INDEX_BACKENDS}")
    return backend


def build_retriever(name: str, documents: Sequence[Document], **kwargs: Any) -> Retriever:
    """Index `documents` with the backend called `name`; `kwargs` go to that backend's constructor.

    Any backend takes `rerank="ce:<model>"|"hf:<model>"|Reranker` (and `rerank_depth`, default 50) to
    re-score its top hits with a cross-encoder (see rerank.py).
    """
    reranker, depth = kwargs.pop("rerank", None), kwargs.pop("rerank_depth", 50)
    backend = BACKEND_TABLE.get(name)
    if backend is None:
        raise ValueError(f"unknown retriever backend {name!r}; expected one of {BACKENDS} or a Retriever object")
    retriever = backend.build(documents, **kwargs)
    if reranker is None:
        return retriever
    from .rerank import RerankRetriever

    return RerankRetriever(retriever, reranker, depth=depth)


__all__ = ["BACKENDS", "BACKEND_TABLE", "INDEX_BACKENDS", "Backend", "build_retriever", "index_backend"]
