"""A batched pool of environments with partial stepping.

LLM turns are ragged: in a batch, some conversations are waiting on the model while others have
finished. Gymnasium's vector envs (which work with these envs, see `toolgym.vector_spaces`) step
in lockstep and auto-reset, which wastes generations. `EnvPool` instead steps exactly the envs
given an action, in a thread pool (retrievers, math workers and tools release the GIL or wait on
I/O), and passes Python objects directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import gymnasium as gym


class EnvPoolError(RuntimeError):
    """An env of the pool raised; `index` names it and the original exception is the `__cause__`."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(f"env {index} of the pool failed: {type(error).__name__}: {error}")
        self.index = index


class StepResult(NamedTuple):
    observation: list[dict[str, Any]]
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class EnvPool:
    """Holds `n` environments; `reset` and `step` take only the indices that should move."""

    def __init__(self, envs: Sequence[gym.Env | Callable[[], gym.Env]], max_workers: int | None = None):
        if not envs:
            raise ValueError("EnvPool needs at least one environment")
        self.envs: list[gym.Env] = [env if isinstance(env, gym.Env) else env() for env in envs]
        self.max_workers = max_workers if max_workers is not None else min(16, len(self.envs))
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers) if self.max_workers > 1 else None

    @classmethod
    def make(cls, env_id: str, n: int, max_workers: int | None = None, **kwargs: Any) -> EnvPool:
        """`n` copies of a registered env, e.g. `EnvPool.make("toolgym:Search-v0", 8, top_k=3)`."""
        return cls([lambda: gym.make(env_id, **kwargs) for _ in range(n)], max_workers=max_workers)

    def __len__(self) -> int:
        return len(self.envs)

    def reset(
        self,
        indices: Sequence[int] | None = None,
        seeds: Sequence[int | None] | None = None,
        options: Sequence[dict[str, Any] | None] | None = None,
    ) -> dict[int, tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Reset the given envs (all by default), each with its own seed and options."""
        indices = list(range(len(self.envs))) if indices is None else list(indices)
        seeds = list(seeds) if seeds is not None else [None] * len(indices)
        options = list(options) if options is not None else [None] * len(indices)
        if not len(seeds) == len(options) == len(indices):
            raise ValueError(f"got {len(indices)} indices, {len(seeds)} seeds and {len(options)} options")
        calls = [
            (lambda env=self.envs[i], s=s, o=o: env.reset(seed=s, options=o))
            for i, s, o in zip(indices, seeds, options)
        ]
        return dict(zip(indices, self._run(calls, indices)))

    def step(self, actions: Mapping[int, Any]) -> dict[int, StepResult]:
        """Step only the envs named in `actions`; the others keep their state untouched."""
        indices = list(actions)
        calls = [(lambda env=self.envs[i], a=actions[i]: StepResult(*env.step(a))) for i in indices]
        return dict(zip(indices, self._run(calls, indices)))

    def _run(self, calls: list[Callable[[], Any]], indices: list[int]) -> list[Any]:
        for i in indices:
            if not 0 <= i < len(self.envs):
                raise IndexError(f"env index {i} is outside the pool of {len(self.envs)}")
        inline = self._executor is None or len(calls) == 1
        futures = None if inline else [self._executor.submit(call) for call in calls]
        results, first_error = [], None
        for position, i in enumerate(indices):
            try:  # finish the whole batch before reporting, so no env is left mid-call
                results.append(calls[position]() if futures is None else futures[position].result())
            except Exception as exc:
                results.append(None)
                if first_error is None:
                    first_error = EnvPoolError(i, exc)
                    first_error.__cause__ = exc
        if first_error is not None:
            raise first_error
        return results

    def close(self, close_envs: bool = True) -> None:
        """Stop the worker threads and, unless told otherwise, close the envs."""
        if close_envs:
            for env in self.envs:
                env.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
