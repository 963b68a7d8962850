"""`RolloutBatch`: one optimizer step's trajectories as padded tensors plus everything a plug-in reads.

Every per-token tensor is (B, L) and aligned with the token stream: column t is token t of the
episode, so a trajectory's `turn_spans` / observation spans index these tensors directly, with no
shift. `logprobs[:, t]` is log π(token t | tokens < t); column 0 (a prompt token) is always 0.
Rows are right-padded; `attention_mask` marks real tokens and `loss_mask` the policy's own tokens.

The batch is the single object handed to every plug-in hook (`shape_rewards`, `advantages`,
`extra_loss`, `on_step_end`): ids, masks, old / reference / rollout logprobs, per-sequence
perplexity over policy tokens, outcome and per-turn rewards, the trajectories themselves (turn
spans, tool outputs, per-turn env info, task fields) and the group keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor


def group_key_of(trajectory: Any) -> str:
    """The key that groups samples of one draw of a task: stable across batches and batch orders.

    Uses the trajectory's own `group_key`, which the rollout layer always sets (task id, seed and
    draw: `toolgym.agents.rollout.group_key`). Hand-built records without one fall back to task id
    + seed, which merges two draws of the same task; never the position in a list (Search-R1#88).
    """
    key = getattr(trajectory, "group_key", None)
    if key:
        return str(key)
    return f"{trajectory.task_id}|seed={trajectory.seed}"


@dataclass
class RolloutBatch:
    """Tensors and records of B trajectories (B = groups × G), right-padded to length L."""

    input_ids: Tensor
    """(B, L) token ids of each whole episode, padded with `pad_token_id`."""
    attention_mask: Tensor
    """(B, L) 1 on real tokens."""
    loss_mask: Tensor
    """(B, L) float, 1 exactly on tokens the policy sampled (0 on prompt, template, tool and padding)."""
    rollout_logprobs: Tensor
    """(B, L) the engine's logprob of each sampled token, recorded at rollout time (0 elsewhere)."""
    outcome: Tensor
    """(B,) the env's unshaped final reward: the correctness signal dynamic sampling judges."""
    group_ids: Tensor
    """(B,) long; equal ids = same group (one draw of a task). Derived from `group_keys`, never from positions."""
    group_keys: list[str]
    trajectories: list[Any]
    """The `Trajectory` records: messages, turn spans, turn infos (tool outputs, env info), task id."""
    truncated: Tensor
    """(B,) bool, the episode hit a turn or token budget."""
    shaped_rewards: Tensor | None = None
    """(B,) the reward after shaping plug-ins (starts as `outcome`); advantages use this."""
    token_rewards: Tensor | None = None
    """(B, L) optional per-token rewards a shaping plug-in places (e.g. at a turn's last policy token)."""
    old_logprobs: Tensor | None = None
    """(B, L) logprobs under the policy that generated the batch, as recomputed by the trainer."""
    ref_logprobs: Tensor | None = None
    """(B, L) logprobs under the reference model (only when kl_coef > 0)."""
    advantages: Tensor | None = None
    """(B, L) per-token advantages, filled before the update."""
    sample_weights: Tensor | None = None
    """(B,) 1 for rows in the loss, 0 for failed or masked ones (`mask_truncated`)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Free room for plug-ins to pass values between their own hooks within a step."""

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def turn_rewards(self) -> list[list[float]]:
        """The env's step reward after each assistant turn (0.0 where the rollout did not record one)."""
        rewards = []
        for trajectory in self.trajectories:
            recorded = getattr(trajectory, "turn_rewards", None)
            rewards.append(list(recorded) if recorded else [0.0] * len(trajectory.turn_spans))
        return rewards

    @property
    def policy_logprobs(self) -> Tensor:
        """The best available logprobs of the generating policy: old (trainer) if computed, else rollout."""
        return self.old_logprobs if self.old_logprobs is not None else self.rollout_logprobs

    @property
    def sequence_perplexity(self) -> Tensor:
        """(B,) exp(−mean log π) over each sequence's policy tokens only (DiPO's per-sample perplexity)."""
        tokens = self.loss_mask.sum(-1).clamp(min=1.0)
        return torch.exp(-(self.policy_logprobs * self.loss_mask).sum(-1) / tokens)

    def select(self, rows: Sequence[int]) -> RolloutBatch:
        """A new batch with the given rows, in that order (tensors indexed, lists picked)."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        values: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, Tensor):
                values[spec.name] = value[index]
            elif isinstance(value, list):
                values[spec.name] = [value[i] for i in index.tolist()]
            else:
                values[spec.name] = value
        return RolloutBatch(**values)

    def rows(self, start: int, end: int) -> RolloutBatch:
        """Rows start … end−1 (a micro-batch), trimmed to the longest real sequence among them."""
        part = self.select(range(start, end))
        length = int(part.attention_mask.sum(-1).max().item()) if part.size else 0
        for spec in fields(part):
            value = getattr(part, spec.name)
            if isinstance(value, Tensor) and value.dim() == 2:
                setattr(part, spec.name, value[:, :length])
        return part


def collate(trajectories: Sequence[Any], pad_token_id: int) -> RolloutBatch:
    """Pad trajectories into a `RolloutBatch`; failed ones (no tokens or `failed=True`) get weight 0."""
    if not trajectories:
        raise ValueError("cannot build a batch from zero trajectories")
    width = max(len(t.token_ids) for t in trajectories)
    size = len(trajectories)
    input_ids = torch.full((size, width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((size, width), dtype=torch.long)
    loss_mask = torch.zeros((size, width))
    rollout_logprobs = torch.zeros((size, width))
    for row, trajectory in enumerate(trajectories):
        n = len(trajectory.token_ids)
        input_ids[row, :n] = torch.tensor(trajectory.token_ids, dtype=torch.long)
        attention[row, :n] = 1
        loss_mask[row, :n] = torch.tensor(trajectory.loss_mask, dtype=torch.float)
        rollout_logprobs[row, :n] = torch.tensor(trajectory.logprobs, dtype=torch.float)
    loss_mask[:, 0] = 0.0  # nothing predicts the first token
    keys = [group_key_of(t) for t in trajectories]
    numbering = {key: number for number, key in enumerate(dict.fromkeys(keys))}
    outcome = torch.tensor([_reward(t) for t in trajectories], dtype=torch.float)
    failed = torch.tensor([bool(getattr(t, "failed", False)) or not t.token_ids for t in trajectories])
    outcome = torch.where(failed, torch.full_like(outcome, math.nan), outcome)
    return RolloutBatch(
        input_ids=input_ids,
        attention_mask=attention,
        loss_mask=loss_mask,
        rollout_logprobs=rollout_logprobs,
        outcome=outcome,
        group_ids=torch.tensor([numbering[key] for key in keys], dtype=torch.long),
        group_keys=keys,
        trajectories=list(trajectories),
        truncated=torch.tensor([bool(t.truncated) for t in trajectories]),
        shaped_rewards=outcome.clone(),
        token_rewards=torch.zeros((size, width)),
        sample_weights=(~failed).float(),
    )


def _reward(trajectory: Any) -> float:
    reward = float(trajectory.reward)
    return reward if math.isfinite(reward) else math.nan


def concat(batches: Sequence[RolloutBatch], pad_token_id: int) -> RolloutBatch:
    """One batch from several (dynamic sampling's rounds): rows appended, 2-D tensors padded, groups renumbered."""
    if len(batches) == 1:
        return batches[0]
    width = max(int(b.input_ids.shape[1]) for b in batches)
    values: dict[str, Any] = {}
    for spec in fields(RolloutBatch):
        parts = [getattr(b, spec.name) for b in batches]
        if spec.name == "extras":
            values[spec.name] = dict(parts[0])
        elif all(isinstance(p, Tensor) for p in parts):
            if parts[0].dim() == 2:
                fill = pad_token_id if spec.name == "input_ids" else 0
                parts = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=fill) for p in parts]
            values[spec.name] = torch.cat(parts)
        elif all(isinstance(p, list) for p in parts):
            values[spec.name] = [item for part in parts for item in part]
        else:
            values[spec.name] = None
    numbering = {key: number for number, key in enumerate(dict.fromkeys(values["group_keys"]))}
    values["group_ids"] = torch.tensor([numbering[key] for key in values["group_keys"]], dtype=torch.long)
    return RolloutBatch(**values)
