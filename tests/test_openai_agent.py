"""OpenAIAgent against ToolGym's real OpenAI-compatible server on loopback, through the `openai` library.

Failures (429 / 5xx / 400 / slow responses) are injected by an HTTP middleware added to the real
server app in this file, so the agent's retry, timeout and concurrency logic meet real HTTP.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from toolgym.agents.base import AgentRequest, SamplingParams
from toolgym.agents.model_server import create_app, serve_in_background
from toolgym.agents.openai_agent import AgentError, OpenAIAgent, parse_openai_spec, resolve_api_key
from toolgym.agents.specs import CallableAgent, make_agent

pytest.importorskip("fastapi")
pytest.importorskip("openai")

MODEL = "echo-model"
SEARCH_TOOL = {
    "type": "function",
    "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}},
}


def echo_turns(requests: list[AgentRequest]) -> list[str]:
    """With tools: call the first tool on the user's text; after a tool result: answer with it; else echo."""
    turns = []
    for request in requests:
        last = request.messages[-1]
        if last["role"] == "tool":
            turns.append(f"<answer>{last['content']}</answer>")
        elif request.tools:
            name = request.tools[0]["function"]["name"]
            turns.append(f'<tool_call>{{"name": "{name}", "arguments": {{"query": "{last["content"]}"}}}}</tool_call>')
        else:
            turns.append(f"echo: {last['content']} <search> q </search> never seen")
    return turns


class Faults:
    """What the middleware does to chat-completion requests, and what it saw."""

    def __init__(self) -> None:
        self.statuses: list[int] = []  # returned, in order, before any request gets through
        self.always_status: int | None = None
        self.poison_status: int | None = None  # for requests whose body contains "poison"
        self.retry_after: str | None = None
        self.delay_s = 0.0
        self.trickle_s = 0.0  # pause between the response body's bytes: a server that never stalls long
        self.attempts = 0
        self.in_flight = 0
        self.max_in_flight = 0


def add_fault_middleware(app: Any, faults: Faults) -> None:
    from fastapi.responses import JSONResponse

    def error(status: int) -> JSONResponse:
        headers = {"retry-after": faults.retry_after} if faults.retry_after else None
        body = {"error": {"message": f"injected {status}", "type": "test", "param": None, "code": None}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.middleware("http")
    async def inject(request, call_next):
        if request.url.path != "/v1/chat/completions":
            return await call_next(request)
        faults.attempts += 1
        faults.in_flight += 1
        faults.max_in_flight = max(faults.max_in_flight, faults.in_flight)
        try:
            if faults.delay_s:
                await asyncio.sleep(faults.delay_s)
            if faults.poison_status and b"poison" in await request.body():
                return error(faults.poison_status)
            if faults.statuses:
                return error(faults.statuses.pop(0))
            if faults.always_status:
                return error(faults.always_status)
            response = await call_next(request)
            if faults.trickle_s:
                return await trickled(response, faults.trickle_s)
            return response
        finally:
            faults.in_flight -= 1


async def trickled(response: Any, pause_s: float) -> Any:
    """The same response, its body sent one byte at a time (each read is quick, the whole is slow)."""
    from fastapi.responses import StreamingResponse

    body = b"".join([chunk async for chunk in response.body_iterator])

    async def drip():
        for position in range(len(body)):
            yield body[position : position + 1]
            await asyncio.sleep(pause_s)

    headers = {"content-length": str(len(body))}
    return StreamingResponse(drip(), status_code=response.status_code, headers=headers, media_type="application/json")


@pytest.fixture(scope="module")
def server():
    faults = Faults()
    app = create_app(CallableAgent(echo_turns), MODEL)
    add_fault_middleware(app, faults)
    with serve_in_background(app) as base_url:
        yield base_url, faults


@pytest.fixture
def base_url(server):
    url, faults = server
    faults.__init__()  # a clean slate for every test
    return url


@pytest.fixture
def faults(server):
    return server[1]


def user(text: str, **kwargs: Any) -> AgentRequest:
    return AgentRequest(messages=[{"role": "user", "content": text}], **kwargs)


# --- spec and configuration ---------------------------------------------------------------------


def test_spec_splits_base_url_and_model_with_slashes():
    assert parse_openai_spec("http://127.0.0.1:8000/v1/#Qwen/Qwen2.5-7B-Instruct") == (
        "http://127.0.0.1:8000/v1",
        "Qwen/Qwen2.5-7B-Instruct",
    )


@pytest.mark.parametrize("target", ["http://127.0.0.1:8000/v1", "127.0.0.1:8000/v1#m", "ftp://x/v1#m", "http://h/v1#"])
def test_malformed_spec_is_refused_with_an_example(target):
    with pytest.raises(ValueError, match="openai:<http"):
        make_agent(f"openai:{target}")


def test_make_agent_builds_an_openai_agent_with_the_sampling_and_options():
    agent = make_agent("openai:http://127.0.0.1:9/v1#m", SamplingParams(temperature=0), max_concurrency=3)
    assert isinstance(agent, OpenAIAgent)
    assert (agent.model, agent.sampling.temperature, agent.max_concurrency) == ("m", 0.0, 3)


def test_a_remote_url_needs_the_named_key_variable(monkeypatch):
    monkeypatch.delenv("TOOLGYM_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="TOOLGYM_TEST_KEY is not set"):
        resolve_api_key("https://api.openai.com/v1", "TOOLGYM_TEST_KEY")
    monkeypatch.setenv("TOOLGYM_TEST_KEY", "sk-test")
    assert resolve_api_key("https://api.openai.com/v1", "TOOLGYM_TEST_KEY") == "sk-test"
    monkeypatch.delenv("TOOLGYM_TEST_KEY")
    assert resolve_api_key("http://localhost:8000/v1", "TOOLGYM_TEST_KEY") == "EMPTY"


# --- turns ------------------------------------------------------------------------------------------


def test_text_mode_returns_text_with_the_servers_cut_stop_string_restored(base_url):
    with OpenAIAgent(base_url, MODEL, SamplingParams(stop=("</search>",)), tool_mode="text") as agent:
        (turn,) = agent.act([user("hello")])
    assert turn == "echo: hello <search> q </search>"


def test_native_mode_returns_tool_calls_and_the_tool_result_goes_back(base_url):
    with OpenAIAgent(base_url, MODEL, tool_mode="native") as agent:
        (call_turn,) = agent.act([user("capital of France", tools=[SEARCH_TOOL])])
        call = call_turn["tool_calls"][0]
        tool_message = {"role": "tool", "tool_call_id": call["id"], "name": "search", "content": "Paris"}
        conversation = [{"role": "user", "content": "capital of France"}, call_turn, tool_message]
        (answer_turn,) = agent.act([AgentRequest(messages=conversation, tools=[SEARCH_TOOL])])
    assert call["function"] == {"name": "search", "arguments": '{"query": "capital of France"}'}
    assert answer_turn == {"role": "assistant", "content": "<answer>Paris</answer>"}


def test_auto_mode_sends_tools_only_to_envs_that_announced_native_calls(base_url):
    with OpenAIAgent(base_url, MODEL) as agent:
        native, text = agent.act(
            [
                user("q", tools=[SEARCH_TOOL], env_info={"tool_format": "openai"}),
                user("q", tools=[SEARCH_TOOL], env_info={"tool_format": "hermes"}),
            ]
        )
    assert native["tool_calls"][0]["function"]["name"] == "search"
    assert isinstance(text, str) and text.startswith("echo: q")


def test_act_works_inside_a_running_event_loop_and_aact_awaits(base_url):
    async def main() -> tuple[list, list]:
        with OpenAIAgent(base_url, MODEL, tool_mode="text") as agent:
            return agent.act([user("sync")]), await agent.aact([user("async")])

    sync_turns, async_turns = asyncio.run(main())
    assert sync_turns[0].startswith("echo: sync") and async_turns[0].startswith("echo: async")


# --- failures, retries, timeouts, concurrency ----------------------------------------------------


def test_429_and_500_are_retried_until_success(base_url, faults):
    faults.statuses = [429, 500]
    with OpenAIAgent(base_url, MODEL, tool_mode="text", max_retries=4, backoff_s=0.01) as agent:
        (turn,) = agent.act([user("retry me")])
        retries = agent.stats["retries"]
    assert turn.startswith("echo: retry me")
    assert (faults.attempts, retries) == (3, 2)


def test_gives_up_after_max_retries_with_the_request_index(base_url, faults):
    faults.always_status = 503
    with (
        OpenAIAgent(base_url, MODEL, tool_mode="text", max_retries=2, backoff_s=0.01) as agent,
        pytest.raises(AgentError, match="gave up after 3 attempts") as caught,
    ):
        agent.act([user("doomed")])
    assert (caught.value.index, caught.value.status_code, caught.value.attempts) == (0, 503, 3)
    assert faults.attempts == 3


def test_retry_after_header_is_honoured(base_url, faults):
    faults.statuses, faults.retry_after = [429], "0.4"
    with OpenAIAgent(base_url, MODEL, tool_mode="text", backoff_s=0.001) as agent:
        started = time.perf_counter()
        agent.act([user("patience")])
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.4


def test_a_client_error_is_not_retried(base_url, faults):
    faults.always_status = 400
    with (
        OpenAIAgent(base_url, MODEL, tool_mode="text", max_retries=4, backoff_s=0.01) as agent,
        pytest.raises(AgentError, match="not retried") as caught,
    ):
        agent.act([user("bad")])
    assert (caught.value.status_code, faults.attempts) == (400, 1)


def test_a_wrong_model_name_fails_at_once_with_the_servers_message(base_url, faults):
    with (
        OpenAIAgent(base_url, "no-such-model", max_retries=4) as agent,
        pytest.raises(AgentError, match="serves 'echo-model'") as caught,
    ):
        agent.act([user("hi")])
    assert (caught.value.status_code, faults.attempts) == (404, 1)


def test_a_slow_server_times_out_and_is_reported(base_url, faults):
    faults.delay_s = 1.5
    with OpenAIAgent(base_url, MODEL, timeout_s=0.2, max_retries=1, backoff_s=0.01) as agent:
        started = time.perf_counter()
        with pytest.raises(AgentError, match="APITimeoutError") as caught:
            agent.act([user("slow")])
        elapsed = time.perf_counter() - started
    assert caught.value.status_code is None and caught.value.attempts == 2
    assert elapsed < 1.2  # two 0.2 s attempts, not the server's 1.5 s


def test_a_response_trickling_in_byte_by_byte_still_times_out(base_url, faults):
    # Each byte arrives well within timeout_s, so only a limit on the whole attempt can stop it;
    # the full body (about 300 bytes at 10 ms each) would take about 3 s.
    faults.trickle_s = 0.01
    with OpenAIAgent(base_url, MODEL, tool_mode="text", timeout_s=0.3, max_retries=1, backoff_s=0.01) as agent:
        started = time.perf_counter()
        with pytest.raises(AgentError, match=r"APITimeoutError: .*timeout_s=0.3 s") as caught:
            agent.act([user("slow drip")])
        elapsed = time.perf_counter() - started
    assert caught.value.status_code is None and caught.value.attempts == 2
    assert elapsed < 2.0  # two 0.3 s attempts (plus the client's start-up), not the 3 s body


def test_a_connection_refused_is_retried_then_reported(faults):
    with (
        OpenAIAgent("http://127.0.0.1:9/v1", MODEL, max_retries=1, backoff_s=0.01) as agent,
        pytest.raises(AgentError, match="APIConnectionError") as caught,
    ):
        agent.act([user("nobody home")])
    assert caught.value.attempts == 2


def test_concurrency_limit_bounds_requests_in_flight(base_url, faults):
    faults.delay_s = 0.1
    with OpenAIAgent(base_url, MODEL, tool_mode="text", max_concurrency=3) as agent:
        turns = agent.act([user(f"q{i}") for i in range(10)])
    assert [t.split()[1] for t in turns] == [f"q{i}" for i in range(10)]
    assert faults.max_in_flight == 3


def test_one_failed_request_keeps_the_others_results(base_url, faults):
    faults.poison_status = 422
    requests = [user("fine"), user("poison"), user("also fine")]
    with OpenAIAgent(base_url, MODEL, tool_mode="text", backoff_s=0.01) as agent, pytest.raises(AgentError) as caught:
        agent.act(requests)
    error = caught.value
    assert error.index == 1 and [e.index for e in error.errors] == [1]
    assert error.actions[1] is None
    assert error.actions[0].startswith("echo: fine") and error.actions[2].startswith("echo: also fine")
