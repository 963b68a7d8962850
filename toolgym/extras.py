"""Optional dependencies: import one, or fail with one clear error naming the extra that installs it.

ToolGym's core installs light; heavy or GPU-only libraries (torch, faiss, pyserini, vLLM, …) come
with a pip extra and are imported where they are used. `require` is the one way to do that, so
every missing-library error reads the same and names the right extra (the extras are defined in
pyproject.toml; `EXTRA_NOTES` adds what the extra alone does not say).
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS: tuple[str, ...] = ("hf", "retrieval", "serve", "openai", "plots", "gpu", "train", "bench")
"""The optional-dependency groups of pyproject.toml."""

EXTRA_NOTES: dict[str, str] = {
    "hf": "install torch==2.13.0 first (the CPU wheel), as the README's set-up does",
    "gpu": "vLLM needs a CUDA GPU and brings the CUDA torch it pins",
    "bench": "only the benchmark scripts that compare against a peer (TRL) need it",
}


class MissingExtraError(ImportError):
    """An optional library is not installed; the message names the pip extra that installs it."""


def install_hint(extra: str) -> str:
    """The pip command that installs `extra`, with any note it needs."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; pyproject.toml defines {EXTRAS}")
    hint = f'pip install "toolgym[{extra}]"'
    note = EXTRA_NOTES.get(extra)
    return f"{hint} ({note})" if note else hint


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingExtraError saying what needs it and which extra installs it.

    `purpose` completes "… needs <module>" (e.g. "the faiss backend"); the original ImportError is
    chained and its text kept, so a broken install (a missing shared library) stays diagnosable.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        who = purpose or "this feature"
        raise MissingExtraError(f"{who} needs {module.split('.')[0]}: {install_hint(extra)} ({exc})") from exc


__all__ = ["EXTRAS", "EXTRA_NOTES", "MissingExtraError", "install_hint", "require"]
