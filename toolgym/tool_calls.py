"""Tool-call formats: parse an assistant turn into tool calls, and render calls and results.

Four dialects, one `ToolCall` type:

- ``search_r1``: Search-R1's tags, ``<search>q</search>`` and ``<answer>a</answer>``; the first
  complete tagged block decides the action.
- ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Qwen / Hermes).
- ``python``: BFCL's call syntax, ``[f(a=1), pkg.g(b="x")]``, parsed with :mod:`ast` and read
  with :func:`ast.literal_eval`; nothing is ever evaluated.
- ``openai``: native ``tool_calls`` on an assistant message dict.

Parsing never raises on model text: problems are collected in ``ParsedTurn.errors``. All scans
are linear in the text length, so a megabyte of repeated opening tags costs milliseconds.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .json_values import argument_problem

ToolFormat = Literal["search_r1", "hermes", "python", "openai"]
TOOL_FORMATS: tuple[str, ...] = ("search_r1", "hermes", "python", "openai")

# Bounds that keep parsing cheap whatever the model emits.
MAX_PARSE_CHARS = 200_000  # text beyond this is not scanned for calls
MAX_CALL_CHARS = 50_000  # one call's payload (JSON body or python source)
MAX_CALLS_PER_TURN = 64

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: a tool name and its keyword arguments."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class ParsedTurn:
    """What an assistant turn asked for: tool calls, a final answer, and parse problems."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    answer: str | None = None
    errors: list[str] = field(default_factory=list)


def turn_text(action: Any) -> str:
    """The visible text of an action (a `str` or an assistant message dict); '' if it has none."""
    if isinstance(action, str):
        return action
    if isinstance(action, dict):
        content = action.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # OpenAI content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_answer_tag(text: str) -> str | None:
    """The content of the last ``<answer>…</answer>`` block, stripped, or None."""
    last = None
    for match in _ANSWER_RE.finditer(text[:MAX_PARSE_CHARS]):
        last = match.group(1)
    return None if last is None else last.strip()


def parse_turn(action: Any, tool_format: str) -> ParsedTurn:
    """Parse an assistant action in the given dialect. Never raises on model output."""
    if tool_format not in TOOL_FORMATS:
        raise ValueError(f"unknown tool_format {tool_format!r}; expected one of {TOOL_FORMATS}")
    text = turn_text(action)
    if not isinstance(action, (str, dict)):
        return ParsedTurn(
            text="", errors=[f"action must be a str or an assistant message dict, got {type(action).__name__}"]
        )
    if tool_format == "search_r1":
        return _parse_search_r1(text)
    if tool_format == "openai":
        parsed = _parse_openai(action)
    elif tool_format == "hermes":
        parsed = _parse_hermes(text)
    else:
        parsed = _parse_python(text)
    # Any dialect may also carry native tool_calls (an OpenAI-compatible server that parsed them).
    if tool_format != "openai" and isinstance(action, dict) and action.get("tool_calls"):
        native = _parse_openai(action)
        parsed.tool_calls.extend(native.tool_calls)
        parsed.errors.extend(native.errors)
    parsed.answer = last_answer_tag(text)
    return parsed


# --- search_r1 ----------------------------------------------------------------------------------

_SR1_OPEN_RE = re.compile(r"<(search|answer)>")


def _parse_search_r1(text: str) -> ParsedTurn:
    """Search-R1 semantics: the first complete ``<search>`` or ``<answer>`` block is the action."""
    scanned = text[:MAX_PARSE_CHARS]
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


def _parse_hermes(text: str) -> ParsedTurn:
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
        return None, f"tool call needs a non-empty string 'name', got {name!r:.80}"
    if isinstance(arguments, str):  # double-encoded JSON is common; decode once more
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError) as exc:  # ValueError also covers integers past 4300 digits
            return None, f"arguments of {name!r:.80} are not valid JSON: {exc}"[:300]
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None, f"arguments of {name!r:.80} must be a JSON object, got {type(arguments).__name__}"
    problem = argument_problem(arguments)
    if problem:
        return None, f"arguments of {name!r:.80} {problem}"
    return ToolCall(name=name.strip(), arguments=arguments, id=call_id if isinstance(call_id, str) else None), ""


# --- openai -------------------------------------------------------------------------------------


def _parse_openai(action: Any) -> ParsedTurn:
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


# --- python (BFCL) ------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```(?:python|py)?\s*(.*?)```", re.DOTALL)


def _parse_python(text: str) -> ParsedTurn:
    """Parse BFCL call syntax. Text with no call-shaped source yields no calls and no error."""
    parsed = ParsedTurn(text=text)
    source = _python_source(text)
    if source is None:
        return parsed
    if len(source) > MAX_CALL_CHARS:
        parsed.errors.append(f"call source is {len(source)} characters; the limit is {MAX_CALL_CHARS}")
        return parsed
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        parsed.errors.append(f"not valid call syntax: {type(exc).__name__}: {exc}"[:300])
        return parsed
    body = tree.body
    nodes = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    for node in nodes[:MAX_CALLS_PER_TURN]:
        call, error = _call_from_ast(node)
        if call is not None:
            parsed.tool_calls.append(call)
        else:
            parsed.errors.append(error)
    return parsed


def _python_source(text: str) -> str | None:
    fenced = _FENCE_RE.search(text[:MAX_PARSE_CHARS])
    source = (fenced.group(1) if fenced else text[:MAX_PARSE_CHARS]).strip()
    source = _ANSWER_RE.sub("", source).strip()
    # Only text that looks like a call or a list of calls is treated as an attempt to call.
    if not source or not re.match(r"^\[?\s*[A-Za-z_][\w.]*\s*\(", source):
        return None
    return source


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = _dotted_name(node.value)
        return None if prefix is None else f"{prefix}.{node.attr}"
    return None


def _call_from_ast(node: ast.expr) -> tuple[ToolCall | None, str]:
    if not isinstance(node, ast.Call):
        return None, f"expected a function call, got {type(node).__name__}"
    name = _dotted_name(node.func)
    if name is None:
        return None, "a call's function must be a plain or dotted name"
    if node.args:
        return None, f"{name}: use keyword arguments only (name=value)"
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None, f"{name}: **kwargs are not allowed"
        try:
            arguments[keyword.arg] = _jsonable(ast.literal_eval(keyword.value))
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return None, f"{name}: argument {keyword.arg!r} is not a literal value"
        except _NotJson as exc:
            return (
                None,
                f"{name}: argument {keyword.arg!r} holds {exc}, which JSON cannot carry; use str, number, bool, None, list or dict",
            )
    problem = argument_problem(arguments)
    if problem:
        return None, f"arguments of {name!r:.80} {problem}"
    return ToolCall(name=name, arguments=arguments), ""


class _NotJson(Exception):
    """A Python literal with no JSON counterpart (bytes, complex, Ellipsis, a non-scalar dict key)."""


_JSON_SCALARS = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    """Tuples become lists and sets sorted lists, so parsed values match JSON-decoded ones."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=repr)
    if isinstance(value, dict):
        bad_key = next((k for k in value if not isinstance(k, _JSON_SCALARS)), None)
        if bad_key is not None:
            raise _NotJson(f"a {type(bad_key).__name__} dict key")
        return {k: _jsonable(v) for k, v in value.items()}
    raise _NotJson(f"a {type(value).__name__} value")


# --- rendering ----------------------------------------------------------------------------------


def render_calls(calls: list[ToolCall], tool_format: str, text: str = "") -> str | dict[str, Any]:
    """Write calls as an assistant action in the given dialect (scripted agents use this)."""
    if tool_format == "openai":
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
    if tool_format == "hermes":
        blocks = [
            f"<tool_call>\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n</tool_call>"
            for c in calls
        ]
        return "\n".join(([text] if text else []) + blocks)
    if tool_format == "python":
        rendered = ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.arguments.items())})" for c in calls)
        return f"{text}\n[{rendered}]" if text else f"[{rendered}]"
    if tool_format == "search_r1":
        queries = [c.arguments.get("query", "") for c in calls if c.name == "search"]
        return "".join([text] + [f"<search> {q} </search>" for q in queries[:1]])
    raise ValueError(f"unknown tool_format {tool_format!r}; expected one of {TOOL_FORMATS}")


def tool_instructions(tools: list[dict[str, Any]], tool_format: str) -> str:
    """System-prompt text that tells a text-only model how to call `tools` in this dialect."""
    functions = [t.get("function", t) for t in tools]
    if tool_format == "hermes":
        listing = "\n".join(json.dumps(f, ensure_ascii=False) for f in functions)
        return (
            "You may call one or more functions to assist with the user query.\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n</tools>\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n"
            '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )
    if tool_format == "python":
        listing = json.dumps(functions, ensure_ascii=False, indent=1)
        return (
            "You are an expert in composing functions. Given a question and a set of possible functions, "
            "make one or more function calls to achieve the purpose. If none of the functions can be used, "
            "point it out and make no call. Write calls in the format "
            "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)] "
            "and nothing else when you call.\nHere is the list of functions in JSON format:\n" + listing
        )
    if tool_format == "openai":
        names = ", ".join(f.get("name", "?") for f in functions)
        return f"Use the provided tools ({names}) through native function calling when they help."
    if tool_format == "search_r1":
        return ""  # Search-R1's prompt is part of the task text (see the Search env)
    raise ValueError(f"unknown tool_format {tool_format!r}; expected one of {TOOL_FORMATS}")


def tool_result_message(call: ToolCall, content: str, tool_format: str) -> dict[str, str]:
    """The message that carries a tool's result back to the model."""
    if tool_format == "search_r1":
        return {"role": "user", "content": content}
    message = {"role": "tool", "content": content, "name": call.name}
    if call.id:
        message["tool_call_id"] = call.id
    return message
