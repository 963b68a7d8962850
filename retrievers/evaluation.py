"""Retrieval quality: nDCG@k, Recall@k, MRR@10 and MAP@k with pytrec_eval, on BEIR files or any qrels.

The metrics come from `pytrec_eval` (trec_eval's own C code, as BEIR and Pyserini use), never a
hand-rolled formula. Two choices, both stated so numbers can be compared:

- A run gives each hit the score `len(hits) - rank`, so trec_eval ranks exactly the list the
  retriever returned (trec_eval would otherwise re-sort equal backend scores by document id).
- Averages are over every judged query with at least one relevant document; a query the run
  leaves empty counts as 0 (pytrec_eval alone would silently drop it and inflate the mean).

This module knows qrels and runs, never a dataset's own format: HotpotQA supporting-paragraph
recall (which reads HotpotQA rows with the env's loaders) lives in `toolgym.evals.retrieval`.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolgym.extras import require
from toolgym.retriever_contract import Document, Retriever

logger = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (10, 100)
MRR_DEPTH = 10

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


# --- reading BEIR files --------------------------------------------------------------------------


def read_queries(path: str | Path) -> dict[str, str]:
    """Queries by id from BEIR `queries.jsonl` (`_id`/`id`, `text`) or a TSV of `id<TAB>text` lines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"queries file {str(path)!r} does not exist")
    queries: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if path.suffix in (".tsv", ".txt"):
                query_id, _, text = line.rstrip("\n").partition("\t")
                queries[query_id] = text
                continue
            try:
                record = json.loads(line)
                query_id = record.get("_id", record.get("id"))
                text = record.get("text", record.get("query"))
            except (json.JSONDecodeError, AttributeError) as exc:
                raise ValueError(f"{path}:{line_number}: expected a JSON object with '_id' and 'text'") from exc
            if query_id is None or not isinstance(text, str):
                raise ValueError(f"{path}:{line_number}: a query needs '_id' (or 'id') and a string 'text'")
            queries[str(query_id)] = text
    return queries


def read_qrels(path: str | Path) -> Qrels:
    """Relevance judgements from a BEIR qrels TSV (`query-id corpus-id score`, header optional)
    or a TREC qrels file (`qid 0 docid rel`, whitespace separated)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"qrels file {str(path)!r} does not exist")
    qrels: Qrels = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            fields = row if len(row) >= 3 else (row[0].split() if row else [])
            if not fields:
                continue
            if len(fields) == 4:  # TREC: qid iteration docid relevance
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise ValueError(f"{path}:{line_number}: expected 'query-id, corpus-id, score', got {row!r}")
            query_id, doc_id, score = fields
            try:
                relevance = int(float(score))
            except ValueError:
                if line_number == 1:
                    continue  # the BEIR header: query-id corpus-id score
                raise ValueError(f"{path}:{line_number}: relevance {score!r} is not a number") from None
            qrels.setdefault(query_id, {})[doc_id] = relevance
    if not qrels:
        raise ValueError(f"{path} holds no relevance judgements")
    return qrels


# --- running and scoring -------------------------------------------------------------------------


def read_beir_folder(folder: str | Path, split: str = "test") -> tuple[list[Document], dict[str, str], dict]:
    """(documents, queries by id, qrels) of a BEIR folder; only the queries judged in `split` are kept."""
    from .corpus import iter_documents

    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for required in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not required.is_file():
            raise FileNotFoundError(f"{required} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/")
    documents = list(iter_documents(folder, format="beir"))
    qrels = read_qrels(qrels_path)
    all_queries = read_queries(folder / "queries.jsonl")
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        raise ValueError(f"{qrels_path} judges {len(missing)} queries absent from queries.jsonl, e.g. {missing[0]!r}")
    return documents, {q: all_queries[q] for q in qrels}, qrels


def run_queries(
    retriever: Retriever, queries: Mapping[str, str], k: int, *, batch_size: int = 256, progress: bool = False
) -> Run:
    """Search every query (in batches) and return a trec run: {query_id: {doc_id: rank score}}."""
    query_ids = list(queries)
    run: Run = {}
    batches = range(0, len(query_ids), batch_size)
    if progress:
        from rich.progress import track

        batches = track(batches, description="searching", transient=True)
    for start in batches:
        chunk = query_ids[start : start + batch_size]
        for query_id, hits in zip(chunk, retriever.search([queries[q] for q in chunk], k)):
            run.update(ranked_run({query_id: [hit.doc_id for hit in hits[:k]]}))
    return run


def ranked_run(rankings: Mapping[str, Sequence[str]]) -> Run:
    """A trec run from ranked doc-id lists, scored by rank so trec_eval keeps the given order.

    A duplicate id keeps its first (best) rank.
    """
    run: Run = {}
    for query_id, doc_ids in rankings.items():
        ranked = list(dict.fromkeys(doc_ids))
        run[query_id] = {doc_id: float(len(ranked) - rank) for rank, doc_id in enumerate(ranked)}
    return run


def _pytrec_eval() -> Any:
    return require("pytrec_eval", "retrieval", "retrieval evaluation (pytrec-eval-terrier)")


def truncate_run(run: Run, depth: int) -> Run:
    """The `depth` best-scored documents of each query of `run`."""
    return {q: dict(sorted(docs.items(), key=lambda item: -item[1])[:depth]) for q, docs in run.items()}


def evaluate_run(run: Run, qrels: Qrels, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean nDCG@k, Recall@k, MAP@k (each k) and MRR@10 of `run` over the judged queries of `qrels`."""
    pytrec_eval = _pytrec_eval()
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {list(ks)}")
    judged = {q: docs for q, docs in qrels.items() if any(rel > 0 for rel in docs.values())}
    if not judged:
        raise ValueError("the qrels hold no query with a relevant document")
    cut = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cut}", f"recall.{cut}", f"map_cut.{cut}"}
    nonempty = {q: docs for q, docs in run.items() if q in judged and docs}
    per_query = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(nonempty)
    reciprocal = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(truncate_run(nonempty, MRR_DEPTH))
    names = {f"ndcg_cut_{k}": f"ndcg@{k}" for k in ks}
    names.update({f"recall_{k}": f"recall@{k}" for k in ks})
    names.update({f"map_cut_{k}": f"map@{k}" for k in ks})
    metrics = {
        name: sum(per_query.get(q, {}).get(measure, 0.0) for q in judged) / len(judged)
        for measure, name in names.items()
    }
    metrics[f"mrr@{MRR_DEPTH}"] = sum(reciprocal.get(q, {}).get("recip_rank", 0.0) for q in judged) / len(judged)
    return ordered_metrics(metrics)


def ordered_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics by name, then by cut-off as a number (recall@2 before recall@10)."""

    def key(name: str) -> tuple[str, int]:
        base, _, cut = name.partition("@")
        return base, int(cut) if cut.isdigit() else 0

    return {name: metrics[name] for name in sorted(metrics, key=key)}


@dataclass
class RetrievalReport:
    """Metrics of one evaluation, with what was evaluated and how long it took."""

    metrics: dict[str, float]
    n_queries: int
    search_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "n_queries": self.n_queries,
            "search_seconds": round(self.search_seconds, 4),
            **self.extra,
        }


def evaluate_retriever(
    retriever: Retriever,
    queries: Mapping[str, str],
    qrels: Qrels,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> RetrievalReport:
    """Search the judged queries with `retriever` (depth max(ks), at least 10) and score the run."""
    judged = [q for q, docs in qrels.items() if any(rel > 0 for rel in docs.values())]
    missing = [q for q in judged if q not in queries]
    if len(missing) == len(judged):
        raise ValueError(
            f"none of the {len(judged)} judged query ids (e.g. {judged[:3]}) is in the queries file; "
            "are the queries and qrels from the same dataset?"
        )
    if missing:
        logger.warning("%d judged queries have no text in the queries file and score 0", len(missing))
    to_search = {q: queries[q] for q in judged if q in queries}
    depth = max(max(ks), MRR_DEPTH)
    start = time.perf_counter()
    run = run_queries(retriever, to_search, depth, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - start
    return RetrievalReport(evaluate_run(run, qrels, ks), len(judged), seconds)
