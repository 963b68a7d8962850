"""ToolGym's OpenAI-compatible model server, exercised through the official `openai` client on loopback.

The end-to-end tests play Search-v0 (native tool calls) and Math-v0 episodes with `OpenAIAgent`
against `toolgym serve model` started in a subprocess, serving the scripted baselines through a
`py:` agent defined here (over HTTP there is no env info, so the oracle cannot be served). The
same baselines played in-process must get the same rewards: the HTTP path loses nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from toolgym.agents.base import AgentRequest, SamplingParams
from toolgym.agents.episodes import play_episodes
from toolgym.agents.model_server import create_app, default_model_name, serve_in_background
from toolgym.agents.model_server_protocol import ServerLimits
from toolgym.agents.openai_agent import OpenAIAgent
from toolgym.agents.scripted import ScriptedAgent, policy_for
from toolgym.agents.specs import make_agent
from toolgym.envs.pool import EnvPool

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

TESTS_DIR = Path(__file__).resolve().parent
CALCULATOR = {
    "type": "function",
    "function": {"name": "calculator", "parameters": {"type": "object", "properties": {"expression": {}}}},
}


class RecordingAgent:
    """Answers from a script of rules and records each batch and sampling it was given."""

    def __init__(self, delay_s: float = 0.0):
        self.batches: list[list[AgentRequest]] = []
        self.samplings: list[SamplingParams] = []
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def act(self, requests: list[AgentRequest], sampling: SamplingParams | None = None) -> list[Any]:
        with self._lock:
            self.batches.append(requests)
            self.samplings.append(sampling)
        time.sleep(self.delay_s)
        turns: list[Any] = []
        for request in requests:
            text = request.messages[-1]["content"]
            if "explode" in text:
                raise RuntimeError("the agent exploded")
            if request.messages[-1]["role"] == "tool":
                turns.append(f"The result is \\boxed{{{text}}}.")
            elif request.tools:
                turns.append(
                    'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
                )
            elif "dict" in text:
                turns.append({"role": "assistant", "content": "as a dict"})
            else:
                turns.append(f"You said: {text}. <answer>done</answer> trailing")
        return turns


@pytest.fixture(scope="module")
def served():
    agent = RecordingAgent()
    limits = ServerLimits(max_body_bytes=64_000, max_messages=20, max_tokens_limit=1000, batch_wait_ms=50)
    with serve_in_background(create_app(agent, "tiny", limits)) as base_url:
        yield base_url, agent


@pytest.fixture
def client(served):
    with openai.OpenAI(base_url=served[0], api_key="EMPTY", max_retries=0, timeout=30) as client:
        yield client


def chat(client, content: str = "hi", **kwargs: Any):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": content}], **kwargs)


# --- the protocol through the openai client ----------------------------------------------------------


def test_a_text_turn_is_a_proper_chat_completion(client):
    completion = chat(client, "hello")
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "tiny"
    assert (
        choice.message.role == "assistant"
        and choice.message.content == "You said: hello. <answer>done</answer> trailing"
    )
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None


def test_stop_strings_cut_the_text_and_are_named_in_stop_reason(client):
    choice = chat(client, "hello", stop=["</answer>", "You"]).choices[0]
    assert choice.message.content == ""  # "You" occurs first
    choice = chat(client, "hello", stop=["</answer>"]).choices[0]
    assert choice.message.content == "You said: hello. <answer>done"
    assert (choice.finish_reason, choice.model_extra["stop_reason"]) == ("stop", "</answer>")


def test_sampling_parameters_reach_an_agent_that_accepts_them(client, served):
    chat(client, "params", temperature=0.3, top_p=0.9, max_tokens=77, stop=["x"], seed=5)
    assert served[1].samplings[-1] == SamplingParams(temperature=0.3, top_p=0.9, max_tokens=77, stop=("x",), seed=5)


def test_hermes_blocks_become_native_tool_calls_and_the_result_comes_back(client):
    first = chat(client, "what is 6*7?", tools=[CALCULATOR]).choices[0]
    (call,) = first.message.tool_calls
    assert first.finish_reason == "tool_calls" and first.message.content == "Let me compute."
    assert (call.function.name, json.loads(call.function.arguments)) == ("calculator", {"expression": "6*7"})

    messages = [
        {"role": "user", "content": "what is 6*7?"},
        first.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
    ]
    second = client.chat.completions.create(model="tiny", messages=messages, tools=[CALCULATOR]).choices[0]
    assert second.message.content == "The result is \\boxed{42}." and second.finish_reason == "stop"


def test_tool_calls_stay_text_when_the_request_has_no_tools(client):
    message = (
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "q"}], tools=[CALCULATOR], tool_choice="none"
        )
        .choices[0]
        .message
    )
    assert message.tool_calls is None and "<tool_call>" in message.content


def test_models_and_health_endpoints(client, served):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert httpx.get(served[0].removesuffix("/v1") + "/health").json() == {"status": "ok", "model": "tiny"}


def test_concurrent_requests_are_batched_into_one_agent_call(served):
    base_url, agent = served
    before = len(agent.batches)
    with OpenAIAgent(base_url, "tiny", tool_mode="text", max_concurrency=8) as client_agent:
        turns = client_agent.act([AgentRequest([{"role": "user", "content": f"n{i}"}]) for i in range(8)])
    sizes = [len(batch) for batch in agent.batches[before:]]
    assert [t.split(".")[0] for t in turns] == [f"You said: n{i}" for i in range(8)]
    assert sum(sizes) == 8 and max(sizes) >= 4  # the 50 ms gather window collects them


def test_an_agent_failure_is_a_500_for_that_request_only(served):
    base_url, _ = served
    with (
        OpenAIAgent(base_url, "tiny", tool_mode="text", max_retries=0) as client_agent,
        pytest.raises(Exception) as caught,
    ):
        client_agent.act([AgentRequest([{"role": "user", "content": c}]) for c in ("ok", "explode", "ok too")])
    assert caught.value.status_code == 500 and "the agent exploded" in str(caught.value)
    assert caught.value.actions[0].startswith("You said: ok") and caught.value.actions[2].startswith("You said: ok too")


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"stream": True}, 400, "streaming is not supported"),
        ({"n": 2}, 400, "only n=1"),
        ({"temperature": 3}, 400, "temperature must be a number in [0, 2]"),
        ({"max_tokens": 5000}, 400, "max_tokens must be an integer in [1, 1000]"),
        ({"stop": ["a"] * 9}, 400, "at most 8"),
        ({"logprobs": True}, 400, "logprobs are not supported"),
        ({"model": "gpt-4"}, 404, "this server serves 'tiny'"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role must be one of"),
        ({"messages": [{"role": "user", "content": "x"}] * 21}, 400, "21 messages; the limit is 20"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "only text parts"),
        ({"tools": [{"type": "function", "function": {}}]}, 400, "tools[0].function needs a non-empty name"),
    ],
)
def test_malformed_requests_get_4xx_in_openais_error_shape(client, kwargs, status, needle):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.status_code == status
    assert needle in caught.value.body["message"] and caught.value.body["type"] == "invalid_request_error"


def test_a_body_that_is_not_json_or_too_large_is_refused(served):
    url = served[0] + "/chat/completions"
    not_json = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    too_large = httpx.post(url, content=b"x" * 70_000)
    chunked_too_large = httpx.post(url, content=iter([b"x" * 10_000] * 7))  # no content-length header
    unknown = httpx.get(served[0] + "/nowhere")
    statuses = (not_json.status_code, too_large.status_code, chunked_too_large.status_code, unknown.status_code)
    assert statuses == (400, 413, 413, 404)
    assert "not valid JSON" in not_json.json()["error"]["message"]
    assert "the limit is 64000" in too_large.json()["error"]["message"]
    assert "exceeds the limit of 64000 bytes" in chunked_too_large.json()["error"]["message"]
    assert unknown.json()["error"]["message"] == "GET /v1/nowhere: Not Found"


def test_a_body_that_never_finishes_gets_a_408():
    app = create_app(RecordingAgent(), "recorder", limits=ServerLimits(body_timeout_s=0.5))
    with serve_in_background(app) as base_url:
        host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as client:
            headers = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            client.sendall(f'{headers}Content-Length: 1000\r\n\r\n{{"messages": ['.encode())
            reply = b""
            while b"did not arrive" not in reply:  # the status line and the body may come apart
                chunk = client.recv(65536)
                if not chunk:
                    break
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in reply


def test_default_model_name_is_the_folder_of_an_hf_path():
    assert default_model_name("hf:/models/qwen-tiny/") == "qwen-tiny"
    assert default_model_name("py:pkg.mod:fn") == "py:pkg.mod:fn"


def _serve_parser() -> argparse.ArgumentParser:
    from toolgym.agents.cli import add_serve_model_command

    parser = argparse.ArgumentParser(prog="toolgym serve")
    add_serve_model_command(parser.add_subparsers())
    return parser


def test_serve_model_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        _serve_parser().parse_args(["model", "--help"])
    text = capsys.readouterr().out
    assert "--agent" in text and "examples:" in text and "openai:http://127.0.0.1:8001/v1#qwen" in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--agent", "telepathy:x"], "unknown agent kind 'telepathy'"),
        (["--agent", "py:no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
        (["--agent", "scripted:random", "--port", "0"], "out of range"),
    ],
)
def test_serve_model_refuses_bad_options_before_serving(capsys, argv, needle):
    args = _serve_parser().parse_args(["model", *argv])
    assert args.handler(args) == 2
    assert needle in capsys.readouterr().err


# --- end to end: `toolgym serve model` in a subprocess --------------------------------------------------

_ENV_BY_TOOL = {"search": "Search-v0", "calculator": "Math-v0"}


def http_baseline(requests: list[AgentRequest]) -> list[Any]:
    """The scripted baselines, driven by what reaches a server: messages and tools, no env info.

    They write Hermes text; the server turns it into native tool_calls for clients that sent tools.
    """
    turns = []
    for request in requests:
        tool_names = [tool["function"]["name"] for tool in request.tools or []]
        env = next((_ENV_BY_TOOL[n] for n in tool_names if n in _ENV_BY_TOOL), "Math-v0")
        info = {"env": env, "tool_format": "hermes", "tools": request.tools}
        turns.append(policy_for(env, "baseline")(AgentRequest(request.messages, request.tools, info)))
    return turns


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_command(port: int, agent_spec: str, model_name: str = "baseline") -> list[str]:
    """`toolgym serve model ...` as a user runs it (via the agents CLI module until it is wired)."""
    from toolgym.cli import build_parser

    options = [
        "model",
        "--agent",
        agent_spec,
        "--port",
        str(port),
        "--model-name",
        model_name,
        "--log-level",
        "warning",
    ]
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices.get("serve")
    serve_commands = [a for a in serve._actions if isinstance(a, argparse._SubParsersAction)] if serve else []
    if serve_commands and "model" in serve_commands[0].choices:
        return [sys.executable, "-m", "toolgym.cli", "serve", *options]
    else:  # `serve model` not wired into toolgym.cli yet: the same handler through its add_* function
        script = (
            "import argparse, sys; from toolgym.agents.cli import add_serve_model_command; "
            "p = argparse.ArgumentParser(prog='toolgym serve'); add_serve_model_command(p.add_subparsers()); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
        )
        return [sys.executable, "-c", script, *options]


@contextlib.contextmanager
def _running(command: list[str], port: int, startup_s: float = 90.0) -> Iterator[str]:
    """Start a server subprocess, wait for /health, yield its base URL, and stop it afterwards."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"toolgym serve model exited with {process.returncode}: {process.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"toolgym serve model did not answer /health within {startup_s:g} s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.returncode is not None


@pytest.fixture(scope="module")
def serve_subprocess():
    port = _free_port()
    with _running(_serve_command(port, "py:test_model_server:http_baseline"), port) as base_url:
        yield base_url


def _rewards(agent: Any, env_id: str, seeds: list[int], **env_kwargs: Any) -> list[tuple[float, int]]:
    pool = EnvPool.make(f"toolgym:{env_id}", 4, **env_kwargs)
    return [(e.reward, e.tool_calls) for e in play_episodes(agent, pool, seeds)]


def test_serve_model_subprocess_answers_the_openai_client(serve_subprocess):
    with openai.OpenAI(base_url=serve_subprocess, api_key="EMPTY", max_retries=0, timeout=30) as client:
        completion = client.chat.completions.create(
            model="baseline", messages=[{"role": "user", "content": "Question: Who founded Acme?"}], tools=[CALCULATOR]
        )
        models = [m.id for m in client.models.list().data]
    assert models == ["baseline"]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_search_episodes_over_http_with_native_tool_calls_match_in_process(serve_subprocess):
    seeds = list(range(8))
    with make_agent(f"openai:{serve_subprocess}#baseline") as remote:
        over_http = _rewards(remote, "Search-v0", seeds, tool_format="openai")
    in_process = _rewards(ScriptedAgent("baseline"), "Search-v0", seeds, tool_format="openai")
    assert over_http == in_process
    assert all(calls == 1 for _, calls in over_http) and sum(r for r, _ in over_http) > 0


@pytest.mark.parametrize("env_kwargs", [{"tools": True, "tool_format": "openai"}, {}], ids=["calculator", "no-tools"])
def test_math_episodes_over_http_match_in_process(serve_subprocess, env_kwargs):
    seeds = list(range(6))
    with OpenAIAgent(serve_subprocess, "baseline", SamplingParams(temperature=0)) as remote:
        over_http = _rewards(remote, "Math-v0", seeds, **env_kwargs)
    in_process = _rewards(ScriptedAgent("baseline"), "Math-v0", seeds, **env_kwargs)
    assert over_http == in_process
    assert all(calls == (1 if env_kwargs else 0) for _, calls in over_http)


# --- a local transformers model behind the server ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    pytest.importorskip("toolgym.agents.hf_agent", reason="needs the HF agent (toolgym.agents.hf_agent)")
    from toolgym.agents.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-qwen")


def test_a_tiny_hf_model_is_served_with_usage_and_the_same_greedy_text(tiny_model_path):
    from toolgym.agents.hf_agent import HFAgent

    greedy = SamplingParams(temperature=0, max_tokens=12)
    local = HFAgent(tiny_model_path, greedy)
    request = AgentRequest([{"role": "user", "content": "Question: Where was Ada born?"}])
    with serve_in_background(create_app(HFAgent(tiny_model_path, greedy), "tiny-qwen")) as base_url:
        with openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=60) as client:
            completion = client.chat.completions.create(
                model="tiny-qwen", messages=request.messages, temperature=0, max_tokens=12
            )
        with OpenAIAgent(base_url, "tiny-qwen", greedy) as remote:
            (remote_text,) = remote.act([request])
    usage, choice = completion.usage, completion.choices[0]
    assert usage.prompt_tokens == len(local.prompt_ids(request)) and 1 <= usage.completion_tokens <= 12
    assert choice.finish_reason == ("length" if usage.completion_tokens == 12 else "stop")
    assert remote_text == local.act([request])[0]  # the server changes nothing about the model's turn


@pytest.mark.slow  # about 25 s: the subprocess imports torch and transformers, then generates on CPU
def test_serve_model_hf_spec_from_a_subprocess_plays_search_episodes(tiny_model_path):
    port = _free_port()
    command = _serve_command(port, f"hf:{tiny_model_path}", "tiny-qwen")
    with _running(command, port) as base_url:
        agent = OpenAIAgent(base_url, "tiny-qwen", SamplingParams(temperature=0, max_tokens=16), timeout_s=120)
        with agent:
            episodes = play_episodes(agent, EnvPool.make("toolgym:Search-v0", 2, tool_format="openai"), [0, 1])
    assert [e.turns >= 1 for e in episodes] == [True, True]
    assert agent.stats["failures"] == 0 and agent.stats["completion_tokens"] > 0
