"""`toolgym eval`: n tasks × k samples of any agent on any env, resumable after any kill.

A run directory holds everything (see `toolgym.evals.results`). The plan of a run is fixed by its
configuration (`CONFIG_FIELDS`): tasks 0..N-1 of the dataset (N = `--limit` or the dataset size),
those of this shard (`--shard i/n` takes every n-th task from i), k samples each. Episode
(t, s) resets with `options={"index": t}` and seed `episode_seed(seed, t, s, k)`, so the same key
always plays the same task.

On `--resume` the saved configuration fills every option not given on the command line; an
option given with a different value is refused, listing the differences. Rows already in
results.jsonl are skipped (error rows too, unless `--retry-errors`, which appends superseding
rows), so a run killed at any moment, SIGKILL included, continues without losing or repeating an
episode.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolgym.agents.base import Agent, SamplingParams
from toolgym.agents.episodes import Job, LoopClock, make_safe_pool, now_iso, play_safely
from toolgym.envs.base import list_tasks

from .datasets import resolve_dataset, resolve_env_kwargs
from .metrics import numeric, primary_metric
from .report import write_outputs
from .results import (
    MERGE_PENDING_FILE,
    RESULTS_FILE,
    RUN_FILE,
    Key,
    ResultsWriter,
    RunDirError,
    config_differences,
    latest_rows,
    package_versions,
    read_rows,
    read_run,
    row_key,
    write_json_atomic,
)
from .run_lock import run_lock

logger = logging.getLogger(__name__)

PROCEDURAL_SIZE_LIMIT = 10_000_000  # a task source larger than this is an endless procedural world
MAX_EPISODES_PER_RUN = 2_000_000  # the plan is held in memory (~200 bytes an episode): bound it


@dataclass
class EvalConfig:
    """Everything that decides a run's results; `--resume` refuses to change any of it."""

    env: str
    """Env id (Search-v0, Math-v0, FunctionCall-v0), from --env or implied by the dataset."""
    dataset: str
    """The dataset spec as given (`hotpotqa`, `math500`, `bfcl:simple`, `procedural`, a path, `hf:…`)."""
    agent: str
    """Agent spec: scripted:<name>, py:<module>:<fn>, hf:<path>, vllm:<model>, openai:<url>#<model>."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env constructor arguments given by the user (the dataset's own are implied)."""
    limit: int | None = None
    """Evaluate tasks 0..limit-1 (all of a finite dataset when None; procedural worlds need it)."""
    samples: int = 1
    """Samples (episodes) per task; pass@k is reported for k up to this."""
    seed: int = 0
    """Base seed of the episode seeds and the agent's sampling seed."""
    shard: str | None = None
    """`i/n`: this run plays tasks i, i+n, i+2n, … of the plan."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"--samples must be at least 1, got {self.samples}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        parse_shard(self.shard)

    def sampling(self) -> SamplingParams:
        """The agent's sampling parameters: the given knobs over SamplingParams' defaults."""
        given = {k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p)) if v is not None}
        if self.max_tokens is not None:
            given["max_tokens"] = self.max_tokens
        return SamplingParams(seed=self.seed, **given)


CONFIG_FIELDS = tuple(EvalConfig.__dataclass_fields__)
DEFAULTS: dict[str, Any] = {"env_kwargs": {}, "samples": 1, "seed": 0}


def parse_shard(shard: str | None) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if shard is None:
        return 0, 1
    try:
        index_text, count_text = str(shard).split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {shard!r}: need 0 <= i < n")
    return index, count


def episode_seed(seed: int, task_index: int, sample_index: int, samples: int) -> int:
    """The reset seed of episode (task, sample): distinct within a run, the same on every resume."""
    return seed * 1_000_003 + task_index * samples + sample_index


def plan_config(options: Mapping[str, Any], saved: Mapping[str, Any] | None = None) -> EvalConfig:
    """The run's config from command-line options (None = not given), and the saved config on resume.

    Raises RunDirError listing every given option that differs from the saved run.
    """
    given = {k: v for k, v in options.items() if k in CONFIG_FIELDS and v is not None}
    if given.get("env") or given.get("dataset") or saved is None:
        choice = resolve_dataset(given.get("dataset", (saved or {}).get("dataset")), given.get("env"))
        if "env" in given or saved is None:
            given["env"] = choice.env_id
    if saved is not None:
        differences = config_differences({k: saved.get(k) for k in given}, given)
        if differences:
            raise RunDirError(
                "refusing to resume with a different configuration (start a new --out, or drop these options):\n  "
                + "\n  ".join(differences)
            )
        values = {**DEFAULTS, **{k: v for k, v in saved.items() if k in CONFIG_FIELDS}, **given}
    else:
        missing = [name for name in ("agent",) if name not in given]
        if missing or ("dataset" not in given and "env" not in given):
            raise ValueError("a new run needs --agent and --dataset (or --env for a procedural world), and --out")
        values = {**DEFAULTS, "dataset": given.get("dataset", "procedural"), **given}
    return EvalConfig(**values)


def resolved_env_kwargs(config: EvalConfig) -> dict[str, Any]:
    """The env constructor arguments: the dataset's, then the user's, with named corpora resolved."""
    choice = resolve_dataset(config.dataset, config.env)
    return resolve_env_kwargs(choice.env_id, config.dataset, {**choice.env_kwargs, **config.env_kwargs})


def build_agent(config: EvalConfig) -> Agent:
    """The agent of `config.agent`, with the run's sampling parameters (scripted agents get the seed)."""
    from toolgym.agents.specs import make_agent

    options = {"seed": config.seed} if config.agent.startswith("scripted:") else {}
    return make_agent(config.agent, sampling=config.sampling(), **options)


def task_plan(config: EvalConfig, dataset_size: int) -> list[int]:
    """Task indices this run (or shard) plays."""
    if dataset_size >= PROCEDURAL_SIZE_LIMIT and config.limit is None:
        raise ValueError(f"{config.dataset!r} is an endless procedural world: pass --limit N")
    total = dataset_size if config.limit is None else min(config.limit, dataset_size)
    index, count = parse_shard(config.shard)
    shard = range(total)[index::count]  # a lazy range: its size is known before any list is built
    episodes = len(shard) * config.samples
    if episodes > MAX_EPISODES_PER_RUN:
        raise ValueError(
            f"this run (or shard) plans {episodes:,} episodes; at most {MAX_EPISODES_PER_RUN:,} fit in one "
            "process's plan: lower --limit or --samples, or split the run with --shard i/n"
        )
    return list(shard)


@dataclass
class EvalOutcome:
    """What one invocation did and the run's summary afterwards."""

    out_dir: Path
    summary: dict[str, Any]
    played: int
    skipped: int
    clock: LoopClock


def run_eval(
    out_dir: str | Path,
    options: Mapping[str, Any],
    *,
    resume: bool = False,
    retry_errors: bool = False,
    concurrency: int = 8,
    command: Sequence[str] | None = None,
    show_progress: bool = True,
    fsync: bool = True,
) -> EvalOutcome:
    """Run (or continue) an evaluation into `out_dir`; `options` are `EvalConfig` fields, None = not given.

    The run directory's lock (`toolgym.evals.run_lock`) is held throughout: a second eval, resume,
    rescore or merge of the same folder is refused with the holder's details.
    """
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    command = list(command) if command is not None else list(sys.argv)
    with run_lock(out_dir, "toolgym eval", command):
        return _run_eval_locked(
            Path(out_dir), options, resume, retry_errors, concurrency, command, show_progress, fsync
        )


def _run_eval_locked(
    out: Path,
    options: Mapping[str, Any],
    resume: bool,
    retry_errors: bool,
    concurrency: int,
    command: list[str],
    show_progress: bool,
    fsync: bool,
) -> EvalOutcome:
    saved_run = _existing_run(out, resume)
    config = plan_config(options, saved_run["config"] if saved_run else None)
    env_kwargs = resolved_env_kwargs(config)
    agent = build_agent(config)
    pool = make_safe_pool(config.env, concurrency, env_kwargs)
    try:
        dataset_size = len(list_tasks(pool.envs[0]))
        tasks = task_plan(config, dataset_size)
        out.mkdir(parents=True, exist_ok=True)
        run = saved_run or {"config": asdict(config), "invocations": []}
        run.update(
            config=asdict(config),
            env_kwargs_resolved=env_kwargs,
            dataset_size=dataset_size,
            n_tasks=min(config.limit, dataset_size) if config.limit else dataset_size,
            shard_tasks=len(tasks),
        )
        invocation = {
            "command": command,
            "started_at": now_iso(),
            "finished_at": None,
            "resume": resume,
            "retry_errors": retry_errors,
            "concurrency": concurrency,
            "versions": package_versions(),
            "python": sys.version.split()[0],
        }
        run["invocations"].append(invocation)
        write_json_atomic(out / RUN_FILE, run)

        existing = latest_rows(read_rows(out / RESULTS_FILE, repair=True))
        planned = [(t, s) for t in tasks for s in range(config.samples)]
        stray = sorted(set(existing) - set(planned))
        if stray:
            raise RunDirError(f"{out / RESULTS_FILE} holds episodes outside this run's plan, e.g. {stray[:3]}")
        done = {key for key, row in existing.items() if not (retry_errors and row.get("error"))}
        jobs = [Job(t, s, episode_seed(config.seed, t, s, config.samples)) for t, s in planned if (t, s) not in done]
        logger.info("%s: %d episodes planned, %d done, %d to play", out, len(planned), len(done), len(jobs))
        clock = _play(agent, pool, jobs, existing, done, out, fsync, show_progress, len(planned))
    finally:
        pool.close()
        close = getattr(agent, "close", None)
        if callable(close):
            close()
    invocation.update(finished_at=now_iso(), clock={**asdict(clock), "overhead": clock.overhead}, played=len(jobs))
    write_json_atomic(out / RUN_FILE, run)
    summary = write_outputs(out, run)
    return EvalOutcome(out, summary, len(jobs), len(planned) - len(jobs), clock)


def _existing_run(out: Path, resume: bool) -> dict[str, Any] | None:
    if (out / MERGE_PENDING_FILE).exists():
        raise RunDirError(
            f"{out} was left by an interrupted `toolgym eval merge`: rerun the same merge command to finish it"
        )
    has_run, has_results = (out / RUN_FILE).exists(), (out / RESULTS_FILE).exists()
    if has_run and not resume:
        raise RunDirError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    if has_results and not has_run:
        raise RunDirError(f"{out} has {RESULTS_FILE} but no {RUN_FILE}: it was not written by toolgym eval")
    return read_run(out) if has_run else None


def _play(
    agent: Agent,
    pool: Any,
    jobs: list[Job],
    existing: dict[Key, dict[str, Any]],
    done: set[Key],
    out: Path,
    fsync: bool,
    show_progress: bool,
    planned: int,
) -> LoopClock:
    """The loop with the results writer and a progress bar showing live accuracy."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    tally = _LiveAccuracy([row for key, row in existing.items() if key in done])
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[accuracy]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    with (
        ResultsWriter(out / RESULTS_FILE, fsync=fsync) as writer,
        Progress(*columns, console=console, disable=not show_progress) as progress,
    ):
        bar = progress.add_task(out.name or "eval", total=planned, completed=len(done), accuracy=tally.text())

        def on_row(row: dict[str, Any]) -> None:
            previous = existing.get(row_key(row))
            row["attempt"] = int(previous.get("attempt", 1)) + 1 if previous else 1
            writer.write(row)
            tally.add(row)
            progress.update(bar, advance=1, accuracy=tally.text())

        return play_safely(agent, pool, jobs, on_row)


class _LiveAccuracy:
    """Running mean of the primary metric (errors count 0) for the progress bar."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.total, self.count, self.errors, self.metric = 0.0, 0, 0, None
        for row in rows:
            self.add(row)

    def add(self, row: Mapping[str, Any]) -> None:
        if row.get("error"):
            self.errors += 1
            self.count += 1
            return
        if self.metric is None:
            self.metric = primary_metric([row])
        value = row.get("reward") if self.metric == "reward" else (row.get("metrics") or {}).get(self.metric)
        self.total += numeric(value) or 0.0
        self.count += 1

    def text(self) -> str:
        if not self.count:
            return ""
        return f"{self.metric or 'accuracy'} {self.total / self.count:.3f}  errors {self.errors}"
