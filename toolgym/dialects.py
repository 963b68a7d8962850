"""Tool-call dialects: one object per way of writing tool calls, and one way to learn an env's.

A dialect knows four things: how to `parse` an assistant turn into calls and an answer, how to
`render` calls as an assistant turn (scripted agents, tests), the system-prompt `instructions`
that teach a text-only model to call tools, and the `tool_result_message` that carries a result
back. `native` says whether calls travel as OpenAI ``tool_calls`` (so tool schemas go to the
chat template) rather than inside the text.

Users name a dialect by string (``tool_format="hermes"``, the env keyword); code gets the object
with `get_dialect(name)` or, for an env or its reset info, `dialect_of(env_or_info)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .json_values import argument_problem
from .python_calls import PYTHON_DECODINGS, parse_python_calls
from .tool_calls import (
    ParsedTurn,
    ToolCall,
    last_answer_tag,
    parse_hermes,
    parse_openai,
    parse_search_r1,
    turn_text,
)

Action = str | dict[str, Any]


def _refuse_unfit_arguments(parsed: ParsedTurn) -> None:
    """Calls whose decoded arguments no tool should receive (`json_values.argument_problem`: a
    python ``0x…`` literal past 1,000 digits, nesting past 100 levels, ...) become parse errors."""
    problems = [(call, argument_problem(call.arguments)) for call in parsed.tool_calls]
    if any(problem for _, problem in problems):
        parsed.tool_calls = [call for call, problem in problems if not problem]
        parsed.refused_calls = True
        parsed.errors.extend(f"arguments of {call.name!r:.80} {problem}" for call, problem in problems if problem)


@dataclass(frozen=True)
class Dialect:
    """The base of every dialect: the shared `parse` checks, with the text scanner left to subclasses."""

    name: ClassVar[str] = ""
    native: ClassVar[bool] = False
    """Calls travel as OpenAI ``tool_calls`` on a message dict, not inside the text."""

    def parse(self, action: Any) -> ParsedTurn:
        """What an assistant action (a `str` or a message dict) asks for. Never raises on model output."""
        if not isinstance(action, (str, dict)):
            return ParsedTurn(
                text="", errors=[f"action must be a str or an assistant message dict, got {type(action).__name__}"]
            )
        text = turn_text(action)
        parsed = self.parse_text(text, action)
        # A text dialect also reads native tool_calls (an OpenAI-compatible server may have parsed them).
        if not self.native and isinstance(action, dict) and action.get("tool_calls"):
            native = parse_openai(action)
            parsed.tool_calls.extend(native.tool_calls)
            parsed.errors.extend(native.errors)
        _refuse_unfit_arguments(parsed)
        if parsed.answer is None:
            parsed.answer = last_answer_tag(text)
        return parsed

    def parse_text(self, text: str, action: Any) -> ParsedTurn:
        """The dialect's own reading of the turn's text (and, for native dialects, the action)."""
        return ParsedTurn(text=text)

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        """`calls` (after optional `text`) written as an assistant action in this dialect."""
        raise NotImplementedError

    def render_answer(self, answer: str) -> Action:
        """A final answer in the ``<answer>`` tags every env reads."""
        return f"<answer>{answer}</answer>"

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        """System-prompt text that tells a model how to call `tools` in this dialect."""
        return ""

    def tool_result_message(self, call: ToolCall, content: str) -> dict[str, str]:
        """The message that carries `call`'s result back to the model: an OpenAI ``tool`` message."""
        message = {"role": "tool", "content": content, "name": call.name}
        if call.id:
            message["tool_call_id"] = call.id
        return message


def _functions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tool.get("function", tool) for tool in tools]


@dataclass(frozen=True)
class TextDialect(Dialect):
    """No tool calls: the turn is text (an answer may sit in ``<answer>`` tags). For agents whose
    env announced no dialect; no env speaks it."""

    name: ClassVar[str] = "text"

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        if calls:
            raise ValueError(
                "the 'text' dialect cannot carry tool calls; the env must announce a tool_format "
                "(one of 'search_r1', 'hermes', 'python', 'openai')"
            )
        return text


@dataclass(frozen=True)
class SearchR1Dialect(Dialect):
    """Search-R1's tags: ``<search> q </search>`` and ``<answer> a </answer>``; results come back
    as a user turn holding ``<information>…</information>`` (the env formats it)."""

    name: ClassVar[str] = "search_r1"
    stop_strings: ClassVar[tuple[str, ...]] = ("</search>", "</answer>")
    """Search-R1 cuts each response after the first of these (`search_r1_cut`)."""

    def parse(self, action: Any) -> ParsedTurn:
        if not isinstance(action, (str, dict)):
            return super().parse(action)
        return parse_search_r1(turn_text(action))

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        queries = [call.arguments.get("query", "") for call in calls if call.name == "search"]
        return "".join([text] + [f"<search> {query} </search>" for query in queries[:1]])

    def render_answer(self, answer: str) -> Action:
        return f"<answer> {answer} </answer>"

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        return ""  # Search-R1's prompt is part of the task text (see the Search env)

    def tool_result_message(self, call: ToolCall, content: str) -> dict[str, str]:
        return {"role": "user", "content": content}


@dataclass(frozen=True)
class HermesDialect(Dialect):
    """``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` blocks in the text (Qwen / Hermes)."""

    name: ClassVar[str] = "hermes"

    def parse_text(self, text: str, action: Any) -> ParsedTurn:
        return parse_hermes(text)

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        blocks = [
            f"<tool_call>\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n</tool_call>"
            for c in calls
        ]
        return "\n".join(([text] if text else []) + blocks)

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        listing = "\n".join(json.dumps(f, ensure_ascii=False) for f in _functions(tools))
        return (
            "You may call one or more functions to assist with the user query.\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n</tools>\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n"
            '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )


@dataclass(frozen=True)
class PythonDialect(Dialect):
    """BFCL's call syntax, ``[f(a=1), pkg.g(b="x")]``. `decoding` picks the reading
    (`toolgym.python_calls`): "official" is BFCL's own decoder, "lenient" ToolGym's."""

    name: ClassVar[str] = "python"
    decoding: str = "lenient"

    def __post_init__(self) -> None:
        if self.decoding not in PYTHON_DECODINGS:
            raise ValueError(f"python decoding must be one of {PYTHON_DECODINGS}, got {self.decoding!r}")

    def parse_text(self, text: str, action: Any) -> ParsedTurn:
        return parse_python_calls(text, self.decoding)

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        rendered = ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.arguments.items())})" for c in calls)
        return f"{text}\n[{rendered}]" if text else f"[{rendered}]"

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        listing = json.dumps(_functions(tools), ensure_ascii=False, indent=1)
        return (
            "You are an expert in composing functions. Given a question and a set of possible functions, "
            "make one or more function calls to achieve the purpose. If none of the functions can be used, "
            "point it out and make no call. Write calls in the format "
            "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)] "
            "and nothing else when you call.\nHere is the list of functions in JSON format:\n" + listing
        )


@dataclass(frozen=True)
class OpenAIDialect(Dialect):
    """Native OpenAI ``tool_calls`` on an assistant message dict; schemas go to the chat template / API."""

    name: ClassVar[str] = "openai"
    native: ClassVar[bool] = True

    def parse_text(self, text: str, action: Any) -> ParsedTurn:
        return parse_openai(action)

    def render(self, calls: list[ToolCall], text: str = "") -> Action:
        return {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {
                    "id": call.id or f"call_{i}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for i, call in enumerate(calls)
            ],
        }

    def render_answer(self, answer: str) -> Action:
        return {"role": "assistant", "content": f"<answer>{answer}</answer>"}

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        names = ", ".join(f.get("name", "?") for f in _functions(tools))
        return f"Use the provided tools ({names}) through native function calling when they help."


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (SearchR1Dialect(), HermesDialect(), PythonDialect(), OpenAIDialect(), TextDialect())
}
"""Every dialect by name; the first four are the `tool_format` values envs accept."""

TOOL_FORMATS: tuple[str, ...] = tuple(name for name in DIALECTS if name != TextDialect.name)
"""The `tool_format` values an env may speak: every dialect but "text"."""


def get_dialect(name: str | Dialect) -> Dialect:
    """The dialect called `name` (a dialect object is returned as is)."""
    if isinstance(name, Dialect):
        return name
    dialect = DIALECTS.get(name) if isinstance(name, str) else None
    if dialect is None:
        raise ValueError(f"unknown tool_format {name!r}; expected one of {tuple(DIALECTS)}")
    return dialect


def dialect_of(source: Any, default: str = "text") -> Dialect:
    """The dialect an env speaks: `env.unwrapped.dialect` for an env (wrapped or not), or the
    ``tool_format`` of its reset info (an agent's `env_info`); `default` when the info names none."""
    if isinstance(source, Mapping):
        return get_dialect(source.get("tool_format") or default)
    dialect = getattr(getattr(source, "unwrapped", source), "dialect", None)
    if isinstance(dialect, Dialect):
        return dialect
    raise TypeError(f"cannot tell the dialect of {type(source).__name__}: pass a ToolGym env or its reset info")
