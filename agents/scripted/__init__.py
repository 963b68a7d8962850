"""Scripted agents: reference rows and test drivers that need no model.

- ``oracle`` reads the gold from the task row in the env's reset info and answers it in the env's
  tool format. Anything below 1.0 means a parser or scorer is wrong, which is what it is for.
- ``baseline`` is a non-privileged heuristic per env (for Search-v0: search the question, answer
  from the top passages), a floor any trained agent should beat.
- ``random`` emits random text: a smoke test of the "never crash on model output" contract.

Each env's policies live in a module of this package; the agent dispatches on
``env_info["env"]``, so one agent can serve a mixed batch.
"""

from __future__ import annotations

import importlib
import random
import string
from collections.abc import Callable

from toolgym.agents.base import Action, AgentRequest

Policy = Callable[[AgentRequest], Action]

POLICY_MODULES = {
    "Math-v0": "toolgym.agents.scripted.math",
    "FunctionCall-v0": "toolgym.agents.scripted.function_call",
    "Search-v0": "toolgym.agents.scripted.search",
}
SCRIPTED_NAMES = ("oracle", "baseline", "random")
_ALIASES = {"search-then-answer": "baseline", "heuristic": "baseline"}


class ScriptedAgent:
    """An agent that plays a named scripted policy on every env it is given."""

    def __init__(self, name: str, seed: int = 0):
        name = _ALIASES.get(name, name)
        if name not in SCRIPTED_NAMES:
            raise ValueError(f"unknown scripted agent {name!r}; choose one of {SCRIPTED_NAMES} (or {sorted(_ALIASES)})")
        self.name = name
        self._rng = random.Random(seed)

    def act(self, requests: list[AgentRequest]) -> list[Action]:
        return [self._act_one(request) for request in requests]

    def _act_one(self, request: AgentRequest) -> Action:
        if self.name == "random":
            alphabet = string.printable + "éπ日本😀<>/{}"
            return "".join(self._rng.choice(alphabet) for _ in range(self._rng.randint(0, 200)))
        return policy_for(request.env_info.get("env", ""), self.name)(request)


def policy_for(env_id: str, name: str) -> Policy:
    """The scripted policy `name` for env `env_id`, with a clear error for an unknown env."""
    module_name = POLICY_MODULES.get(env_id.split(":")[-1])
    if module_name is None:
        raise ValueError(f"no scripted policies for env {env_id!r}; known envs: {sorted(POLICY_MODULES)}")
    return getattr(importlib.import_module(module_name), name)
