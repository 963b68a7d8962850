"""Leaderboard plots as PNG files (matplotlib, Agg backend: no display needed).

- `accuracy_by_benchmark.png`: one group of bars per benchmark, one bar per run, with the 95 %
  interval as error bars;
- `accuracy_vs_tool_calls.png`: each run as a point (mean tool calls per episode, accuracy), with
  both intervals, to show what extra tool use buys.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolgym.extras import require

if TYPE_CHECKING:
    from .compare import RunEntry


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plots", "plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _accuracy(entry: RunEntry) -> tuple[float, float, float]:
    stats = entry.summary.get("accuracy") or {"mean": 0.0, "low": 0.0, "high": 0.0}
    return stats["mean"], max(0.0, stats["mean"] - stats["low"]), max(0.0, stats["high"] - stats["mean"])


def plot_accuracy_bars(entries: list[RunEntry], path: str | Path) -> Path:
    """Grouped bars: benchmarks on the x axis, one coloured bar per run label, 95 % error bars."""
    from .compare import by_benchmark

    plt = _pyplot()
    groups = by_benchmark(entries)
    labels = list(dict.fromkeys(e.label for e in entries))
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    width = 0.8 / max(1, max(len(g) for g in groups.values()))
    figure, axes = plt.subplots(figsize=(max(6.0, 2.2 * len(groups) + 2), 4.5), dpi=120)
    drawn: set[str] = set()
    for x, group in enumerate(groups.values()):
        offset = -0.4 + width / 2
        for i, entry in enumerate(group):
            mean, below, above = _accuracy(entry)
            axes.bar(
                x + offset + i * width,
                mean,
                width * 0.92,
                yerr=[[below], [above]],
                capsize=4,
                color=colors[entry.label],
                label=entry.label if entry.label not in drawn else None,
            )
            axes.text(x + offset + i * width, mean + above + 0.02, f"{mean:.2f}", ha="center", fontsize=8)
            drawn.add(entry.label)
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([f"{b}\n({(g[0].primary or 'accuracy')})" for b, g in groups.items()], fontsize=9)
    axes.set_ylim(0, 1.12)
    axes.set_ylabel("accuracy (95% CI)")
    axes.set_title("Accuracy per benchmark")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)


def plot_accuracy_vs_tool_calls(entries: list[RunEntry], path: str | Path) -> Path:
    """Scatter of accuracy against mean tool calls per episode, one marker per benchmark."""
    from .compare import by_benchmark

    plt = _pyplot()
    markers = "osD^vP*Xh"
    figure, axes = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    for b, (benchmark, group) in enumerate(by_benchmark(entries).items()):
        for entry in group:
            calls = entry.summary.get("metrics", {}).get("tool_calls") or {"mean": 0.0, "low": 0.0, "high": 0.0}
            mean, below, above = _accuracy(entry)
            axes.errorbar(
                calls["mean"],
                mean,
                xerr=[[max(0.0, calls["mean"] - calls["low"])], [max(0.0, calls["high"] - calls["mean"])]],
                yerr=[[below], [above]],
                fmt=markers[b % len(markers)],
                capsize=3,
                label=f"{entry.label} · {benchmark}",
            )
    axes.set_xlabel("tool calls per episode (mean, 95% CI)")
    axes.set_ylabel("accuracy (95% CI)")
    axes.set_ylim(-0.05, 1.1)
    axes.set_xlim(left=min(-0.1, axes.get_xlim()[0]))
    axes.set_title("Accuracy vs. tool use")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False, ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
