"""`toolgym train` and `toolgym plot` as the README's Training section shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from readme_blocks import code_blocks, readme_sections

ROOT = Path(__file__).resolve().parent.parent


def test_readme_training_commands_run_as_written(tmp_path):
    blocks = code_blocks(readme_sections()["Training"], "bash")
    assert blocks, "the README's Training section should show the train and plot commands"
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for block in blocks:
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"README block failed:\n{block}\n{result.stderr[-3000:]}"
    run = tmp_path / "runs" / "math-tiny"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2]
    assert (run / "reward.png").stat().st_size > 1000 and (run / "length.png").is_file()
    assert (run / "final-model" / "config.json").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002"]


def test_plot_of_a_folder_without_metrics_is_one_line(tmp_path, capsys):
    from toolgym.cli import main

    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_train_help_lists_every_field_with_its_default_and_doc(capsys):
    import dataclasses

    import pytest

    from toolgym.cli import main
    from toolgym.trainers.config import GRPOConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for spec in dataclasses.fields(GRPOConfig):
        assert f"\n  {spec.name} = " in text, spec.name
    # The default and the first words of the field's docstring in config.py.
    assert "advantage_scale = 'group_std':" in text and "Divide by the group's std" in text
    assert "rollout_correction_cap = 2.0:" in text
