"""Gymnasium spaces for chat-text environments.

Gymnasium's `Text` space only admits the characters listed in its charset (62 alphanumerics by
default), so ordinary prose, JSON or Unicode is "outside" it and `check_env` fails. These spaces
accept any Python `str` up to a length bound and keep a small charset only for `sample()`.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

# What `sample()` draws from: printable ASCII plus a few multi-byte characters, so random probes
# (check_env, fuzz tests) exercise non-ASCII paths without building a 1.1 M-symbol charset.
_SAMPLE_CHARSET = string.printable + "éßπ≈→日本語😀"
_SAMPLE_MAX_LENGTH = 256

MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})


class UnicodeText(spaces.Text):
    """A `Text` space that contains any `str` (any Unicode) of length in [min_length, max_length]."""

    def __init__(self, max_length: int = 10_000_000, *, min_length: int = 0, seed: int | None = None):
        super().__init__(max_length=max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """Draw a short random string; a uniform length up to `max_length` would be megabytes."""
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        upper = min(self.max_length, _SAMPLE_MAX_LENGTH)
        length = int(self.np_random.integers(self.min_length, upper + 1))
        chars = self.np_random.choice(np.array(list(_SAMPLE_CHARSET)), size=length)
        return "".join(chars.tolist())

    def __repr__(self) -> str:
        return f"UnicodeText(min_length={self.min_length}, max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


class AssistantTurn(UnicodeText):
    """Action space: the assistant's turn, as text or as an OpenAI assistant message dict."""

    def contains(self, x: Any) -> bool:
        if isinstance(x, dict):
            return x.get("role", "assistant") == "assistant" and (
                isinstance(x.get("content"), (str, type(None))) or "tool_calls" in x
            )
        return super().contains(x)

    def __repr__(self) -> str:
        return f"AssistantTurn(max_length={self.max_length})"


class MessageList(spaces.Space[list]):
    """Observation space: a list of OpenAI-style chat messages whose `content` is any text.

    A message is a dict with a `role` in {system, user, assistant, tool} and a `str` content;
    `tool_call_id` and `name` are optional strings. The list may be empty (the final step).
    """

    def __init__(self, max_messages: int = 256, max_content_length: int = 10_000_000, seed: int | None = None):
        self.max_messages = max_messages
        self.content = UnicodeText(max_content_length)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        if not isinstance(x, list) or len(x) > self.max_messages:
            return False
        return all(self._is_message(m) for m in x)

    def _is_message(self, message: Any) -> bool:
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
            return False
        if not self.content.contains(message.get("content")):
            return False
        optional = ("tool_call_id", "name")
        return all(isinstance(message[k], str) for k in optional if k in message)

    def seed(self, seed: int | None = None) -> Sequence[int]:
        seeds = super().seed(seed)
        self.content.seed(int(self.np_random.integers(2**31)))
        return seeds

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, str]]:
        count = int(self.np_random.integers(0, 4))
        roles = sorted(MESSAGE_ROLES)
        return [
            {"role": roles[int(self.np_random.integers(len(roles)))], "content": self.content.sample()}
            for _ in range(count)
        ]

    def __repr__(self) -> str:
        return f"MessageList(max_messages={self.max_messages})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, MessageList) and other.max_messages == self.max_messages
