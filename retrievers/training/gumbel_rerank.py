"""Gumbel reranking (G-Rerank, arXiv 2502.11116): train a reranker end to end through a frozen reader.

Huang et al., "Gumbel Reranking: Differentiable End-to-End Reranker Optimization" (ACL 2025).
Reranking is a hard document-wise attention mask M_i = 1[i ∈ top-k(w)] over the reader's context;
G-Rerank relaxes it so the reader's answer loss can train the reranker:

    w_i  = R(q, d_i)                                  reranker scores (a cross-encoder here)
    G_i  = -log(-log u_i),  u_i ~ U(0, 1)             Gumbel noise, fresh for each of k samples
    M^(j) = softmax_i((κ w_i + G_i^(j)) / τ)          one Gumbel-softmax sample, j = 1..k
    M̂_i  = max_j M^(j)_i  ∈ [0, 1]                    relaxed top-k (L2X, Chen et al. 2018)
    L    = - Σ_t log P_reader(a_t | q, {d_i}, M̂, a_<t) the frozen reader's LM loss on the gold answer

with M̂ applied inside the reader's attention (fid_reader.py). Only the reranker's parameters are
updated; at inference the reranker is used alone, as a hard top-k by w. Because subsets are
sampled, the loss credits *combinations* of passages, which is how the paper's reranker learns
"indirectly relevant" passages (gold supporting passages that do not contain the answer).

Baselines in the same code: `objective="supervised"` (binary cross-entropy on gold supporting
passages) and no training at all (the initial scores). Paper values of τ and κ are not public;
τ = 0.5, κ = 1 are the third-party defaults PAPERS.md records, k = 5 matches the @5 metrics.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fid_reader import FiDReader
from .loop import run_steps
from .model_folders import require_model_folder

logger = logging.getLogger(__name__)

OBJECTIVES = ("gumbel", "supervised")


@dataclass(frozen=True)
class RerankExample:
    """A question, its candidate passages (title, text), gold answers and which passages are supporting."""

    question: str
    passages: tuple[tuple[str, str], ...]
    answers: tuple[str, ...]
    supporting: tuple[bool, ...]


@dataclass
class GumbelRerankConfig:
    """Reranker training knobs (see the module docstring for the symbols)."""

    objective: str = "gumbel"
    """'gumbel' (through the frozen reader) or 'supervised' (BCE on gold supporting passages)."""
    k: int = 5
    """Passages kept: k Gumbel-softmax samples in training, hard top-k at inference."""
    kappa: float = 1.0
    """κ: scale of the reranker logits against the Gumbel noise (larger = less exploration)."""
    tau: float = 0.5
    """τ: Gumbel-softmax temperature (smaller = closer to one-hot samples)."""
    steps: int = 500
    batch_size: int = 4
    """Questions per step (each with all its candidate passages)."""
    learning_rate: float = 2e-5
    warmup_steps: int = 20
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.k < 1:
            raise ValueError(f"k (passages kept) must be >= 1, got {self.k}")
        if not self.tau > 0:
            raise ValueError(f"tau (the Gumbel-softmax temperature) must be > 0, got {self.tau}")
        if not self.kappa >= 0:
            raise ValueError(f"kappa (the logit scale) must be >= 0, got {self.kappa}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def gumbel_noise(shape: tuple[int, ...], *, generator: Any = None, device: Any = None) -> Any:
    """G = -log(-log u), u ~ U(0, 1), clamped away from 0 and 1."""
    import torch

    u = torch.rand(shape, generator=generator, device=device).clamp(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def relaxed_top_k(w: Any, k: int, *, kappa: float, tau: float, generator: Any = None) -> Any:
    """M̂ (..., n): the element-wise max of k Gumbel-softmax samples of κ·w / τ; differentiable in w."""
    import torch

    if not 1 <= k <= w.shape[-1]:
        raise ValueError(f"k must be in [1, {w.shape[-1]}] (the number of passages), got {k}")
    if not tau > 0:
        raise ValueError(f"tau (the Gumbel-softmax temperature) must be > 0, got {tau}")
    noise = gumbel_noise((*w.shape[:-1], k, w.shape[-1]), generator=generator, device=w.device)  # G^(j)_i
    samples = torch.softmax((kappa * w.unsqueeze(-2) + noise) / tau, dim=-1)  # M^(j)
    return samples.max(dim=-2).values  # M̂_i = max_j M^(j)_i


def check_k_fits(examples: Sequence[RerankExample], k: int) -> None:
    """A clear error, before any training, when an example has fewer than k candidate passages."""
    short = [ex for ex in examples if len(ex.passages) < k]
    if short:
        fewest = min(len(ex.passages) for ex in short)
        raise ValueError(
            f"k={k} is more than the {fewest} passages of {len(short)} example(s) (e.g. {short[0].question[:60]!r}); "
            "lower k or give every question at least k passages"
        )


def hard_top_k(w: Any, k: int) -> Any:
    """M (..., n) with 1 on the k highest scores: the inference-time mask."""
    import torch

    mask = torch.zeros_like(w)
    return mask.scatter(-1, w.topk(min(k, w.shape[-1]), dim=-1).indices, 1.0)


class CrossEncoderScorer:
    """w_i = R(q, d_i): a one-logit sequence classifier over (question, `title text`) pairs; trainable."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 256):
        if model.config.num_labels != 1:
            raise ValueError(f"the reranker must have one output logit, this one has {model.config.num_labels}")
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "cpu", max_length: int = 256) -> CrossEncoderScorer:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        require_model_folder(path, "reranker base")
        model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1).to(device)
        return cls(model, AutoTokenizer.from_pretrained(str(path)), max_length=max_length)

    def flat_scores(self, examples: Sequence[RerankExample]) -> Any:
        """(Σ_b n_b,) logits of every (question, passage) pair, example after example (any passage counts)."""
        pairs = [(ex.question, f"{title} {text}".strip()) for ex in examples for title, text in ex.passages]
        batch = self.tokenizer(
            [q for q, _ in pairs],
            [p for _, p in pairs],
            padding=True,
            truncation="longest_first",  # "only_second" fails when the query alone is too long
            max_length=self.max_length,
            return_tensors="pt",
        ).to(next(self.model.parameters()).device)
        return self.model(**batch).logits[:, 0].float()

    def scores(self, examples: Sequence[RerankExample]) -> Any:
        """(B, n) logits w, with gradients when the model is in training mode; every example needs n passages."""
        counts = {len(ex.passages) for ex in examples}
        if len(counts) > 1 or 0 in counts:
            raise ValueError(
                f"every example of a training batch needs the same number (>= 1) of passages, got {sorted(counts)}: "
                "pad them (rerank_examples_from_hotpotqa does) or batch equal counts together"
            )
        return self.flat_scores(examples).reshape(len(examples), -1)

    def save_pretrained(self, folder: str | Path) -> Path:
        """A plain HF sequence-classification folder: the rerank stage loads it as `hf:<folder>`."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return folder


def gumbel_loss(
    scorer: CrossEncoderScorer,
    reader: FiDReader,
    batch: Sequence[RerankExample],
    config: GumbelRerankConfig,
    generator: Any,
) -> Any:
    """The reader's answer NLL under the relaxed top-k mask M̂ of the reranker's scores."""
    import torch

    questions = [ex.question for ex in batch]
    passages = [list(ex.passages) for ex in batch]
    with torch.no_grad():  # the frozen reader's encoder does not see M̂
        encoded = reader.encode(questions, passages)
    w = scorer.scores(batch)
    mask = relaxed_top_k(w, config.k, kappa=config.kappa, tau=config.tau, generator=generator)
    answers = [ex.answers[0] for ex in batch]
    return reader.loss(questions, passages, answers, mask, encoded=encoded)


def supervised_loss(scorer: CrossEncoderScorer, batch: Sequence[RerankExample]) -> Any:
    """Baseline: binary cross-entropy of w against the gold supporting labels."""
    import torch

    labels = torch.tensor([ex.supporting for ex in batch], dtype=torch.float32)
    w = scorer.scores(batch)
    return torch.nn.functional.binary_cross_entropy_with_logits(w, labels.to(w.device))


def train_reranker(
    scorer: CrossEncoderScorer,
    examples: Sequence[RerankExample],
    config: GumbelRerankConfig,
    reader: FiDReader | None = None,
) -> list[float]:
    """Train the scorer with `config.objective`; the reader (needed for 'gumbel') is frozen first."""
    import torch

    if config.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {config.objective!r}")
    if config.objective == "gumbel" and reader is None:
        raise ValueError("the 'gumbel' objective trains through a reader: pass reader=FiDReader(...)")
    if config.objective == "gumbel":  # k relaxed samples per question; the supervised loss has no k
        check_k_fits(examples, config.k)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    order = list(examples)
    rng.shuffle(order)
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    generator = torch.Generator().manual_seed(config.seed)
    if reader is not None:
        reader.freeze()
    scorer.model.train()
    if config.objective == "gumbel":
        loss_fn = lambda batch: gumbel_loss(scorer, reader, batch, config, generator)  # noqa: E731
    else:
        loss_fn = lambda batch: supervised_loss(scorer, batch)  # noqa: E731
    losses = run_steps(
        scorer.model.parameters(),
        batches,
        loss_fn,
        steps=config.steps,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        description=f"reranker ({config.objective})",
        show_progress=config.show_progress,
    )
    scorer.model.eval()
    return losses


def rank_passages(
    scorer: CrossEncoderScorer, examples: Sequence[RerankExample], batch_size: int = 8
) -> list[list[int]]:
    """Per example, passage indices by descending score w (inference: no noise, no soft mask)."""
    import torch

    scorer.model.eval()
    rankings: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = [ex for ex in examples[start : start + batch_size] if ex.passages]
            rows = scorer.flat_scores(chunk).split([len(ex.passages) for ex in chunk]) if chunk else []
            rows = iter(rows)  # split per example: passage counts may differ (an example may have none)
            rankings += [
                next(rows).argsort(descending=True, stable=True).tolist() if ex.passages else []
                for ex in examples[start : start + batch_size]
            ]
    return rankings


__all__ = [
    "OBJECTIVES",
    "CrossEncoderScorer",
    "GumbelRerankConfig",
    "RerankExample",
    "check_k_fits",
    "gumbel_loss",
    "gumbel_noise",
    "hard_top_k",
    "rank_passages",
    "relaxed_top_k",
    "supervised_loss",
    "train_reranker",
]
