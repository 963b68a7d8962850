"""The optimisation loop both retrieval trainers share: AdamW, linear warm-up, clipping, a progress bar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .records import TrainingRecord, source_batches

logger = logging.getLogger(__name__)


def world_size() -> int:
    """Ranks in the torch.distributed group (1 when it is not initialized)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when torch.distributed is not initialized)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def average_gradients(parameters: list[Any], world: int) -> None:
    """All-reduce and average every gradient: data parallelism without wrapping the model (so peft
    models, soft-prefix forwards and two-pass losses need no DDP hooks)."""
    import torch.distributed as dist

    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world


def shard_for_rank(global_batches: list[list[Any]], per_rank: int) -> list[list[Any]]:
    """This rank's slice of each global batch: under torchrun every rank trains on different rows of
    the same global batch (so one step still draws from a single source dataset)."""
    start = rank() * per_rank
    return [batch[start : start + per_rank] for batch in global_batches if len(batch) > start]


def rank_batches(records: Sequence[TrainingRecord], per_rank: int, seed: int) -> list[list[TrainingRecord]]:
    """This rank's slice of each global single-source batch (per_rank rows of per_rank × world rows).

    One global batch is drawn for all ranks, so the data a step sees does not depend on how many
    ranks share it; a ragged last batch is kept only when a single process has too few records.
    """
    global_size = per_rank * world_size()
    drop_last = world_size() > 1 or len(records) >= global_size
    return shard_for_rank(list(source_batches(records, global_size, seed=seed, drop_last=drop_last)), per_rank)


def run_steps(
    parameters: Iterable[Any],
    batches: Iterable[Any],
    loss_fn: Callable[[Any], Any],
    *,
    steps: int,
    learning_rate: float,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    description: str = "training",
    show_progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run `steps` optimizer steps of `loss_fn(batch)` over `batches` (cycled); returns each step's loss."""
    import torch

    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise ValueError("no trainable parameters: every parameter has requires_grad=False")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    warmup = max(0, int(warmup_steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))
    losses: list[float] = []
    batch_list = batches if isinstance(batches, list) else list(batches)
    if not batch_list:
        raise ValueError("no training batches: the records are fewer than one batch")

    world = world_size()

    def step_once(step: int) -> None:
        loss = loss_fn(batch_list[step % len(batch_list)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            average_gradients(parameters, world)
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])

    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, TextColumn("loss {task.fields[loss]}"), transient=True) as progress:
            task = progress.add_task(description, total=steps, loss="-")
            for step in range(steps):
                step_once(step)
                progress.update(task, advance=1, loss=f"{losses[-1]:.4f}")
    else:
        for step in range(steps):
            step_once(step)
    logger.info("%s: %d steps, loss %.4f -> %.4f", description, steps, losses[0], losses[-1])
    return losses


def train_embedder_stage(
    embedder: Any, records: Sequence[TrainingRecord], config: Any, loss_fn: Callable[[Any], Any], description: str
) -> list[float]:
    """One embedder stage: the model in train mode over this rank's batches, then back to eval; returns the losses.

    `config` is a stage config (StageIConfig / StageIIConfig): batch_size, seed, steps, learning_rate,
    warmup_steps and show_progress are read from it.
    """
    embedder.model.train()
    losses = run_steps(
        embedder.model.parameters(),
        rank_batches(records, config.batch_size, config.seed),
        loss_fn,
        steps=config.steps,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        description=description,
        show_progress=config.show_progress,
    )
    embedder.model.eval()
    return losses


__all__ = [
    "average_gradients",
    "rank",
    "rank_batches",
    "run_steps",
    "shard_for_rank",
    "train_embedder_stage",
    "world_size",
]
