"""The one episode loop: many episodes over a pool of envs, where one env failure costs one episode.

Both the eval harness (`toolgym.agents.episodes.play_safely`: messages in, result rows out) and
training rollouts (`toolgym.agents.rollout.collect_rollouts`: token ids in, trajectories out) run
on `run_episodes`; they differ only in their `EpisodeDriver`, which decides how a batch of
episodes gets its next turn and what a finished episode becomes.

The loop itself owns the scheduling and the isolation:

- episodes of different lengths interleave: each `driver.act` call gets only the episodes waiting
  for a turn, each pool step touches only the envs that acted, and freed env slots are refilled
  from the queue, batched;
- every env is a `SafeEnv` (`toolgym.envs.wrappers`), so an exception in `reset`/`step` becomes an
  error record for that episode (`driver.reset_failed` / `driver.failed`), never a lost batch;
- each episode ends as exactly one record handed to `on_done`, in the order episodes finish.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, Protocol, TypeVar

from toolgym.envs.pool import EnvPool, StepResult
from toolgym.envs.wrappers import SafeEnv

from .base import Action

StateT = TypeVar("StateT")
RecordT = TypeVar("RecordT")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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

    @property
    def reset_options(self) -> dict[str, Any]:
        return {"index": self.task_index} if self.options is None else self.options


@dataclass
class LoopClock:
    """Where the wall time of a loop went; `overhead` is everything that is neither agent nor env."""

    agent: float = 0.0
    env: float = 0.0
    record: float = 0.0
    total: float = 0.0
    agent_calls: int = 0
    episodes: int = 0
    failed: int = 0
    """Episodes that ended in an error (env, reset or agent)."""

    @property
    def overhead(self) -> float:
        return max(0.0, self.total - self.agent - self.env)


@dataclass
class LiveEpisode(Generic[StateT]):
    """An episode in flight: its job, the env's reset info, timings, and the driver's own state."""

    job: Job
    reset_info: dict[str, Any]
    started: float
    started_at: str
    env_seconds: float
    agent_seconds: float = 0.0
    state: StateT | None = None


@dataclass
class Finished(Generic[RecordT]):
    """A driver's verdict that an episode is over, with the record to emit; `failed` counts it as an error."""

    record: RecordT
    failed: bool = False


class EpisodeDriver(Protocol[StateT, RecordT]):
    """How a loop plays its episodes: what a turn is and what a finished episode becomes."""

    def begin(
        self, episode: LiveEpisode[StateT], messages: list[dict[str, Any]], info: dict[str, Any]
    ) -> Finished[RecordT] | None:
        """Set `episode.state` for a fresh reset; return a record to end it at once (e.g. no room)."""

    def act(self, episodes: list[LiveEpisode[StateT]]) -> list[tuple[Action | None, dict[str, Any] | None]]:
        """One (action, None) or (None, error) per episode, in order."""

    def advance(self, episode: LiveEpisode[StateT], action: Action, result: StepResult) -> Finished[RecordT] | None:
        """Record one env step; return a record when the episode is over, None to go on."""

    def failed(self, episode: LiveEpisode[StateT], error: dict[str, Any]) -> Finished[RecordT]:
        """The record of an episode ended by an agent or env error."""

    def reset_failed(self, job: Job, error: dict[str, Any], env_seconds: float) -> Finished[RecordT]:
        """The record of an episode whose reset raised: nothing was played."""


def run_episodes(
    pool: EnvPool,
    jobs: Sequence[Job],
    driver: EpisodeDriver[Any, RecordT],
    on_done: Callable[[RecordT], None],
) -> LoopClock:
    """Play every job, at most `len(pool)` at once; each episode ends as exactly one `on_done` call.

    The pool's envs must be `SafeEnv`s (see `toolgym.envs.wrappers.safe`).
    """
    for env in pool.envs:
        if not isinstance(env, SafeEnv):
            raise TypeError("the episode loop needs a pool of SafeEnv-wrapped envs (toolgym.envs.wrappers.safe)")
    clock = LoopClock()
    queue = deque(jobs)
    live: dict[int, LiveEpisode[Any]] = {}
    loop_started = time.perf_counter()

    def emit(finished: Finished[RecordT]) -> None:
        started = time.perf_counter()
        on_done(finished.record)
        clock.record += time.perf_counter() - started
        clock.episodes += 1
        clock.failed += int(finished.failed)

    def fill(free: list[int]) -> None:
        while free and queue:
            slots = free[: len(queue)]
            free = free[len(slots) :]
            batch = [queue.popleft() for _ in slots]
            started = time.perf_counter()
            resets = pool.reset(slots, [j.seed for j in batch], [j.reset_options for j in batch])
            clock.env += time.perf_counter() - started
            for slot, job in zip(slots, batch):
                env: SafeEnv = pool.envs[slot]  # type: ignore[assignment]
                messages, info = resets[slot]
                if env.error is not None:
                    emit(driver.reset_failed(job, env.error, env.seconds))
                    free.append(slot)
                    continue
                episode = LiveEpisode(job, dict(info), time.perf_counter(), now_iso(), env.seconds)
                ended = driver.begin(episode, list(messages), dict(info))
                if ended is not None:
                    emit(ended)
                    free.append(slot)
                    continue
                live[slot] = episode

    fill(list(range(len(pool))))
    while live:
        slots = sorted(live)
        started = time.perf_counter()
        outcomes = driver.act([live[s] for s in slots])
        elapsed = time.perf_counter() - started
        clock.agent += elapsed
        clock.agent_calls += 1
        freed: list[int] = []
        actions: dict[int, Any] = {}
        for slot, (action, error) in zip(slots, outcomes):
            live[slot].agent_seconds += elapsed / len(slots)
            if error is not None:
                emit(driver.failed(live.pop(slot), error))
                freed.append(slot)
            else:
                actions[slot] = action
        if actions:
            started = time.perf_counter()
            results = pool.step(actions)
            clock.env += time.perf_counter() - started
            for slot, action in actions.items():
                episode, env = live[slot], pool.envs[slot]
                episode.env_seconds += env.seconds  # type: ignore[attr-defined]
                if env.error is not None:  # type: ignore[attr-defined]
                    emit(driver.failed(live.pop(slot), env.error))  # type: ignore[attr-defined]
                    freed.append(slot)
                    continue
                ended = driver.advance(episode, action, results[slot])
                if ended is not None:
                    del live[slot]
                    emit(ended)
                    freed.append(slot)
        fill(freed)
    clock.total = time.perf_counter() - loop_started
    return clock
