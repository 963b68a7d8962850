"""A reranking stage: re-score the top-N hits of any retriever with a cross-encoder, in batches.

A cross-encoder reads the query and a passage together, so it ranks far better than a
bi-encoder or BM25 but costs one forward pass per (query, passage) pair: rerank only the head
of a cheap first-stage list (`depth`, 50 by default; MS MARCO-style pipelines use 100-1000).

Rerankers by spec (`load_reranker`):
    ce:<path or name>   a sentence-transformers `CrossEncoder`
    hf:<path or name>   a transformers `AutoModelForSequenceClassification` (1 logit = relevance;
                        2 logits = [not relevant, relevant], scored as their difference)

Quality needs a trained model: nothing here ships one (training comes with the retriever-training
work), and a randomly initialised cross-encoder only shuffles the list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from toolgym.extras import require
from toolgym.retriever_contract import Hit, Retriever

from .encoders import default_device, tokenizable_text

logger = logging.getLogger(__name__)


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


def passage_text(hit: Hit) -> str:
    """The passage a reranker reads: `title text`, as documents are embedded (encoders.document_text)."""
    return f"{hit.title} {hit.text}".strip() if hit.title else hit.text


def _batches(n_items: int, batch_size: int) -> list[range]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [range(start, min(start + batch_size, n_items)) for start in range(0, n_items, batch_size)]


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` (its default activation: sigmoid for one label)."""

    def __init__(self, model: str, *, max_length: int = 512, batch_size: int = 32, device: str | None = None):
        CrossEncoder = require("sentence_transformers", "retrieval", "ce: rerankers").CrossEncoder
        self.device = device or default_device()
        self.model = CrossEncoder(model, max_length=max_length, device=self.device)
        if self.device.startswith("cuda"):
            self.model.half()
        self.spec, self.batch_size = f"ce:{model}", batch_size

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One score per pair, computed `batch_size` pairs per forward pass."""
        pairs = [(tokenizable_text(q), tokenizable_text(p)) for q, p in pairs]
        out = np.zeros(len(pairs), dtype=np.float32)
        for batch in _batches(len(pairs), self.batch_size):
            chunk = pairs[batch.start : batch.stop]
            scores = self.model.predict(chunk, batch_size=len(chunk), show_progress_bar=False, convert_to_numpy=True)
            out[batch.start : batch.stop] = np.asarray(scores, dtype=np.float32).reshape(len(chunk), -1)[:, -1]
        return out


class SequenceClassificationReranker:
    """A transformers sequence-classification model over `[CLS] query [SEP] passage`, fp16 on GPU."""

    def __init__(
        self,
        model: str,
        *,
        max_length: int = 512,
        batch_size: int = 32,
        device: str | None = None,
        dtype: str = "auto",
    ):
        torch = require("torch", "retrieval", "hf: rerankers")
        require("transformers", "retrieval", "hf: rerankers")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or default_device()
        torch_dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        if dtype != "auto":
            torch_dtype = getattr(torch, dtype, None)
            if not isinstance(torch_dtype, torch.dtype):
                raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'float16' or 'bfloat16'")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch_dtype)
        self.model = self.model.to(self.device).eval()
        n_labels = self.model.config.num_labels
        if n_labels not in (1, 2):
            raise ValueError(f"{model!r} has {n_labels} labels; a reranker needs 1 (relevance) or 2 (no/yes)")
        self.spec, self.max_length, self.batch_size = f"hf:{model}", int(max_length), batch_size

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One score per pair (the relevance logit, or yes - no logits), `batch_size` pairs per forward pass."""
        import torch

        pairs = [(tokenizable_text(q), tokenizable_text(p)) for q, p in pairs]
        out = np.zeros(len(pairs), dtype=np.float32)
        for batch in _batches(len(pairs), self.batch_size):
            queries = [pairs[i][0] for i in batch]
            passages = [pairs[i][1] for i in batch]
            encoded = self.tokenizer(
                queries,
                passages,
                padding=True,
                truncation="longest_first",  # "only_second" fails when the query alone is too long
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                logits = self.model(**encoded).logits.float()
            scores = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
            out[batch.start : batch.stop] = scores.cpu().numpy()
        return out


def load_reranker(spec: str, **options: Any) -> CrossEncoderReranker | SequenceClassificationReranker:
    """Build the reranker named by `spec` ('ce:<model>' or 'hf:<model>'); `options` go to its constructor."""
    kind, _, model = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if kind == "ce" and model:
        return CrossEncoderReranker(model, **options)
    if kind == "hf" and model:
        return SequenceClassificationReranker(model, **options)
    raise ValueError(f"reranker spec {spec!r} must look like 'ce:<model>' or 'hf:<model>'")


class RerankRetriever:
    """Re-scores the top `depth` hits of `base` with `reranker`; `search(queries, k)` as any retriever.

    Every query's head is scored in one pooled list of pairs, so batches fill up across queries.
    When `k` exceeds `depth`, the top `k` are reranked: returned scores always come from the
    reranker, never mixed with the base retriever's scale. Ties keep the base order.
    """

    def __init__(self, base: Retriever, reranker: Reranker | str, depth: int = 50, **reranker_options: Any):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if reranker_options and not isinstance(reranker, str):
            raise TypeError(f"reranker options {sorted(reranker_options)} only apply to a reranker spec string")
        self.base = base
        self.reranker = load_reranker(reranker, **reranker_options) if isinstance(reranker, str) else reranker
        self.depth = int(depth)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` hits per query, ordered by the reranker's scores."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        if int(k) <= 0 or not queries:
            return [[] for _ in queries]
        heads = self.base.search(queries, max(self.depth, int(k)))
        pairs = [
            (query if isinstance(query, str) else "", passage_text(hit))
            for query, hits in zip(queries, heads)
            for hit in hits
        ]
        scores = np.asarray(self.reranker.score(pairs), dtype=np.float64) if pairs else np.zeros(0)
        if scores.shape != (len(pairs),):
            raise ValueError(f"the reranker returned {scores.shape} scores for {len(pairs)} pairs")
        results, offset = [], 0
        for hits in heads:
            head_scores = scores[offset : offset + len(hits)]
            offset += len(hits)
            order = sorted(range(len(hits)), key=lambda i: (-head_scores[i], i))[: int(k)]
            results.append([hits[i]._replace(score=float(head_scores[i])) for i in order])
        return results


__all__ = [
    "CrossEncoderReranker",
    "RerankRetriever",
    "Reranker",
    "SequenceClassificationReranker",
    "load_reranker",
    "passage_text",
]
