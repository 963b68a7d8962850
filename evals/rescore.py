"""`toolgym eval rescore DIR`: recompute every episode's metrics with the current scorers.

Scores are never re-implemented here: each saved episode is replayed through a fresh env built
with the run's env id and kwargs — same task index, same seed, the saved actions in order. The
envs are deterministic given those, so the replay ends where the original did and its final info
carries the metrics of today's scorer (a fixed answer normalisation, a new BFCL checker rule).

A replay whose observations differ from the saved ones (a changed corpus or retriever) or that
ends at a different turn is marked `diverged`; its new metrics are still what the current env
says about the saved actions. The rows are rewritten in one atomic rename (one row per key; the
previous reward and metrics are kept in each row's `rescore` field), then summary.json and
report.md are recomputed and run.json records the rescore.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from toolgym.agents.episodes import describe_error, now_iso

from .report import write_outputs
from .results import (
    RESULTS_FILE,
    RUN_FILE,
    latest_rows,
    package_versions,
    read_rows,
    read_run,
    write_json_atomic,
    write_rows_atomic,
)
from .run_lock import run_lock


@dataclass
class RescoreOutcome:
    episodes: int
    changed: int
    diverged: int
    failed: int
    skipped_errors: int
    summary: dict[str, Any]


def replay(env: gym.Env, row: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Replay a saved episode; returns (final step info + reward, status "ok" / "diverged")."""
    options = {"index": int(row["task_index"])}
    messages, _ = env.reset(seed=row.get("seed"), options=options)
    transcript = list(messages)
    status = "ok"
    reward, info, done = 0.0, {}, False
    for action in row.get("actions") or []:
        if done:
            status = "diverged"  # the replay ended before the saved episode did
            break
        observation, reward, terminated, truncated, info = env.step(action)
        transcript.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
        transcript.extend(observation)
        done = terminated or truncated
    if not done:
        raise RuntimeError("the replay did not reach the end of the episode with the saved actions")
    if _canonical(transcript) != _canonical(row.get("messages") or []):
        status = "diverged"
    return {"reward": float(reward), **info}, status


def rescore_run(run_dir: str | Path) -> RescoreOutcome:
    """Replay every non-error episode of a run with the current env and scorer, and rewrite its outputs.

    Holds the run directory's lock: rescoring a folder that a live eval is writing is refused.
    """
    with run_lock(run_dir, "toolgym eval rescore", create=False):
        return _rescore_locked(Path(run_dir))


def _rescore_locked(run_dir: Path) -> RescoreOutcome:
    run = read_run(run_dir)
    rows = latest_rows(read_rows(run_dir / RESULTS_FILE, repair=True))
    kwargs = run.get("env_kwargs_resolved") or {}
    env_id = run["config"]["env"]
    env = gym.make(env_id if ":" in env_id else f"toolgym:{env_id}", **kwargs)
    stamp = now_iso()
    changed = diverged = failed = skipped = 0
    try:
        for row in rows.values():
            if row.get("error"):
                skipped += 1
                continue
            previous = {"reward": row.get("reward"), "metrics": row.get("metrics")}
            try:
                final, status = replay(env, row)
            except Exception as exc:
                failed += 1
                row["rescore"] = {"at": stamp, "status": "failed", "error": describe_error(exc, "rescore"), **previous}
                continue
            metrics = final.pop("metrics", {}) or {}
            reward = final.pop("reward")
            if _canonical(metrics) != _canonical(row.get("metrics") or {}) or reward != row.get("reward"):
                changed += 1
            diverged += status == "diverged"
            row.update(metrics=metrics, reward=reward)
            row["final_info"] = {
                **(row.get("final_info") or {}),
                **{k: final[k] for k in ("gold", "answer") if k in final},
            }
            row["rescore"] = {
                "at": stamp,
                "status": status,
                "previous_reward": previous["reward"],
                "previous_metrics": previous["metrics"],
            }
    finally:
        env.close()
    write_rows_atomic(run_dir / RESULTS_FILE, rows.values())
    record = {
        "at": stamp,
        "episodes": len(rows) - skipped,
        "changed": changed,
        "diverged": diverged,
        "failed": failed,
        "versions": package_versions(),
    }
    run.setdefault("rescores", []).append(record)
    write_json_atomic(run_dir / RUN_FILE, run)
    summary = write_outputs(run_dir, run)
    return RescoreOutcome(len(rows) - skipped, changed, diverged, failed, skipped, summary)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
