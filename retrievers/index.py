"""Index directories: build one from a corpus, or open one as a Retriever.

An index directory holds the backend's files, a document store (`docstore.py`) and a manifest
(`manifest.py`). Which backends have an index folder, and how each writes and loads one, comes from
the backend table (`backends.py`). `build_index` writes into a temporary sibling folder and
renames it at the end, so a failed or interrupted build never leaves a half-written index behind
or touches an existing one.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document, Retriever

from .backends import INDEX_BACKENDS, index_backend
from .manifest import MANIFEST_FILE, check_corpus, read_manifest, update_manifest

logger = logging.getLogger(__name__)


def load_index(
    directory: str | Path, expect_backend: str | None = None, corpus_path: str | Path | None = None, **options: Any
) -> Retriever:
    """Open the index in `directory` as a Retriever, dispatching on its manifest's backend.

    `expect_backend` and `corpus_path` make a mismatch an error instead of a silent surprise;
    `options` go to the backend's `load` (e.g. `threads`, `heap` for pyserini, `device` for faiss).
    """
    manifest = read_manifest(directory, expect_backend)
    if corpus_path is not None:
        check_corpus(manifest, corpus_path, directory)
    return index_backend(manifest["backend"]).index_class().load(directory, **options)


# --- building -------------------------------------------------------------------------------------


def _progress_documents(documents: Iterable[Document], description: str, enabled: bool) -> Iterator[Document]:
    if not enabled:
        yield from documents
        return
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=None)
        for count, doc in enumerate(documents, start=1):
            yield doc
            if count % 2048 == 0:
                progress.update(task, completed=count)


@contextmanager
def _status(message: str, enabled: bool) -> Iterator[None]:
    """A rich spinner with `message` while a step without its own progress runs."""
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / MANIFEST_FILE).is_file():
        raise FileExistsError(f"{out_dir} is not empty and is not a ToolGym index; choose an empty or new --out folder")
    if not overwrite:
        raise FileExistsError(f"{out_dir} already holds an index; pass overwrite=True (--overwrite) to replace it")


def build_index(
    corpus_path: str | Path,
    backend: str,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    corpus_format: str | None = None,
    duplicate_ids: str = "error",
    **params: Any,
) -> dict[str, Any]:
    """Index the corpus at `corpus_path` with `backend` into `out_dir`; returns the manifest.

    `duplicate_ids` ("error" or "warn") is what a repeated document id does (see `iter_documents`).

    `params` are the backend's: bm25s `k1, b, stemmer, stopwords, method`; pyserini `k1, b,
    threads, heap, store_docvectors`; faiss `encoder` (a spec such as "st:minilm") plus its index options.
    """
    from .corpus import corpus_checksum, corpus_file, detect_format, iter_documents
    from .docstore import DocStoreWriter

    if backend not in INDEX_BACKENDS:
        raise ValueError(f"unknown index backend {backend!r}; expected one of {INDEX_BACKENDS}")
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    corpus_format = corpus_format or detect_format(corpus_path)
    source = corpus_file(corpus_path)
    corpus = {
        "path": str(Path(corpus_path).resolve()),
        "format": corpus_format,
        "bytes": source.stat().st_size,
        "sha256": corpus_checksum(corpus_path),
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.building-{time.time_ns()}"
    start = time.perf_counter()
    try:
        with DocStoreWriter(staging) as writer:
            for doc in _progress_documents(
                iter_documents(corpus_path, format=corpus_format, duplicate_ids=duplicate_ids),
                "reading corpus",
                progress,
            ):
                writer.add(doc)
            docstore_record = writer.close()
        logger.info("stored %d documents from %s", docstore_record["n_documents"], corpus_path)
        _build_backend(backend, staging, docstore_record, params, progress)
        update_manifest(staging, corpus=corpus, build_seconds=round(time.perf_counter() - start, 3))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("built %s index of %s in %.1f s at %s", backend, corpus_path, time.perf_counter() - start, out_dir)
    return read_manifest(out_dir)


def _build_backend(
    backend: str, directory: Path, docstore_record: dict, params: dict[str, Any], progress: bool
) -> None:
    from .docstore import DocStore

    entry = index_backend(backend)
    store = DocStore(directory, record=docstore_record, verify=False)
    try:
        message = f"indexing {len(store):,} documents with {backend}…"
        with _status(message, progress and not entry.reports_progress):
            entry.write_index(store, directory, params, progress)
    finally:
        store.close()


__all__ = ["build_index", "load_index"]
