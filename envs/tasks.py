"""Task sources: where an environment draws its tasks from.

A task source is anything with `len()` and integer indexing that returns a task row (a dict in
the format of the env's data files). Procedural worlds are sources whose rows are generated from
the index, so `reset(seed=s)` always reproduces the same task without storing any data.

A task source is part of an env's state, so it must pickle (vector envs in subprocesses, Ray
workers, `copy.deepcopy` for tree search): give `ProceduralTasks` a module-level function or a
`functools.partial` of one, never a lambda or a nested function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

TaskRow = dict[str, Any]


class TaskSource(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> TaskRow: ...


class ProceduralTasks:
    """An indexable, effectively endless source: row `i` is `generate(seed=base_seed + i)`."""

    def __init__(self, generate: Callable[[int], TaskRow], size: int = 2**31 - 1, base_seed: int = 0):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.generate = generate
        self.size = size
        self.base_seed = base_seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> TaskRow:
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} is outside [0, {self.size})")
        return self.generate(self.base_seed + index)


def as_task_source(tasks: TaskSource | Sequence[TaskRow]) -> TaskSource:
    """Accept a list of rows or any task source; refuse an empty one with a clear error."""
    if len(tasks) == 0:
        raise ValueError("the task source is empty: pass a dataset with at least one row")
    return tasks
