"""One tiny local chat model per test session, shared by the agent, rollout and drift tests.

Import `tiny_model_path()` in a test module's own fixture; the model is built once per process
in a temporary folder (about 0.5 s) and removed at exit. `single_torch_thread()` keeps torch to
one thread while a test module runs: on a 2-core machine shared with other jobs, OpenMP spinning
makes a tiny model's small ops 100× slower with 2 threads.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CACHE: dict[str, Path] = {}


def tiny_model_path() -> Path:
    """The session's tiny Qwen2 chat model folder (built on first use)."""
    if "path" not in _CACHE:
        from toolgym.agents.tiny import make_tiny_model

        folder = Path(tempfile.mkdtemp(prefix="toolgym-tiny-model-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _CACHE["path"] = make_tiny_model(folder / "tiny-qwen2", seed=0)
    return _CACHE["path"]


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, restoring the previous count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
