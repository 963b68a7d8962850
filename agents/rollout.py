"""Token-level rollouts for training: token ids in, token ids out.

A trajectory's `token_ids` are built by appending, never by re-tokenizing decoded text:

    prompt (template + generation prompt)                        loss_mask 0
    turn 1: the ids the engine sampled                           loss_mask 1, engine logprobs
            the rest of the template's end of turn (`<|im_end|>` after a stop string, the `\\n` after eos)   0
    env/tool messages + next generation prompt (fixed-base suffix)                             0
    turn 2: sampled ids                                          1
    …

So the trainer scores exactly the tokens the policy produced, with exactly the context it saw.
`toolgym.agents.drift.check_drift` compares this stream with a full chat-template render of the
final messages. The messages hold each assistant turn as the decoded text of its sampled ids (the
token-faithful transcript); what the env received (for native tool calling, a message with
`tool_calls`) is in `actions`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from toolgym.envs.pool import EnvPool

from .base import Action, SamplingParams
from .chat_format import action_from_text, closing_text, encode, render, suffix_text, template_tools
from .engine import Generation, TokenEngine, sampling_record
from .trajectory import Trajectory, read_trajectories, write_trajectories

logger = logging.getLogger(__name__)

__all__ = [
    "Generation",
    "TokenEngine",
    "Trajectory",
    "collect_rollouts",
    "read_trajectories",
    "write_trajectories",
]


@dataclass
class _Episode:
    trajectory: Trajectory
    tool_format: str
    order: int
    started: float


def collect_rollouts(
    engine: TokenEngine,
    tokenizer: Any,
    envs: EnvPool | Sequence[gym.Env],
    seeds: Sequence[int],
    sampling: SamplingParams,
    max_episode_tokens: int,
    group_size: int = 1,
    options: Sequence[dict[str, Any] | None] | None = None,
    use_chat_template_tools: bool = True,
    *,
    layout: str = "auto",
    policy_version: int | None = None,
    sample_offset: int = 0,
) -> list[Trajectory]:
    """Play `group_size` episodes per seed and return their trajectories, grouped by seed.

    The result is ordered so that `trajectories[g * group_size : (g + 1) * group_size]` is the group
    of `seeds[g]` (same task, independent samples). Up to `len(envs)` episodes run at once; each
    round generates one turn for every episode awaiting one, in batches, and steps only those envs.
    An episode whose tokens would exceed `max_episode_tokens` ends `truncated` with
    `info["stop_reason"] == "max_episode_tokens"` and reward 0.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if max_episode_tokens < 2:
        raise ValueError(f"max_episode_tokens must be at least 2, got {max_episode_tokens}")
    options = list(options) if options is not None else [None] * len(seeds)
    if len(options) != len(seeds):
        raise ValueError(f"got {len(seeds)} seeds but {len(options)} options")
    if layout not in ("auto", "chat", "raw"):
        raise ValueError(f"layout must be 'auto', 'chat' or 'raw', got {layout!r}")
    pool = envs if isinstance(envs, EnvPool) else EnvPool(list(envs), max_workers=1)
    if policy_version is None:
        policy_version = int(getattr(engine, "policy_version", 0))
    record = sampling_record(sampling, policy_version)
    if sampling.seed is not None:
        engine.reseed(sampling.seed)
    queue = [
        (group * group_size + sample, group, seed, option)
        for group, (seed, option) in enumerate(zip(seeds, options))
        for sample in range(group_size)
    ][::-1]
    finished: dict[int, Trajectory] = {}
    slots: dict[int, _Episode] = {}
    closings: dict[str, list[int]] = {}

    def start(slot: int) -> None:
        while queue:
            order, group, seed, option = queue.pop()
            messages, info = pool.reset([slot], [seed], [option])[slot]
            tool_format = info.get("tool_format", "text")
            tools = template_tools(tokenizer, info.get("tools"), tool_format, use_chat_template_tools)
            prompt = encode(tokenizer, render(tokenizer, messages, tools, add_generation_prompt=True))
            trajectory = Trajectory(
                messages=list(messages),
                token_ids=list(prompt),
                loss_mask=[0] * len(prompt),
                logprobs=[0.0] * len(prompt),
                turn_spans=[],
                info=dict(info),
                tools=tools,
                prompt_length=len(prompt),
                seed=seed,
                task_id=str(info.get("task_id", "")),
                group=group,
                group_key=_group_key(str(info.get("task_id", "")), seed),
                sample_index=sample_offset + order - group * group_size,
                sampling=dict(record),
                layout="chat" if layout == "auto" else layout,
            )
            episode = _Episode(trajectory, tool_format, order, time.perf_counter())
            if _room(trajectory, max_episode_tokens, _closing_ids(tokenizer, tools, closings)) < 1:
                logger.warning(
                    "task %s: the prompt (%d tokens) leaves no room within max_episode_tokens=%d",
                    trajectory.task_id,
                    len(prompt),
                    max_episode_tokens,
                )
                _end_on_budget(episode, finished)
                continue
            slots[slot] = episode
            return

    for slot in range(len(pool)):
        start(slot)
    while slots:
        active = sorted(slots)
        budgets = [
            min(
                sampling.max_tokens,
                _room(
                    slots[s].trajectory,
                    max_episode_tokens,
                    _closing_ids(tokenizer, slots[s].trajectory.tools, closings),
                ),
            )
            for s in active
        ]
        generations = engine.generate([slots[s].trajectory.token_ids for s in active], sampling, budgets)
        actions = {}
        for slot, generation in zip(active, generations):
            episode = slots[slot]
            closing = _closing_ids(tokenizer, episode.trajectory.tools, closings)
            actions[slot] = _append_turn(episode, generation, closing, tokenizer)
        results = pool.step(actions)
        for slot in active:
            episode, result = slots[slot], results[slot]
            trajectory = episode.trajectory
            trajectory.turn_infos.append(result.info)
            trajectory.turn_rewards.append(float(result.reward))
            if result.done:
                trajectory.reward, trajectory.info = float(result.reward), result.info
                trajectory.terminated, trajectory.truncated = result.terminated, result.truncated
                _finish(episode, finished)
                del slots[slot]
                start(slot)
                continue
            suffix = encode(tokenizer, suffix_text(tokenizer, result.observation, trajectory.tools))
            closing = _closing_ids(tokenizer, trajectory.tools, closings)
            if len(trajectory.token_ids) + len(suffix) + len(closing) >= max_episode_tokens:
                trajectory.info = dict(result.info)
                _end_on_budget(episode, finished)
                del slots[slot]
                start(slot)
                continue
            trajectory.messages.extend(result.observation)
            trajectory.observations.append(list(result.observation))
            _append_masked(trajectory, suffix)
            trajectory.observation_spans.append((trajectory.turn_spans[-1][1], len(trajectory.token_ids)))
    return [finished[i] for i in range(len(seeds) * group_size)]


def _group_key(task_id: str, seed: int | None) -> str:
    """A group key from what identifies the task: its id, and the seed that drew it."""
    return f"{task_id}@seed={seed}"


def _closing_ids(tokenizer: Any, tools: list[dict[str, Any]] | None, cache: dict[str, list[int]]) -> list[int]:
    key = "tools" if tools else "plain"
    if key not in cache:
        cache[key] = encode(tokenizer, closing_text(tokenizer, tools))
    return cache[key]


def _room(trajectory: Trajectory, max_episode_tokens: int, closing: list[int]) -> int:
    """New tokens a turn may sample while the end-of-turn tokens still fit in the budget."""
    return max_episode_tokens - len(trajectory.token_ids) - len(closing)


def _append_masked(trajectory: Trajectory, ids: list[int]) -> None:
    trajectory.token_ids.extend(ids)
    trajectory.loss_mask.extend([0] * len(ids))
    trajectory.logprobs.extend([0.0] * len(ids))


def _append_turn(episode: _Episode, generation: Generation, closing: list[int], tokenizer: Any) -> Action:
    """Append a turn's sampled ids (mask 1) and the template's end of turn (mask 0); return the action."""
    trajectory = episode.trajectory
    ids = list(generation.token_ids)
    start = len(trajectory.token_ids)
    trajectory.token_ids.extend(ids)
    trajectory.loss_mask.extend([1] * len(ids))
    trajectory.logprobs.extend(generation.logprobs)
    trajectory.turn_spans.append((start, len(trajectory.token_ids)))
    trajectory.finish_reasons.append(generation.finish_reason)
    # An eos that is the template's own end-of-turn token belongs to the turn's tokens, not its text.
    ends_turn = generation.finish_reason == "eos" and bool(closing) and ids[-1:] == closing[:1]
    text = tokenizer.decode(ids[:-1] if ends_turn else ids, skip_special_tokens=False)
    _append_masked(trajectory, closing[1:] if ends_turn else closing)
    trajectory.messages.append({"role": "assistant", "content": text})
    action = action_from_text(text, episode.tool_format)
    trajectory.actions.append(action)
    return action


def _finish(episode: _Episode, finished: dict[int, Trajectory]) -> None:
    episode.trajectory.seconds = time.perf_counter() - episode.started
    finished[episode.order] = episode.trajectory


def _end_on_budget(episode: _Episode, finished: dict[int, Trajectory]) -> None:
    trajectory = episode.trajectory
    trajectory.reward, trajectory.truncated, trajectory.terminated = 0.0, True, False
    trajectory.info = {**trajectory.info, "stop_reason": "max_episode_tokens"}
    _finish(episode, finished)
