"""Corpus readers: every supported file layout streamed as `Document`s, in constant memory.

Formats (detected from the path and the first records, which must agree; see `detect_format`):

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

import array
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.data import JsonLinesError, iter_numbered_jsonl
from toolgym.retriever_contract import Document

from .json_stream import JsonStream

FORMATS: tuple[str, ...] = ("jsonl", "beir", "json-array", "hotpotqa", "hotpotqa-corpus")
DETECT_SAMPLE = 100
"""Records read to detect a format; all of them must agree."""
EXPECTED_FIELDS = (
    "Expected JSONL (or a JSON array) of records with 'id' (or '_id' / 'docid') and 'text' / 'contents' / "
    "'title', a BEIR folder with corpus.jsonl, HotpotQA rows ('question' + 'context', or IRCoT's 'contexts'), "
    "or one {title: [sentences]} object."
)
DUPLICATE_ID_POLICIES: tuple[str, ...] = ("error", "warn")
_CHUNK = 1 << 20
_ID_KEYS = ("id", "_id", "docid")
_DOCUMENT_FIELDS = frozenset({"title", "text", "contents"})


logger = logging.getLogger(__name__)


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
    """(record, "file:line") per non-empty line (`toolgym.data`'s reader, with corpus errors)."""
    try:
        for line_number, record in iter_numbered_jsonl(path):
            yield record, f"{path}:{line_number}"
    except JsonLinesError as exc:
        raise CorpusFormatError(str(exc)) from exc


def _iter_json(path: Path) -> Iterator[tuple[str | None, Any, str]]:
    """The elements of the file's one top-level array or object; anything after it is an error."""
    stream = JsonStream(path, CorpusFormatError)
    try:
        yield from stream.items()
        if stream.peek() != "":
            raise CorpusFormatError(
                f"{stream.where()}: unexpected data after the top-level JSON value; a JSON corpus holds one array "
                "or object, a JSONL corpus one record per line"
            )
    finally:
        stream.close()


# --- format detection and the public reader ----------------------------------------------------------


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        while True:
            char = handle.read(1)
            if not char or not char.isspace():
                return char


def _record_kind(record: Any) -> str:
    """'hotpotqa' (a HotpotQA row), 'document' (a record with an id field) or 'unknown'."""
    if isinstance(record, dict) and ("contexts" in record or ("context" in record and "question" in record)):
        return "hotpotqa"
    if isinstance(record, dict) and any(record.get(key) is not None for key in _ID_KEYS):
        return "document"
    return "unknown"


def _unrecognised(file: Path, where: str, record: Any, what: str) -> CorpusFormatError:
    keys = sorted(record)[:8] if isinstance(record, dict) else type(record).__name__
    return CorpusFormatError(
        f"{file}: cannot tell the corpus format: {what} ({where} has {keys}). {EXPECTED_FIELDS} "
        f"Or pass the format explicitly (--format / corpus_format=) with one of {FORMATS}."
    )


def _format_of_records(file: Path, sampled: list[tuple[Any, str]], document_format: str) -> str:
    """The format that every sampled record agrees on; an unrecognised or mixed sample is an error."""
    kinds = [_record_kind(record) for record, _ in sampled]
    if "hotpotqa" in kinds and "document" in kinds:
        first = kinds.index("document")
        raise _unrecognised(file, sampled[first][1], sampled[first][0], "it mixes HotpotQA rows and corpus records")
    if "hotpotqa" in kinds:
        return "hotpotqa"
    if "document" in kinds:
        return document_format  # a record without an id further on is named, with its line, by the reader
    raise _unrecognised(file, sampled[0][1], sampled[0][0], f"none of the first {len(sampled)} records has an id")


def _sample_lines(file: Path) -> tuple[list[tuple[Any, str]], int, bool]:
    """(parsed records of the first DETECT_SAMPLE non-empty lines, non-empty lines seen, whether one failed)."""
    sampled: list[tuple[Any, str]] = []
    lines = 0
    with open(file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            lines += 1
            if lines > DETECT_SAMPLE:
                break
            try:
                sampled.append((json.loads(line), f"{file}:{line_number}"))
            except (json.JSONDecodeError, RecursionError):
                return sampled, lines, True
    return sampled, lines, False


def _format_of_one_object(file: Path, one_line: dict[str, Any] | None) -> str:
    """A file holding one JSON object: one corpus record on one line, or HippoRAG's {title: [sentences]}."""
    if one_line is not None and _record_kind(one_line) != "unknown":
        return "hotpotqa" if _record_kind(one_line) == "hotpotqa" else "jsonl"
    items = [(key, value) for key, value, _ in itertools.islice(_iter_json(file), DETECT_SAMPLE)]
    keys = {key for key, _ in items}
    if keys & set(_ID_KEYS) or any(key in _DOCUMENT_FIELDS and isinstance(value, str) for key, value in items):
        raise _unrecognised(
            file, f"{file}:1", dict(items), "one JSON object that looks like a corpus record, not {title: [sentences]}"
        )
    if all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for _, v in items):
        return "hotpotqa-corpus"
    raise _unrecognised(file, f"{file}:1", dict(items), "one JSON object whose values are not paragraphs")


def detect_format(path: str | Path) -> str:
    """Which of FORMATS the corpus at `path` is in, or CorpusFormatError naming the expected fields.

    Decided from the path and up to DETECT_SAMPLE records, which must agree: never from the first
    record alone, so a JSONL file whose records lack an id is an error, not a HippoRAG object.
    """
    path = Path(path)
    if path.is_dir():
        corpus_file(path)
        return "beir"
    file = corpus_file(path)
    first = _first_char(file)
    if first == "":
        return "jsonl"  # an empty file is an empty corpus
    if first == "[":
        sampled = [(element, where) for _, element, where in itertools.islice(_iter_json(file), DETECT_SAMPLE)]
        return _format_of_records(file, sampled, "json-array") if sampled else "json-array"
    if first != "{":
        raise CorpusFormatError(f"{file}: not a JSON / JSONL corpus (starts with {first!r}). {EXPECTED_FIELDS}")
    sampled, lines, failed = _sample_lines(file)
    if not sampled:  # the first line is not JSON on its own: one pretty-printed object
        return _format_of_one_object(file, None)
    if lines == 1 and not failed:
        return _format_of_one_object(file, sampled[0][0] if isinstance(sampled[0][0], dict) else None)
    return _format_of_records(file, sampled, "jsonl")


def _read_documents(file: Path, format: str) -> Iterator[Document]:
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


def iter_documents(path: str | Path, *, format: str | None = None, duplicate_ids: str = "error") -> Iterator[Document]:
    """Stream the documents of a corpus file or BEIR folder (any of FORMATS; detected when None).

    Two records with the same id make hits ambiguous (which one did the agent read?), so they are
    counted once the stream ends: `duplicate_ids="error"` raises DuplicateIdError naming examples,
    `"warn"` logs the count and keeps every record. HotpotQA rows are exempt: a paragraph shared by
    several questions is one document by design (kept once, under its title).
    """
    if duplicate_ids not in DUPLICATE_ID_POLICIES:
        raise ValueError(f"duplicate_ids must be one of {DUPLICATE_ID_POLICIES}, got {duplicate_ids!r}")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"unknown corpus format {format!r}; expected one of {FORMATS}")
    file = corpus_file(path)
    if format == "hotpotqa":
        yield from _read_documents(file, format)
        return
    ids = _IdCounter()
    for doc in _read_documents(file, format):
        ids.add(doc.doc_id)
        yield doc
    duplicated = ids.duplicated_digests()
    if not duplicated:
        return
    examples, extra_records = _duplicate_examples(file, format, duplicated)
    message = (
        f"{file}: {extra_records:,} records repeat the id of an earlier record ({len(examples):,} ids affected, "
        f"e.g. {sorted(examples)[:3]})"
    )
    if duplicate_ids == "error":
        raise DuplicateIdError(
            f"{message}; give every document a unique id, or accept them with --allow-duplicate-ids "
            "(duplicate_ids='warn'), which keeps every record"
        )
    logger.warning("%s; keeping every record", message)


class DuplicateIdError(CorpusFormatError):
    """Two or more corpus records share a document id."""


class _IdCounter:
    """A 64-bit hash of every id (168 MB for 21M passages, where a set of the ids would take GBs).

    Python's own string hash is used: it is salted per process, which is fine because both passes
    (this one and `_duplicate_examples`, which confirms the exact ids) run in the same process.
    """

    def __init__(self) -> None:
        self._digests = array.array("Q")

    @staticmethod
    def digest(doc_id: str) -> int:
        return hash(doc_id) & 0xFFFF_FFFF_FFFF_FFFF

    def add(self, doc_id: str) -> None:
        self._digests.append(self.digest(doc_id))

    def duplicated_digests(self) -> set[int]:
        if len(self._digests) < 2:
            return set()
        ordered = np.sort(np.frombuffer(self._digests, dtype=np.uint64))
        return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _duplicate_examples(file: Path, format: str, duplicated: set[int]) -> tuple[set[str], int]:
    """A second pass over the corpus, only when digests repeat: the repeated ids (exactly) and the
    number of records beyond the first of each."""
    counts: dict[str, int] = {}
    for doc in _read_documents(file, format):
        if _IdCounter.digest(doc.doc_id) in duplicated:
            counts[doc.doc_id] = counts.get(doc.doc_id, 0) + 1
    repeated = {doc_id: n for doc_id, n in counts.items() if n > 1}
    return set(repeated), sum(n - 1 for n in repeated.values())


__all__ = [
    "DUPLICATE_ID_POLICIES",
    "FORMATS",
    "CorpusFormatError",
    "DuplicateIdError",
    "corpus_checksum",
    "corpus_file",
    "detect_format",
    "document_from_record",
    "iter_documents",
]
