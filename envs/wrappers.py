"""Gymnasium wrappers that every episode loop uses around ToolGym's envs.

`SafeEnv` turns an exception in `reset`/`step` into a recorded error, so a batched pool step never
loses the other envs' results and one broken task costs one episode (the eval harness writes it
as an error row; a training rollout marks the trajectory `failed`).
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import gymnasium as gym

MAX_TRACEBACK_CHARS = 4000


def describe_error(exc: BaseException, stage: str) -> dict[str, Any]:
    """An error record: where it happened, the exception type and text, the (tail of the) traceback."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # a broken exception object must not stop the run that reports it
        text = f"<the traceback of a {type(exc).__name__} cannot be formatted>"
    return {
        "stage": stage,
        "type": type(exc).__name__,
        "message": _exception_message(exc),
        "traceback": text[-MAX_TRACEBACK_CHARS:],
    }


def _exception_message(exc: BaseException) -> str:
    """`str(exc)`, cut; an in-process agent's exception may hold an integer past 4,300 digits or a
    raising `__str__`, and the row must still be written."""
    try:
        return str(exc)[:2000]
    except Exception:
        return f"<the message of a {type(exc).__name__} cannot be shown>"


class SafeEnv(gym.Wrapper):
    """Catches exceptions from `reset`/`step` into `self.error`, and times each call in `self.seconds`.

    A failed `reset` returns `([], {})`, a failed `step` ends the episode with reward 0; the caller
    checks `error` after each call. Bad *actions* never raise in ToolGym envs (the design contract),
    so an error here is a broken task row, a dead tool backend or a bug, and worth a record of its own.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.error: dict[str, Any] | None = None
        self.seconds = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        self.error, started = None, time.perf_counter()
        try:
            return self.env.reset(seed=seed, options=options)
        except Exception as exc:
            self.error = describe_error(exc, "reset")
            return [], {}
        finally:
            self.seconds = time.perf_counter() - started

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.error, started = None, time.perf_counter()
        try:
            return self.env.step(action)
        except Exception as exc:
            self.error = describe_error(exc, "env")
            return [], 0.0, True, False, {}
        finally:
            self.seconds = time.perf_counter() - started


def safe(env: gym.Env) -> SafeEnv:
    """`env` wrapped in `SafeEnv`, unless it already is."""
    return env if isinstance(env, SafeEnv) else SafeEnv(env)
