"""Exact resume: a run interrupted between checkpoints (an exception, or a real SIGKILL of the CLI
process) and resumed from its last checkpoint logs the same per-step numbers as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trainer_fixtures  # noqa: F401 - registers Parity-v0
from tiny_model_fixture import tiny_model_path

from toolgym.trainers.checkpoint import latest_checkpoint, list_checkpoints
from toolgym.trainers.config_io import load_config
from toolgym.trainers.loop import GRPOTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TESTS = Path(__file__).parent
TIMING_KEYS = ("perf/", "timing_s/")


def overrides(output_dir: Path, total_steps: int = 6) -> list[str]:
    return [
        f"model={tiny_model_path()}",
        f"output_dir={output_dir}",
        "env_id=trainer_fixtures:Parity-v0",
        "num_generations=3",
        "prompts_per_step=4",
        "max_new_tokens=8",
        "max_episode_tokens=160",
        "learning_rate=0.05",
        "num_iterations=2",
        "lr_schedule=cosine",
        "warmup_steps=1",
        "train_tasks=10",  # several epochs in 6 steps: the sampler position matters
        f"total_steps={total_steps}",
        "save_every=2",
        "num_envs=6",
        "threads=1",
        "progress_bar=false",
        "plugins=[{name: format_reward, bonus: 0.2}]",
    ]


def logged(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if not k.startswith(TIMING_KEYS)} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    trainer = GRPOTrainer(load_config(None, overrides(run_dir)))
    trainer.train()
    trainer.close()
    rows = logged(run_dir)
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert len({row["loss"] for row in rows}) > 1  # the run actually trains
    return rows


class CrashAtStep(GRPOTrainer):
    crash_step = 3

    def train_step(self, step):
        if step + 1 == self.crash_step:
            raise RuntimeError("simulated crash")
        return super().train_step(step)


def test_resume_after_an_exception_reproduces_every_step(tmp_path, uninterrupted):
    crashed = CrashAtStep(load_config(None, overrides(tmp_path)))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.train()
    crashed.close()
    assert latest_checkpoint(tmp_path).name == "step-000002"
    resumed = GRPOTrainer(load_config(None, [*overrides(tmp_path), "resume=true"]))
    assert resumed.step == 2
    resumed.train()
    resumed.close()
    assert logged(tmp_path) == uninterrupted


def test_resume_after_sigkill_between_checkpoints(tmp_path, uninterrupted):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "toolgym.cli", "train", *overrides(tmp_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill as soon as step 3 is logged: checkpoint 2 exists, 3 is unsaved
            if metrics.is_file() and any(json.loads(line)["step"] >= 3 for line in metrics.read_text().splitlines()):
                break
            if process.poll() is not None:
                pytest.fail(f"the training process exited early with {process.returncode}")
            time.sleep(0.02)
        else:
            pytest.fail("step 3 was never logged")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    saved = [int(p.name.split("-")[1]) for p in list_checkpoints(tmp_path)]
    assert saved and max(saved) < 6 and not (tmp_path / "final-model").exists()

    resume = subprocess.run([*command, "resume=true"], env=env, capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr[-2000:]
    assert logged(tmp_path) == uninterrupted


@pytest.fixture
def model_load_tripwire(monkeypatch):
    from toolgym.trainers import setup

    def tripwire(*args, **kwargs):
        raise AssertionError("model load reached")

    monkeypatch.setattr(setup, "load_model", tripwire)


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        ("learning_rate=0.1", False),  # the restored optimizer/scheduler would silently keep 0.05
        ("num_generations=4", False),  # the sampler position assumes the old batch shape
        ("plugins=[]", False),
        ("total_steps=8", True),  # extending a run, and bookkeeping, may change
        ("save_every=3", True),
    ],
)
def test_resume_refuses_a_changed_training_field_before_the_model_loads(tmp_path, model_load_tripwire, change, allowed):
    import dataclasses

    from toolgym.trainers.checkpoint import save_checkpoint
    from toolgym.trainers.config_io import ConfigError

    original = load_config(None, overrides(tmp_path))
    save_checkpoint(tmp_path, 2, {"step": 2, "config": dataclasses.asdict(original), "plugins": [{}]})
    resumed = load_config(None, [*overrides(tmp_path), change, "resume=true"])
    if allowed:
        with pytest.raises(AssertionError, match="model load reached"):
            GRPOTrainer(resumed)
        return
    with pytest.raises(ConfigError) as error:
        GRPOTrainer(resumed)
    field = change.split("=")[0]
    message = str(error.value)
    assert "\n" not in message and field in message and "step-000002" in message, message


def test_resume_without_a_checkpoint_starts_fresh(tmp_path, model_load_tripwire, caplog):
    with pytest.raises(AssertionError, match="model load reached"), caplog.at_level("WARNING"):
        GRPOTrainer(load_config(None, [*overrides(tmp_path), "resume=true"]))
    assert "no checkpoint yet" in caplog.text
