"""SFT warm-up: supervised training on demonstrations, in the same token stream as rollouts.

Demonstrations are trajectories (their `loss_mask` marks the policy's tokens already) or plain
message lists, which are laid out by the rollout layer's own `TokenStream`: the chat-template
prompt, each assistant turn's content followed by the template's end-of-turn token (loss 1), and the
env/tool messages between turns (loss 0), in the "chat" or Search-R1 "raw" layout. So SFT teaches
exactly the tokens the policy will later sample, and tool outputs are never imitated.

Why a warm-up: trainer notes / tiny_learning.md measured that skills a model lacks are installed by
SFT in seconds, while RL fixes *behaviour* the model already has at some probability.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from toolgym.agents.engine import Generation
from toolgym.agents.token_stream import TokenStream, append_masked, append_sampled
from toolgym.agents.trajectory import Trajectory

logger = logging.getLogger(__name__)


@dataclass
class Demonstration:
    """One supervised example: token ids and the mask of tokens the loss imitates."""

    token_ids: list[int]
    loss_mask: list[int]


def from_trajectory(trajectory: Trajectory) -> Demonstration:
    """A rollout as a demonstration: its policy tokens (loss_mask 1) are the targets."""
    return Demonstration(list(trajectory.token_ids), list(trajectory.loss_mask))


def from_messages(
    tokenizer: Any, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None, layout: str = "chat"
) -> Demonstration:
    """A conversation laid out like a rollout of it; loss on assistant tokens (and their end-of-turn) only."""
    stream = TokenStream(tokenizer)
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), None)
    if first is None:
        raise ValueError("a demonstration needs at least one assistant message")
    prompt = stream.prompt_ids(list(messages[:first]), tools)
    trajectory = Trajectory(
        messages=list(messages[:first]),
        token_ids=list(prompt),
        loss_mask=[0] * len(prompt),
        logprobs=[0.0] * len(prompt),
        turn_spans=[],
        tools=tools,
        prompt_length=len(prompt),
        layout=layout,
    )
    eos = stream.closing_ids(tools)[:1]
    turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    for position, index in enumerate(turns):
        final = position == len(turns) - 1
        content = str(messages[index].get("content") or "")
        ids = tokenizer(content, add_special_tokens=False)["input_ids"]
        # chat layout: a turn ends on the template's end-of-turn token, as sampled turns do; raw layout
        # (Search-R1): turns end on a stop string (</search>, </answer>) and the end of turn is appended.
        ends_on_eos = layout == "chat"
        ids = list(ids) + (eos if ends_on_eos else [])
        append_sampled(trajectory, Generation(ids, [0.0] * len(ids), "eos" if ends_on_eos else "stop"))
        if final:
            append_masked(trajectory, stream.final_closing(trajectory, ends_on_eos))
        else:
            observation = list(messages[index + 1 : turns[position + 1]])
            append_masked(trajectory, stream.between_turns(trajectory, observation, ends_on_eos))
    return from_trajectory(trajectory)


def load_demonstrations(path: str | Path, tokenizer: Any, layout: str = "chat") -> list[Demonstration]:
    """Read a JSONL file of trajectories (`Trajectory.to_dict`) or {"messages": [...], "tools"?: [...]} rows."""
    demonstrations = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "token_ids" in row:
            demonstrations.append(from_trajectory(Trajectory.from_dict(row)))
        elif "messages" in row:
            demonstrations.append(
                from_messages(tokenizer, row["messages"], row.get("tools"), row.get("layout", layout))
            )
        else:
            raise ValueError(f"{path}:{number}: a demonstration needs 'token_ids' (a trajectory) or 'messages'")
    if not demonstrations:
        raise ValueError(f"{path} holds no demonstrations")
    return demonstrations


def sft_loss(model: Any, batch: Sequence[Demonstration], pad_token_id: int) -> tuple[torch.Tensor, int]:
    """Token-mean cross-entropy of the batch's masked tokens, and how many tokens it covered."""
    device = next(model.parameters()).device
    width = max(len(d.token_ids) for d in batch)
    ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width))
    for row, demo in enumerate(batch):
        n = len(demo.token_ids)
        ids[row, :n] = torch.tensor(demo.token_ids)
        attention[row, :n] = 1
        mask[row, :n] = torch.tensor(demo.loss_mask, dtype=torch.float)
    ids, attention, mask = ids.to(device), attention.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    targets, target_mask = ids[:, 1:], mask[:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    tokens = int(target_mask.sum())
    return (losses * target_mask).sum() / max(tokens, 1), tokens


def _length_grouped_batches(
    demonstrations: Sequence[Demonstration], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """One epoch of index batches: shuffled, sorted by length within windows of 16 batches, batch order shuffled."""
    order = list(range(len(demonstrations)))
    rng.shuffle(order)
    window = batch_size * 16
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(demonstrations[i].token_ids))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sft_train(
    model: Any,
    demonstrations: Sequence[Demonstration],
    steps: int,
    batch_size: int = 16,
    learning_rate: float = 1e-4,
    warmup_steps: int = 0,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    pad_token_id: int = 0,
) -> list[float]:
    """AdamW on seeded shuffled epochs of the demonstrations; returns the per-step losses.

    Batches are length-grouped (HF Trainer's `group_by_length`): each window of 16 batches is sorted
    by length before it is cut, so a batch pads to a similar length, and the batches' order is
    shuffled. Demos of very different lengths (a direct answer vs. a search and its result) then
    cost what they hold instead of the longest one in the batch.
    """
    if not demonstrations:
        raise ValueError("SFT needs at least one demonstration")
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    )
    rng = random.Random(f"toolgym-sft-{seed}")
    batches: list[list[int]] = []
    losses = []
    for step in range(steps):
        if not batches:
            batches = _length_grouped_batches(demonstrations, batch_size, rng)
        batch = [demonstrations[i] for i in batches.pop()]
        optimizer.zero_grad(set_to_none=True)
        loss, _ = sft_loss(model, batch, pad_token_id)
        loss.backward()
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0:
            logger.info("sft step %d loss %.4f", step, losses[-1])
    return losses
