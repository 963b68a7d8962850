"""The wire format of the model server: validate a chat-completions request, build the response.

Kept apart from the server so the rules (what is accepted, what each error says) read in one
place and can be tested without HTTP. Every rejection is a :class:`RequestError` that the server
turns into OpenAI's error JSON: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from toolgym.messages import ContentPartError, content_text

from .base import AgentRequest, SamplingParams

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_TOOL_CALLS_PER_MESSAGE = 64


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one request may ask for, and on how requests are batched."""

    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 above it)."""
    max_messages: int = 512
    """Most messages in one conversation."""
    max_tools: int = 128
    """Most tool schemas in one request."""
    max_stop: int = 8
    """Most stop strings in one request."""
    max_tokens_limit: int = 8192
    """Largest `max_tokens` a request may ask for."""
    default_max_tokens: int = 512
    """`max_tokens` when a request names none."""
    request_timeout_s: float = 600.0
    """A request still unanswered after this long gets a 504."""
    body_timeout_s: float = 30.0
    """A request body still arriving after this long gets a 408, so a stalled client cannot hold a handler."""
    batch_wait_ms: float = 10.0
    """How long the batcher waits for more requests after the first one arrives (same knob as the
    retrieval server's `ServerConfig.batch_wait_ms`)."""
    max_batch_size: int = 32
    """Most conversations (requests) in one `agent.act` call."""
    max_pending: int = 1024
    """Requests queued beyond this get a 503 (back-pressure instead of unbounded memory)."""


class RequestError(Exception):
    """A request the server will not answer, with the HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


@dataclass
class ParsedChatRequest:
    request: AgentRequest
    sampling: SamplingParams
    allow_tool_calls: bool
    """Whether tool calls in the agent's turn are returned as native `tool_calls`."""


def parse_chat_request(body: Any, limits: ServerLimits, model_name: str) -> ParsedChatRequest:
    """Validate a chat-completions body; the agent's request and sampling, or a RequestError."""
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    _check_unsupported(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "'model' is required and must be a string", "missing_model", "model")
    if model != model_name:
        raise RequestError(
            404,
            f"the model {model!r} is not served here; this server serves {model_name!r}",
            "model_not_found",
            "model",
        )
    messages = _messages(body.get("messages"), limits)
    tools = _tools(body.get("tools"), limits)
    request = AgentRequest(messages=messages, tools=tools, env_info={})
    # tool_choice "none": the agent still sees the tools (same prompt), but no call is returned as tool_calls.
    allow_tool_calls = bool(tools) and body.get("tool_choice") != "none"
    return ParsedChatRequest(request, _sampling(body, limits), allow_tool_calls)


def _check_unsupported(body: dict[str, Any]) -> None:
    if body.get("stream"):
        raise RequestError(400, "streaming is not supported by this server; send stream=false", "unsupported", "stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError(400, f"only n=1 is supported, got n={n!r}; send one request per sample", "unsupported", "n")
    if body.get("logprobs"):
        raise RequestError(400, "logprobs are not supported by this server", "unsupported", "logprobs")
    tool_choice = body.get("tool_choice")
    if tool_choice not in (None, "auto", "none"):
        raise RequestError(
            400,
            f"tool_choice {tool_choice!r:.100} is not supported; use 'auto' or 'none'",
            "unsupported",
            "tool_choice",
        )
    response_format = body.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict) or response_format.get("type") != "text"):
        raise RequestError(400, "only response_format {'type': 'text'} is supported", "unsupported", "response_format")


def _messages(raw: Any, limits: ServerLimits) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty list", "invalid_messages", "messages")
    if len(raw) > limits.max_messages:
        raise RequestError(
            400, f"{len(raw)} messages; the limit is {limits.max_messages}", "too_many_messages", "messages"
        )
    return [_message(message, i) for i, message in enumerate(raw)]


def _message(raw: Any, i: int) -> dict[str, Any]:
    param = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise RequestError(400, f"{param} must be an object, got {type(raw).__name__}", "invalid_message", param)
    role = raw.get("role")
    if role not in ROLES:
        raise RequestError(400, f"{param}.role must be one of {ROLES}, got {role!r:.50}", "invalid_message", param)
    message: dict[str, Any] = {"role": "system" if role == "developer" else role, "content": _content(raw, param)}
    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise RequestError(400, f"{param}.name must be a string", "invalid_message", param)
        message["name"] = name
    tool_call_id = raw.get("tool_call_id")
    if tool_call_id is not None:
        if not isinstance(tool_call_id, str):
            raise RequestError(400, f"{param}.tool_call_id must be a string", "invalid_message", param)
        message["tool_call_id"] = tool_call_id
    tool_calls = raw.get("tool_calls")
    if tool_calls:
        if role != "assistant":
            raise RequestError(400, f"{param}: only assistant messages carry tool_calls", "invalid_message", param)
        message["tool_calls"] = _tool_calls(tool_calls, param)
    return message


def _content(raw: dict[str, Any], param: str) -> str:
    content = raw.get("content")
    try:
        return content_text(content, strict=True)
    except ContentPartError as exc:
        if isinstance(content, list):
            raise RequestError(400, f"{param}.content: {exc}", "unsupported_content", f"{param}.content") from exc
        raise RequestError(400, f"{param}.content: {exc}", "invalid_message", param) from exc


def _tool_calls(raw: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > MAX_TOOL_CALLS_PER_MESSAGE:
        raise RequestError(
            400, f"{param}.tool_calls must be a list of at most {MAX_TOOL_CALLS_PER_MESSAGE}", "invalid_message", param
        )
    calls = []
    for j, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(
                400, f"{param}.tool_calls[{j}] needs a function with a string name", "invalid_message", param
            )
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, (str, dict)):
            raise RequestError(
                400, f"{param}.tool_calls[{j}].function.arguments must be a JSON string", "invalid_message", param
            )
        calls.append(
            {
                "id": call.get("id") if isinstance(call.get("id"), str) else f"call_{j}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    return calls


def _tools(raw: Any, limits: ServerLimits) -> list[dict[str, Any]] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise RequestError(400, "'tools' must be a list of tool schemas", "invalid_tools", "tools")
    if len(raw) > limits.max_tools:
        raise RequestError(400, f"{len(raw)} tools; the limit is {limits.max_tools}", "too_many_tools", "tools")
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise RequestError(400, f"tools[{i}] must have type 'function'", "invalid_tools", f"tools[{i}]")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise RequestError(400, f"tools[{i}].function needs a non-empty name", "invalid_tools", f"tools[{i}]")
    return raw


def _sampling(body: dict[str, Any], limits: ServerLimits) -> SamplingParams:
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise RequestError(400, "top_p must be in (0, 1]", "invalid_value", "top_p")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(key)
    if max_tokens is None:
        max_tokens = limits.default_max_tokens
    elif not _is_int(max_tokens) or not 1 <= max_tokens <= limits.max_tokens_limit:
        raise RequestError(
            400,
            f"{key} must be an integer in [1, {limits.max_tokens_limit}], got {max_tokens!r:.50}",
            "invalid_value",
            key,
        )
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else ()
    if stop is not None and not isinstance(stop, (str, list)):
        raise RequestError(400, "stop must be a string or a list of strings", "invalid_value", "stop")
    if len(stops) > limits.max_stop or not all(isinstance(s, str) and s for s in stops):
        raise RequestError(400, f"stop must hold at most {limits.max_stop} non-empty strings", "invalid_value", "stop")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise RequestError(400, f"seed must be an integer, got {seed!r:.50}", "invalid_value", "seed")
    return SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stops, seed=seed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(
            400, f"{key} must be a number in [{low:g}, {high:g}], got {value!r:.50}", "invalid_value", key
        )
    return float(value)


def completion_body(
    model_name: str, message: dict[str, Any], finish_reason: str, stop_reason: str | None, usage: dict | None
) -> dict[str, Any]:
    """A `chat.completion` object; `stop_reason` names the matched stop string, as vLLM does."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
                "logprobs": None,
                "stop_reason": stop_reason,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def error_body(error: RequestError) -> dict[str, Any]:
    """OpenAI's error JSON for a RequestError."""
    kind = "invalid_request_error" if error.status < 500 else "server_error"
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
