"""Trainer plug-ins: one research method per file, hooked into the GRPO pipeline at named points.

A plug-in subclasses `Plugin` and overrides only the hooks it needs. The pipeline of one step:

    order_dataset (once, at set-up)  ->  rollouts  ->  old / ref logprobs  ->  shape_rewards
    ->  dynamic-sampling filter (on the UNSHAPED outcome)  ->  advantages  ->  loss (+ extra_loss)
    ->  optimizer step  ->  on_step_end

Each hook receives the whole `RolloutBatch` (ids, masks, old/ref/rollout logprobs, per-sequence
perplexity, outcome and per-turn rewards, turn spans, tool outputs, per-turn env info, task fields).
State a plug-in keeps across steps (a running queue, a sampler position) goes through
`state_dict` / `load_state_dict`, which checkpoints save and resume restores.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

REGISTRY = {
    "format_reward": "toolgym.trainers.plugins.format_reward:FormatReward",
}
"""Short names for the plug-ins shipped here; any other plug-in is named as "module:Class"."""


@dataclass
class OrderContext:
    """What `order_dataset` may use: the policy (for embeddings, as HAMMER does), its tokenizer, the env."""

    model: Any
    tokenizer: Any
    env: Any
    seed: int


class Plugin:
    """Base class: every hook is a no-op, so a plug-in overrides only what its method changes."""

    name = "plugin"

    def order_dataset(self, task_indices: Sequence[int], context: OrderContext) -> list[int] | None:
        """A fixed order of the training task indices (HAMMER), or None to keep the seeded shuffle."""
        return None

    def shape_rewards(self, batch: Any) -> None:
        """Change `batch.shaped_rewards` (B,) or `batch.token_rewards` (B, L) in place (DiPO, TSPO).

        Runs after the old/ref logprobs exist and before dynamic sampling, which still judges
        `batch.outcome` (unshaped), so shaping cannot smuggle all-wrong groups into the step.
        """

    def advantages(self, batch: Any) -> Tensor | None:
        """(B, L) advantages replacing `batch.advantages` (which holds the GRPO default), or None."""
        return None

    def extra_loss(self, micro_batch: Any, policy: Any) -> Tensor | None:
        """A scalar added to a micro-batch's loss; divide token sums by `policy.normalizer`."""
        return None

    def on_step_end(self, batch: Any, metrics: dict[str, float]) -> None:
        """After the optimizer step: update running state; add keys to `metrics` to log them."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (exact resume)."""


def load_plugins(specs: Sequence[dict[str, Any]]) -> list[Plugin]:
    """Instantiate plug-ins from config entries {"name": <short name or module:Class>, **kwargs}."""
    plugins = []
    for spec in specs:
        kwargs = {key: value for key, value in spec.items() if key != "name"}
        target = REGISTRY.get(spec["name"], spec["name"])
        module_name, _, class_name = target.partition(":")
        if not class_name:
            raise ValueError(
                f"unknown plug-in {spec['name']!r}: use one of {sorted(REGISTRY)} or 'package.module:ClassName'"
            )
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load plug-in {target!r}: {exc}") from exc
        plugins.append(cls(**kwargs))
    return plugins
