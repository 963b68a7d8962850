"""Play whole episodes of an agent (messages in, one turn out) and record each as a result row.

The loop is `toolgym.agents.episode_loop.run_episodes`, shared with token-level training rollouts;
this module is its agent side (`AgentDriver`) and the result-row schema (`EpisodeRow`). A
third-party agent or task must not sink a whole run, so:

- each env sits in `SafeEnv` (`toolgym.envs.wrappers`), so an exception in `reset`/`step` becomes
  an error row and a batch step never loses the other envs' results;
- when a batched `agent.act` raises, the batch is retried one conversation at a time, and only the
  conversations that still fail end as errors;
- every finished or failed episode is handed to `on_row` at once, as a JSON-ready row
  (`EpisodeRow.to_dict`; the harness appends it to results.jsonl).

`play_episodes` is the convenience form for code that wants `Episode` objects and an exception on
the first failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from toolgym.envs.pool import EnvPool, StepResult
from toolgym.envs.wrappers import MAX_TRACEBACK_CHARS, SafeEnv, describe_error, safe

from .base import Agent, AgentRequest
from .episode_loop import Finished, Job, LiveEpisode, LoopClock, now_iso, run_episodes

__all__ = [
    "MAX_TRACEBACK_CHARS",
    "Episode",
    "EpisodeRow",
    "Job",
    "LoopClock",
    "SafeEnv",
    "describe_error",
    "make_safe_pool",
    "now_iso",
    "play_episodes",
    "play_safely",
]

FINAL_INFO_KEYS = ("metrics", "gold", "answer", "stop_reason", "final_state")


@dataclass
class EpisodeRow:
    """One line of an eval's results.jsonl: the schema every writer and reader of rows shares.

    `to_dict` gives the JSON-ready row; `from_dict` reads one back (unknown keys, such as the
    harness's `attempt` or `rescore` additions, are kept in `extra`).
    """

    task_index: int
    sample_index: int
    seed: int | None
    task_id: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    """The env's step reward after each turn."""
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    turns: int = 0
    tool_calls: int = 0
    invalid_actions: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    final_info: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    """The env's info after each turn, without the final-only keys (`FINAL_INFO_KEYS`)."""
    timing: dict[str, float] = field(default_factory=dict)
    """seconds (wall, reset to end), agent_seconds, env_seconds."""
    error: dict[str, Any] | None = None
    """None for a played episode, else stage ("reset", "env", "agent"), type, message, traceback."""
    started_at: str = ""
    finished_at: str = ""
    category: str | None = None
    """The task's category, for datasets that have one (BFCL); omitted from the row when None."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Wall time of the episode, reset to end."""
        return float(self.timing.get("seconds", 0.0))

    def to_dict(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in _ROW_KEYS}
        if self.category is not None:
            row["category"] = self.category
        row.update(self.extra)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> EpisodeRow:
        known = {name: row[name] for name in (*_ROW_KEYS, "category") if name in row}
        extra = {key: value for key, value in row.items() if key not in known}
        return cls(**known, extra=extra)


_ROW_KEYS = (
    "task_index",
    "sample_index",
    "seed",
    "task_id",
    "messages",
    "actions",
    "rewards",
    "reward",
    "terminated",
    "truncated",
    "turns",
    "tool_calls",
    "invalid_actions",
    "metrics",
    "final_info",
    "steps",
    "timing",
    "error",
    "started_at",
    "finished_at",
)


@dataclass
class _Transcript:
    """The agent driver's state of an episode in flight."""

    messages: list[dict[str, Any]]
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    invalid_actions: int = 0


class AgentDriver:
    """The eval side of the episode loop: an `Agent` plays, each episode becomes an `EpisodeRow`."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def begin(
        self, episode: LiveEpisode[_Transcript], messages: list[dict[str, Any]], info: dict[str, Any]
    ) -> Finished[EpisodeRow] | None:
        episode.state = _Transcript(messages)
        return None

    def act(self, episodes: list[LiveEpisode[_Transcript]]) -> list[tuple[Any, dict[str, Any] | None]]:
        return _act(self.agent, [_request(e) for e in episodes])

    def advance(
        self, episode: LiveEpisode[_Transcript], action: Any, result: StepResult
    ) -> Finished[EpisodeRow] | None:
        _record_step(episode.state, action, result)
        return Finished(_row(episode, result=result)) if result.done else None

    def failed(self, episode: LiveEpisode[_Transcript], error: dict[str, Any]) -> Finished[EpisodeRow]:
        return Finished(_row(episode, error=error), failed=True)

    def reset_failed(self, job: Job, error: dict[str, Any], env_seconds: float) -> Finished[EpisodeRow]:
        stamp = now_iso()
        row = EpisodeRow(
            job.task_index,
            job.sample_index,
            job.seed,
            timing={"seconds": env_seconds, "agent_seconds": 0.0, "env_seconds": env_seconds},
            error=error,
            started_at=stamp,
            finished_at=stamp,
        )
        return Finished(row, failed=True)


def play_safely(
    agent: Agent,
    pool: EnvPool,
    jobs: Sequence[Job],
    on_row: Callable[[dict[str, Any]], None],
) -> LoopClock:
    """Play every job, at most `len(pool)` at once; each episode ends as exactly one `on_row` call.

    The pool's envs must be `SafeEnv`s (see `make_safe_pool`).
    """
    for env in pool.envs:
        if not isinstance(env, SafeEnv):
            raise TypeError("play_safely needs a pool of SafeEnv-wrapped envs; build it with make_safe_pool()")
    return run_episodes(pool, jobs, AgentDriver(agent), lambda row: on_row(row.to_dict()))


def make_safe_pool(env_id: str, n: int, env_kwargs: dict[str, Any]) -> EnvPool:
    """An EnvPool of `n` `SafeEnv`-wrapped `gym.make("toolgym:<env_id>", **env_kwargs)` envs."""
    make_id = env_id if ":" in env_id else f"toolgym:{env_id}"
    return EnvPool([lambda: SafeEnv(gym.make(make_id, **env_kwargs)) for _ in range(n)])


def _request(episode: LiveEpisode[_Transcript]) -> AgentRequest:
    env_info = {**episode.reset_info, "episode_seed": episode.job.seed, "sample_index": episode.job.sample_index}
    return AgentRequest(messages=list(episode.state.messages), tools=episode.reset_info.get("tools"), env_info=env_info)


def _act(agent: Agent, requests: list[AgentRequest]) -> list[tuple[Any, dict[str, Any] | None]]:
    """One turn per request; a failing batch is retried request by request to isolate the culprit."""
    try:
        actions = agent.act(requests)
        if not isinstance(actions, list) or len(actions) != len(requests):
            count = len(actions) if isinstance(actions, list) else type(actions).__name__
            raise RuntimeError(f"the agent returned {count} turns for {len(requests)} conversations")
    except Exception as exc:
        if len(requests) == 1:
            return [(None, describe_error(exc, "agent"))]
        return [_act(agent, [request])[0] for request in requests]
    outcomes: list[tuple[Any, dict[str, Any] | None]] = []
    for action in actions:
        if isinstance(action, (str, dict)):
            outcomes.append((action, None))
        else:
            problem = TypeError(f"the agent returned a {type(action).__name__}; a turn is a str or a message dict")
            outcomes.append((None, describe_error(problem, "agent")))
    return outcomes


def _record_step(transcript: _Transcript, action: Any, result: StepResult) -> None:
    transcript.actions.append(action)
    transcript.messages.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
    transcript.messages.extend(result.observation)
    transcript.rewards.append(float(result.reward))
    info = result.info
    transcript.tool_calls += len(info.get("tool_calls") or [])
    transcript.invalid_actions += int(bool(info.get("invalid_action")))
    transcript.steps.append({k: v for k, v in info.items() if k not in FINAL_INFO_KEYS})


def _row(
    episode: LiveEpisode[_Transcript], *, result: StepResult | None = None, error: dict[str, Any] | None = None
) -> EpisodeRow:
    transcript = episode.state
    info = dict(result.info) if result is not None else {}
    category = episode.reset_info.get("category")
    return EpisodeRow(
        task_index=episode.job.task_index,
        sample_index=episode.job.sample_index,
        seed=episode.job.seed,
        task_id=episode.reset_info.get("task_id"),
        messages=transcript.messages,
        actions=transcript.actions,
        rewards=transcript.rewards,
        reward=float(result.reward) if result is not None else 0.0,
        terminated=bool(result.terminated) if result is not None else False,
        truncated=bool(result.truncated) if result is not None else False,
        turns=len(transcript.actions),
        tool_calls=transcript.tool_calls,
        invalid_actions=transcript.invalid_actions,
        metrics=info.pop("metrics", {}) or {},
        final_info={k: v for k, v in info.items() if k in FINAL_INFO_KEYS},
        steps=transcript.steps,
        timing={
            "seconds": time.perf_counter() - episode.started,
            "agent_seconds": episode.agent_seconds,
            "env_seconds": episode.env_seconds,
        },
        error=error,
        started_at=episode.started_at,
        finished_at=now_iso(),
        category=category if isinstance(category, str) else None,
    )


Episode = EpisodeRow
"""A played episode is its result row: `play_episodes` hands back the rows the harness writes."""


def play_episodes(
    agent: Agent,
    pool: EnvPool,
    seeds: Sequence[int],
    options: Sequence[dict[str, Any] | None] | None = None,
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Run one episode per seed (in order), up to `len(pool)` at once; raise on the first failure.

    The pool's envs are wrapped in `SafeEnv` for the run (the pool itself is left as it was).
    """
    seeds = list(seeds)
    options = list(options) if options is not None else [None] * len(seeds)
    if len(options) != len(seeds):
        raise ValueError(f"got {len(seeds)} seeds but {len(options)} options; give one option (or None) per seed")
    jobs = [Job(i, 0, seed, option or {}) for i, (seed, option) in enumerate(zip(seeds, options))]
    rows: dict[int, dict[str, Any]] = {}

    def on_row(row: dict[str, Any]) -> None:
        if row["error"] is not None:
            error = row["error"]
            raise RuntimeError(
                f"episode with seed {row['seed']} failed in {error['stage']}: {error['type']}: {error['message']}"
            )
        rows[row["task_index"]] = row
        if on_episode is not None:
            on_episode(EpisodeRow.from_dict(row))

    wrapped = EnvPool([safe(env) for env in pool.envs], max_workers=pool.max_workers)
    try:
        play_safely(agent, wrapped, jobs, on_row)
    finally:
        wrapped.close(close_envs=False)
    return [EpisodeRow.from_dict(rows[i]) for i in range(len(jobs))]
