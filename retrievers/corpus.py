"""Corpus readers: every supported file layout streamed as `Document`s, in constant memory.

Formats (detected from the path and the first record, see `detect_format`):

- `jsonl`: one record per line with `id` / `_id` / `docid`, `title`, and `text` or `contents`.
  FlashRAG / Search-R1 wiki corpora put `"title\\ntext"` (the title in quotes in DPR's wiki-18)
  into `contents`; the first line becomes the title *verbatim*, quotes included, because that is
  what Search-R1's retrieval server shows a model (`Doc 1(Title: "Evan Morris") ...`), and the
  rest the text.
- `beir`: a BEIR folder; its `corpus.jsonl` is read as above (`_id`, `title`, `text`).
- `json-array`: a JSON array of the same records (read element by element, never whole).
- `hotpotqa`: HotpotQA rows, original format (`context` = [[title, [sentences]]], a JSON array
  or JSONL) or IRCoT-processed (`contexts` with `paragraph_text`): every paragraph once, the
  Wikipedia title as document id (titles are unique in HotpotQA; Search-v0 uses the same ids).
- `hotpotqa-corpus`: HippoRAG's corpus object `{title: [sentences]}`.

Why streaming: a Search-R1 wiki-18 corpus is 21M passages / 14 GB; indexing must not hold it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolgym.retriever_contract import Document

FORMATS: tuple[str, ...] = ("jsonl", "beir", "json-array", "hotpotqa", "hotpotqa-corpus")
_CHUNK = 1 << 20
_ID_KEYS = ("id", "_id", "docid")


class CorpusFormatError(ValueError):
    """A corpus file or record that cannot be read; the message names the file and line."""


def corpus_file(path: str | Path) -> Path:
    """The file that holds the documents: `path` itself, or `corpus.jsonl` inside a BEIR folder."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "corpus.jsonl"
        if not candidate.is_file():
            raise FileNotFoundError(f"{path} is a folder without corpus.jsonl; expected a BEIR folder or a corpus file")
        return candidate
    if not path.is_file():
        raise FileNotFoundError(f"corpus {str(path)!r} does not exist")
    return path


def corpus_checksum(path: str | Path) -> str:
    """SHA-256 of the corpus file's bytes (streamed), so an index can tell its corpus changed."""
    digest = hashlib.sha256()
    with open(corpus_file(path), "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# --- records -> documents -------------------------------------------------------------------------


def _strip_quotes(title: str) -> str:
    title = title.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        return title[1:-1]
    return title


def document_from_record(record: Any, where: str) -> Document:
    """One corpus record as a Document; `where` ("file:line") goes into every error message."""
    if not isinstance(record, dict):
        raise CorpusFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    doc_id = next((record[key] for key in _ID_KEYS if record.get(key) is not None), None)
    if doc_id is None:
        raise CorpusFormatError(f"{where}: record has no 'id', '_id' or 'docid' field (keys: {sorted(record)[:8]})")
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        raise CorpusFormatError(f"{where}: document id must be a string or integer, got {doc_id!r}")
    title, text = record.get("title"), record.get("text")
    if text is None and record.get("contents") is not None:
        contents = record["contents"]
        if not isinstance(contents, str):
            raise CorpusFormatError(f"{where}: 'contents' must be a string, got {type(contents).__name__}")
        first, newline, rest = contents.partition("\n")
        if title is None and newline:
            title, text = first, rest  # verbatim, quotes included: what Search-R1's server shows as the title
        elif title is not None and newline and _strip_quotes(first) == str(title).strip():
            text = rest
        else:
            text = contents
    for name, value in (("title", title), ("text", text)):
        if value is not None and not isinstance(value, str):
            raise CorpusFormatError(f"{where}: {name!r} must be a string, got {type(value).__name__}")
    if text is None and title is None:
        raise CorpusFormatError(f"{where}: record {doc_id!r} has none of 'text', 'contents' or 'title'")
    return Document(str(doc_id), title or "", text or "")


def _paragraphs_of_row(row: Any, where: str) -> Iterator[Document]:
    """The paragraphs of one HotpotQA row (original or IRCoT), id = Wikipedia title."""
    if not isinstance(row, dict):
        raise CorpusFormatError(f"{where}: expected a HotpotQA row object, got {type(row).__name__}")
    try:
        if "contexts" in row:
            for context in row["contexts"]:
                yield Document(str(context["title"]), str(context["title"]), str(context.get("paragraph_text", "")))
            return
        context = row["context"]
        if isinstance(context, dict):  # Hugging Face layout: {"title": [...], "sentences": [[...], ...]}
            pairs = zip(context["title"], context["sentences"])
        else:
            pairs = ((pair[0], pair[1]) for pair in context)
        for title, sentences in pairs:
            text = "".join(sentences) if isinstance(sentences, list) else str(sentences)
            yield Document(str(title), str(title), text)
    except (KeyError, TypeError, IndexError) as exc:
        raise CorpusFormatError(f"{where}: malformed HotpotQA row ({type(exc).__name__}: {exc})") from exc


# --- streaming JSON ---------------------------------------------------------------------------------


def _iter_jsonl(path: Path) -> Iterator[tuple[Any, str]]:
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"{path}:{line_number}"
            except json.JSONDecodeError as exc:
                raise CorpusFormatError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from exc


class _JsonStream:
    """Reads the elements of one top-level JSON array or object without loading the whole file."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed in `close`
        self._buffer, self._pos, self._eof, self._lines_before = "", 0, False, 0
        self._decoder = json.JSONDecoder()

    def close(self) -> None:
        self._handle.close()

    def where(self) -> str:
        return f"{self.path}:{self._lines_before + self._buffer.count(chr(10), 0, self._pos) + 1}"

    def _fill(self, size: int = _CHUNK) -> bool:
        if self._eof:
            return False
        chunk = self._handle.read(size)
        self._lines_before += self._buffer.count("\n", 0, self._pos)
        self._buffer, self._pos = self._buffer[self._pos :] + chunk, 0
        self._eof = not chunk
        return bool(chunk)

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos].isspace():
                self._pos += 1
            if self._pos < len(self._buffer) or not self._fill():
                return self._buffer[self._pos] if self._pos < len(self._buffer) else ""

    def expect(self, chars: str) -> str:
        char = self.peek()
        if char == "" or char not in chars:
            found = repr(char) if char else "the end of the file"
            raise CorpusFormatError(f"{self.where()}: expected one of {list(chars)}, found {found}")
        self._pos += 1
        return char

    def value(self) -> Any:
        self.peek()
        size = _CHUNK
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
                if end < len(self._buffer) or self._eof:  # a number cut at the buffer's end is not final
                    self._pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise CorpusFormatError(f"{self.where()}: not valid JSON ({exc.msg})") from exc
            size *= 2  # grow the read so a huge value costs O(n log n), not O(n^2)
            self._fill(size)

    def items(self) -> Iterator[tuple[str | None, Any, str]]:
        """(key or None, value, where) for each element of the top-level array or object."""
        opener = self.expect("[{")
        closer = "]" if opener == "[" else "}"
        if self.peek() == closer:
            return
        while True:
            self.peek()  # skip whitespace, so `where` is the element's own line
            where = self.where()
            key = None
            if opener == "{":
                key = self.value()
                if not isinstance(key, str):
                    raise CorpusFormatError(f"{where}: expected an object key")
                self.expect(":")
            yield key, self.value(), where
            if self.expect("," + closer) == closer:
                return


def _iter_json(path: Path) -> Iterator[tuple[str | None, Any, str]]:
    stream = _JsonStream(path)
    try:
        yield from stream.items()
    finally:
        stream.close()


# --- format detection and the public reader ----------------------------------------------------------


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        while True:
            char = handle.read(1)
            if not char or not char.isspace():
                return char


def _first_jsonl_record(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
    return None


def _row_format(record: Any) -> str:
    if isinstance(record, dict) and ("contexts" in record or ("context" in record and "question" in record)):
        return "hotpotqa"
    return "jsonl"


def detect_format(path: str | Path) -> str:
    """Which of FORMATS the corpus at `path` is in (from the path and its first record)."""
    path = Path(path)
    if path.is_dir():
        corpus_file(path)
        return "beir"
    file = corpus_file(path)
    first = _first_char(file)
    if first == "":
        return "jsonl"  # an empty file is an empty corpus
    if first == "[":
        for _, element, _ in _iter_json(file):
            return "hotpotqa" if _row_format(element) == "hotpotqa" else "json-array"
        return "json-array"
    if first != "{":
        raise CorpusFormatError(f"{file}: not a JSON / JSONL corpus (starts with {first!r})")
    record = _first_jsonl_record(file)
    if isinstance(record, dict) and (any(key in record for key in _ID_KEYS) or _row_format(record) == "hotpotqa"):
        return _row_format(record)
    if record is None or all(isinstance(v, (list, str)) for v in record.values()):
        return "hotpotqa-corpus"  # a (pretty-printed or one-line) {title: [sentences]} object
    return "jsonl"  # let the record reader name the missing id field with its line


def iter_documents(path: str | Path, *, format: str | None = None) -> Iterator[Document]:
    """Stream the documents of a corpus file or BEIR folder (any of FORMATS; detected when None)."""
    format = format or detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"unknown corpus format {format!r}; expected one of {FORMATS}")
    file = corpus_file(path)
    if format in ("jsonl", "beir"):
        for record, where in _iter_jsonl(file):
            yield document_from_record(record, where)
    elif format == "json-array":
        for _, record, where in _iter_json(file):
            yield document_from_record(record, where)
    elif format == "hotpotqa-corpus":
        for title, sentences, where in _iter_json(file):
            if isinstance(sentences, list) and all(isinstance(s, str) for s in sentences):
                yield Document(str(title), str(title), "".join(sentences))
            elif isinstance(sentences, str):
                yield Document(str(title), str(title), sentences)
            else:
                raise CorpusFormatError(f"{where}: paragraph {title!r} must be a list of sentences")
    else:
        rows = _iter_json(file) if _first_char(file) == "[" else ((None, r, w) for r, w in _iter_jsonl(file))
        seen: set[str] = set()  # titles only: O(#paragraphs) ids, never the texts
        for _, row, where in rows:
            for doc in _paragraphs_of_row(row, where):
                if doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    yield doc


__all__ = [
    "FORMATS",
    "CorpusFormatError",
    "corpus_checksum",
    "corpus_file",
    "detect_format",
    "document_from_record",
    "iter_documents",
]
