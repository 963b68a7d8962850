"""Locating and reading data files: the shared benchmark folder and JSON / JSON Lines files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "TOOLGYM_DATA_DIR"


def shared_data_dir() -> Path | None:
    """The benchmark data folder: $TOOLGYM_DATA_DIR, else `../shared/data` beside the checkout.

    Returns None when neither exists (a user's fresh clone); callers then say how to point at it.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    candidates = [Path.cwd() / ".." / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def require_shared_data(relative: str) -> Path:
    """Path of a file or folder under the shared data folder, or a clear error saying what to set."""
    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError(
            f"benchmark data folder not found: set ${DATA_DIR_ENV} to the folder that holds {relative!r} "
            "(the project's shared/data), or pass a file path instead of a dataset name"
        )
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; ${DATA_DIR_ENV}={root} lacks {relative!r}")
    return path


class JsonLinesError(ValueError):
    """A JSON Lines file with a line that is not valid JSON; the message names the file and line."""


def iter_numbered_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, value) for each non-empty line, raising JsonLinesError at a bad line."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise JsonLinesError(f"{path}:{line_number}: not valid JSON ({reason})") from exc


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one object per non-empty line, naming the file and line on a parse error."""
    for _, value in iter_numbered_jsonl(path):
        yield value


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON array file or a JSON Lines file (BFCL's `.json` files are JSON Lines)."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        head = handle.read(1)
        while head and head.isspace():
            head = handle.read(1)
    if head == "[":
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array of records")
        return data
    return list(iter_jsonl(path))
