"""The trainers load base models from local folders only: a missing path is a clear error, never a hub lookup."""

from __future__ import annotations

from pathlib import Path


def require_model_folder(path: str | Path, role: str) -> Path:
    """`path` as a Path when it is a Hugging Face model folder (it holds config.json), else FileNotFoundError.

    Without this check transformers treats a mistyped folder as a hub id and fails on the network
    (or downloads), far from the option that was wrong."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"the {role} {str(path)!r} is not a folder: give a local Hugging Face model folder")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"the {role} folder {str(path)!r} has no config.json: give a folder written by save_pretrained "
            "(`toolgym train-retriever tiny-bases` writes small offline ones)"
        )
    return folder


__all__ = ["require_model_folder"]
