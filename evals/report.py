"""summary.json and report.md of a run directory, both computed from results.jsonl and run.json."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .metrics import summarize
from .results import (
    REPORT_FILE,
    RESULTS_FILE,
    SUMMARY_FILE,
    latest_rows,
    read_rows,
    write_json_atomic,
    write_text_atomic,
)

MAX_ERRORS_SHOWN = 10
CI_NOTE = (
    "Intervals are 95 %: metrics are averaged over a task's samples first, then the interval is taken "
    "over tasks (Wilson score interval when every per-task value is 0 or 1, Student t otherwise). "
    "Errored episodes count 0 on score metrics and are left out of behaviour counters."
)


def build_summary(rows: list[Mapping[str, Any]], run: Mapping[str, Any]) -> dict[str, Any]:
    """`metrics.summarize` of the rows plus what the run was and whether it is complete."""
    config = run.get("config", {})
    samples = int(config.get("samples") or 1)
    summary = summarize(rows, samples=samples)
    expected = int(run.get("shard_tasks", run.get("n_tasks", 0)) or 0) * samples
    timings = [row.get("timing") or {} for row in rows]
    summary.update(
        run={
            "env": config.get("env"),
            "dataset": config.get("dataset"),
            "agent": config.get("agent"),
            "samples": samples,
            "limit": config.get("limit"),
            "shard": config.get("shard"),
            "n_tasks": run.get("n_tasks"),
        },
        expected_episodes=expected,
        complete=expected > 0 and len(rows) >= expected,
        timing={
            name: (sum(float(t.get(name) or 0.0) for t in timings) / len(timings) if timings else 0.0)
            for name in ("seconds", "agent_seconds", "env_seconds")
        },
        ci_method=CI_NOTE,
    )
    if run.get("rescores"):
        summary["rescored"] = run["rescores"][-1]
    if run.get("merged_from"):
        summary["merged_from"] = run["merged_from"]
    return summary


def write_outputs(run_dir: str | Path, run: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute summary.json and report.md from the run's rows; returns the summary."""
    run_dir = Path(run_dir)
    rows = list(latest_rows(read_rows(run_dir / RESULTS_FILE)).values())
    summary = build_summary(rows, run)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    write_text_atomic(run_dir / REPORT_FILE, render_report(summary, rows, run))
    return summary


def format_interval(stats: Mapping[str, Any] | None, digits: int = 3) -> str:
    """`0.620 [0.577, 0.661]`, or `—` when there is no value."""
    if not stats:
        return "—"
    if stats.get("method") == "none":
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} [{stats['low']:.{digits}f}, {stats['high']:.{digits}f}]"


def render_report(summary: Mapping[str, Any], rows: list[Mapping[str, Any]], run: Mapping[str, Any]) -> str:
    """The report as Markdown: headline, metric table, pass@k, BFCL, failures, errors, provenance."""
    info = summary.get("run", {})
    lines = [f"# {info.get('agent')} on {info.get('dataset')} ({info.get('env')})", ""]
    primary = summary.get("primary_metric")
    lines += [
        f"- episodes: {summary['episodes']} of {summary.get('expected_episodes')} planned "
        f"({summary.get('tasks', 0)} tasks × {info.get('samples')} samples)"
        + ("" if summary.get("complete") else " — **incomplete**"),
        f"- errors: {summary.get('errors', 0)} {summary.get('error_stages') or ''}".rstrip(),
        f"- **{primary}: {format_interval(summary.get('accuracy'))}**" if primary else "- no episodes",
    ]
    if info.get("shard"):
        lines.append(f"- shard {info['shard']}")
    if summary.get("rescored"):
        lines.append(f"- rescored at {summary['rescored'].get('at')} with the current scorers")
    lines += ["", "## Metrics", "", "| metric | mean [95% CI] | tasks | interval |", "|---|---:|---:|---|"]
    for name, stats in summary.get("metrics", {}).items():
        lines.append(f"| {name} | {format_interval(stats)} | {stats['n']} | {stats['method']} |")
    if summary.get("pass_at_k"):
        lines += ["", "## pass@k (unbiased estimator, Chen et al. 2021)", "", "| k | pass@k [95% CI] |", "|---|---:|"]
        lines += [f"| {k.split('@')[1]} | {format_interval(v)} |" for k, v in summary["pass_at_k"].items()]
    if summary.get("bfcl"):
        lines += _bfcl_lines(summary["bfcl"])
    if summary.get("failures"):
        lines += ["", "## Failures (kept apart from accuracy)", ""]
        lines += [f"- {name}: {value:.3f}" for name, value in summary["failures"].items()]
    errors = [row for row in rows if row.get("error")]
    if errors:
        lines += ["", f"## Errors ({len(errors)}, first {min(len(errors), MAX_ERRORS_SHOWN)})", ""]
        lines += ["| task | sample | stage | error |", "|---:|---:|---|---|"]
        for row in errors[:MAX_ERRORS_SHOWN]:
            error = row["error"]
            message = f"{error.get('type')}: {error.get('message', '')}".replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {row['task_index']} | {row['sample_index']} | {error.get('stage')} | {message} |")
    lines += ["", "## Run", ""]
    timing = summary.get("timing", {})
    lines.append(
        f"- mean seconds per episode: {timing.get('seconds', 0):.3f} "
        f"(agent {timing.get('agent_seconds', 0):.3f}, env {timing.get('env_seconds', 0):.3f})"
    )
    for invocation in run.get("invocations", [])[-3:]:
        command = " ".join(invocation.get("command", []))
        lines.append(f"- `{command}` ({invocation.get('started_at')} → {invocation.get('finished_at')})")
    versions = (run.get("invocations") or [{}])[-1].get("versions", {})
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    lines += ["", f"_{CI_NOTE}_", ""]
    return "\n".join(lines)


def _bfcl_lines(bfcl: Mapping[str, Any]) -> list[str]:
    lines = ["", "## BFCL", "", "| category | accuracy | correct / total |", "|---|---:|---:|"]
    for category, stats in bfcl["per_category"].items():
        lines.append(f"| {category} | {stats['accuracy']:.3f} | {stats['correct']} / {stats['total']} |")
    for name in ("non_live", "live"):
        part = bfcl.get(name) or {}
        values = {k: v for k, v in part.items() if k != "missing" and v is not None}
        if values:
            text = ", ".join(f"{k} {v:.3f}" for k, v in values.items())
            lines.append(f"\n{name.replace('_', '-')} summary (BFCL's aggregation): {text}")
    return lines
