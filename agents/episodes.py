"""Play whole episodes: an agent against a pool of environments, where one failure stays one episode.

One loop serves the quickstart, the tests and the evaluation harness. Episodes of different
lengths interleave: each agent call gets only the conversations waiting for a turn, each pool step
touches only the envs that acted, and freed env slots are refilled from the queue, batched. A
third-party agent or task must not sink a whole run, so:

- each env sits in `SafeEnv`, a Gymnasium wrapper that turns an exception in `reset`/`step` into
  an error the loop records, so a batch step never loses the other envs' results;
- when a batched `agent.act` raises, the batch is retried one conversation at a time, and only the
  conversations that still fail end as errors;
- every finished or failed episode is handed to `on_row` at once, as a JSON-ready row (the harness
  appends it to results.jsonl).

`play_episodes` is the convenience form for code that wants `Episode` objects and an exception on
the first failure. Token-level rollouts for training (`toolgym.agents.rollout`) keep token ids
instead of messages and have their own loop over the same pool.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import gymnasium as gym

from toolgym.envs.pool import EnvPool

from .base import Agent, AgentRequest

MAX_TRACEBACK_CHARS = 4000
FINAL_INFO_KEYS = ("metrics", "gold", "answer", "stop_reason", "final_state")


@dataclass(frozen=True)
class Job:
    """One episode to play: task `task_index` of the env's dataset, sample `sample_index`.

    `options` overrides the reset options (by default `{"index": task_index}`); `{}` lets the seed
    pick the task.
    """

    task_index: int
    sample_index: int
    seed: int | None
    options: dict[str, Any] | None = None


@dataclass
class LoopClock:
    """Where the wall time of a loop went; `overhead` is everything that is neither agent nor env."""

    agent: float = 0.0
    env: float = 0.0
    record: float = 0.0
    total: float = 0.0
    agent_calls: int = 0
    episodes: int = 0

    @property
    def overhead(self) -> float:
        return max(0.0, self.total - self.agent - self.env)


def describe_error(exc: BaseException, stage: str) -> dict[str, Any]:
    """The error field of a row: where it happened, the exception type and text, the traceback."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # a broken exception object must not stop the run that reports it
        text = f"<the traceback of a {type(exc).__name__} cannot be formatted>"
    return {
        "stage": stage,
        "type": type(exc).__name__,
        "message": _exception_message(exc),
        "traceback": text[-MAX_TRACEBACK_CHARS:],
    }


def _exception_message(exc: BaseException) -> str:
    """`str(exc)`, cut; an in-process agent's exception may hold an integer past 4,300 digits or a
    raising `__str__`, and the row must still be written."""
    try:
        return str(exc)[:2000]
    except Exception:
        return f"<the message of a {type(exc).__name__} cannot be shown>"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class SafeEnv(gym.Wrapper):
    """Catches exceptions from `reset`/`step` into `self.error`, and times each call in `self.seconds`.

    A failed `reset` returns `([], {})`, a failed `step` ends the episode with reward 0; the caller
    checks `error` after each call. Bad *actions* never raise in ToolGym envs (the design contract),
    so an error here is a broken task row, a dead tool backend or a bug, and worth a row of its own.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.error: dict[str, Any] | None = None
        self.seconds = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        self.error, started = None, time.perf_counter()
        try:
            return self.env.reset(seed=seed, options=options)
        except Exception as exc:
            self.error = describe_error(exc, "reset")
            return [], {}
        finally:
            self.seconds = time.perf_counter() - started

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.error, started = None, time.perf_counter()
        try:
            return self.env.step(action)
        except Exception as exc:
            self.error = describe_error(exc, "env")
            return [], 0.0, True, False, {}
        finally:
            self.seconds = time.perf_counter() - started


@dataclass
class _Live:
    """An episode in flight."""

    job: Job
    reset_info: dict[str, Any]
    messages: list[dict[str, Any]]
    started: float
    started_at: str
    env_seconds: float
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    invalid_actions: int = 0
    agent_seconds: float = 0.0


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
    clock = LoopClock()
    queue = deque(jobs)
    live: dict[int, _Live] = {}
    loop_started = time.perf_counter()

    def emit(row: dict[str, Any]) -> None:
        started = time.perf_counter()
        on_row(row)
        clock.record += time.perf_counter() - started
        clock.episodes += 1

    def fill(free: list[int]) -> None:
        while free and queue:
            slots = free[: len(queue)]
            free = free[len(slots) :]
            batch = [queue.popleft() for _ in slots]
            started = time.perf_counter()
            options = [{"index": j.task_index} if j.options is None else j.options for j in batch]
            resets = pool.reset(slots, [j.seed for j in batch], options)
            clock.env += time.perf_counter() - started
            for slot, job in zip(slots, batch):
                env: SafeEnv = pool.envs[slot]  # type: ignore[assignment]
                messages, info = resets[slot]
                if env.error is not None:
                    emit(_error_row(job, env.error, env_seconds=env.seconds))
                    free.append(slot)
                    continue
                live[slot] = _Live(job, dict(info), list(messages), time.perf_counter(), now_iso(), env.seconds)

    fill(list(range(len(pool))))
    while live:
        slots = sorted(live)
        requests = [_request(live[s]) for s in slots]
        started = time.perf_counter()
        outcomes = _act(agent, requests)
        elapsed = time.perf_counter() - started
        clock.agent += elapsed
        clock.agent_calls += 1
        freed: list[int] = []
        actions: dict[int, Any] = {}
        for slot, (action, error) in zip(slots, outcomes):
            live[slot].agent_seconds += elapsed / len(slots)
            if error is not None:
                emit(_finish(live.pop(slot), error=error))
                freed.append(slot)
            else:
                actions[slot] = action
        if actions:
            started = time.perf_counter()
            results = pool.step(actions)
            clock.env += time.perf_counter() - started
            for slot, action in actions.items():
                episode, env = live[slot], pool.envs[slot]
                result = results[slot]
                episode.env_seconds += env.seconds  # type: ignore[attr-defined]
                if env.error is not None:  # type: ignore[attr-defined]
                    emit(_finish(live.pop(slot), error=env.error))  # type: ignore[attr-defined]
                    freed.append(slot)
                    continue
                _record_step(episode, action, result)
                if result.done:
                    emit(_finish(live.pop(slot), result=result))
                    freed.append(slot)
        fill(freed)
    clock.total = time.perf_counter() - loop_started
    return clock


def make_safe_pool(env_id: str, n: int, env_kwargs: dict[str, Any]) -> EnvPool:
    """An EnvPool of `n` `SafeEnv`-wrapped `gym.make("toolgym:<env_id>", **env_kwargs)` envs."""
    make_id = env_id if ":" in env_id else f"toolgym:{env_id}"
    return EnvPool([lambda: SafeEnv(gym.make(make_id, **env_kwargs)) for _ in range(n)])


def _request(episode: _Live) -> AgentRequest:
    env_info = {**episode.reset_info, "episode_seed": episode.job.seed, "sample_index": episode.job.sample_index}
    return AgentRequest(messages=list(episode.messages), tools=episode.reset_info.get("tools"), env_info=env_info)


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


def _record_step(episode: _Live, action: Any, result: Any) -> None:
    episode.actions.append(action)
    episode.messages.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
    episode.messages.extend(result.observation)
    episode.rewards.append(float(result.reward))
    info = result.info
    episode.tool_calls += len(info.get("tool_calls") or [])
    episode.invalid_actions += int(bool(info.get("invalid_action")))
    episode.steps.append({k: v for k, v in info.items() if k not in FINAL_INFO_KEYS})


def _base_row(job: Job) -> dict[str, Any]:
    return {"task_index": job.task_index, "sample_index": job.sample_index, "seed": job.seed}


def _error_row(job: Job, error: dict[str, Any], env_seconds: float) -> dict[str, Any]:
    """A row for an episode whose reset failed: nothing was played."""
    stamp = now_iso()
    return {
        **_base_row(job),
        "task_id": None,
        "messages": [],
        "actions": [],
        "rewards": [],
        "reward": 0.0,
        "turns": 0,
        "metrics": {},
        "timing": {"seconds": env_seconds, "agent_seconds": 0.0, "env_seconds": env_seconds},
        "error": error,
        "started_at": stamp,
        "finished_at": stamp,
    }


def _finish(episode: _Live, *, result: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    info = dict(result.info) if result is not None else {}
    row = {
        **_base_row(episode.job),
        "task_id": episode.reset_info.get("task_id"),
        "messages": episode.messages,
        "actions": episode.actions,
        "rewards": episode.rewards,
        "reward": float(result.reward) if result is not None else 0.0,
        "terminated": bool(result.terminated) if result is not None else False,
        "truncated": bool(result.truncated) if result is not None else False,
        "turns": len(episode.actions),
        "tool_calls": episode.tool_calls,
        "invalid_actions": episode.invalid_actions,
        "metrics": info.pop("metrics", {}) or {},
        "final_info": {k: v for k, v in info.items() if k in FINAL_INFO_KEYS},
        "steps": episode.steps,
        "timing": {
            "seconds": time.perf_counter() - episode.started,
            "agent_seconds": episode.agent_seconds,
            "env_seconds": episode.env_seconds,
        },
        "error": error,
        "started_at": episode.started_at,
        "finished_at": now_iso(),
    }
    if isinstance(episode.reset_info.get("category"), str):
        row["category"] = episode.reset_info["category"]
    return row


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
    metrics: dict[str, Any] = field(default_factory=dict)
    final_info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Episode:
        return cls(
            seed=row["seed"],
            task_id=row.get("task_id") or "",
            messages=row["messages"],
            actions=row["actions"],
            reward=row["reward"],
            terminated=row.get("terminated", False),
            truncated=row.get("truncated", False),
            turns=row["turns"],
            tool_calls=row.get("tool_calls", 0),
            invalid_actions=row.get("invalid_actions", 0),
            metrics=row["metrics"],
            final_info=row.get("final_info", {}),
            seconds=row["timing"]["seconds"],
        )


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
            on_episode(Episode.from_row(row))

    safe = EnvPool(
        [env if isinstance(env, SafeEnv) else SafeEnv(env) for env in pool.envs], max_workers=pool.max_workers
    )
    try:
        play_safely(agent, safe, jobs, on_row)
    finally:
        safe.close(close_envs=False)
    return [Episode.from_row(rows[i]) for i in range(len(jobs))]
