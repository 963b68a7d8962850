"""Read the README's code blocks by section, and a working folder laid out like a checkout.

The README's commands use paths such as `../shared/data/...` (the checkout sits beside the data
folder), so tests run them in `<tmp>/work` with `<tmp>/shared/data` linked to the data.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_sections() -> dict[str, str]:
    """Top-level (`## `) sections of the README by heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    return {part.split("\n", 1)[0].strip(): part for part in parts[1:]}


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def checkout_like_folder(tmp_path: Path, shared_data: Path) -> Path:
    """`<tmp>/work` with `../shared/data` pointing at the benchmark data."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    return work
