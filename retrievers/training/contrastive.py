"""Stage II of arXiv 2509.03020: contrastive training of the EOS embedder (llm2vec's supervised recipe).

InfoNCE over cosine similarities scaled by s = 50 (temperature 0.02):

    L = - mean_i log  exp(s · cos(q_i, d_i^+)) / Σ_{d ∈ D} exp(s · cos(q_i, d))

where the candidate set D holds every positive and every hard negative of the batch (in-batch
plus hard negatives), gathered across ranks when torch.distributed is initialized, so each query
competes with the whole global batch. A candidate whose text is a positive of query i (the same
document positive for two queries, or two records of one query with different positives, as a
BEIR qrels file with several relevant documents gives) is left out of query i's denominator, so a
relevant document is never pushed away as a false negative. Batches come from one source dataset at a time. LoRA
(r = 16, α = 32, dropout 0.05 on all attention and MLP projections, the paper's Stage II setting)
is an option through `peft`; the adapters are merged before saving so the folder stays a plain
HF model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .embedder import LLMEmbedder
from .loop import train_embedder_stage, world_size
from .records import TrainingRecord

logger = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class StageIIConfig:
    """Stage II hyper-parameters (official Stage II config where known)."""

    scale: float = 50.0
    """s in exp(s · cos): llm2vec's HardNegativeNLLLoss scale (temperature 1/50)."""
    steps: int = 1000
    batch_size: int = 128
    """Queries per step per rank, from one source dataset (paper: 1024 global)."""
    hard_negatives: int = 1
    """Hard negatives per query taken from each record (0 = in-batch negatives only)."""
    learning_rate: float = 2e-4
    """The paper's LoRA learning rate; use ~2e-5 for full fine-tuning."""
    warmup_steps: int = 300
    lora: bool = True
    """Train LoRA adapters (peft) instead of every weight."""
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = field(default=LORA_TARGETS)
    seed: int = 42
    show_progress: bool = True


def gather_with_grad(tensor: Any) -> Any:
    """All ranks' rows concatenated (this rank's keep their gradient); the tensor itself when not distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return __import__("torch").cat(all_gather(tensor), dim=0)


def gather_texts(texts: Sequence[str]) -> list[str]:
    """All ranks' texts concatenated in rank order (the order `gather_with_grad` uses); `texts` itself when not distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(texts)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(texts))
    return [text for part in gathered for text in part]


def false_negative_mask(queries: Sequence[str], positives: Sequence[str], candidates: Sequence[str]) -> Any:
    """(n_queries, n_candidates) bool: True where candidate c is not query i's own positive (c != i) but its
    text is a positive of query i's text somewhere in the batch, so it must not count as a negative."""
    import torch

    relevant: dict[str, set[str]] = {}
    for query, positive in zip(queries, positives):
        relevant.setdefault(query, set()).add(positive)
    mask = torch.zeros((len(queries), len(candidates)), dtype=torch.bool)
    for i, query in enumerate(queries):
        for c, text in enumerate(candidates):
            mask[i, c] = c != i and text in relevant[query]
    return mask


def info_nce_loss(
    query: Any, positive: Any, negatives: Any | None, scale: float, false_negatives: Any | None = None
) -> Any:
    """InfoNCE of normalized query rows against all positives (+ hard negatives) of the global batch.

    `false_negatives` (global queries × global candidates, bool) drops those candidates from a row's
    denominator (see `false_negative_mask`)."""
    import torch

    queries = gather_with_grad(query)
    candidates = gather_with_grad(positive)
    if negatives is not None and negatives.numel():
        candidates = torch.cat([candidates, gather_with_grad(negatives)], dim=0)
    scores = scale * queries @ candidates.T  # cosine · s; rows are unit vectors
    if false_negatives is not None:
        if tuple(false_negatives.shape) != tuple(scores.shape):
            raise ValueError(f"false_negatives has shape {tuple(false_negatives.shape)}, scores {tuple(scores.shape)}")
        scores = scores.masked_fill(false_negatives.to(scores.device), float("-inf"))
    labels = torch.arange(queries.shape[0], device=scores.device)  # query i's positive is candidate i
    return torch.nn.functional.cross_entropy(scores, labels)


def contrastive_loss(embedder: LLMEmbedder, batch: Sequence[TrainingRecord], config: StageIIConfig) -> Any:
    """InfoNCE on one batch: q_i vs d_i^+ among every positive and hard negative."""
    query = embedder.embed([r.query for r in batch], is_query=True)
    positive = embedder.embed([r.positive for r in batch], is_query=False)
    negative_texts = [n for r in batch for n in r.negatives[: config.hard_negatives]]
    negatives = embedder.embed(negative_texts, is_query=False) if negative_texts else None
    positives = gather_texts([r.positive for r in batch])
    candidates = positives + (gather_texts(negative_texts) if negative_texts else [])
    mask = false_negative_mask(gather_texts([r.query for r in batch]), positives, candidates)
    return info_nce_loss(query, positive, negatives, config.scale, mask)


def add_lora(embedder: LLMEmbedder, config: StageIIConfig) -> None:
    """Wrap the embedder's LM in peft LoRA adapters on the projections it has."""
    from toolgym.extras import require

    peft = require("peft", "train", "LoRA in Stage II (or set lora=False)")
    LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model
    names = {name.rsplit(".", 1)[-1] for name, _ in embedder.model.named_modules()}
    targets = [t for t in config.lora_targets if t in names]
    if not targets:
        raise ValueError(f"none of the LoRA targets {config.lora_targets} is a module of this model; set lora_targets")
    lora = LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
    )
    embedder.model = get_peft_model(embedder.model, lora)


def check_hard_negatives(records: Sequence[TrainingRecord], hard_negatives: int) -> None:
    """A clear error when hard negatives are asked for and no record has any (before any training runs)."""
    if hard_negatives < 0:
        raise ValueError(f"hard_negatives must be >= 0, got {hard_negatives}")
    if hard_negatives and not any(r.negatives for r in records):
        raise ValueError(
            f"hard_negatives={hard_negatives} was asked for but no training record has negatives: "
            "set hard_negatives=0 (--hard-negatives 0) for in-batch negatives only, or write records with "
            "negatives (`toolgym train-retriever records ... --n-negatives N`)"
        )


def train_stage_two(embedder: LLMEmbedder, records: Sequence[TrainingRecord], config: StageIIConfig) -> list[float]:
    """Contrastive training (LoRA or full); returns the per-step losses. LoRA stays unmerged until save."""
    import torch

    torch.manual_seed(config.seed)
    check_hard_negatives(records, config.hard_negatives)
    short = [r for r in records if len(r.negatives) < config.hard_negatives]
    if world_size() > 1 and short:
        # all_gather needs the same number of negatives on every rank
        raise ValueError(
            f"{len(short)} records have fewer than hard_negatives={config.hard_negatives} negatives; under "
            "torch.distributed every record needs that many (lower hard_negatives or mine more)"
        )
    if short:
        logger.warning(
            "%d of %d records have fewer than hard_negatives=%d negatives; they use what they have",
            len(short),
            len(records),
            config.hard_negatives,
        )
    if config.lora:
        add_lora(embedder, config)
    return train_embedder_stage(
        embedder, records, config, lambda batch: contrastive_loss(embedder, batch, config), "Stage II (InfoNCE)"
    )


__all__ = [
    "StageIIConfig",
    "add_lora",
    "contrastive_loss",
    "false_negative_mask",
    "gather_texts",
    "gather_with_grad",
    "info_nce_loss",
    "train_stage_two",
]
