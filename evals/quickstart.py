"""The embedded default job: scripted agents on the procedural worlds of all three environments.

Needs no download and no model: it exercises the envs, their parsers and scorers, the env pool
and the episode loop end to end, and prints one results table. Later the quickstart grows into
training a tiny model; these rows stay as the reference floor (baseline) and ceiling (oracle).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import gymnasium as gym
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from toolgym.agents.episodes import Episode, play_episodes
from toolgym.agents.scripted import ScriptedAgent
from toolgym.envs.pool import EnvPool

from .metrics import mean_interval

# env id -> kwargs selecting its procedural world (the registered defaults, spelled out here).
PROCEDURAL_ENVS: dict[str, dict] = {
    "Math-v0": {"dataset": "procedural"},
    "FunctionCall-v0": {"dataset": "procedural"},
    "Search-v0": {"dataset": "procedural"},
}


@dataclass
class ResultRow:
    env: str
    agent: str
    episodes: int
    accuracy: float
    ci_low: float
    """Lower end of the 95 % interval: Wilson for 0/1 rewards, Student t otherwise, as `toolgym eval` reports."""
    ci_high: float
    ci_method: str
    mean_turns: float
    tool_calls_per_episode: float
    invalid_action_rate: float
    episodes_per_second: float


def summarize(env_id: str, agent_name: str, episodes: Sequence[Episode], seconds: float) -> ResultRow:
    """Accuracy with the 95 % interval `toolgym eval` uses (`evals.metrics.mean_interval`), and the
    behaviour counters, so the quickstart table and an eval report agree on the same episodes."""
    n = len(episodes)
    interval = mean_interval([float(e.reward) for e in episodes])
    turns = sum(e.turns for e in episodes)
    return ResultRow(
        env=env_id,
        agent=agent_name,
        episodes=n,
        accuracy=interval.mean,
        ci_low=interval.low,
        ci_high=interval.high,
        ci_method=interval.method,
        mean_turns=turns / n,
        tool_calls_per_episode=sum(e.tool_calls for e in episodes) / n,
        invalid_action_rate=sum(e.invalid_actions for e in episodes) / max(turns, 1),
        episodes_per_second=n / seconds if seconds > 0 else float("inf"),
    )


def run_quickstart(
    episodes: int = 64,
    agents: Sequence[str] = ("baseline", "oracle"),
    envs: Sequence[str] = tuple(PROCEDURAL_ENVS),
    pool_size: int = 8,
    seed: int = 0,
    console: Console | None = None,
) -> list[ResultRow]:
    """Play `episodes` seeded episodes per (env, agent) pair and return one row per pair."""
    if episodes < 1 or pool_size < 1:
        raise ValueError(f"episodes and pool_size must be at least 1, got episodes={episodes}, pool_size={pool_size}")
    console = console or Console()
    rows: list[ResultRow] = []
    seeds = list(range(seed, seed + episodes))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for env_id in envs:
            kwargs = PROCEDURAL_ENVS.get(env_id, {})
            for agent_name in agents:
                bar = progress.add_task(f"{env_id} · {agent_name}", total=episodes)
                envs_in_pool = [gym.make(f"toolgym:{env_id}", **kwargs) for _ in range(min(pool_size, episodes))]
                with EnvPool(envs_in_pool) as pool:
                    started = time.perf_counter()
                    played = play_episodes(
                        ScriptedAgent(agent_name, seed=seed),
                        pool,
                        seeds,
                        on_episode=lambda _e, bar=bar: progress.advance(bar),
                    )
                    rows.append(summarize(env_id, agent_name, played, time.perf_counter() - started))
                progress.remove_task(bar)
    return rows


def results_table(rows: Sequence[ResultRow]) -> Table:
    table = Table(title="ToolGym quickstart: scripted agents on the procedural worlds")
    for header in ("env", "agent", "n", "accuracy [95% CI]", "turns", "tool calls", "invalid", "ep/s"):
        table.add_column(header, justify="left" if header in ("env", "agent") else "right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.env,
            row.agent,
            str(row.episodes),
            f"{row.accuracy:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]",
            f"{row.mean_turns:.2f}",
            f"{row.tool_calls_per_episode:.2f}",
            f"{row.invalid_action_rate:.1%}",
            f"{row.episodes_per_second:.0f}",
        )
    return table


def rows_as_dicts(rows: Sequence[ResultRow]) -> list[dict]:
    return [asdict(row) for row in rows]
