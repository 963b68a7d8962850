"""The README's shell commands run as written (those that need a GPU or the network excepted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS_GPU_OR_NETWORK = ("vllm serve", "api.openai.com")


def bash_blocks(section: str) -> list[str]:
    """The ```bash blocks of one README section (from its heading to the next heading of its level)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    level = section.split(" ")[0]
    start = text.index(section)
    end = text.find(f"\n{level} ", start + len(section))
    blocks = re.findall(r"```bash\n(.*?)```", text[start : end if end > 0 else None], re.DOTALL)
    return [b for b in blocks if not any(marker in b for marker in NEEDS_GPU_OR_NETWORK)]


def run_blocks(blocks: list[str], cwd: Path, data_dir: Path, timeout: int) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TOOLGYM_DATA_DIR": str(data_dir)}
    for block in blocks:
        script = "set -euo pipefail\n" + block
        result = subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"README block failed:\n{block}\n--- stderr ---\n{result.stderr[-3000:]}"


def test_evaluation_commands_run_as_written(shared_data, tmp_path):
    blocks = [b for b in bash_blocks("## Evaluating an agent") if "models/tiny-qwen" not in b]
    assert len(blocks) >= 4
    run_blocks(blocks, tmp_path, shared_data, timeout=600)
    assert (tmp_path / "leaderboard" / "leaderboard.md").exists()


@pytest.mark.slow
def test_third_party_agent_end_to_end_commands_run_as_written(shared_data, tmp_path):
    blocks = [b for b in bash_blocks("### A third-party agent end to end") if "models/tiny-qwen" in b]
    assert blocks, "the README should show serving a local model and evaluating it over HTTP"
    run_blocks(blocks, tmp_path, shared_data, timeout=900)
    for run in ("tiny-over-http", "tiny-in-process"):
        assert (tmp_path / "runs" / run / "summary.json").exists()
