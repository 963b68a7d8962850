"""`toolgym plot RUN_DIR`: reward and response-length curves of a training run, as PNG files."""

from __future__ import annotations

from pathlib import Path

from toolgym.extras import require

from .tracking import read_metrics

CURVES = {
    "reward.png": ("reward", ["reward/mean", "reward/shaped_mean", "eval/reward/mean"]),
    "length.png": ("tokens", ["response_length/mean", "policy_tokens/mean"]),
    "tools.png": ("frequency", ["tools/call_frequency", "eval/tools/call_frequency"]),
}


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write one PNG per curve family that the run logged; return their paths."""
    matplotlib = require("matplotlib", "plots", "toolgym plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots", "toolgym plot")
    rows = read_metrics(run_dir)
    out = Path(out_dir or run_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, (ylabel, keys) in CURVES.items():
        series = {key: [(r["step"], r[key]) for r in rows if r.get(key) is not None] for key in keys}
        series = {key: points for key, points in series.items() if points}
        if not series:
            continue
        figure, axis = plt.subplots(figsize=(6, 3.5))
        for key, points in series.items():
            steps, values = zip(*points)
            axis.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
        axis.set_xlabel("optimizer step")
        axis.set_ylabel(ylabel)
        axis.set_title(f"{Path(run_dir).name}: {ylabel}")
        axis.grid(alpha=0.3)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / filename, dpi=100)
        plt.close(figure)
        written.append(out / filename)
    return written
