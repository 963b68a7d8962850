"""The GRPO family's formulas as plain tensor functions: advantages, ratios, clipping, KL, aggregation.

Every knob of `GRPOConfig` that changes the objective lands in exactly one function here, with the
formula in its docstring and the source it follows (TRL, veRL, OpenRLHF, the papers). Tensors are
per token, aligned with the token stream: `x[i, t]` belongs to token `t` of sequence `i`, and
`loss_mask[i, t] == 1` exactly where the policy sampled that token.

The aggregation functions return a micro-batch's *share* of the step loss: a sum over its tokens
divided by a normalizer computed once for the whole optimizer step (`step_normalizer`). So the
gradient summed over micro-batches is the same however the step is split (the gradient-accumulation
bug class of trl#5619 and verl#7321).
"""

from __future__ import annotations

import torch
from torch import Tensor

LOG_RATIO_LIMIT = 20.0
"""Log-ratios are clamped to ±20 before `exp` (veRL does the same) so one wild token cannot overflow."""


# --- advantages -------------------------------------------------------------------------------------


def group_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    baseline: str = "mean",
    scale: str = "group_std",
    eps: float = 1e-6,
    std_unbiased: bool = True,
) -> Tensor:
    """Sequence advantages Â_i = (r_i − b_i) / (σ + eps), computed within each group of the same task.

    baseline "mean": b_i = mean_j r_j over the group (GRPO); "rloo": b_i = mean over the *other*
    members (r_i excluded, RLOO / OpenRLHF). scale "group_std": σ = the group's std (GRPO, TRL
    default); "batch_std": σ = the std of all rewards in the batch (Lite PPO, TRL `scale_rewards=
    "batch"`); "none": no division (Dr. GRPO). NaN rewards (unscorable samples) are left out of every
    mean and std and get advantage 0 (TRL's nanmean/nanstd); so are ±inf ones (a shaping plug-in's
    overflow), which would otherwise turn the whole group, and through 0·NaN the whole loss, into NaN. A group with one scored member gets 0,
    not veRL's mean-0/std-1 rule that would hand it Â = r; an all-equal group gets 0 from r − b = 0.
    """
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(
            f"rewards and group_ids must be 1-D of equal length, got {rewards.shape} and {group_ids.shape}"
        )
    rewards = rewards.double()
    scored = torch.isfinite(rewards)
    advantages = torch.zeros_like(rewards)
    correction = 1 if std_unbiased else 0
    for group in torch.unique(group_ids):
        members = (group_ids == group) & scored
        n = int(members.sum())
        if n < 2:
            continue
        values = rewards[members]
        if values.max() == values.min():  # all equal: exactly 0, even with eps = 0 or a rounded mean
            continue
        if baseline == "mean":
            centred = values - values.mean()
        elif baseline == "rloo":
            centred = values - (values.sum() - values) / (n - 1)
        else:
            raise ValueError(f"baseline must be 'mean' or 'rloo', got {baseline!r}")
        if scale == "group_std":
            centred = centred / (values.std(correction=correction) + eps)
        advantages[members] = centred
    if scale == "batch_std":
        values = rewards[scored]
        std = values.std(correction=correction) if values.numel() > 1 else torch.tensor(0.0, dtype=rewards.dtype)
        if std + eps > 0:  # a zero-spread batch has all-zero advantages already; never 0 / 0
            advantages = advantages / (std + eps)
    elif scale not in ("group_std", "none"):
        raise ValueError(f"scale must be 'group_std', 'batch_std' or 'none', got {scale!r}")
    return advantages.float()


def all_equal_groups(outcomes: Tensor, group_ids: Tensor, tolerance: float = 1e-9) -> Tensor:
    """A per-sample flag: its group's outcomes are all equal (max − min ≤ tolerance), so its advantage is 0.

    Non-finite outcomes (failed samples) are left out, as in `group_advantages`.
    The range test works for binary and continuous rewards alike (a mean-in-(0,1) test misses
    continuous zero-variance groups, OpenRLHF#1270) and avoids float equality (NeMo-RL#4158).
    """
    flags = torch.zeros_like(outcomes, dtype=torch.bool)
    for group in torch.unique(group_ids):
        members = group_ids == group
        values = outcomes[members]
        values = values[torch.isfinite(values)]
        spread = (values.max() - values.min()).item() if values.numel() else 0.0
        flags[members] = spread <= tolerance
    return flags


# --- ratios, clipping and importance correction -------------------------------------------------------


def importance_ratio(logprobs: Tensor, old_logprobs: Tensor, loss_mask: Tensor, level: str = "token") -> Tensor:
    """ρ = π_θ / π_θold per token ("token"), or GSPO's s_i = exp(mean_t log ρ_{i,t}) per sequence ("sequence").

    The sequence ratio (arXiv 2507.18071, TRL `importance_sampling_level="sequence"`) is broadcast
    over the sequence's tokens, so aggregation treats both levels alike.
    """
    log_ratio = (logprobs - old_logprobs) * loss_mask
    if level == "token":
        return torch.exp(log_ratio.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT))
    if level == "sequence":
        lengths = loss_mask.sum(-1, keepdim=True).clamp(min=1.0)
        sequence_log_ratio = log_ratio.sum(-1, keepdim=True) / lengths
        return torch.exp(sequence_log_ratio.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)).expand_as(logprobs)
    raise ValueError(f"ratio level must be 'token' or 'sequence', got {level!r}")


def clipped_policy_loss(
    ratio: Tensor,
    advantages: Tensor,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-token PPO loss max(−Â·ρ, −Â·clip(ρ, 1−ε_low, 1+ε_high)) and where the clip was active.

    ε_high > ε_low is DAPO's clip-higher (arXiv 2503.14476 recommends 0.28). `dual_clip` = c > 1
    caps the loss of negative-advantage tokens at −c·Â (veRL `clip_ratio_c`, OpenRLHF `dual_clip`),
    so a huge ratio on a bad token cannot dominate the step.
    """
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps_low, 1.0 + clip_eps_high)
    loss = torch.maximum(unclipped, clipped)
    clip_active = clipped > unclipped
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        capped = torch.minimum(loss, -advantages * dual_clip)
        loss = torch.where(advantages < 0, capped, loss)
    return loss, clip_active


def rollout_correction_weights(
    old_logprobs: Tensor, rollout_logprobs: Tensor, loss_mask: Tensor, mode: str = "none", cap: float = 2.0
) -> Tensor:
    """Per-token weights correcting for the rollout engine sampling from a slightly different policy.

    w = π_θold / π_rollout from the logprobs the engine stored. "token_truncate" (truncated IS, veRL
    and SkyRL `use_tis`): w_t = min(w_t, C). "token_mask" (masked IS, TRL's `masked_fill(w > C, 0)`):
    w_t stays the importance weight where w_t ≤ C and the token is dropped (0) above it, so kept
    tokens are still corrected. "sequence_truncate" / "sequence_mask": the same on the sequence
    weight W_i = exp(Σ_t log w_{i,t}) (TRL's default with vLLM is "sequence_mask", C = 3). "none":
    all ones. The weights carry no gradient.
    """
    if mode == "none":
        return torch.ones_like(old_logprobs)
    log_weight = ((old_logprobs - rollout_logprobs) * loss_mask).detach()
    if mode.startswith("sequence"):
        log_weight = log_weight.sum(-1, keepdim=True).expand_as(old_logprobs)
    weight = torch.exp(log_weight.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT))
    if mode in ("token_truncate", "sequence_truncate"):
        return weight.clamp(max=cap)
    if mode in ("token_mask", "sequence_mask"):
        return weight * (weight <= cap).to(weight.dtype)
    raise ValueError(f"unknown rollout correction {mode!r}")


# --- KL -------------------------------------------------------------------------------------


def kl_divergence(logprobs: Tensor, ref_logprobs: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) from ℓ = log π_θ − log π_ref (Schulman's estimators).

    k1 = ℓ; k2 = ½ℓ²; k3 = exp(−ℓ) − 1 + ℓ (non-negative, low variance; TRL's only estimator and
    veRL's `low_var_kl`). ℓ is clamped to ±20 as veRL does.
    """
    log_ratio = (logprobs - ref_logprobs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.square()
    if estimator == "k3":
        return torch.exp(-log_ratio) - 1.0 + log_ratio
    raise ValueError(f"kl_estimator must be 'k1', 'k2' or 'k3', got {estimator!r}")


# --- aggregation ----------------------------------------------------------------------------------------

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "token_sum_norm")


def step_normalizer(loss_masks: list[Tensor], aggregation: str, token_sum_constant: float | None = None) -> float:
    """The divisor of the step loss, computed once over ALL micro-batches of one optimizer step.

    `loss_masks` are the micro-batches' trainable masks (B_k, L_k); rows that weigh 0 (failed
    episodes, `mask_truncated`, a plug-in's zero sample weight) are all-zero rows, still present.

    token_mean: the trainable tokens of the step (DAPO; TRL `dapo`, veRL `token-mean`).
    seq_mean_token_mean / seq_mean_token_sum: EVERY row of the step, masked or not. That is veRL's
    `seq-mean-token-mean` / `seq-mean-token-sum` with its step-wide `global_batch_size` (the
    mini-batch's sequence count, every sequence counted) and TRL `grpo`'s mean over all rows; veRL
    counts only non-empty rows in its per-micro-batch fallback, which depends on the split and on
    how many rows are masked, so we do not follow it.
    token_sum_norm: every row × a constant length (Dr. GRPO; TRL `dr_grpo`: batch rows ×
    max_completion_length; veRL `seq-mean-token-sum-norm` with `loss_scale_factor`). The point of
    Dr. GRPO is a constant divisor: it must not shrink when rows are failed or masked, or a masked
    row would silently up-weight the others.
    The result is at least 1, so an empty step gives a zero loss instead of a NaN.
    """
    rows = sum(int(mask.shape[0]) for mask in loss_masks)
    if aggregation == "token_mean":
        total = sum(float(mask.sum()) for mask in loss_masks)
    elif aggregation in ("seq_mean_token_mean", "seq_mean_token_sum"):
        total = float(rows)
    elif aggregation == "token_sum_norm":
        if token_sum_constant is None or token_sum_constant <= 0:
            raise ValueError("token_sum_norm needs a positive token_sum_constant")
        total = float(rows) * token_sum_constant
    else:
        raise ValueError(f"loss_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    return max(total, 1.0)


def aggregate(per_token: Tensor, loss_mask: Tensor, aggregation: str, normalizer: float) -> Tensor:
    """This micro-batch's share of the step loss: a masked sum divided by the step's `normalizer`.

    seq_mean_token_mean first averages over each sequence's own tokens (the original GRPO paper's
    1/|o_i|), every other mode sums tokens; all divide by the step-wide `normalizer`.
    """
    masked = per_token * loss_mask
    if aggregation == "seq_mean_token_mean":
        per_sequence = masked.sum(-1) / loss_mask.sum(-1).clamp(min=1.0)
        return per_sequence.sum() / normalizer
    if aggregation in ("token_mean", "seq_mean_token_sum", "token_sum_norm"):
        return masked.sum() / normalizer
    raise ValueError(f"loss_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
