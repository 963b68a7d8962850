"""Stage I of arXiv 2509.03020: bidirectional reconstruction anchored on the [EOS] embedding.

"Training LLMs to be Better Text Embedders through Bidirectional Reconstruction" (Su et al.,
EMNLP 2025). Before contrastive training, the model learns to regenerate one side of a
(query, document) pair from the other side's EOS embedding alone:

    EBQ2D:  L_Q2D = - Σ_t log P_Θ(d_t | e_Q, d_<t)      reconstruct the document from e_Q
    EBD2Q:  L_D2Q = - Σ_t log P_Θ(q_t | e_D, q_<t)      reconstruct the query from e_D
    L_StageI = α · L_Q2D + (1 - α) · L_D2Q,             α = 0.2 (the paper's best; code: 0.2 / 0.8)

The anchor e_X is fed to the *same* model as a one-position soft prefix through `inputs_embeds`;
the labels cover only the target text (the prefix and the padding are -100), and position ids
are counted over real tokens so left padding never shifts the prefix or the text. Gradients flow
through e_X back into the encoding pass, which is what shapes the EOS embedding. Hard negatives
are not used in this stage, and there is no contrastive term (both as in the official code).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .embedder import LLMEmbedder, position_ids_from_mask
from .loop import train_embedder_stage
from .records import TrainingRecord

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class StageIConfig:
    """Stage I hyper-parameters; defaults are the paper's code where it has one, scaled for small runs."""

    alpha: float = 0.2
    """Weight of L_Q2D; (1 - alpha) weighs L_D2Q. 0.2 was best in the paper's ablation."""
    steps: int = 2000
    """Optimizer steps (the paper's Stage II configs load a 2000-step Stage I checkpoint)."""
    batch_size: int = 32
    """(query, positive) pairs per step, from one source dataset (paper: 512 effective)."""
    learning_rate: float = 4e-5
    """Full fine-tuning learning rate of the official config."""
    warmup_steps: int = 300
    target_max_length: int = 512
    """Tokens kept of each reconstructed text."""
    seed: int = 42
    show_progress: bool = True


def target_batch(embedder: LLMEmbedder, texts: Sequence[str], max_length: int) -> dict[str, Any]:
    """Left-padded target ids of `texts` with a free first column for the anchor: [pad.., e, y_1..y_m]."""
    import torch

    tokenizer = embedder.tokenizer
    rows = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    rows = [row or [tokenizer.eos_token_id] for row in rows]  # an empty text reconstructs EOS
    width = 1 + max(len(row) for row in rows)
    ids = torch.full((len(rows), width), int(tokenizer.pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, row in enumerate(rows):
        start = width - len(row)
        ids[i, start:] = torch.tensor(row)
        mask[i, start - 1 :] = 1  # the anchor position (start - 1) and the text
        labels[i, start:] = torch.tensor(row)  # labels only on the target text
    device = embedder.device
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def reconstruction_loss(embedder: LLMEmbedder, anchors: Any, targets: dict[str, Any]) -> Any:
    """- mean_t log P_Θ(y_t | e, y_<t): the anchor e (batch, hidden) is a soft prefix before y."""
    import torch

    model = embedder.model
    token_embeddings = model.get_input_embeddings()(targets["input_ids"])
    anchor_column = targets["attention_mask"].argmax(dim=1)  # first real position = the anchor slot
    rows = torch.arange(token_embeddings.shape[0], device=token_embeddings.device)
    # Put e_X into the anchor slot without an in-place write on a tensor autograd needs.
    is_anchor = torch.zeros(targets["input_ids"].shape, dtype=torch.bool, device=token_embeddings.device)
    is_anchor[rows, anchor_column] = True
    inputs_embeds = torch.where(
        is_anchor.unsqueeze(-1), anchors.to(token_embeddings.dtype).unsqueeze(1), token_embeddings
    )
    logits = model(
        inputs_embeds=inputs_embeds,
        attention_mask=targets["attention_mask"],
        position_ids=position_ids_from_mask(targets["attention_mask"]),
    ).logits
    # Position t predicts token t + 1: the anchor predicts y_1, y_{m-1} predicts y_m.
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        targets["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def stage_one_loss(embedder: LLMEmbedder, batch: Sequence[TrainingRecord], config: StageIConfig) -> Any:
    """L_StageI = α · L_Q2D + (1 - α) · L_D2Q on one batch of (query, positive) pairs."""
    queries = [record.query for record in batch]
    documents = [record.positive for record in batch]
    e_q = embedder.anchor(queries, is_query=True)  # e_Q: the query *with* its instruction
    e_d = embedder.anchor(documents, is_query=False)  # e_D
    loss_q2d = reconstruction_loss(embedder, e_q, target_batch(embedder, documents, config.target_max_length))
    loss_d2q = reconstruction_loss(embedder, e_d, target_batch(embedder, queries, config.target_max_length))
    return config.alpha * loss_q2d + (1.0 - config.alpha) * loss_d2q


def train_stage_one(embedder: LLMEmbedder, records: Sequence[TrainingRecord], config: StageIConfig) -> list[float]:
    """Full fine-tuning of the embedder's LM on L_StageI; returns the per-step losses."""
    import torch

    if not 0.0 <= config.alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {config.alpha}")
    torch.manual_seed(config.seed)
    return train_embedder_stage(
        embedder, records, config, lambda batch: stage_one_loss(embedder, batch, config), "Stage I (EBQ2D + EBD2Q)"
    )


__all__ = ["StageIConfig", "reconstruction_loss", "stage_one_loss", "target_batch", "train_stage_one"]
