"""Training records for the retrieval models: a query, its positive passage, hard negatives, a source.

Both trainers read these plain records and nothing else, so any dataset feeds them once a converter
writes its rows as JSON Lines of

    {"query": "...", "positive": "...", "negatives": ["...", ...], "source": "scifact"}

`source` groups records into single-dataset batches (llm2vec's convention, which the embedder paper
follows: in-batch negatives from one dataset are harder and never trivially off-topic). The BEIR
converter lives here because BEIR reading is a retriever concern; HotpotQA rows are converted next
to the HotpotQA readers (toolgym.evals), which this package must not import.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolgym.retriever_contract import Document


@dataclass(frozen=True)
class TrainingRecord:
    """One (query, positive, negatives) example from one source dataset."""

    query: str
    positive: str
    negatives: tuple[str, ...] = field(default_factory=tuple)
    source: str = "default"


def record_from_dict(row: dict, line: int = 0) -> TrainingRecord:
    """A record from one JSON object, with an error naming the line and the missing or bad field."""
    if not isinstance(row, dict):
        raise ValueError(f"line {line}: a training record must be a JSON object, got {type(row).__name__}")
    for key in ("query", "positive"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ValueError(f"line {line}: field {key!r} must be a non-empty string (got {row.get(key)!r})")
    negatives = row.get("negatives", [])
    if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
        raise ValueError(f"line {line}: field 'negatives' must be a list of strings")
    return TrainingRecord(row["query"], row["positive"], tuple(negatives), str(row.get("source", "default")))


def read_records(path: str | Path) -> list[TrainingRecord]:
    """Records from a JSON Lines file (blank lines skipped)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
                records.append(record_from_dict(row, number))
    if not records:
        raise ValueError(f"{path} holds no training records")
    return records


def write_records(records: Iterable[TrainingRecord], path: str | Path) -> int:
    """Write records as JSON Lines; returns how many were written."""
    count = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            row = asdict(record)
            row["negatives"] = list(record.negatives)
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def passage_string(document: Document) -> str:
    """`title text`, the string the dense encoders embed (encoders.document_text)."""
    return f"{document.title} {document.text}".strip() if document.title else document.text


def records_from_beir(
    folder: str | Path,
    *,
    split: str = "train",
    n_negatives: int = 3,
    negatives: str = "bm25",
    seed: int = 0,
    source: str | None = None,
) -> list[TrainingRecord]:
    """One record per judged (query, relevant document) pair of a BEIR folder's `qrels/<split>.tsv`.

    Negatives are the top BM25 hits that are not judged relevant (`negatives="bm25"`, hard), or
    random corpus documents (`"random"`). Use the train split: training on `test` leaks the benchmark.
    """
    from toolgym.retrievers.evaluation import read_beir_folder

    if negatives not in ("bm25", "random"):
        raise ValueError(f"negatives must be 'bm25' or 'random', got {negatives!r}")
    documents, queries, qrels = read_beir_folder(folder, split)
    by_id = {d.doc_id: d for d in documents}
    rng = random.Random(seed)
    query_ids = sorted(qrels)
    mined = _bm25_candidates(documents, [queries[q] for q in query_ids], n_negatives) if negatives == "bm25" else None
    records = []
    for index, query_id in enumerate(query_ids):
        relevant = {d for d, grade in qrels[query_id].items() if grade > 0 and d in by_id}
        if mined is not None:
            pool = [d for d in mined[index] if d not in relevant][:n_negatives]
        else:
            pool = [d.doc_id for d in rng.sample(documents, min(len(documents), n_negatives + len(relevant)))]
            pool = [d for d in pool if d not in relevant][:n_negatives]
        for doc_id in sorted(relevant):
            records.append(
                TrainingRecord(
                    queries[query_id],
                    passage_string(by_id[doc_id]),
                    tuple(passage_string(by_id[d]) for d in pool),
                    source or Path(folder).name,
                )
            )
    return records


def _bm25_candidates(documents: Sequence[Document], queries: list[str], n_negatives: int) -> list[list[str]]:
    from toolgym.retrievers import build_retriever

    retriever = build_retriever("bm25s", documents)
    return [[hit.doc_id for hit in hits] for hits in retriever.search(queries, n_negatives + 8)]


def source_batches(
    records: Sequence[TrainingRecord], batch_size: int, *, seed: int = 0, drop_last: bool = True
) -> Iterator[list[TrainingRecord]]:
    """Shuffled batches, each drawn from a single `source`; the order of sources is shuffled too."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(seed)
    by_source: dict[str, list[TrainingRecord]] = {}
    for record in records:
        by_source.setdefault(record.source, []).append(record)
    batches = []
    for group in by_source.values():
        group = list(group)
        rng.shuffle(group)
        for start in range(0, len(group), batch_size):
            batch = group[start : start + batch_size]
            if len(batch) == batch_size or (batch and not drop_last):
                batches.append(batch)
    rng.shuffle(batches)
    yield from batches


__all__ = [
    "TrainingRecord",
    "passage_string",
    "read_records",
    "record_from_dict",
    "records_from_beir",
    "source_batches",
    "write_records",
]
