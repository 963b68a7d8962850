"""The task sampler: which training tasks each step draws, resumable to the exact position.

Epoch e visits the training task indices in a seeded permutation (or, when a plug-in's
`order_dataset` returned an order, in exactly that order every epoch, never reshuffled: the
curriculum bug of axolotl PR#3707). Its state is (epoch, position), saved with each checkpoint;
the same pair names each draw, which the trainer puts in the GRPO group key.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


class TaskSampler:
    """Draws task indices epoch by epoch; `state_dict` / `load_state_dict` resume mid-epoch."""

    def __init__(self, task_indices: Sequence[int], seed: int = 0, fixed_order: Sequence[int] | None = None):
        if not task_indices:
            raise ValueError("the sampler needs at least one training task")
        self.task_indices = list(task_indices)
        self.seed = seed
        self.fixed_order = list(fixed_order) if fixed_order is not None else None
        if self.fixed_order is not None and sorted(self.fixed_order) != sorted(self.task_indices):
            raise ValueError("order_dataset must return a permutation of the training task indices")
        self.epoch = 0
        self.position = 0

    def epoch_order(self, epoch: int) -> list[int]:
        """The visiting order of one epoch."""
        if self.fixed_order is not None:
            return list(self.fixed_order)
        order = list(self.task_indices)
        random.Random(f"toolgym-sampler-{self.seed}-{epoch}").shuffle(order)
        return order

    def draw(self, n: int) -> list[int]:
        """The next `n` task indices, continuing into the next epoch when this one runs out."""
        return [task for task, _ in self.draw_with_ids(n)]

    def draw_with_ids(self, n: int) -> list[tuple[int, str]]:
        """The next `n` (task index, draw id) pairs; the id "epoch:position" names the sampler slot.

        Slots are unique over the run (and the same after a resume), so a task drawn twice in one
        step (the epoch wraps, or the training indices repeat it) gets two ids: two GRPO groups.
        """
        drawn: list[tuple[int, str]] = []
        while len(drawn) < n:
            order = self.epoch_order(self.epoch)
            take = order[self.position : self.position + n - len(drawn)]
            drawn.extend((task, f"{self.epoch}:{self.position + offset}") for offset, task in enumerate(take))
            self.position += len(take)
            if self.position >= len(order):
                self.epoch, self.position = self.epoch + 1, 0
        return drawn

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "fixed_order": self.fixed_order}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.fixed_order = state.get("fixed_order")
