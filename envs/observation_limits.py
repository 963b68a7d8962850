"""Bounds on what one observation can hold, whatever the model asks for or the tools return.

Without them an observation grows with the model's output (10,000 native ``tool_calls`` in one
assistant message became 10,000 tool messages) or with the data (a 50 MB corpus document became a
52 M-character observation), past the bounds the env's own observation space declares. Each env
takes two keyword arguments, defaulted here and checked by `check_limits`:

- `max_tool_calls_per_turn`: calls past it are not run; the turn gets one error naming the limit.
- `max_observation_chars`: the total characters of one observation's message contents; text past it
  is cut with a visible marker and the step's info says ``observation_truncated: True``.

The observation space is built from the same two numbers (`observation_space_for`), so every
observation `reset` and `step` return is inside it.
"""

from __future__ import annotations

from typing import Any

from toolgym.spaces import MessageList
from toolgym.tool_calls import ParsedTurn

DEFAULT_MAX_TOOL_CALLS_PER_TURN = 32
"""BFCL's parallel questions need a handful of calls; 32 leaves room without letting a turn fan out."""
DEFAULT_MAX_OBSERVATION_CHARS = 100_000
"""About 25k tokens: far above a Search-R1 observation (3 passages, ~2k characters) or a tool result."""
EXTRA_MESSAGES = 4
"""Messages an observation may hold beyond one per call: an env's notice, and a reset's system/user turns."""
MIN_OBSERVATION_CHARS = 1_000


def check_limits(max_tool_calls_per_turn: int, max_observation_chars: int) -> None:
    """Refuse limits that could not hold an ordinary turn."""
    if isinstance(max_tool_calls_per_turn, bool) or not isinstance(max_tool_calls_per_turn, int):
        raise TypeError(f"max_tool_calls_per_turn must be an int, got {max_tool_calls_per_turn!r}")
    if max_tool_calls_per_turn < 1:
        raise ValueError(f"max_tool_calls_per_turn must be at least 1, got {max_tool_calls_per_turn}")
    if isinstance(max_observation_chars, bool) or not isinstance(max_observation_chars, int):
        raise TypeError(f"max_observation_chars must be an int, got {max_observation_chars!r}")
    if max_observation_chars < MIN_OBSERVATION_CHARS:
        raise ValueError(f"max_observation_chars must be at least {MIN_OBSERVATION_CHARS}, got {max_observation_chars}")


def observation_space_for(max_tool_calls_per_turn: int, max_observation_chars: int) -> MessageList:
    """The observation space whose bounds these limits guarantee."""
    return MessageList(max_messages=max_tool_calls_per_turn + EXTRA_MESSAGES, max_content_length=max_observation_chars)


def limit_calls(parsed: ParsedTurn, max_calls: int) -> ParsedTurn:
    """Keep the first `max_calls` calls of a turn; the rest become one parse error naming the limit."""
    extra = len(parsed.tool_calls) - max_calls
    if extra > 0:
        del parsed.tool_calls[max_calls:]
        parsed.errors.append(f"{extra} tool call(s) past the limit of {max_calls} per turn were not run")
    return parsed


def truncation_marker(limit: int) -> str:
    return f" …[truncated: an observation holds at most {limit} characters]"


def bound_observation(
    messages: list[dict[str, Any]], max_messages: int, max_chars: int
) -> tuple[list[dict[str, Any]], bool]:
    """`messages` cut to at most `max_messages` messages and `max_chars` characters of content in all.

    Returns the bounded messages (copies where changed) and whether anything was cut. Dropped
    messages are announced in a final user message, cut text ends with `truncation_marker`.
    """
    cut = False
    if len(messages) > max_messages:
        dropped = len(messages) - (max_messages - 1)
        notice = {"role": "user", "content": f"[{dropped} more messages were dropped: at most {max_messages} per turn]"}
        messages = [*messages[: max_messages - 1], notice]
        cut = True
    remaining = max_chars
    bounded = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            if len(content) > remaining:
                marker = truncation_marker(max_chars)
                content = (content[: max(0, remaining - len(marker))] + marker)[:remaining]
                message = {**message, "content": content}
                cut = True
            remaining -= len(content)
        bounded.append(message)
    return bounded, cut
