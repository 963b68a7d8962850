"""Play whole episodes: an agent against a pool of environments, text in and text out.

This is the plain, message-level loop used by the quickstart and tests; token-level rollouts for
training (token ids, loss masks, logprobs) build on the same shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.envs.pool import EnvPool

from .base import Agent, AgentRequest


@dataclass
class Episode:
    """One finished episode: the conversation, the actions, the outcome and the final info."""

    seed: int | None
    task_id: str
    messages: list[dict[str, Any]]
    actions: list[Any] = field(default_factory=list)
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    turns: int = 0
    tool_calls: int = 0
    invalid_actions: int = 0
    final_info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def metrics(self) -> dict[str, Any]:
        return self.final_info.get("metrics", {})


def play_episodes(
    agent: Agent,
    pool: EnvPool,
    seeds: Sequence[int],
    options: Sequence[dict[str, Any] | None] | None = None,
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Run one episode per seed, keeping up to `len(pool)` episodes in flight at once.

    Each agent call receives only the conversations that are waiting for a turn, and each env
    step touches only the envs that acted, so short and long episodes interleave freely.
    """
    options = list(options) if options is not None else [None] * len(seeds)
    if len(options) != len(seeds):
        raise ValueError(f"got {len(seeds)} seeds but {len(options)} options; pass one option (or None) per seed")
    queue = list(enumerate(zip(seeds, options)))[::-1]
    finished: dict[int, Episode] = {}
    slots: dict[int, tuple[int, Episode, dict[str, Any], float]] = {}

    def start(slot: int) -> None:
        order, (seed, option) = queue.pop()
        (messages, info) = pool.reset([slot], [seed], [option])[slot]
        episode = Episode(seed=seed, task_id=info.get("task_id", ""), messages=list(messages))
        slots[slot] = (order, episode, info, time.perf_counter())

    for slot in range(len(pool)):
        if queue:
            start(slot)
    while slots:
        active = sorted(slots)
        requests = [
            AgentRequest(messages=slots[s][1].messages, tools=slots[s][2].get("tools"), env_info=slots[s][2])
            for s in active
        ]
        actions = agent.act(requests)
        if len(actions) != len(active):
            raise RuntimeError(f"the agent returned {len(actions)} turns for {len(active)} conversations")
        results = pool.step(dict(zip(active, actions)))
        for slot, action in zip(active, actions):
            order, episode, _reset_info, started = slots[slot]
            result = results[slot]
            episode.actions.append(action)
            episode.messages.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
            episode.messages.extend(result.observation)
            episode.turns += 1
            episode.tool_calls += len(result.info.get("tool_calls", []))
            episode.invalid_actions += int(bool(result.info.get("invalid_action")))
            if result.done:
                episode.reward = result.reward
                episode.terminated, episode.truncated = result.terminated, result.truncated
                episode.final_info = result.info
                episode.seconds = time.perf_counter() - started
                finished[order] = episode
                del slots[slot]
                if on_episode is not None:
                    on_episode(episode)
                if queue:
                    start(slot)
    return [finished[i] for i in range(len(seeds))]
