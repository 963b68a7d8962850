"""Tool-call parsing: the `ToolCall` and `ParsedTurn` types and the text scanners of each dialect.

The dialects themselves (parse, render, instructions, tool-result message, the names envs accept)
are objects in `toolgym.dialects`, the one way to parse or render by dialect; this module holds
only what they share and the scanners that read model text:

- ``search_r1``: Search-R1's tags, ``<search>q</search>`` and ``<answer>a</answer>``; the response
  is cut after the first ``</search>`` (else ``</answer>``) and the first complete block decides.
- ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Qwen / Hermes).
- ``python``: BFCL's call syntax, read from the AST (`toolgym.python_calls`); nothing is evaluated.
- ``openai``: native ``tool_calls`` on an assistant message dict.

Parsing never raises on model text: problems are collected in ``ParsedTurn.errors``. All scans
are linear in the text length, so a megabyte of repeated opening tags costs milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from toolgym.messages import content_text

from .json_values import argument_problem, brief

# Bounds that keep parsing cheap whatever the model emits.
MAX_PARSE_CHARS = 200_000  # text beyond this is not scanned for calls
MAX_CALL_CHARS = 50_000  # one call's payload (JSON body or python source)
MAX_CALLS_PER_TURN = 64

ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: a tool name and its keyword arguments."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    def as_bfcl_dict(self) -> dict[str, dict[str, Any]]:
        """BFCL's decoded form of a call, ``{name: {param: value}}``."""
        return {self.name: self.arguments}


@dataclass
class ParsedTurn:
    """What an assistant turn asked for: tool calls, a final answer, and parse problems."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    answer: str | None = None
    errors: list[str] = field(default_factory=list)
    empty_call_list: bool = False
    """The turn is an explicit empty call list (``[]`` in the python dialect): decoded, zero calls."""
    refused_calls: bool = False
    """The turn holds calls the dialect decoded but refused (values past ToolGym's size bounds or with
    no JSON form, more calls than the per-turn cap): no call runs, but BFCL's decoder reads such a
    turn, so its (ir)relevance checks count it as a call."""


def turn_text(action: Any) -> str:
    """The visible text of an action (a `str` or an assistant message dict); '' if it has none."""
    if isinstance(action, str):
        return action
    if isinstance(action, dict) and isinstance(action.get("content"), (str, list)):
        return content_text(action["content"])
    return ""


def last_answer_tag(text: str) -> str | None:
    """The content of the last ``<answer>…</answer>`` block, stripped, or None."""
    last = None
    for match in ANSWER_TAG_RE.finditer(text[:MAX_PARSE_CHARS]):
        last = match.group(1)
    return None if last is None else last.strip()


# --- search_r1 ----------------------------------------------------------------------------------

_SR1_OPEN_RE = re.compile(r"<(search|answer)>")


def search_r1_cut(text: str) -> str:
    """Search-R1's `_postprocess_responses`: keep the response up to its first ``</search>``, else up
    to its first ``</answer>``, else all of it (a ``</search>`` anywhere wins over an earlier ``</answer>``)."""
    for closing in ("</search>", "</answer>"):
        head, found, _ = text.partition(closing)
        if found:
            return head + closing
    return text


def parse_search_r1(text: str) -> ParsedTurn:
    """Search-R1's `postprocess_predictions` on the cut response: the first complete ``<search>`` or
    ``<answer>`` block (``re.search(r"<(search|answer)>(.*?)</\\1>")``) is the action.

    The whole response is scanned, however long, as Search-R1 does: each tag's closing is searched
    for at most once after its first unclosed opening, so the scan stays linear in the text."""
    text = search_r1_cut(text)
    scanned = text
    unclosable: set[str] = set()
    for opening in _SR1_OPEN_RE.finditer(scanned):
        tag = opening.group(1)
        if tag in unclosable:
            continue
        end = scanned.find(f"</{tag}>", opening.end())
        if end < 0:
            unclosable.add(tag)  # no later block of this tag can close either
            if len(unclosable) == 2:
                break
            continue
        body = scanned[opening.end() : end].strip()
        if tag == "answer":
            return ParsedTurn(text=text, answer=body)
        return ParsedTurn(text=text, tool_calls=[ToolCall("search", {"query": body})])
    return ParsedTurn(text=text, errors=["no <search>…</search> or <answer>…</answer> block"])


# --- hermes -------------------------------------------------------------------------------------

_HERMES_OPEN, _HERMES_CLOSE = "<tool_call>", "</tool_call>"


def parse_hermes(text: str) -> ParsedTurn:
    """Every ``<tool_call>`` block in order; a block that is not a JSON call becomes an error."""
    scanned = text[:MAX_PARSE_CHARS]
    parsed = ParsedTurn(text=text)
    position = 0
    while len(parsed.tool_calls) + len(parsed.errors) < MAX_CALLS_PER_TURN:
        start = scanned.find(_HERMES_OPEN, position)
        if start < 0:
            break
        end = scanned.find(_HERMES_CLOSE, start)
        if end < 0:
            parsed.errors.append("unterminated <tool_call> block")
            break
        body = scanned[start + len(_HERMES_OPEN) : end].strip()
        position = end + len(_HERMES_CLOSE)
        call, error = _call_from_json(body)
        if call is not None:
            parsed.tool_calls.append(call)
        else:
            parsed.errors.append(error)
    return parsed


def _call_from_json(body: str) -> tuple[ToolCall | None, str]:
    if len(body) > MAX_CALL_CHARS:
        return None, f"tool call is {len(body)} characters; the limit is {MAX_CALL_CHARS}"
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError also covers integers past 4300 digits
        return None, f"tool call is not valid JSON: {exc}"[:300]
    if not isinstance(payload, dict):
        return None, f"tool call must be a JSON object with 'name' and 'arguments', got {type(payload).__name__}"
    return _call_from_fields(payload.get("name"), payload.get("arguments", {}), payload.get("id"))


def _call_from_fields(name: Any, arguments: Any, call_id: Any) -> tuple[ToolCall | None, str]:
    if not isinstance(name, str) or not name.strip():
        return None, f"tool call needs a non-empty string 'name', got {brief(name)}"
    if isinstance(arguments, str):  # double-encoded JSON is common; decode once more
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError) as exc:  # ValueError also covers integers past 4300 digits
            return None, f"arguments of {brief(name)} are not valid JSON: {exc}"[:300]
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None, f"arguments of {brief(name)} must be a JSON object, got {type(arguments).__name__}"
    problem = argument_problem(arguments)
    if problem:
        return None, f"arguments of {brief(name)} {problem}"
    return ToolCall(name=name.strip(), arguments=arguments, id=call_id if isinstance(call_id, str) else None), ""


# --- openai -------------------------------------------------------------------------------------


def parse_openai(action: Any) -> ParsedTurn:
    """The native ``tool_calls`` of an assistant message dict; a malformed entry becomes an error."""
    parsed = ParsedTurn(text=turn_text(action))
    if not isinstance(action, dict):
        return parsed
    raw_calls = action.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        parsed.errors.append(f"tool_calls must be a list, got {type(raw_calls).__name__}")
        return parsed
    for raw in raw_calls[:MAX_CALLS_PER_TURN]:
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict):
            parsed.errors.append("each tool call needs a 'function' object with 'name' and 'arguments'")
            continue
        arguments = function.get("arguments", {})
        if isinstance(arguments, str) and len(arguments) > MAX_CALL_CHARS:
            parsed.errors.append(f"arguments are {len(arguments)} characters; the limit is {MAX_CALL_CHARS}")
            continue
        call, error = _call_from_fields(function.get("name"), arguments, raw.get("id"))
        if call is not None:
            parsed.tool_calls.append(call)
        else:
            parsed.errors.append(error)
    return parsed
