"""The agent protocol: a batch of conversations in, one assistant turn per conversation out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from toolgym.messages import Message

Action = str | dict[str, Any]


@dataclass(frozen=True)
class SamplingParams:
    """How a model-backed agent samples one assistant turn. Every knob is explicit."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    top_k: int = 0
    """Sample only among the `top_k` most likely tokens; 0 means no limit."""
    max_tokens: int = 512
    """Maximum new tokens in one assistant turn (not the whole episode)."""
    stop: tuple[str, ...] = ()
    """Stop strings; generation ends after the first one, which is kept in the turn's text
    (Search-R1 stops after `</search>` so the env sees the complete tag)."""
    seed: int | None = None
    """Sampling seed, where the backend supports one."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = no limit), got {self.top_k}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


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
