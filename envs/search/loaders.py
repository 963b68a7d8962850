"""Readers for Search-v0's datasets and corpora: one `SearchTask` from any supported row format.

Row formats (detected from their keys, so `reset(options={"task": row})` takes any of them):

- procedural world rows (`world`, `question_index`, `answers`, `supporting_doc_ids`);
- IRCoT-processed HotpotQA (`question_id`, `question_text`, `answers_objects`, `contexts`);
- original HotpotQA (`_id`, `question`, `answer`, `supporting_facts`, `context` [[title, [sents]]]),
  and the Hugging Face `hotpot_qa` layout of the same fields (dict-of-lists context);
- answer-only rows: NQ-open (`question`, `answer` list), FlashRAG (`golden_answers`), HotpotQA
  question lists (`question`, `answer` str). These have no paragraphs, so they need a corpus.

HotpotQA paragraphs use their Wikipedia title as the document id: titles are unique in HotpotQA,
so supporting-document recall means the same thing with a per-question or a shared corpus.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolgym.data import read_records, require_shared_data
from toolgym.extras import require
from toolgym.retriever_contract import Document

from .rows import HOTPOTQA_ROW, IRCOT_ROW, search_row_format

# dataset name -> file under the shared data folder
NAMED_DATASETS: dict[str, str] = {
    "hotpotqa": "hotpotqa/ircot_processed/dev_subsampled.jsonl",
    "hotpotqa:train_sample": "hotpotqa/hipporag_train_sample/hotpotqa_train.json",
    "hotpotqa:question_only": "hotpotqa/question_only/dev.json",
    "nq_open": "nq_open/NQ-open.dev.jsonl",
    "nq_open:efficientqa": "nq_open/NQ-open.efficientqa.dev.1.1.jsonl",
}
# corpus name -> passage collection under the shared data folder (usable as `corpus=<name>`)
NAMED_CORPORA: dict[str, str] = {
    "wiki_passages_sample": "wiki_passages_sample/sample_data.jsonl",
    "hotpotqa_train_corpus": "hotpotqa/hipporag_train_sample/hotpotqa_train_corpus.json",
}


@dataclass
class SearchTask:
    """A question, its gold answers and, when the row carries them, its own paragraphs."""

    task_id: str
    question: str
    answers: list[str]
    row: dict[str, Any]
    documents: list[Document] | None = None
    supporting_doc_ids: list[str] = field(default_factory=list)


def _stable_id(question: str) -> str:
    return "q-" + hashlib.sha1(question.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _as_answers(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    if isinstance(value, (int, float)):
        return [str(value)]
    return []


def parse_row(row: dict[str, Any]) -> SearchTask:
    """Read one data row in any supported format (see the module docstring) into a `SearchTask`."""
    row_format = search_row_format(row)  # TaskRowError naming the field of a malformed row
    if row_format is IRCOT_ROW:
        return _parse_ircot(row)
    if row_format is HOTPOTQA_ROW:
        return _parse_hotpotqa(row)
    return _parse_answer_only(row, supporting=row.get("supporting_doc_ids", []))  # world, NQ-open, FlashRAG


def _parse_ircot(row: dict[str, Any]) -> SearchTask:
    answers = [span for obj in row.get("answers_objects", []) for span in obj.get("spans", [])]
    documents = [Document(c["title"], c["title"], c.get("paragraph_text", "")) for c in row["contexts"]]
    supporting = [c["title"] for c in row["contexts"] if c.get("is_supporting")]
    question = row["question_text"]
    task_id = str(row.get("question_id") or _stable_id(question))
    return SearchTask(task_id, question, answers, row, documents, supporting)


def _parse_hotpotqa(row: dict[str, Any]) -> SearchTask:
    context = row["context"]
    if isinstance(context, dict):  # Hugging Face layout: {"title": [...], "sentences": [[...], ...]}
        pairs = list(zip(context.get("title", []), context.get("sentences", [])))
    else:
        pairs = [(pair[0], pair[1]) for pair in context]
    documents = [Document(title, title, "".join(sentences)) for title, sentences in pairs]
    facts = row.get("supporting_facts", [])
    titles = facts.get("title", []) if isinstance(facts, dict) else [fact[0] for fact in facts]
    question = row["question"]
    task_id = str(row.get("_id") or row.get("id") or _stable_id(question))
    return SearchTask(task_id, question, _as_answers(row.get("answer")), row, documents, list(dict.fromkeys(titles)))


def _parse_answer_only(row: dict[str, Any], supporting: list[str]) -> SearchTask:
    question = str(row["question"])
    answers = _as_answers(row.get("answers", row.get("golden_answers", row.get("answer"))))
    task_id = str(row.get("id") or row.get("_id") or _stable_id(question))
    return SearchTask(task_id, question, answers, row, None, [str(s) for s in supporting])


def load_rows(spec: str, *, split: str = "validation") -> list[dict[str, Any]]:
    """Rows of a dataset given by name (see NAMED_DATASETS), file path, or `hf:<name>[:<config>]`."""
    if spec.startswith("hf:"):
        return _load_hf(spec[3:], split)
    if spec in NAMED_DATASETS:
        return read_records(require_shared_data(NAMED_DATASETS[spec]))
    path = Path(spec)
    if path.is_file():
        return read_records(path)
    raise ValueError(
        f"unknown Search-v0 dataset {spec!r}: use 'procedural', one of {sorted(NAMED_DATASETS)}, "
        "a path to a JSON / JSONL file, or 'hf:<name>[:<config>]'"
    )


def _load_hf(name: str, split: str) -> list[dict[str, Any]]:
    datasets = require("datasets", "hf", "loading 'hf:' datasets")
    repo, _, config = name.partition(":")
    dataset = datasets.load_dataset(repo, config or None, split=split)
    return [dict(row) for row in dataset]


def is_answer_only(spec: str) -> bool:
    """Whether a named dataset carries no paragraphs (so a corpus path is required)."""
    return spec.startswith("nq_open") or spec == "hotpotqa:question_only"


# --- corpora ------------------------------------------------------------------------------------


def document_from_record(record: dict[str, Any], line: int) -> Document:
    """One corpus record: `id`/`_id`, `title`, and `text` or FlashRAG's `contents` ("title\\ntext")."""
    from toolgym.retrievers.corpus import document_from_record as read_record

    return read_record(record, f"corpus record {line}")


def corpus_path(spec: str) -> str:
    """A corpus given by name (see NAMED_CORPORA) or path, as a path."""
    return str(require_shared_data(NAMED_CORPORA[spec])) if spec in NAMED_CORPORA else spec


@lru_cache(maxsize=4)
def load_corpus(spec: str) -> tuple[Document, ...]:
    """Documents of a named corpus, a corpus file or a BEIR folder, in any format
    `toolgym.retrievers.corpus` reads (JSONL, JSON array, BEIR, HotpotQA rows, HippoRAG's
    {title: [sentences]})."""
    from toolgym.retrievers.corpus import iter_documents

    return tuple(iter_documents(corpus_path(spec)))


def shared_documents(rows: list[dict[str, Any]]) -> list[Document]:
    """All paragraphs of a dataset in one list, each title once (the first occurrence wins)."""
    seen: dict[str, Document] = {}
    for row in rows:
        for doc in parse_row(row).documents or []:
            seen.setdefault(doc.doc_id, doc)
    return list(seen.values())
