"""`toolgym eval merge DIR... --out DIR`: join the shards of one run into a single run directory.

Shards must share every configuration field except `shard`, and use the same shard count. The
merge refuses overlapping episodes (the same key in two shards), and reports gaps: missing shards
and planned episodes no shard holds, which are written to the merged summary as incomplete.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolgym.agents.episodes import now_iso

from .harness import parse_shard
from .report import write_outputs
from .results import (
    MERGE_PENDING_FILE,
    RESULTS_FILE,
    RUN_FILE,
    Key,
    RunDirError,
    config_differences,
    latest_rows,
    read_rows,
    read_run,
    write_json_atomic,
    write_rows_atomic,
)
from .run_lock import run_lock

logger = logging.getLogger(__name__)

MAX_LISTED = 10


@dataclass
class MergeOutcome:
    out_dir: Path
    episodes: int
    missing_shards: list[int]
    missing_keys: list[Key]
    summary: dict[str, Any]


def merge_runs(run_dirs: list[str | Path], out_dir: str | Path) -> MergeOutcome:
    """Merge shard run directories into `out_dir` (which must not hold a run yet).

    Holds the lock of `out_dir` and of every shard (a shard still being written is refused). The
    commit is recoverable: a `merge.pending` record naming the shards is written first and removed
    last, so a merge killed at any point is finished by rerunning the same command.
    """
    if not run_dirs:
        raise ValueError("merge needs at least one run directory")
    out = Path(out_dir)
    sources = [str(Path(d).resolve()) for d in run_dirs]
    if str(out.resolve()) in sources:
        raise RunDirError(f"--out {out} is one of the shards; merge into a new directory")
    with contextlib.ExitStack() as locks:
        locks.enter_context(run_lock(out, "toolgym eval merge"))
        for directory in dict.fromkeys(sources):  # a shard given twice is refused below, with its own message
            if Path(directory).is_dir():
                locks.enter_context(run_lock(directory, "toolgym eval merge (reading this shard)"))
        _check_out_dir(out, sources)
        return _merge_locked(run_dirs, out, sources)


def _check_out_dir(out: Path, sources: list[str]) -> None:
    """Refuse a folder holding a run, unless it is this very merge's interrupted attempt."""
    pending = out / MERGE_PENDING_FILE
    if pending.exists():
        try:
            previous = json.loads(pending.read_text(encoding="utf-8")).get("merged_from")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous != sources:
            raise RunDirError(
                f"{out} holds an interrupted merge of other shards ({previous}); rerun that merge, "
                "or delete the folder and merge again"
            )
        logger.warning("%s: finishing an interrupted merge of the same shards", out)
        return
    if (out / RUN_FILE).exists() or (out / RESULTS_FILE).exists():
        raise RunDirError(f"{out} already holds a run; merge into a new directory")


def _merge_locked(run_dirs: list[str | Path], out: Path, sources: list[str]) -> MergeOutcome:
    runs = [read_run(d) for d in run_dirs]
    first = runs[0]["config"]
    for directory, run in zip(run_dirs[1:], runs[1:]):
        differences = config_differences(first, run["config"], ignore=("shard",))
        if differences:
            raise RunDirError(
                f"{directory} is not a shard of the same run as {run_dirs[0]}:\n  " + "\n  ".join(differences)
            )
    shards = [parse_shard(run["config"].get("shard")) for run in runs]
    counts = {count for _, count in shards}
    if len(counts) != 1:
        raise RunDirError(f"the shards split the run differently: shard counts {sorted(counts)}")
    count = counts.pop()
    seen = [index for index, _ in shards]
    repeated = sorted({i for i in seen if seen.count(i) > 1})
    if repeated:
        raise RunDirError(f"shard(s) {repeated} of {count} given twice")
    missing_shards = sorted(set(range(count)) - set(seen))

    merged: dict[Key, dict[str, Any]] = {}
    owner: dict[Key, str] = {}
    for directory in run_dirs:
        for key, row in latest_rows(read_rows(Path(directory) / RESULTS_FILE)).items():
            if key in merged:
                raise RunDirError(f"episode (task {key[0]}, sample {key[1]}) is in both {owner[key]} and {directory}")
            merged[key], owner[key] = row, str(directory)
    samples = int(first.get("samples") or 1)
    n_tasks = int(runs[0].get("n_tasks") or 0)
    planned = {(t, s) for t in range(n_tasks) for s in range(samples)}
    missing_keys = sorted(planned - set(merged))

    run = {
        "config": {**first, "shard": None},
        "env_kwargs_resolved": runs[0].get("env_kwargs_resolved"),
        "dataset_size": runs[0].get("dataset_size"),
        "n_tasks": n_tasks,
        "shard_tasks": n_tasks,
        "merged_from": sources,
        "merge": {"at": now_iso(), "missing_shards": missing_shards, "missing_episodes": len(missing_keys)},
        "invocations": [inv for run in runs for inv in run.get("invocations", [])],
    }
    # The commit: the pending record goes first and is removed last; each file is replaced atomically.
    write_json_atomic(out / MERGE_PENDING_FILE, {"merged_from": sources, "started_at": run["merge"]["at"]})
    write_rows_atomic(out / RESULTS_FILE, [merged[k] for k in sorted(merged)])
    write_json_atomic(out / RUN_FILE, run)
    summary = write_outputs(out, run)
    (out / MERGE_PENDING_FILE).unlink()
    return MergeOutcome(out, len(merged), missing_shards, missing_keys, summary)
