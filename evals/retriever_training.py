"""HotpotQA for the retrieval trainers: rows -> training records / rerank examples, and their scores.

The trainers in toolgym.retrievers.training read plain records; this module joins them with the
HotpotQA readers and scorers that live with Search-v0 (toolgym.envs.search), so answer matching
and supporting-paragraph recall are the env's own, never re-implemented.

"Indirectly relevant" supporting paragraphs (Gumbel reranking, arXiv 2502.11116) are the gold
supporting paragraphs that do not contain any gold answer string (Search-v0's `answer_in_text`):
the bridge paragraph of a two-hop question, which a reranker trained on answer overlap misses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from toolgym.envs.search.loaders import parse_row
from toolgym.envs.search.qa_metrics import answer_in_text, best_exact_match, best_f1
from toolgym.retrievers.training.gumbel_rerank import RerankExample
from toolgym.retrievers.training.records import TrainingRecord

logger = logging.getLogger(__name__)


def rerank_examples_from_hotpotqa(
    rows: Iterable[dict[str, Any]], *, n_passages: int | None = 10
) -> list[RerankExample]:
    """One example per row with paragraphs, answers and at least one supporting paragraph.

    `n_passages` keeps the first n paragraphs after the supporting ones (every example then has the
    same candidate count, which batching needs); None keeps them all.
    """
    examples = []
    for row in rows:
        task = parse_row(row)
        if not task.documents or not task.answers or not task.supporting_doc_ids:
            continue
        gold = set(task.supporting_doc_ids)
        documents = list(task.documents)
        if n_passages is not None:
            kept = [d for d in documents if d.doc_id in gold] + [d for d in documents if d.doc_id not in gold]
            kept = kept[:n_passages]
            if len(kept) < n_passages:
                continue
            documents = [d for d in documents if d in kept]  # original order: no position leaks the label
        examples.append(
            RerankExample(
                task.question,
                tuple((d.title, d.text) for d in documents),
                tuple(task.answers),
                tuple(d.doc_id in gold for d in documents),
            )
        )
    return examples


def embedding_records_from_hotpotqa(
    rows: Iterable[dict[str, Any]], *, n_negatives: int = 3, source: str = "hotpotqa"
) -> list[TrainingRecord]:
    """One record per (question, supporting paragraph); the row's distractor paragraphs are hard negatives."""
    records = []
    for example in rerank_examples_from_hotpotqa(rows, n_passages=None):
        texts = [f"{title} {text}".strip() for title, text in example.passages]
        negatives = tuple(t for t, gold in zip(texts, example.supporting) if not gold)[:n_negatives]
        records += [
            TrainingRecord(example.question, t, negatives, source) for t, g in zip(texts, example.supporting) if g
        ]
    return records


def indirectly_relevant(example: RerankExample) -> list[bool]:
    """Per passage: supporting and containing no gold answer string."""
    return [
        gold and not answer_in_text(f"{title} {text}", list(example.answers))
        for (title, text), gold in zip(example.passages, example.supporting)
    ]


def recall_at_k(rankings: Sequence[Sequence[int]], labels: Sequence[Sequence[bool]], k: int) -> tuple[float, int]:
    """Mean over examples with a positive label of (positives in the top k) / positives; and that count."""
    recalls = []
    for ranking, row in zip(rankings, labels):
        positives = {i for i, flag in enumerate(row) if flag}
        if positives:
            recalls.append(len(positives & set(ranking[:k])) / len(positives))
    return (sum(recalls) / len(recalls) if recalls else float("nan")), len(recalls)


def rerank_report(
    examples: Sequence[RerankExample], rankings: Sequence[Sequence[int]], *, k: int = 5, reader: Any = None
) -> dict[str, float]:
    """Recall@k of supporting and of indirectly relevant paragraphs, and reader EM/F1 on the top k."""
    report: dict[str, float] = {}
    report[f"recall@{k}"], report["n_questions"] = recall_at_k(rankings, [e.supporting for e in examples], k)
    indirect, count = recall_at_k(rankings, [indirectly_relevant(e) for e in examples], k)
    report[f"indirect_recall@{k}"], report["n_indirect_questions"] = indirect, count
    if reader is not None:
        predictions = []
        for start in range(0, len(examples), 8):
            chunk = examples[start : start + 8]
            top = [[e.passages[i] for i in ranking[:k]] for e, ranking in zip(chunk, rankings[start : start + 8])]
            predictions += reader.generate([e.question for e in chunk], top)
        report[f"reader_em@{k}"] = sum(best_exact_match(p, e.answers) for p, e in zip(predictions, examples)) / len(
            examples
        )
        report[f"reader_f1@{k}"] = sum(best_f1(p, e.answers) for p, e in zip(predictions, examples)) / len(examples)
    return report


__all__ = [
    "embedding_records_from_hotpotqa",
    "indirectly_relevant",
    "recall_at_k",
    "rerank_examples_from_hotpotqa",
    "rerank_report",
]
