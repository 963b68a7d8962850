"""The README's shell commands run as written (those that need a GPU or the network excepted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import checkout_like_folder, code_blocks, readme_sections

NEEDS_GPU_OR_NETWORK = ("vllm serve", "api.openai.com")


def runnable_bash_blocks(section: str) -> list[str]:
    blocks = code_blocks(readme_sections()[section], "bash")
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
    blocks = [b for b in runnable_bash_blocks("Evaluating an agent") if "models/tiny-qwen" not in b]
    assert len(blocks) >= 4
    work = checkout_like_folder(tmp_path, shared_data)
    run_blocks(blocks, work, shared_data, timeout=600)
    assert (work / "leaderboard" / "leaderboard.md").exists()


def test_retrieval_index_server_and_eval_commands_run_as_written(shared_data, tmp_path):
    blocks = [b for b in runnable_bash_blocks("Retrieval") if "--backend bm25s" in b]
    assert blocks
    work = checkout_like_folder(tmp_path, shared_data)
    run_blocks(blocks, work, shared_data, timeout=600)
    assert (work / "indexes" / "scifact-bm25s").is_dir()


@pytest.mark.slow
def test_lucene_and_dense_index_commands_run_as_written(shared_data, tmp_path):
    blocks = [b for b in runnable_bash_blocks("Retrieval") if "--backend pyserini" in b]
    assert blocks
    run_blocks(blocks, checkout_like_folder(tmp_path, shared_data), shared_data, timeout=1200)


@pytest.mark.slow
def test_third_party_agent_end_to_end_commands_run_as_written(shared_data, tmp_path):
    blocks = [b for b in runnable_bash_blocks("Evaluating an agent") if "models/tiny-qwen" in b]
    assert blocks, "the README should show serving a local model and evaluating it over HTTP"
    work = checkout_like_folder(tmp_path, shared_data)
    run_blocks(blocks, work, shared_data, timeout=900)
    for run in ("tiny-over-http", "tiny-in-process"):
        assert (work / "runs" / run / "summary.json").exists()
