"""HotpotQA supporting-paragraph retrieval scoring: how well a retriever finds each question's gold.

IRCoT's processed dev set gives each question its own `is_supporting` paragraphs as gold, searched
in one shared corpus of every paragraph keyed by title, exactly as Search-v0 with `corpus="shared"`
does. The rows are read with Search-v0's own loaders and the recall is also computed with its
`supporting_recall`, so this score and the env's per-episode metric cannot disagree. The
trec-style metrics come from the dataset-agnostic `toolgym.retrievers.evaluation`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from toolgym.envs.search.loaders import parse_row, shared_documents
from toolgym.envs.search.qa_metrics import supporting_recall
from toolgym.retriever_contract import Document, Retriever
from toolgym.retrievers import build_retriever
from toolgym.retrievers.evaluation import (
    MRR_DEPTH,
    Qrels,
    RetrievalReport,
    evaluate_run,
    ordered_metrics,
    run_queries,
    truncate_run,
)

HOTPOTQA_KS: tuple[int, ...] = (2, 5, 10, 20)


def hotpotqa_eval_set(rows: Iterable[dict[str, Any]]) -> tuple[list[Document], dict[str, str], Qrels]:
    """(shared corpus, queries, qrels) of HotpotQA rows: gold = each question's supporting titles."""
    rows = list(rows)
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for row in rows:
        task = parse_row(row)
        if not task.supporting_doc_ids:
            continue
        queries[task.task_id] = task.question
        qrels[task.task_id] = dict.fromkeys(task.supporting_doc_ids, 1)
    if not qrels:
        raise ValueError("no HotpotQA row has supporting paragraphs (is_supporting / supporting_facts)")
    return shared_documents(rows), queries, qrels


def evaluate_hotpotqa(
    rows: Iterable[dict[str, Any]],
    retriever: Retriever | None = None,
    *,
    backend: str = "bm25s",
    backend_params: dict[str, Any] | None = None,
    ks: Sequence[int] = HOTPOTQA_KS,
    batch_size: int = 256,
    progress: bool = False,
) -> RetrievalReport:
    """Supporting-paragraph recall@k of `retriever` (default: `backend` with `backend_params` over the
    rows' shared corpus).

    Reports pytrec_eval's metrics plus `supporting_recall@k` (Search-v0's own scorer, which must
    equal `recall@k`) and `all_supporting@k` (the share of questions with every gold paragraph in
    the top k: a two-hop question needs both).
    """
    documents, queries, qrels = hotpotqa_eval_set(rows)
    if retriever is None:
        retriever = build_retriever(backend, documents, **(backend_params or {}))
    depth = max(max(ks), MRR_DEPTH)
    start = time.perf_counter()
    run = run_queries(retriever, queries, depth, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - start
    metrics = evaluate_run(run, qrels, ks)
    for k in sorted(set(ks)):
        top = {q: list(truncate_run({q: run.get(q, {})}, k)[q]) for q in qrels}
        recalls = [supporting_recall(top[q], list(qrels[q])) for q in qrels]
        metrics[f"supporting_recall@{k}"] = sum(recalls) / len(recalls)
        metrics[f"all_supporting@{k}"] = sum(r == 1.0 for r in recalls) / len(recalls)
    extra = {"n_documents": len(documents)}
    return RetrievalReport(ordered_metrics(metrics), len(qrels), seconds, extra)


__all__ = ["HOTPOTQA_KS", "evaluate_hotpotqa", "hotpotqa_eval_set"]
