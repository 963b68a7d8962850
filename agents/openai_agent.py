"""An agent backed by any OpenAI-compatible chat-completions endpoint (vLLM, commercial APIs, ToolGym's own server).

Spec: ``openai:<base_url>#<model>``, e.g. ``openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct``.

The batch of conversations is sent concurrently (at most ``max_concurrency`` HTTP requests in
flight) from a private event-loop thread, so the synchronous ``act`` works from plain scripts,
from notebooks whose loop is already running, and from threads alike. Retries are ours, not the
library's: 429, 408/409, 5xx, timeouts and connection errors are retried with exponential backoff
and jitter (honouring ``Retry-After``); any other 4xx fails at once, because sending the same bad
request again cannot succeed. A request that still fails raises :class:`AgentError` naming the
request's index in the batch, so a harness can record that one episode as an error row.

Two ways of talking about tools:

- ``native``: the env's ``tools`` go out as OpenAI tool schemas and the turn comes back as an
  assistant message dict with ``tool_calls`` (for envs with ``tool_format="openai"``).
- ``text``: no tools are sent; the model writes calls in the env's text dialect (search_r1,
  hermes, python), which the env's system prompt already explains, and the turn is plain text.
- ``auto`` (default): native when the env announced ``tool_format="openai"``, text otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlparse

from toolgym.dialects import dialect_of
from toolgym.extras import require

from .base import Action, AgentRequest, SamplingParams

logger = logging.getLogger(__name__)

TOOL_MODES = ("auto", "native", "text")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
LOOPBACK_PLACEHOLDER_KEY = "EMPTY"  # what vLLM and ToolGym's server accept when they check no key
RETRY_STATUS_CODES = frozenset({408, 409, 429})  # plus every 5xx
MAX_BACKOFF_S = 30.0  # one wait never exceeds this, whatever Retry-After asks
_WIRE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


class AgentError(RuntimeError):
    """A request of the batch failed for good (after retries, or at once on a non-retryable error).

    Attributes:
        index: the request's position in the batch given to ``act``.
        status_code: the HTTP status of the last attempt, None for timeouts and connection errors.
        attempts: how many HTTP attempts were made.
        errors: every failed request of the batch (this one included), in index order.
        actions: the batch's turns, with None where a request failed, so finished work is not lost.
    """

    def __init__(self, index: int, message: str, status_code: int | None = None, attempts: int = 0):
        super().__init__(f"request {index}: {message}")
        self.index = index
        self.status_code = status_code
        self.attempts = attempts
        self.errors: list[AgentError] = [self]
        self.actions: list[Action | None] = []


def parse_openai_spec(target: str) -> tuple[str, str]:
    """Split the part after ``openai:`` into (base_url, model), with a clear error when malformed."""
    base_url, _, model = target.partition("#")
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not model.strip():
        raise ValueError(
            f"openai agent spec needs openai:<http(s) base_url>#<model>, got openai:{target!r}; "
            "e.g. openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct"
        )
    return base_url.rstrip("/"), model.strip()


def is_loopback_url(base_url: str) -> bool:
    """True when the URL points at this machine (no real API key is needed there)."""
    return (urlparse(base_url).hostname or "") in LOOPBACK_HOSTS


def resolve_api_key(base_url: str, api_key_env: str) -> str:
    """The API key from the named environment variable; a placeholder for loopback servers only."""
    key = os.environ.get(api_key_env, "").strip()
    if key:
        return key
    if is_loopback_url(base_url):
        return LOOPBACK_PLACEHOLDER_KEY
    raise ValueError(
        f"the environment variable {api_key_env} is not set, and {base_url} is not a loopback server; "
        f"export {api_key_env}=<your key> (or pass api_key_env=<another variable name>)"
    )


def wire_message(message: dict[str, Any]) -> dict[str, Any]:
    """A conversation message as the chat-completions API expects it (no None fields, JSON arguments)."""
    wire = {key: message[key] for key in _WIRE_KEYS if message.get(key) is not None}
    if "content" not in wire and not wire.get("tool_calls"):
        wire["content"] = ""
    if wire.get("tool_calls"):
        wire["tool_calls"] = [_wire_tool_call(call, i) for i, call in enumerate(wire["tool_calls"])]
    return wire


def _wire_tool_call(call: Any, position: int) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call  # the server will say what is wrong with it
    function = dict(call["function"])
    if not isinstance(function.get("arguments"), str):
        function["arguments"] = json.dumps(function.get("arguments") or {}, ensure_ascii=False)
    return {"id": call.get("id") or f"call_{position}", "type": call.get("type") or "function", "function": function}


class OpenAIAgent:
    """Plays turns through an OpenAI-compatible ``/chat/completions`` endpoint (see the module doc).

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the endpoint serves.
        sampling: temperature, top_p, max_tokens (sent as ``max_completion_tokens``), stop, seed.
        api_key_env: the environment variable holding the key; loopback URLs work without one.
        tool_mode: "auto", "native" or "text" (module doc).
        max_concurrency: HTTP requests in flight at once; the rest of the batch waits its turn.
        timeout_s: one HTTP attempt's time limit, from sending the request to the last byte of the response.
        max_retries: retries after the first attempt, for retryable failures only.
        backoff_s: the first retry's base wait; it doubles per retry, times a jitter in [0.5, 1.5).
        extra_body: extra JSON fields for every request (e.g. vLLM's ``{"top_k": 20}``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        sampling: SamplingParams | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        tool_mode: str = "auto",
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ):
        if tool_mode not in TOOL_MODES:
            raise ValueError(f"tool_mode must be one of {TOOL_MODES}, got {tool_mode!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_retries < 0 or backoff_s < 0:
            raise ValueError(f"max_retries and backoff_s must be >= 0, got {max_retries} and {backoff_s}")
        self.base_url, _ = parse_openai_spec(f"{base_url}#{model}")
        self.model = model
        self.sampling = sampling or SamplingParams()
        self.api_key = resolve_api_key(self.base_url, api_key_env)
        self.tool_mode = tool_mode
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.extra_body = dict(extra_body or {})
        self.stats = {"requests": 0, "retries": 0, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"openai:{self.base_url}#{self.model}"

    # --- the Agent protocol ----------------------------------------------------------------------

    def act(self, requests: list[AgentRequest]) -> list[Action]:
        """One assistant turn per conversation; raises AgentError (with partial results) on failures."""
        if not requests:
            return []
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("OpenAIAgent.act was called from its own event-loop thread; use `await agent.aact(...)`")
        return self._submit(self._act_batch(requests)).result()

    async def aact(self, requests: list[AgentRequest]) -> list[Action]:
        """`act` for async callers: awaits the batch without blocking the caller's event loop."""
        if not requests:
            return []
        return await asyncio.wrap_future(self._submit(self._act_batch(requests)))

    def close(self) -> None:
        """Close the HTTP client and stop the event-loop thread (a later `act` starts them again)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.close(), loop).result(timeout=10)
            self._client = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> OpenAIAgent:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------

    def _submit(self, coroutine: Any) -> Future:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="toolgym-openai-agent", daemon=True)
                self._thread.start()
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _ensure_client(self) -> None:
        """Build the client and semaphore inside the loop thread, where they will be used."""
        if self._client is not None:
            return
        openai = require("openai", "openai", "the openai agent")
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
        )
        self._semaphore = asyncio.Semaphore(self.max_concurrency)

    async def _act_batch(self, requests: list[AgentRequest]) -> list[Action]:
        self._ensure_client()
        results = await asyncio.gather(
            *(self._complete(index, request) for index, request in enumerate(requests)), return_exceptions=True
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if not errors:
            return list(results)
        for error in errors:
            if not isinstance(error, AgentError):
                raise error  # a bug on our side, not a failed request: let it surface as is
        first = errors[0]
        first.errors = errors
        first.actions = [None if isinstance(result, BaseException) else result for result in results]
        raise first

    def _native(self, request: AgentRequest) -> bool:
        if self.tool_mode != "auto":
            return self.tool_mode == "native"
        return bool(request.tools) and dialect_of(request.env_info, default="openai").native

    def _request_body(self, request: AgentRequest, native: bool) -> dict[str, Any]:
        sampling = self.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [wire_message(message) for message in request.messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_completion_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if native and request.tools:
            body["tools"] = request.tools
        if self.extra_body:
            body["extra_body"] = self.extra_body
        return body

    async def _complete(self, index: int, request: AgentRequest) -> Action:
        import openai

        native = self._native(request)
        body = self._request_body(request, native)
        assert self._semaphore is not None
        for attempt in range(self.max_retries + 1):
            try:
                async with self._semaphore:
                    self.stats["requests"] += 1
                    # httpx's timeout bounds each read, not the attempt: a server that trickles its
                    # response byte by byte would never time out, so the whole attempt is bounded here.
                    completion = await asyncio.wait_for(
                        self._client.chat.completions.create(**body), timeout=self.timeout_s
                    )
                return self._turn(index, completion, native)
            except (openai.APIConnectionError, openai.APIStatusError, asyncio.TimeoutError) as exc:
                status = getattr(exc, "status_code", None)
                retryable = status is None or status in RETRY_STATUS_CODES or status >= 500
                if not retryable or attempt == self.max_retries:
                    self.stats["failures"] += 1
                    raise AgentError(
                        index, _describe(exc, attempt + 1, retryable, self.timeout_s), status, attempt + 1
                    ) from exc
                delay = self._backoff(attempt, exc)
                logger.warning("request %d: %s; retry %d in %.2fs", index, _short(exc), attempt + 1, delay)
                self.stats["retries"] += 1
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, exc: Exception) -> float:
        delay = self.backoff_s * (2**attempt) * (0.5 + random.random())
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        with contextlib.suppress(ValueError):  # an HTTP-date Retry-After keeps our own backoff
            delay = max(delay, float(retry_after)) if retry_after else delay
        return min(delay, MAX_BACKOFF_S)

    def _turn(self, index: int, completion: Any, native: bool) -> Action:
        if not completion.choices:
            self.stats["failures"] += 1
            raise AgentError(index, f"the endpoint returned no choices (model {self.model})")
        usage = getattr(completion, "usage", None)
        if usage is not None:
            self.stats["prompt_tokens"] += usage.prompt_tokens or 0
            self.stats["completion_tokens"] += usage.completion_tokens or 0
        choice = completion.choices[0]
        message = choice.message
        text = self._restore_stop(message.content or "", choice)
        if not native:
            return text
        turn: dict[str, Any] = {"role": "assistant", "content": text}
        if message.tool_calls:
            turn["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
                for call in message.tool_calls
                if getattr(call, "function", None) is not None
            ]
        return turn

    def _restore_stop(self, text: str, choice: Any) -> str:
        """Put back the stop string the server cut off (ToolGym turns keep it: `</search>` must reach the env).

        OpenAI-compatible servers drop the matched stop string; vLLM and ToolGym's server name it in
        the choice's ``stop_reason``. Endpoints that do not (the OpenAI API) leave the text as is.
        """
        stop_reason = (choice.model_extra or {}).get("stop_reason")
        if (
            choice.finish_reason == "stop"
            and isinstance(stop_reason, str)
            and stop_reason in self.sampling.stop
            and not text.endswith(stop_reason)
        ):
            return text + stop_reason
        return text


def _short(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    kind = "APITimeoutError" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
    return f"{kind} (HTTP {status})" if status is not None else kind


def _describe(exc: Exception, attempts: int, retryable: bool, timeout_s: float) -> str:
    detail = str(getattr(exc, "message", "") or exc)[:500]
    if isinstance(exc, asyncio.TimeoutError):
        detail = f"the response did not complete within timeout_s={timeout_s:g} s"
    why = f"gave up after {attempts} attempts" if retryable else "not retried (a client error)"
    return f"{_short(exc)}: {detail} ({why})"
