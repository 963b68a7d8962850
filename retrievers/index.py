"""Index directories: build one from a corpus, record how, and refuse to load a mismatched one.

An index directory holds the backend's files, a document store (`docstore.py`) and a manifest,
`toolgym_index.json`:

    {"format": "toolgym-index", "format_version": 1, "backend": "bm25s",
     "params": {"k1": 0.9, ...}, "encoder": null | {"spec": "st:minilm", ...},
     "n_documents": 5183, "docstore": {"file", "bytes", "sha256", "n_documents"},
     "corpus": {"path", "sha256", "bytes", "format"} | null, "toolgym_version": "0.1.0", ...}

Backends plug in with `save(directory)` (which calls `write_manifest`) and a classmethod
`load(directory, **options)` (which calls `read_manifest(directory, expect_backend=NAME)`).
`build_index` writes into a temporary sibling folder and renames it at the end, so a failed or
interrupted build never leaves a half-written index behind or touches an existing one.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document, Retriever

logger = logging.getLogger(__name__)

MANIFEST_FILE = "toolgym_index.json"
FORMAT_NAME = "toolgym-index"
FORMAT_VERSION = 1
INDEX_BACKENDS: tuple[str, ...] = ("bm25s", "pyserini", "faiss")
_EXTRA_HINT = 'pip install "toolgym[retrieval]"'


class IndexMismatchError(ValueError):
    """The index exists but is not the one asked for (another backend, another corpus)."""


class IndexFormatError(ValueError):
    """The folder is not a readable ToolGym index (missing or corrupt manifest)."""


def _toolgym_version() -> str:
    import toolgym

    return toolgym.__version__


def write_manifest(
    directory: str | Path,
    *,
    backend: str,
    params: dict[str, Any],
    n_documents: int,
    docstore: dict[str, Any] | None,
    encoder: dict[str, Any] | None = None,
    corpus: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the manifest of the index in `directory` (called by each backend's `save`)."""
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backend": backend,
        "params": params,
        "encoder": encoder,
        "n_documents": int(n_documents),
        "docstore": docstore,
        "corpus": corpus,
        "toolgym_version": _toolgym_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    path = Path(directory) / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def update_manifest(directory: str | Path, **fields: Any) -> dict[str, Any]:
    """Add or replace top-level fields of an existing manifest (e.g. the corpus record after a build)."""
    manifest = read_manifest(directory)
    manifest.update(fields)
    (Path(directory) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return manifest


def read_manifest(directory: str | Path, expect_backend: str | None = None) -> dict[str, Any]:
    """The manifest of the index in `directory`; a clear error if it is missing, corrupt or another backend's."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"index directory {str(directory)!r} does not exist; build one with `toolgym index build`"
        )
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {MANIFEST_FILE}, so it is not a ToolGym index (or its build did not finish); "
            "build one with `toolgym index build`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{path} is corrupt ({exc}); rebuild the index") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("backend"), str):
        raise IndexFormatError(f"{path} is not a ToolGym index manifest (no 'backend' field); rebuild the index")
    version = manifest.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{path} has format version {version!r}; this ToolGym reads version {FORMAT_VERSION}")
    if expect_backend is not None and manifest["backend"] != expect_backend:
        raise IndexMismatchError(
            f"{directory} holds a {manifest['backend']!r} index, not {expect_backend!r}; "
            f"load it with backend {manifest['backend']!r} or rebuild it with --backend {expect_backend}"
        )
    return manifest


def check_corpus(manifest: dict[str, Any], corpus_path: str | Path, directory: str | Path) -> None:
    """Raise IndexMismatchError unless the index was built from exactly the bytes at `corpus_path`."""
    from .corpus import corpus_checksum

    recorded = manifest.get("corpus") or {}
    if not recorded.get("sha256"):
        raise IndexMismatchError(
            f"{directory} records no corpus checksum (it was saved from in-memory documents), so it cannot be "
            f"checked against {str(corpus_path)!r}; rebuild it with `toolgym index build --corpus {corpus_path}`"
        )
    actual = corpus_checksum(corpus_path)
    if actual != recorded["sha256"]:
        raise IndexMismatchError(
            f"corpus {str(corpus_path)!r} (sha256 {actual[:12]}…) is not the corpus {directory} was built from "
            f"({recorded.get('path')!r}, sha256 {recorded['sha256'][:12]}…); rebuild the index"
        )


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
    backend = manifest["backend"]
    return _backend_class(backend).load(directory, **options)


def _backend_class(backend: str) -> Any:
    if backend == "bm25s":
        from .bm25 import BM25Retriever

        return BM25Retriever
    if backend == "pyserini":
        from .pyserini_backend import PyseriniRetriever

        return PyseriniRetriever
    if backend == "faiss":
        try:
            from .dense import FaissRetriever
        except ImportError as exc:
            raise ImportError(f"the faiss backend needs faiss and an encoder library: {_EXTRA_HINT} ({exc})") from exc
        return FaissRetriever
    raise IndexMismatchError(f"unknown index backend {backend!r}; expected one of {INDEX_BACKENDS}")


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
    **params: Any,
) -> dict[str, Any]:
    """Index the corpus at `corpus_path` with `backend` into `out_dir`; returns the manifest.

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
                iter_documents(corpus_path, format=corpus_format), "reading corpus", progress
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

    store = DocStore(directory, record=docstore_record, verify=False)
    try:
        if backend == "bm25s":
            from .bm25 import BM25Retriever

            with _status(f"tokenizing and indexing {len(store):,} documents with bm25s…", progress):
                BM25Retriever(store, **params).save(directory)
        elif backend == "pyserini":
            from .pyserini_backend import PyseriniRetriever

            PyseriniRetriever.build(store, directory, progress=progress, **params)
        else:
            _build_faiss(store, directory, params)
    finally:
        store.close()


def _build_faiss(store: Any, directory: Path, params: dict[str, Any]) -> None:
    params = dict(params)
    spec = params.pop("encoder", None)
    if not spec:
        raise ValueError('the faiss backend needs an encoder spec, e.g. encoder="st:minilm" (--encoder st:minilm)')
    try:
        from .dense import FaissRetriever
    except ImportError as exc:
        raise ImportError(f"the faiss backend needs faiss and an encoder library: {_EXTRA_HINT} ({exc})") from exc
    FaissRetriever(store, spec, **params).save(directory)  # params: index_type, ..., and encoder options


__all__ = [
    "INDEX_BACKENDS",
    "MANIFEST_FILE",
    "IndexFormatError",
    "IndexMismatchError",
    "build_index",
    "check_corpus",
    "load_index",
    "read_manifest",
    "update_manifest",
    "write_manifest",
]
