"""Retrieval backends behind the `Retriever` contract (toolgym.retriever_contract), chosen by name.

`backends.BACKEND_TABLE` is the one list of backends; `build_retriever` builds one over documents,
`build_index` / `load_index` write and open index folders (`manifest.py` describes their manifest).
"""

from __future__ import annotations

from .backends import BACKENDS, INDEX_BACKENDS, build_retriever
from .index import build_index, load_index

__all__ = ["BACKENDS", "INDEX_BACKENDS", "build_index", "build_retriever", "load_index"]
