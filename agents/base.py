"""The agent protocol: a batch of conversations in, one assistant turn per conversation out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]
Action = str | dict[str, Any]


@dataclass
class AgentRequest:
    """One conversation awaiting the assistant's next turn.

    `tools` are the env's OpenAI tool schemas; `env_info` is the env's `reset` info (task id, tool
    format, and the task row, which only scripted baselines such as the oracle may read).
    """

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    env_info: dict[str, Any] = field(default_factory=dict)


class Agent(Protocol):
    """Anything that answers a batch of conversations with one assistant turn each."""

    def act(self, requests: list[AgentRequest]) -> list[Action]: ...
