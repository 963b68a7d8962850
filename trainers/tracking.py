"""Step metrics: metrics.jsonl always, TensorBoard and W&B when asked, and a rich progress bar.

Names follow veRL's (`reward/mean`, `response_length/mean`, `kl`, `entropy`, `pg_clipfrac`,
`tools/call_frequency`, `turns/mean`, `perf/time_per_step`, `timing_s/gen`, `timing_s/update`), so
curves line up with published veRL runs. On resume the JSONL is cut back to the checkpoint's
step, so the file always reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (one per step, plus evaluation rows)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir!r} a training run folder?")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLogger:
    """Append one JSON row per step; mirror to TensorBoard / W&B if configured."""

    def __init__(self, output_dir: str | Path, report_to: list[str], config: dict[str, Any], resume_step: int = 0):
        self.path = Path(output_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(resume_step)
        self.handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.tensorboard = None
        self.wandb = None
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(Path(output_dir) / "tensorboard"))
            except ImportError:
                logger.warning("report_to has 'tensorboard' but tensorboard is not installed: pip install tensorboard")
        if "wandb" in report_to:
            try:
                import wandb

                self.wandb = wandb.init(config=config, dir=str(output_dir), resume="allow")
            except ImportError:
                logger.warning("report_to has 'wandb' but wandb is not installed: pip install wandb")

    def _truncate_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line).get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()
        numeric = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tensorboard is not None:
            for key, value in numeric.items():
                self.tensorboard.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numeric, step=step)

    def close(self) -> None:
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Progress:
    """A rich progress bar over optimizer steps showing reward and loss (silent when disabled)."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]GRPO"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, status="")

    def update(self, metrics: dict[str, Any]) -> None:
        if self.bar is None:
            return
        status = f"reward {metrics.get('reward/mean', float('nan')):.3f}  loss {metrics.get('loss', float('nan')):+.4f}"
        self.bar.update(self.task, advance=1, status=status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
