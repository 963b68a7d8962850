"""A small real env for trainer tests, whose reward a random tiny model hits about half the time.

`Parity-v0` asks a question; the first turn may "look up" (any turn containing "?" gets an
observation message back, so episodes are multi-turn with tool tokens in the stream); a turn without
"?" is the answer, and the reward is 1 when the answer holds an even number of characters. The
reward depends only on the sampled text, so GRPO groups of a random policy have spread, and which
samples win is reproducible from the sampling seed. Import this module (or pass
"trainer_fixtures:Parity-v0" to gym.make with tests/ on sys.path) to register it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from toolgym.envs.base import ChatEnv, TurnResult

PARITY_ID = "Parity-v0"


class ParityEnv(ChatEnv[dict]):
    env_id = PARITY_ID

    def __init__(self, n_tasks: int = 64, max_turns: int = 2, tool_format: str = "hermes"):
        rows = [{"id": f"parity-{i}", "question": f"Say something about number {i}."} for i in range(n_tasks)]
        super().__init__(rows, max_turns=max_turns, tool_format=tool_format, allowed_formats=("hermes",))

    def load_task(self, row: dict[str, Any], index: int | None) -> dict[str, Any]:
        return row

    def task_identifier(self, task: dict[str, Any]) -> str:
        return task["id"]

    def opening_messages(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "user", "content": task["question"]}]

    def take_turn(self, action: Any) -> TurnResult:
        text = action if isinstance(action, str) else str(action.get("content") or "")
        if "?" in text:
            observation = {"role": "user", "content": f"Looked up: {len(text)} characters."}
            return TurnResult([observation], info={"tool_calls": [{"name": "lookup"}]})
        reward = float(len(text.strip()) % 2 == 0)
        return TurnResult([], reward=reward, terminated=True, info={"metrics": {"even": reward}})

    def unanswered_result(self) -> tuple[float, dict[str, Any]]:
        return 0.0, {"metrics": {"even": 0.0}}


if PARITY_ID not in gym.registry:
    gym.register(id=PARITY_ID, entry_point=ParityEnv)
