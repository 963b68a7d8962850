"""Scripted Math-v0 agents: an oracle (reads the gold) and a numbers-in-the-problem baseline (does not).

Both speak the env's announced `tool_format`. With tools enabled each first makes one calculator
call, so a scripted run also exercises the tool path of the env.
"""

from __future__ import annotations

import re
from typing import Any

from toolgym.agents.base import AgentRequest
from toolgym.dialects import Dialect, dialect_of
from toolgym.envs.math.data import task_from_row
from toolgym.tool_calls import ToolCall

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
_RESULT_RE = re.compile(r"^-?\d+(?:[./]\d+)?")


def _calculator_call(expression: str, dialect: Dialect) -> str | dict[str, Any]:
    return dialect.render([ToolCall("calculator", {"expression": expression}, id="call_0")])


def _tool_results(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("content") or "" for m in messages if m.get("role") == "tool"]


def _problem(messages: list[dict[str, Any]]) -> str:
    return next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")


def oracle(request: AgentRequest) -> str | dict[str, Any]:
    """Answer ``\\boxed{gold}``; with tools, first check the calculator works on ``1+1``."""
    if request.env_info.get("tools") and not _tool_results(request.messages):
        return _calculator_call("1+1", dialect_of(request.env_info))
    gold = task_from_row(request.env_info["task"]).answer
    return f"The final answer is $\\boxed{{{gold}}}$."


def baseline(request: AgentRequest) -> str | dict[str, Any]:
    """Answer with a number read off the problem, never the gold.

    Without tools: the last number in the problem text (often the quantity asked about, rarely the
    answer). With tools: ask the calculator for the sum of all numbers in the problem, then box
    its result. Both are honest floors that any model doing arithmetic should beat.
    """
    problem = _THOUSANDS_RE.sub("", _problem(request.messages))
    numbers = _NUMBER_RE.findall(problem)
    if not request.env_info.get("tools"):
        return f"\\boxed{{{numbers[-1] if numbers else 0}}}"
    results = _tool_results(request.messages)
    if not results:
        return _calculator_call(" + ".join(f"({n})" for n in numbers[:50]) or "0", dialect_of(request.env_info))
    value = _RESULT_RE.match(results[-1].strip())
    return f"\\boxed{{{value.group() if value else 0}}}"
