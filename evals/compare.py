"""`toolgym compare DIR...`: a leaderboard across evaluation runs, as a rich table, Markdown and PNGs.

Runs are grouped by benchmark (the dataset spec): one table per benchmark, one row per run, one
column per metric with its 95 % interval (the primary metric first). Nothing is recomputed from
scratch: each run's summary.json is read (or built from its results when it is missing).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import build_summary, format_interval
from .results import RESULTS_FILE, SUMMARY_FILE, RunDirError, latest_rows, read_rows, read_run

# Shown in the terminal table after the primary metric, when present (the Markdown has them all).
TERMINAL_METRICS = ("f1", "tool_calls")


@dataclass
class RunEntry:
    """One run directory as the leaderboard sees it."""

    label: str
    directory: Path
    summary: dict[str, Any]

    @property
    def benchmark(self) -> str:
        info = self.summary.get("run", {})
        return f"{info.get('dataset')} ({info.get('env')})"

    @property
    def primary(self) -> str | None:
        return self.summary.get("primary_metric")

    def metric(self, name: str) -> dict[str, Any] | None:
        if name.startswith("pass@"):
            return (self.summary.get("pass_at_k") or {}).get(name)
        return self.summary.get("metrics", {}).get(name)


def load_entries(run_dirs: list[str | Path], labels: list[str] | None = None) -> list[RunEntry]:
    """Read each run's summary; labels default to the agent spec (plus the folder name when ambiguous)."""
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"got {len(labels)} labels for {len(run_dirs)} run directories")
    entries = []
    for directory in map(Path, run_dirs):
        summary_path = directory / SUMMARY_FILE
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        elif (directory / RESULTS_FILE).is_file():
            summary = build_summary(
                list(latest_rows(read_rows(directory / RESULTS_FILE)).values()), read_run(directory)
            )
        else:
            raise RunDirError(f"{directory} has neither {SUMMARY_FILE} nor {RESULTS_FILE}: not an evaluation run")
        entries.append(RunEntry(str(summary.get("run", {}).get("agent")), directory, summary))
    if labels is not None:
        for entry, label in zip(entries, labels):
            entry.label = label
    else:
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for entry in entries:
            seen[(entry.benchmark, entry.label)] += 1
        for entry in entries:
            if seen[(entry.benchmark, entry.label)] > 1:
                entry.label = f"{entry.label} ({entry.directory.name})"
    return entries


def by_benchmark(entries: list[RunEntry]) -> dict[str, list[RunEntry]]:
    """Entries grouped by benchmark, each group sorted by the primary metric, best first."""
    groups: dict[str, list[RunEntry]] = defaultdict(list)
    for entry in entries:
        groups[entry.benchmark].append(entry)
    for group in groups.values():
        group.sort(key=lambda e: -((e.summary.get("accuracy") or {}).get("mean") or 0.0))
    return dict(sorted(groups.items()))


def metric_columns(group: list[RunEntry], terminal: bool = False) -> list[str]:
    """The metric columns of one benchmark's table: the primary metric first, then the rest."""
    primaries = [e.primary for e in group if e.primary]
    names: list[str] = list(dict.fromkeys(primaries))
    rest = sorted({n for e in group for n in e.summary.get("metrics", {})} - set(names))
    passes = sorted({k for e in group for k in e.summary.get("pass_at_k") or {}}, key=lambda k: int(k.split("@")[1]))
    if terminal:
        rest = [n for n in TERMINAL_METRICS if n in rest]
        passes = passes[-1:]
    return [*names, *passes, *rest]


def leaderboard_markdown(entries: list[RunEntry]) -> str:
    """One Markdown table per benchmark: run, episodes, errors, then every metric as mean [95% CI]."""
    lines = ["# Leaderboard", ""]
    for benchmark, group in by_benchmark(entries).items():
        columns = metric_columns(group)
        lines += [f"## {benchmark}", ""]
        lines.append("| run | episodes | errors | " + " | ".join(columns) + " |")
        lines.append("|---|---:|---:|" + "---:|" * len(columns))
        for entry in group:
            cells = [format_interval(entry.metric(name)) for name in columns]
            summary = entry.summary
            lines.append(
                f"| {entry.label} | {summary.get('episodes')} | {summary.get('errors')} | " + " | ".join(cells) + " |"
            )
        bfcl = [(e.label, e.summary["bfcl"]["non_live"]) for e in group if e.summary.get("bfcl")]
        for label, non_live in bfcl:
            if non_live.get("summary_ast") is not None:
                lines.append(f"\n{label}: BFCL non-live AST summary {non_live['summary_ast']:.3f}")
        lines.append("")
    lines.append("Intervals are 95 % (Wilson for pass rates, Student t otherwise), taken over tasks.")
    return "\n".join(lines) + "\n"


def leaderboard_tables(entries: list[RunEntry]) -> list[Any]:
    """rich Tables, one per benchmark, with the primary metric and a few behaviour metrics."""
    from rich.table import Table

    tables = []
    for benchmark, group in by_benchmark(entries).items():
        columns = metric_columns(group, terminal=True)
        table = Table(title=benchmark, caption="mean (95% CI)")
        table.add_column("run", no_wrap=True)
        for header in ("episodes", "errors", *columns):
            table.add_column(header, justify="right")
        for entry in group:
            summary = entry.summary
            cells = [compact_interval(entry.metric(name)) for name in columns]
            table.add_row(entry.label, str(summary.get("episodes")), str(summary.get("errors")), *cells)
        tables.append(table)
    return tables


def compact_interval(stats: dict[str, Any] | None) -> str:
    """`0.425 (0.36–0.49)`: the mean and the 95 % bounds, short enough for a terminal column."""
    if not stats:
        return "—"
    if stats.get("method") == "none":
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ({stats['low']:.2f}–{stats['high']:.2f})"


@dataclass
class CompareOutcome:
    markdown: Path
    plots: list[Path]
    entries: list[RunEntry]


def compare_runs(
    run_dirs: list[str | Path], out_dir: str | Path = ".", labels: list[str] | None = None
) -> CompareOutcome:
    """Write leaderboard.md and the PNG plots into `out_dir`; the caller prints the rich tables."""
    from .plots import plot_accuracy_bars, plot_accuracy_vs_tool_calls

    entries = load_entries(run_dirs, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "leaderboard.md"
    markdown.write_text(leaderboard_markdown(entries), encoding="utf-8")
    plots = [
        plot_accuracy_bars(entries, out / "accuracy_by_benchmark.png"),
        plot_accuracy_vs_tool_calls(entries, out / "accuracy_vs_tool_calls.png"),
    ]
    return CompareOutcome(markdown, plots, entries)
