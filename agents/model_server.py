"""Serve any ToolGym agent behind an OpenAI-compatible chat-completions endpoint.

``toolgym serve model --agent hf:PATH`` puts a local model (or a ``py:`` / ``scripted:`` agent)
behind ``POST /v1/chat/completions``, so anything that speaks the OpenAI protocol can use it,
ToolGym's own ``openai:`` agent included. Requests that arrive within a short gather window are
answered by one ``agent.act`` call (grouped by sampling parameters), so a local model generates
them as one batch; ``act`` runs in one worker thread, never concurrently with itself.

Agents with ``complete(requests, sampling=...)`` (the HF agent) are asked for completions, which
carry token counts (``usage``) and whether the turn hit ``max_tokens`` (``finish_reason:
"length"``); other agents get ``act`` (with ``sampling=`` when they accept it, else their
``sampling`` attribute is set for the call), and their usage is left out.

The response is a proper ``ChatCompletion``: when the request carried ``tools``, Hermes
``<tool_call>`` blocks in the agent's text become ``tool_calls`` (parsed by
:mod:`toolgym.tool_calls`; model text is never executed). Stop strings are cut off the text as
the OpenAI API does, and the matched one is named in ``stop_reason`` (as vLLM does), so
ToolGym's ``openai:`` agent can restore it. Errors use OpenAI's error JSON shape. Requests are
bounded in body size, messages, tools, stop strings, ``max_tokens`` and time.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at runtime,
# and `Request` is imported inside `create_app` (fastapi is an optional dependency).
import asyncio
import contextlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from toolgym.dialects import get_dialect
from toolgym.extras import require
from toolgym.http_server import quiet_client_disconnects, running_app
from toolgym.json_values import json_safe
from toolgym.microbatch import BatcherBusy, MicroBatcher
from toolgym.tool_calls import ToolCall, turn_text

from .base import Action, Agent, AgentRequest, SamplingParams
from .model_server_protocol import RequestError, ServerLimits, completion_body, error_body, parse_chat_request

logger = logging.getLogger(__name__)

_HERMES, _OPENAI = get_dialect("hermes"), get_dialect("openai")
"""The two dialects the server translates between: native `tool_calls` (openai) and Hermes text."""


@dataclass
class ServedTurn:
    """An agent's turn plus what its engine knows about it (None where the agent does not say)."""

    action: Action
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    """The engine's reason: "eos", "stop" or "length"."""


class Batcher:
    """Answers concurrent requests that share sampling parameters with one `agent.act` call
    (`toolgym.microbatch`: a short gather window, failures isolated to the request that caused them)."""

    def __init__(self, agent: Agent, limits: ServerLimits):
        self.agent = agent
        self.limits = limits
        self._pass_sampling = _accepts_keyword(agent, "sampling")
        # Agents with `complete(requests, sampling)` (HFAgent) report token counts and finish reasons.
        self._complete = getattr(agent, "complete", None) if _accepts_keyword(agent, "sampling", "complete") else None
        self._batcher: MicroBatcher[AgentRequest, ServedTurn] = MicroBatcher(
            lambda sampling, requests: self._act(requests, sampling),
            batch_wait_s=limits.batch_wait_ms / 1000,
            max_batch_size=limits.max_batch_size,
            max_pending=limits.max_pending,
            thread_name="toolgym-agent",
        )

    def stop(self) -> None:
        self._batcher.close()

    async def submit(self, request: AgentRequest, sampling: SamplingParams) -> ServedTurn:
        try:
            return await asyncio.wait_for(self._batcher.submit(request, sampling), self.limits.request_timeout_s)
        except BatcherBusy as exc:
            raise RequestError(503, f"the server is busy ({exc}); retry later", "server_busy") from exc
        except asyncio.TimeoutError as exc:
            raise RequestError(
                504, f"the agent did not answer within {self.limits.request_timeout_s:g} s", "timeout"
            ) from exc
        except Exception as exc:
            logger.exception("the agent failed on a request")
            raise RequestError(500, f"the agent failed: {type(exc).__name__}: {exc}") from exc

    def _act(self, requests: list[AgentRequest], sampling: SamplingParams) -> list[ServedTurn]:
        """Call the agent with this group's sampling parameters (runs in the single worker thread)."""
        if self._complete is not None:
            completions = self._complete(requests, sampling=sampling)
            _check_batch(completions, requests)
            turns = [ServedTurn(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in completions]
        else:
            turns = [ServedTurn(action) for action in self._act_only(requests, sampling)]
        for turn in turns:
            if not isinstance(turn.action, (str, dict)):
                raise TypeError(f"the agent returned a {type(turn.action).__name__}; turns must be str or dict")
        return turns

    def _act_only(self, requests: list[AgentRequest], sampling: SamplingParams) -> list[Action]:
        if self._pass_sampling:
            actions = self.agent.act(requests, sampling=sampling)  # type: ignore[call-arg]
        elif isinstance(getattr(self.agent, "sampling", None), SamplingParams):
            previous = self.agent.sampling  # type: ignore[attr-defined]
            self.agent.sampling = sampling  # type: ignore[attr-defined]
            try:
                actions = self.agent.act(requests)
            finally:
                self.agent.sampling = previous  # type: ignore[attr-defined]
        else:
            actions = self.agent.act(requests)
        _check_batch(actions, requests)
        return actions


def _check_batch(results: Any, requests: list[AgentRequest]) -> None:
    if not isinstance(results, list) or len(results) != len(requests):
        count = len(results) if isinstance(results, list) else type(results).__name__
        raise ValueError(f"the agent returned {count} turns for a batch of {len(requests)}")


def _accepts_keyword(agent: Any, name: str, method: str = "act") -> bool:
    try:
        return name in inspect.signature(getattr(agent, method)).parameters
    except AttributeError:
        return False
    except (TypeError, ValueError):
        return False


# --- turning an agent's turn into a ChatCompletion --------------------------------------------------


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, str | None]:
    """The text before the earliest stop string, and that string (None when no stop string occurs)."""
    best: tuple[int, str] | None = None
    for candidate in stop:
        position = text.find(candidate)
        if position >= 0 and (best is None or position < best[0]):
            best = (position, candidate)
    return (text, None) if best is None else (text[: best[0]], best[1])


def assistant_message(action: Action, stop: tuple[str, ...], with_tools: bool) -> tuple[dict[str, Any], str | None]:
    """The response message for an agent's turn, and the stop string that ended it (if any)."""
    text = turn_text(action)
    text, matched_stop = cut_at_stop(text, stop)
    calls: list[dict[str, Any]] = []
    if isinstance(action, dict) and action.get("tool_calls"):
        parsed = _OPENAI.parse({"role": "assistant", "tool_calls": action["tool_calls"]}).tool_calls
        if with_tools:
            calls = [_wire_call(call) for call in parsed]
        else:  # a tool-less request never gets tool_calls back; show them as Hermes text instead
            text = str(_HERMES.render(parsed, text))
    elif with_tools and "<tool_call>" in text:
        parsed_text = _HERMES.parse(text)
        if parsed_text.tool_calls:
            calls = [_wire_call(call) for call in parsed_text.tool_calls]
            text = _HERMES_BLOCK_RE.sub("", text).strip()
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message, matched_stop


_HERMES_BLOCK_RE = re.compile(r"<tool_call>.*?</tool_call>", re.DOTALL)


def _wire_safe(value: Any) -> Any:
    """`value` as strict JSON in UTF-8: NaN/inf become null, lone surrogates U+FFFD (`json_safe`)."""
    return json_safe(value, replace_surrogates=True)[0]


def _wire_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        # JSON has no NaN and UTF-8 no lone surrogates: both would make the arguments unreadable.
        "function": {"name": call.name, "arguments": json.dumps(_wire_safe(call.arguments), ensure_ascii=False)},
    }


# --- the app --------------------------------------------------------------------------------------


def create_app(agent: Agent, model_name: str, limits: ServerLimits | None = None) -> Any:
    """A FastAPI app serving `agent` as the model `model_name` (see the module doc)."""
    require("fastapi", "serve", "serving a model")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or ServerLimits()
    batcher = Batcher(agent, limits)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        batcher.stop()

    app = FastAPI(title="ToolGym model server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.disconnects = quiet_client_disconnects(app, "model server")

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(_wire_safe(error_body(exc)), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = RequestError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", "not_found")
        return JSONResponse(_wire_safe(error_body(error)), status_code=exc.status_code)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": created, "owned_by": "toolgym"}],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await asyncio.wait_for(_read_json(request, limits.max_body_bytes), limits.body_timeout_s)
        except asyncio.TimeoutError as exc:
            raise RequestError(
                408, f"the request body did not arrive within {limits.body_timeout_s:g} s", "timeout"
            ) from exc
        parsed = parse_chat_request(body, limits, model_name)
        turn = await batcher.submit(parsed.request, parsed.sampling)
        message, matched_stop = assistant_message(turn.action, parsed.sampling.stop, parsed.allow_tool_calls)
        finish_reason = (
            "tool_calls" if message.get("tool_calls") else "length" if turn.finish_reason == "length" else "stop"
        )
        usage = None
        if turn.prompt_tokens is not None and turn.completion_tokens is not None:
            usage = {
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "total_tokens": turn.prompt_tokens + turn.completion_tokens,
            }
        return JSONResponse(_wire_safe(completion_body(model_name, message, finish_reason, matched_stop, usage)))

    return app


async def _read_json(request: Any, max_bytes: int) -> Any:
    """The request body as JSON, read in chunks so an oversized body is refused before it is held."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"the request body is {declared} bytes; the limit is {max_bytes}", "body_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"the request body exceeds the limit of {max_bytes} bytes", "body_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(400, f"the request body is not valid JSON: {exc}", "invalid_json") from exc


# --- running it ------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_in_background(
    app: Any, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 30.0
) -> Iterator[str]:
    """Run `app` in a background thread; yields its OpenAI base URL (``http://host:port/v1``).

    Port 0 picks a free port. The server is shut down when the block exits. Handy in tests and
    notebooks; `toolgym serve model` runs the same app in the foreground.
    """
    with running_app(app, host=host, port=port, startup_timeout_s=startup_timeout_s) as url:
        yield f"{url}/v1"


def default_model_name(spec: str) -> str:
    """A served model name from an agent spec: the folder name for `hf:PATH`, else the spec itself."""
    kind, _, target = spec.partition(":")
    if kind == "hf" and target:
        return target.rstrip("/").split("/")[-1] or spec
    return spec
