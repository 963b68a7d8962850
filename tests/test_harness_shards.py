"""Sharded runs merge into exactly the single run, and rescore reproduces a run's summary."""

from __future__ import annotations

import json

import pytest

from toolgym.evals.cli import main
from toolgym.evals.harness import run_eval, task_plan
from toolgym.evals.merge import merge_runs
from toolgym.evals.rescore import rescore_run
from toolgym.evals.results import RunDirError, read_rows, write_rows_atomic

OPTIONS = {"env": "Search-v0", "dataset": "procedural", "agent": "scripted:baseline", "limit": 7, "samples": 2}
VOLATILE = ("timing", "started_at", "finished_at", "steps")  # wall-clock fields differ between runs


def _stable(rows):
    return sorted(
        (json.dumps({k: v for k, v in row.items() if k not in VOLATILE}, sort_keys=True) for row in rows),
    )


def _scores(summary):
    return {name: stats["mean"] for name, stats in summary["metrics"].items()}


def test_shards_partition_the_tasks_deterministically():
    from toolgym.evals.harness import EvalConfig

    plans = [
        task_plan(EvalConfig("Search-v0", "procedural", "scripted:oracle", limit=7, shard=f"{i}/3"), 10**9)
        for i in range(3)
    ]
    assert plans == [[0, 3, 6], [1, 4], [2, 5]]
    with pytest.raises(ValueError, match="0 <= i < n"):
        EvalConfig("Search-v0", "procedural", "scripted:oracle", shard="3/3")


@pytest.mark.parametrize(("limit", "samples", "shard"), [(10**23, 1, None), (3, 10**9, None), (2**31 - 1, 1, "5/1000")])
def test_a_plan_too_large_for_memory_is_one_clear_error_before_any_list_is_built(limit, samples, shard):
    """`--limit 1e23` on a procedural world (2^31 tasks) used to build the whole range and be
    OOM-killed; the size is now checked on a lazy range first."""
    import time

    from toolgym.evals.harness import MAX_EPISODES_PER_RUN, EvalConfig

    config = EvalConfig("Math-v0", "procedural", "scripted:oracle", limit=limit, samples=samples, shard=shard)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"at most {MAX_EPISODES_PER_RUN:,}"):
        task_plan(config, 2**31 - 1)
    assert time.perf_counter() - started < 0.5


def test_merged_shards_equal_a_single_run(tmp_path):
    single = run_eval(tmp_path / "single", OPTIONS, show_progress=False)
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, directory in enumerate(shards):
        run_eval(directory, {**OPTIONS, "shard": f"{i}/3"}, concurrency=2, show_progress=False)

    assert main(["eval", "merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 0

    merged_rows = read_rows(tmp_path / "merged" / "results.jsonl")
    assert _stable(merged_rows) == _stable(read_rows(tmp_path / "single" / "results.jsonl"))
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["complete"] and merged["episodes"] == 14
    assert _scores(merged) == pytest.approx(_scores(single.summary))
    assert merged["pass_at_k"] == single.summary["pass_at_k"]


def test_merge_refuses_overlaps_and_reports_gaps(tmp_path, capsys):
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, directory in enumerate(shards):
        run_eval(directory, {**OPTIONS, "limit": 4, "shard": f"{i}/3"}, show_progress=False)

    with pytest.raises(RunDirError, match="given twice"):
        merge_runs([shards[0], shards[0]], tmp_path / "dup")
    outcome = merge_runs(shards[:2], tmp_path / "partial")

    assert outcome.missing_shards == [2]
    assert outcome.missing_keys == [(2, 0), (2, 1)]
    assert not outcome.summary["complete"]
    other = tmp_path / "other"
    run_eval(other, {**OPTIONS, "limit": 4, "agent": "scripted:oracle", "shard": "2/3"}, show_progress=False)
    with pytest.raises(RunDirError, match="agent"):
        merge_runs([*shards[:2], other], tmp_path / "mixed")


def test_rescore_reproduces_the_summary_and_repairs_tampered_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    original = run_eval(out, OPTIONS, show_progress=False)
    rows = read_rows(out / "results.jsonl")
    correct = next(row for row in rows if row["metrics"]["em"] == 1.0)
    correct["metrics"]["em"], correct["reward"] = 0.0, 0.0  # what a scorer bug would have saved
    write_rows_atomic(out / "results.jsonl", rows)

    assert main(["eval", "rescore", str(out)]) == 0

    assert "1 changed, 0 diverged, 0 failed" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert _scores(summary) == pytest.approx(_scores(original.summary))
    assert summary["rescored"]["changed"] == 1
    fixed = next(
        r
        for r in read_rows(out / "results.jsonl")
        if r["task_index"] == correct["task_index"] and r["sample_index"] == correct["sample_index"]
    )
    assert fixed["metrics"]["em"] == 1.0 and fixed["rescore"]["previous_metrics"]["em"] == 0.0
    again = rescore_run(out)
    assert (again.changed, again.diverged, again.failed) == (0, 0, 0)
