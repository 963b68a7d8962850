"""Rollout statistics of a batch under veRL's / TRL's metric names."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .batch import RolloutBatch


def rollout_metrics(trajectories: Sequence[Any], prefix: str = "") -> dict[str, float]:
    """reward/mean, response_length/mean, turns/mean, tools/call_frequency, tools/failure_frequency, …

    tools/call_frequency is the share of episodes with at least one tool call and
    tools/failure_frequency the share of tool-calling turns that reported an error (TRL's names).
    """
    scored = [t for t in trajectories if not getattr(t, "failed", False) and math.isfinite(float(t.reward))]
    rewards = torch.tensor([float(t.reward) for t in scored]) if scored else torch.zeros(0)
    lengths = [len(t.token_ids) - t.prompt_length for t in trajectories]
    policy_tokens = [sum(t.loss_mask) for t in trajectories]
    calling_turns = [info for t in trajectories for info in t.turn_infos if info.get("tool_calls")]
    failed_calls = [info for info in calling_turns if info.get("tool_error") or info.get("invalid_action")]
    n = max(len(trajectories), 1)
    metrics = {
        "reward/mean": float(rewards.mean()) if rewards.numel() else math.nan,
        "reward/std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
        "reward/max": float(rewards.max()) if rewards.numel() else math.nan,
        "response_length/mean": sum(lengths) / n,
        "response_length/max": float(max(lengths, default=0)),
        "policy_tokens/mean": sum(policy_tokens) / n,
        "turns/mean": sum(len(t.turn_spans) for t in trajectories) / n,
        "tools/call_frequency": sum(any(i.get("tool_calls") for i in t.turn_infos) for t in trajectories) / n,
        "tools/failure_frequency": len(failed_calls) / max(len(calling_turns), 1),
        "truncated/frac": sum(bool(t.truncated) for t in trajectories) / n,
        "failed/count": float(sum(bool(getattr(t, "failed", False)) for t in trajectories)),
    }
    return {f"{prefix}{key}": value for key, value in metrics.items()}


def batch_metrics(batch: RolloutBatch) -> dict[str, float]:
    """Statistics of the batch that enters the loss: shaped reward and advantage spread."""
    shaped = batch.shaped_rewards[~torch.isnan(batch.shaped_rewards)]
    mask = batch.loss_mask.bool()
    advantages = batch.advantages[mask] if batch.advantages is not None else torch.zeros(0)
    return {
        "reward/shaped_mean": float(shaped.mean()) if shaped.numel() else math.nan,
        "advantages/mean": float(advantages.mean()) if advantages.numel() else 0.0,
        "advantages/abs_mean": float(advantages.abs().mean()) if advantages.numel() else 0.0,
        "batch/sequences": float(batch.size),
        "batch/groups": float(len(set(batch.group_keys))),
    }
