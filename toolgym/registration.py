"""Gymnasium registration of ToolGym's environment ids.

Gymnasium >= 1.0 has no entry-point plug-ins, so ids are registered when `toolgym` is imported;
`gym.make("toolgym:Math-v0")` imports it for you.
"""

from __future__ import annotations

import gymnasium as gym

# id -> entry point. All three are deterministic given the seed and the actions (a remote
# retriever or an LLM judge would not be; such variants must register nondeterministic=True).
ENV_ENTRY_POINTS: dict[str, str] = {
    "Math-v0": "toolgym.envs.math.env:MathEnv",
    "FunctionCall-v0": "toolgym.envs.function_call.env:FunctionCallEnv",
    "Search-v0": "toolgym.envs.search.env:SearchEnv",
}


def register_envs() -> None:
    """Register every ToolGym id once (re-importing is a no-op)."""
    for env_id, entry_point in ENV_ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
