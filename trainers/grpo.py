"""The GRPO objective and its update, top to bottom (read it beside trainer notes §2 and §9.1).

For a batch of G samples per task with rewards r_i, the step maximizes

    J(θ) = 1/N Σ_i Σ_t m_{i,t} · [ min(ρ_{i,t} Â_i, clip(ρ_{i,t}, 1−ε_low, 1+ε_high) Â_i) · w_{i,t}
                                   − β · KL_t(π_θ ‖ π_ref) + c_H · H_t ]

    Â_i  = (r_i − baseline_group(i)) / (σ + eps)         `objective.group_advantages`
    ρ    = π_θ / π_θold per token, or GSPO's per sequence `objective.importance_ratio`
    w    = rollout-vs-trainer correction (TIS / masks)    `objective.rollout_correction_weights`
    m    = loss_mask: 1 only on the policy's own tokens, so tool outputs never get gradient
    N    = the aggregation's normalizer over the WHOLE optimizer step (`objective.step_normalizer`)

`advantages` builds Â per token; `micro_batch_loss` is the bracket summed over one micro-batch and
divided by N; `optimizer_step` accumulates micro-batches into one AdamW step. Everything that
decides *which* samples enter (rollouts, shaping, dynamic sampling) lives in `toolgym.trainers.loop`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from toolgym.agents.engine import token_logprobs, token_logprobs_and_entropy

from .batch import RolloutBatch
from .config import GRPOConfig
from .objective import (
    aggregate,
    clipped_policy_loss,
    group_advantages,
    importance_ratio,
    kl_divergence,
    rollout_correction_weights,
    step_normalizer,
)


@dataclass
class PolicyOutput:
    """What the current policy computed for one micro-batch; handed to `extra_loss` plug-ins."""

    logprobs: Tensor
    """(b, l) log π_θ of each token (column 0 is 0), with gradient."""
    entropy: Tensor | None
    """(b, l) entropy of the distribution that produced each token, when needed."""
    normalizer: float
    """The step-wide divisor: an extra loss that sums over tokens divides by it to stay split-invariant."""


def policy_forward(
    model: Any, batch: RolloutBatch, temperature: float, with_entropy: bool = False, entropy_grad: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Per-token logprobs (and entropies) of `batch.input_ids` under `model`, aligned with the tokens.

    Scored with `toolgym.agents.engine.token_logprobs`, the function the HF engine samples with, so
    trainer and engine logprobs cannot differ by formula (temperature, gathering), only by numerics.
    Only positions whose next token is a policy token anywhere in the batch get logits (the
    model's `logits_to_keep` with an index tensor, as TRL keeps only completion logits); the
    others are 0, which every consumer masks anyway. The entropy carries gradient only when the
    bonus needs it (`entropy_grad`); otherwise it is computed for the metrics alone.
    """
    length = batch.input_ids.shape[1]
    policy_next = batch.loss_mask[:, 1:].any(dim=0)
    kept = torch.nonzero(policy_next).flatten()
    pad = batch.loss_mask.new_zeros((batch.size, 1))
    if kept.numel() == 0:
        zeros = batch.loss_mask.new_zeros((batch.size, length))
        return zeros, (zeros if with_entropy else None)
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if _keeps_logits(model):
        logits = model(**inputs, logits_to_keep=kept.to(batch.input_ids.device)).logits
    else:
        logits = model(**inputs).logits[:, :-1][:, kept]
    targets = batch.input_ids[:, 1:][:, kept]
    entropy = None
    if with_entropy:
        values, entropies = token_logprobs_and_entropy(logits, targets, temperature, entropy_grad)
        entropies = entropies.to(batch.loss_mask.dtype)
        entropy = torch.cat(
            [pad, batch.loss_mask.new_zeros((batch.size, length - 1)).index_copy(1, kept, entropies)], 1
        )
    else:
        values = token_logprobs(logits, targets, temperature)
    logprobs = batch.loss_mask.new_zeros((batch.size, length - 1)).index_copy(1, kept, values.to(batch.loss_mask.dtype))
    return torch.cat([pad, logprobs], dim=1), entropy


def _keeps_logits(model: Any) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers >= 4.50 causal LMs)."""
    import inspect

    return "logits_to_keep" in inspect.signature(model.forward).parameters


@torch.no_grad()
def batch_logprobs(model: Any, batch: RolloutBatch, temperature: float, micro_batch_size: int) -> Tensor:
    """(B, L) logprobs of a whole batch without gradient (old-policy and reference scoring)."""
    out = torch.zeros_like(batch.rollout_logprobs)
    for start in range(0, batch.size, micro_batch_size):
        part = batch.rows(start, min(start + micro_batch_size, batch.size))
        logprobs, _ = policy_forward(model, part, temperature)
        out[start : start + part.size, : logprobs.shape[1]] = logprobs.float()
    return out * batch.loss_mask


def advantages(batch: RolloutBatch, config: GRPOConfig) -> Tensor:
    """(B, L) Â per token: the group advantage of each sequence's return, on its policy tokens only.

    The return is the shaped reward plus any per-token rewards a plug-in placed; turn-aware
    estimators (TSPO) replace this through the `advantages` plug-in hook.
    """
    returns = batch.shaped_rewards
    if batch.token_rewards is not None:
        returns = returns + batch.token_rewards.sum(-1)
    per_sequence = group_advantages(
        returns, batch.group_ids, config.advantage_baseline, config.advantage_scale, config.advantage_eps
    )
    return per_sequence.unsqueeze(-1) * batch.loss_mask


def trainable_mask(batch: RolloutBatch) -> Tensor:
    """m_{i,t}: the policy's tokens of the rows that enter the loss (failed / masked rows weigh 0)."""
    return batch.loss_mask * batch.sample_weights.unsqueeze(-1)


def micro_batch_loss(
    policy: PolicyOutput, micro: RolloutBatch, config: GRPOConfig, plugins: Sequence[Any] = ()
) -> tuple[Tensor, dict[str, float]]:
    """This micro-batch's share of the step loss (already divided by the step normalizer) and sums for metrics."""
    mask = trainable_mask(micro)
    logprobs, normalizer = policy.logprobs, policy.normalizer
    old_logprobs = micro.old_logprobs if micro.old_logprobs is not None else logprobs.detach()

    ratio = importance_ratio(logprobs, old_logprobs, mask, config.ratio_level)
    per_token, clip_active = clipped_policy_loss(
        ratio, micro.advantages, config.clip_eps_low, config.clip_eps_high, config.dual_clip
    )
    correction = rollout_correction_weights(
        old_logprobs, micro.rollout_logprobs, mask, config.rollout_correction, config.rollout_correction_cap
    )
    policy_loss = aggregate(per_token * correction, mask, config.loss_aggregation, normalizer)
    loss = policy_loss
    sums = {
        "tokens": float(mask.sum()),
        "pg_loss": float(policy_loss.detach()),
        "pg_clipfrac": float((clip_active.float() * mask).sum()),
        "ratio": float((ratio.detach() * mask).sum()),
        "correction_masked": float(((correction == 0).float() * mask).sum()),
    }
    if micro.ref_logprobs is not None:
        kl = kl_divergence(logprobs, micro.ref_logprobs, config.kl_estimator)
        sums["kl"] = float((kl.detach() * mask).sum())
        if config.kl_coef > 0 and config.kl_placement == "loss":
            loss = loss + config.kl_coef * aggregate(kl, mask, config.loss_aggregation, normalizer)
    if policy.entropy is not None:
        sums["entropy"] = float((policy.entropy.detach() * mask).sum())
        if config.entropy_coef > 0:
            loss = loss - config.entropy_coef * aggregate(policy.entropy, mask, config.loss_aggregation, normalizer)
    for plugin in plugins:
        extra = plugin.extra_loss(micro, policy)
        if extra is not None:
            loss = loss + extra
    return loss, sums


def split_into_micro_batches(batch: RolloutBatch, micro_batch_size: int) -> list[RolloutBatch]:
    """Consecutive row slices of at most `micro_batch_size` rows, each trimmed of trailing padding."""
    return [
        batch.rows(start, min(start + micro_batch_size, batch.size)) for start in range(0, batch.size, micro_batch_size)
    ]


def accumulate_gradients(
    model: Any, batch: RolloutBatch, config: GRPOConfig, plugins: Sequence[Any] = ()
) -> dict[str, float]:
    """Forward/backward every micro-batch; gradients add up to d(step loss)/dθ whatever the split."""
    micro_batches = split_into_micro_batches(batch, config.micro_batch_size)
    constant = config.token_sum_constant or config.max_episode_tokens
    normalizer = step_normalizer([trainable_mask(m) for m in micro_batches], config.loss_aggregation, constant)
    totals: dict[str, float] = {}
    loss_total = 0.0
    for micro in micro_batches:
        # Entropy is always computed: veRL logs it every step, and the bonus needs it when entropy_coef > 0.
        logprobs, entropy = policy_forward(
            model, micro, config.temperature, with_entropy=True, entropy_grad=config.entropy_coef > 0
        )
        loss, sums = micro_batch_loss(PolicyOutput(logprobs, entropy, normalizer), micro, config, plugins)
        loss.backward()
        loss_total += float(loss.detach())
        for key, value in sums.items():
            totals[key] = totals.get(key, 0.0) + value
    tokens = max(totals.pop("tokens", 0.0), 1.0)
    metrics = {"loss": loss_total, "pg_loss": totals.pop("pg_loss", 0.0), "num_items": tokens}
    metrics["normalizer"] = normalizer
    for key, value in totals.items():
        metrics[key] = value / tokens
    return metrics


def optimizer_step(
    model: Any, optimizer: Any, scheduler: Any, batch: RolloutBatch, config: GRPOConfig, plugins: Sequence[Any] = ()
) -> dict[str, float]:
    """One AdamW step on the batch: accumulate, clip the global gradient norm, step, advance the schedule."""
    optimizer.zero_grad(set_to_none=True)
    metrics = accumulate_gradients(model, batch, config, plugins)
    parameters = [p for p in model.parameters() if p.requires_grad]
    max_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
    metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm))
    optimizer.step()
    scheduler.step()
    metrics["lr"] = float(scheduler.get_last_lr()[0])
    return metrics
