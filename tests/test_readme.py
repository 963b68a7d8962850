"""The README's Python examples run as written, each section in order like cells of one notebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import checkout_like_folder, code_blocks, readme_sections

SLOW_SECTIONS = ("Retrieval",)  # dense encoding and a Lucene index take minutes on 2 cores


def run_python(blocks: list[str], cwd: Path, shared_data: Path) -> None:
    script = cwd / "readme_examples.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {**os.environ, "TOOLGYM_DATA_DIR": str(shared_data)}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=900, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_readme_python_examples_run(shared_data, tmp_path):
    sections = readme_sections()
    blocks = [b for name, text in sections.items() if name not in SLOW_SECTIONS for b in code_blocks(text, "python")]
    assert len(blocks) >= 3, "the README should show Python examples"
    run_python(blocks, checkout_like_folder(tmp_path, shared_data), shared_data)


@pytest.mark.slow
@pytest.mark.timeout(900)  # encodes 4,858 HotpotQA paragraphs with MiniLM and boots Lucene: minutes on 2 busy cores
def test_readme_retrieval_python_examples_run(shared_data, tmp_path):
    blocks = code_blocks(readme_sections()["Retrieval"], "python")
    assert blocks
    run_python(blocks, checkout_like_folder(tmp_path, shared_data), shared_data)
