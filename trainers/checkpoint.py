"""Checkpoints that resume exactly: model, optimizer, scheduler, RNG states, sampler, plug-ins, step.

A checkpoint is a folder `checkpoints/step-000010/state.pt`, written under a temporary name and
renamed into place only when complete (a rename is atomic on POSIX), so a process killed mid-write
(SIGKILL, OOM) leaves either the previous checkpoints or a stray `.tmp-*` folder that is ignored
and cleaned up, never a half-written checkpoint that resume would trust.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU, and CUDA when present) generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def save_checkpoint(output_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write `state` atomically as the checkpoint of `step`, then drop all but the newest `keep`."""
    final = checkpoint_dir(output_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    path = temporary / STATE_FILE
    with open(path, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    _fsync_dir(final.parent)
    for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of an interrupted write are skipped)."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    complete = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(complete, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, removing leftovers of an interrupted write."""
    root = Path(output_dir) / "checkpoints"
    for stray in root.glob(".tmp-*") if root.is_dir() else []:
        logger.warning("removing %s, left by an interrupted checkpoint write", stray)
        shutil.rmtree(stray, ignore_errors=True)
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


RESUME_MAY_CHANGE = frozenset(
    {
        "total_steps",
        "save_every",
        "save_total_limit",
        "resume",
        "output_dir",
        "device",
        "threads",
        "progress_bar",
        "report_to",
        "save_rollouts",
        "eval_every",
        "eval_tasks",
        "eval_task_start",
        "eval_task_indices",
    }
)
"""Fields a resumed run may change: length, bookkeeping, logging and held-out evaluation. Every other
field shapes the training itself, and most would be silently ignored (the optimizer and scheduler
state restore the old learning rate; the sampler position assumes the old tasks and batch size)."""


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`field: old -> new` for each training-shaping field that differs between a checkpoint and now."""
    return [
        f"{name}: {saved.get(name)!r} -> {value!r}"
        for name, value in current.items()
        if name not in RESUME_MAY_CHANGE and saved.get(name) != value
    ]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    # weights_only=False: the state holds RNG tuples and plug-in dicts, written by this process family.
    return torch.load(Path(path) / STATE_FILE, map_location="cpu", weights_only=False)


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
