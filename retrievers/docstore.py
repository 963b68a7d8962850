"""On-disk document store: internal row -> Document in O(1), without loading the corpus text.

Every on-disk backend ranks *rows* (bm25s and faiss return row numbers; the Lucene index stores
the row as its document id), and the store turns a row back into the original id, title and text.

Layout in the index folder:
- `documents.jsonl`: one `{"id", "title", "text"}` line per row, in row order (readable by any
  tool, and itself a valid corpus for `iter_documents`);
- `documents.offsets.npy`: int64 byte offsets, n + 1 of them, opened as a numpy memmap.

Lookups slice a read-only `mmap` of the JSONL file, so they are thread-safe and the OS page cache,
not the Python heap, holds whatever text is hot.
"""

from __future__ import annotations

import array
import hashlib
import json
import logging
import mmap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.retriever_contract import Document

logger = logging.getLogger(__name__)

DOCUMENTS_FILE = "documents.jsonl"
OFFSETS_FILE = "documents.offsets.npy"
# Stores up to this size are re-hashed on open by default; above it only the size is checked.
VERIFY_LIMIT_BYTES = 1 << 30


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DocStoreWriter:
    """Appends documents to a new store; `close()` writes the offsets and returns the store's record."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.directory / DOCUMENTS_FILE, "wb")  # noqa: SIM115 - closed in `close`
        self._digest = hashlib.sha256()
        self._offsets = array.array("q", [0])  # 8 bytes per document, not a Python int each
        self._position = 0

    def add(self, doc: Document) -> int:
        """Write one document; returns its row."""
        record = {"id": doc.doc_id, "title": doc.title, "text": doc.text}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        self._handle.write(line)
        self._digest.update(line)
        self._position += len(line)
        self._offsets.append(self._position)
        return len(self._offsets) - 2

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def close(self) -> dict[str, Any]:
        """Flush both files; the returned record goes into the index manifest."""
        self._handle.close()
        np.save(self.directory / OFFSETS_FILE, np.frombuffer(self._offsets, dtype=np.int64))
        return {
            "file": DOCUMENTS_FILE,
            "n_documents": len(self),
            "bytes": self._position,
            "sha256": self._digest.hexdigest(),
        }

    def __enter__(self) -> DocStoreWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._handle.closed:
            self._handle.close()


class DocStore(Sequence[Document]):
    """Read-only row -> Document lookups over a store written by `DocStore.write` / `DocStoreWriter`."""

    def __init__(self, directory: str | Path, *, record: dict[str, Any] | None = None, verify: bool | None = None):
        """Open the store in `directory`; `record` (from the manifest) is checked: size always, SHA-256
        when `verify` is True (None: only for stores under VERIFY_LIMIT_BYTES)."""
        self.directory = Path(directory)
        path, offsets_path = self.directory / DOCUMENTS_FILE, self.directory / OFFSETS_FILE
        for required in (path, offsets_path):
            if not required.is_file():
                raise FileNotFoundError(f"document store file {required} is missing; rebuild the index")
        size = path.stat().st_size
        if record is not None:
            self._check(path, size, record, verify)
        # A plain ndarray view of the memmap: still backed by the file, but 1.5× faster to index.
        self.offsets = np.asarray(np.load(offsets_path, mmap_mode="r"))
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or int(self.offsets[-1]) != size:
            raise ValueError(
                f"{path} ({size} bytes) does not match {OFFSETS_FILE}; the store is damaged, rebuild the index"
            )
        self._record = record
        self._handle = open(path, "rb")  # noqa: SIM115 - lives as long as the store
        self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    @staticmethod
    def _check(path: Path, size: int, record: dict[str, Any], verify: bool | None) -> None:
        if record.get("bytes") != size:
            raise ValueError(
                f"{path} is {size} bytes but the index recorded {record.get('bytes')}: the documents no longer match "
                "the checksum recorded at index time; rebuild the index"
            )
        if verify is None:
            verify = size <= VERIFY_LIMIT_BYTES
        if verify and file_sha256(path) != record.get("sha256"):
            raise ValueError(f"{path} does not match the checksum recorded at index time; rebuild the index")

    @classmethod
    def write(cls, documents: Iterable[Document], directory: str | Path) -> tuple[DocStore, dict[str, Any]]:
        """Write `documents` (streamed once) into `directory`; returns the open store and its record."""
        with DocStoreWriter(directory) as writer:
            for doc in documents:
                writer.add(doc)
            record = writer.close()
        return cls(directory, record=record, verify=False), record

    @property
    def record(self) -> dict[str, Any]:
        """The manifest's description of this store (hashed from disk the first time if not given)."""
        if self._record is None:
            path = self.directory / DOCUMENTS_FILE
            self._record = {
                "file": DOCUMENTS_FILE,
                "n_documents": len(self),
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
            }
        return self._record

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _read(self, row: int) -> Document:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        record = json.loads(self._map[start:end].decode("utf-8", "surrogatepass"))
        return Document(record["id"], record["title"], record["text"])

    def __getitem__(self, row: int) -> Document:  # type: ignore[override]
        if isinstance(row, slice):
            return [self._read(i) for i in range(*row.indices(len(self)))]  # type: ignore[return-value]
        row = int(row)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} out of range for a store of {len(self)} documents")
        return self._read(row)

    def __iter__(self) -> Iterator[Document]:
        for row in range(len(self)):
            yield self._read(row)

    def close(self) -> None:
        """Release the memory map and file handle."""
        if self._map is not None:
            self._map.close()
            self._map = None
        self._handle.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": str(self.directory)}  # reopen in the child: maps and handles do not pickle

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"])  # type: ignore[misc]


def save_documents(documents: Sequence[Document], directory: str | Path) -> dict[str, Any]:
    """Make `directory` hold a store of `documents`; returns its manifest record.

    A backend's `save` calls this: a store already in `directory` (the index was built there) is
    reused as is, anything else (a list, a store elsewhere) is written out.
    """
    directory = Path(directory)
    if isinstance(documents, DocStore) and documents.directory.resolve() == directory.resolve():
        return documents.record
    return DocStore.write(documents, directory)[1]


__all__ = ["DOCUMENTS_FILE", "OFFSETS_FILE", "DocStore", "DocStoreWriter", "file_sha256", "save_documents"]
