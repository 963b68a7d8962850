"""Hybrid retrieval: fuse the ranked lists of two retrievers (typically BM25 + dense) into one.

- `rrf`: reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009), score(d) = Σ_i w_i / (rrf_k + rank_i(d))
  with ranks from 1. It needs no score calibration, which is why it is the default. With equal
  weights the order is exactly standard RRF's (the weights only rescale the scores).
- `weighted`: Σ_i w_i · norm_i(score_i(d)), each list's scores normalized per query (`minmax` to
  [0, 1], or `zscore`). A document missing from one list gets that list's lowest normalized score
  for the query (0 under min-max), as Pyserini's hybrid searcher does.

Both retrievers must index the same corpus: documents are matched by id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from toolgym.retriever_contract import Hit, Retriever

FUSIONS: tuple[str, ...] = ("rrf", "weighted")
NORMALIZATIONS: tuple[str, ...] = ("minmax", "zscore")


def rrf_scores(ranked_lists: Sequence[Sequence[str]], weights: Sequence[float], rrf_k: float) -> dict[str, float]:
    """Weighted reciprocal-rank fusion of ranked doc-id lists (best first)."""
    fused: dict[str, float] = {}
    for doc_ids, weight in zip(ranked_lists, weights):
        for rank, doc_id in enumerate(doc_ids, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (rrf_k + rank)
    return fused


def normalize_scores(scores: Sequence[float], method: str) -> list[float]:
    """Per-query score normalization: `minmax` to [0, 1] (all-equal -> 1), `zscore` (all-equal -> 0)."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; expected one of {NORMALIZATIONS}")
    if not scores:
        return []
    if method == "minmax":
        low, high = min(scores), max(scores)
        return [1.0 if high == low else (s - low) / (high - low) for s in scores]
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return [0.0 if std == 0 else (s - mean) / std for s in scores]


def weighted_scores(
    scored_lists: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float], normalization: str
) -> dict[str, float]:
    """Weighted sum of per-query normalized scores; a list's missing documents get its lowest normalized score."""
    normalized = []
    for pairs in scored_lists:
        values = normalize_scores([score for _, score in pairs], normalization)
        normalized.append(({doc_id: v for (doc_id, _), v in zip(pairs, values)}, min(values, default=0.0)))
    all_ids = {doc_id for by_id, _ in normalized for doc_id in by_id}
    return {
        doc_id: sum(weight * by_id.get(doc_id, floor) for (by_id, floor), weight in zip(normalized, weights))
        for doc_id in all_ids
    }


class HybridRetriever:
    """Fuses the top-`depth` hits of `first` and `second` per query; `search(queries, k)` as any retriever."""

    def __init__(
        self,
        first: Retriever,
        second: Retriever,
        fusion: str = "rrf",
        *,
        rrf_k: float = 60.0,
        weights: tuple[float, float] = (0.5, 0.5),
        depth: int = 100,
        normalization: str = "minmax",
    ):
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}")
        if len(weights) != 2 or any(not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError(f"weights must be two finite non-negative numbers, got {weights!r}")
        if rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.first, self.second = first, second
        self.fusion, self.rrf_k, self.weights = fusion, float(rrf_k), (float(weights[0]), float(weights[1]))
        self.depth, self.normalization = int(depth), normalization

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` fused hits per query; each retriever is asked for max(depth, k) hits."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        if int(k) <= 0 or not queries:
            return [[] for _ in queries]
        depth = max(self.depth, int(k))
        first_results = self.first.search(queries, depth)
        second_results = self.second.search(queries, depth)
        return [self._fuse(a, b, int(k)) for a, b in zip(first_results, second_results)]

    def _fuse(self, first_hits: list[Hit], second_hits: list[Hit], k: int) -> list[Hit]:
        by_id: dict[str, Hit] = {}
        for hit in [*second_hits, *first_hits]:  # the first retriever's text wins on a shared id
            by_id[hit.doc_id] = hit
        if self.fusion == "rrf":
            ranked = ([h.doc_id for h in first_hits], [h.doc_id for h in second_hits])
            fused = rrf_scores(ranked, self.weights, self.rrf_k)
        else:
            scored = ([(h.doc_id, h.score) for h in first_hits], [(h.doc_id, h.score) for h in second_hits])
            fused = weighted_scores(scored, self.weights, self.normalization)
        # Ties: the better (smaller) best rank across the two lists, then the id, so output is deterministic.
        best_rank = {}
        for hits in (first_hits, second_hits):
            for rank, hit in enumerate(hits):
                best_rank[hit.doc_id] = min(best_rank.get(hit.doc_id, rank), rank)
        order = sorted(fused, key=lambda doc_id: (-fused[doc_id], best_rank[doc_id], doc_id))[:k]
        return [Hit(d, float(fused[d]), by_id[d].title, by_id[d].text) for d in order]


__all__ = ["FUSIONS", "NORMALIZATIONS", "HybridRetriever", "normalize_scores", "rrf_scores", "weighted_scores"]
