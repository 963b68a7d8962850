"""In-process BM25 over a document list, backed by `bm25s` (sparse scores precomputed at index time).

Why bm25s: it indexes a few thousand passages in milliseconds and answers ~10k queries/s on one
core with no JVM, so Search-v0 can build a per-question index on every `reset`. Its Lucene
scoring variant with k1=0.9, b=0.4 and English stemming + stopwords reproduces Anserini's flat
BM25 on BEIR SciFact (nDCG@10 0.676 vs 0.679).

On disk it is a ToolGym index directory (`retrievers/index.py`, `retrievers/manifest.py`): bm25s's sparse matrices, the
document store and the manifest `toolgym_index.json`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document, Hit

from .docstore import DOCUMENTS_FILE, DocStore, save_documents
from .manifest import MANIFEST_FILE, read_manifest, write_manifest

logger = logging.getLogger(__name__)


def _import_bm25s() -> Any:
    """Import bm25s, which pins its own logger to DEBUG on import; leave its level to the app."""
    import bm25s

    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)
    return bm25s


BACKEND_NAME = "bm25s"
METADATA_FILE = MANIFEST_FILE  # the name this module used before the shared index format
TOKENIZE_CHUNK = 65_536  # documents tokenized per bm25s call, so a build never holds all texts at once


def _make_stemmer(stemmer: str | None) -> Any:
    if stemmer is None:
        return None
    import Stemmer  # PyStemmer

    try:
        return Stemmer.Stemmer(stemmer)
    except KeyError as exc:
        raise ValueError(f"unknown stemmer language {stemmer!r}; see Stemmer.algorithms()") from exc


class BM25Retriever:
    """BM25 over `documents` (title + text), searched in batches: `search(queries, k)`.

    Queries with no indexed token (empty, stopwords only, unseen words) get an empty hit list, and
    documents that share no term with the query are never returned, so a hit list may be shorter
    than `k`.
    """

    def __init__(
        self,
        documents: Sequence[Document],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        stemmer: str | None = "english",
        stopwords: str | None = "en",
        method: str = "lucene",
    ):
        bm25s = _import_bm25s()

        # A DocStore stays on disk (row -> document lookups); anything else is copied into a list.
        self.documents: Sequence[Document] = documents if isinstance(documents, DocStore) else list(documents)
        self.params = {"k1": k1, "b": b, "stemmer": stemmer, "stopwords": stopwords, "method": method}
        self._stemmer = _make_stemmer(stemmer)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method=method)
        self._indexed = False
        if len(self.documents):
            tokenized = self._tokenized_corpus()
            # Documents with no indexable token (empty, stopwords, one-letter words) leave nothing to
            # search, and bm25s cannot index an empty vocabulary: every query then finds nothing.
            if tokenized.vocab:
                self._bm25.index(tokenized, show_progress=False)
                self._indexed = True

    def __len__(self) -> int:
        return len(self.documents)

    # PyStemmer's stemmer is a C object that neither pickles nor deep-copies; it is rebuilt from
    # `params`, so a retriever (and a Search-v0 env holding one) survives pickle and deepcopy.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_stemmer", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stemmer = _make_stemmer(self.params["stemmer"])

    def _tokenized_corpus(self, chunk_size: int = TOKENIZE_CHUNK) -> Any:
        """Token ids of every document (title + text), tokenized chunk by chunk into one vocabulary."""
        from bm25s.tokenization import Tokenized

        vocabulary: dict[str, int] = {}
        ids: list[list[int]] = []
        for start in range(0, len(self.documents), chunk_size):
            chunk = self.documents[start : start + chunk_size]
            tokenized = self._tokenize([f"{d.title} {d.text}" for d in chunk], return_ids=True)
            if len(chunk) == len(self.documents):
                return tokenized  # one chunk: its vocabulary is the whole vocabulary
            remap = [0] * len(tokenized.vocab)
            for token, local_id in tokenized.vocab.items():
                remap[local_id] = vocabulary.setdefault(token, len(vocabulary))
            ids.extend([remap[token_id] for token_id in doc_ids] for doc_ids in tokenized.ids)
        return Tokenized(ids=ids, vocab=vocabulary)

    def _tokenize(self, texts: list[str], *, return_ids: bool) -> Any:
        bm25s = _import_bm25s()

        return bm25s.tokenize(
            texts,
            stopwords=self.params["stopwords"] or [],
            stemmer=self._stemmer,
            return_ids=return_ids,
            show_progress=False,
        )

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` hits per query, best first (ties broken by bm25s's order, deterministic)."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        results: list[list[Hit]] = [[] for _ in queries]
        k = min(int(k), len(self.documents))
        if k <= 0 or not queries or not self._indexed:
            return results
        vocabulary = self._bm25.vocab_dict
        query_tokens = self._tokenize([q if isinstance(q, str) else "" for q in queries], return_ids=False)
        known = [[t for t in tokens if t in vocabulary and t != ""] for tokens in query_tokens]
        todo = [i for i, tokens in enumerate(known) if tokens]
        if not todo:
            return results
        indices, scores = self._bm25.retrieve([known[i] for i in todo], k=k, show_progress=False, n_threads=1)
        for row, query_index in enumerate(todo):
            hits = []
            for doc_index, score in zip(indices[row].tolist(), scores[row].tolist()):
                if score <= 0.0:
                    continue
                doc = self.documents[doc_index]
                hits.append(Hit(doc.doc_id, float(score), doc.title, doc.text))
            results[query_index] = hits
        return results

    # --- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write a ToolGym index directory: bm25s's matrices, the document store and the manifest."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        docstore = save_documents(self.documents, directory)
        if self._indexed:
            self._bm25.save(str(directory), show_progress=False)
        write_manifest(
            directory,
            backend=BACKEND_NAME,
            params=self.params,
            n_documents=len(self.documents),
            docstore=docstore,
            indexed_terms=self._indexed,
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = False, verify: bool | None = None) -> BM25Retriever:
        """Load an index written by `save`; refuses another backend's index or changed documents.

        `mmap=True` leaves bm25s's score matrix on disk (for indexes larger than memory); `verify`
        re-hashes the document store (None: when it is under 1 GiB).
        """
        bm25s = _import_bm25s()

        directory = Path(directory)
        manifest = read_manifest(directory, expect_backend=BACKEND_NAME)
        store = DocStore(directory, record=manifest.get("docstore"), verify=verify)
        if len(store) != manifest.get("n_documents"):
            raise ValueError(
                f"{directory / DOCUMENTS_FILE} holds {len(store)} documents, the manifest {manifest.get('n_documents')}"
            )
        retriever = cls.__new__(cls)
        retriever.documents = store
        retriever.params = dict(manifest["params"])
        retriever._stemmer = _make_stemmer(retriever.params["stemmer"])
        retriever._indexed = bool(manifest.get("indexed_terms", len(store) > 0))
        if retriever._indexed:
            retriever._bm25 = bm25s.BM25.load(str(directory), mmap=mmap)
        else:
            retriever._bm25 = bm25s.BM25(k1=retriever.params["k1"], b=retriever.params["b"])
        logger.info("loaded bm25s index of %d documents from %s", len(store), directory)
        return retriever
