"""The README's Python examples run as written, in order, like cells of one notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL)


def test_readme_python_examples_run(shared_data, tmp_path):
    blocks = python_blocks()
    assert blocks, "the README should show Python examples"
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")

    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TOOLGYM_DATA_DIR": str(shared_data)},
    )

    assert result.returncode == 0, result.stderr[-3000:]
