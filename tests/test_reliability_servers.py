"""Both HTTP servers: responses are strict UTF-8 JSON whatever the agent says; disconnects are one quiet line."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import httpx
import pytest

from toolgym.agents.model_server import create_app, serve_in_background
from toolgym.http_server import DisconnectLog, running_app

pytest.importorskip("fastapi")

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN / Infinity, as every non-Python JSON parser does."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


class FixedAgent:
    """Answers every request with the same turn."""

    def __init__(self, turn: Any):
        self.turn = turn

    def act(self, requests: list[Any]) -> list[Any]:
        return [self.turn for _ in requests]


def _answer(turn: Any, with_tools: bool) -> httpx.Response:
    app = create_app(FixedAgent(turn), "m")
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if with_tools:
        body["tools"] = [TOOL]
    with serve_in_background(app) as base_url:
        return httpx.post(f"{base_url}/chat/completions", json=body, timeout=30)


def test_a_lone_surrogate_in_the_agents_text_is_replaced_not_a_500() -> None:
    response = _answer("half a pair: \ud83d, and a whole one: \U0001f600", with_tools=False)
    assert response.status_code == 200
    content = _strict_json(response.content.decode("utf-8"))["choices"][0]["message"]["content"]
    assert content == "half a pair: \ufffd, and a whole one: \U0001f600"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"x": float("nan"), "y": [float("inf"), 1.5]}, {"x": None, "y": [None, 1.5]}),
        ({"text": "lone \udc80 half"}, {"text": "lone \ufffd half"}),
    ],
)
def test_tool_call_arguments_are_strict_json(arguments: dict[str, Any], expected: dict[str, Any]) -> None:
    turn = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": arguments}}],
    }
    response = _answer(turn, with_tools=True)
    assert response.status_code == 200
    call = _strict_json(response.content.decode("utf-8"))["choices"][0]["message"]["tool_calls"][0]
    assert _strict_json(call["function"]["arguments"]) == expected


def _hang_up_mid_body(url: str, path: str, times: int) -> None:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    for _ in range(times):
        with socket.create_connection((host, int(port))) as sock:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            sock.sendall(head.encode() + b'{"queries": [')
            time.sleep(0.02)


def _retrieval_app() -> Any:
    from toolgym.retriever_contract import Document
    from toolgym.retrievers import build_retriever
    from toolgym.retrievers.server import create_app as create_retrieval_app

    return create_retrieval_app(build_retriever("bm25s", [Document("d1", "t", "hello world")]))


@pytest.mark.parametrize("server", ["model", "retrieval"])
def test_client_disconnects_mid_body_log_one_line_without_a_traceback(server: str, caplog) -> None:
    app = create_app(FixedAgent("ok"), "m") if server == "model" else _retrieval_app()
    path = "/v1/chat/completions" if server == "model" else "/retrieve"
    caplog.set_level(logging.WARNING)
    with running_app(app) as url:
        _hang_up_mid_body(url, path, times=20)
        deadline = time.monotonic() + 10
        while app.state.disconnects.total < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        healthy = httpx.get(f"{url}/health", timeout=10).status_code
    assert app.state.disconnects.total == 20
    assert [r for r in caplog.records if r.exc_info] == []  # no traceback at all
    disconnect_lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(disconnect_lines) == 1  # rate-limited: one line per 10 s
    assert healthy == 200


def test_the_disconnect_log_reports_the_count_of_quiet_events(caplog) -> None:
    log = DisconnectLog(interval_s=0.2)
    caplog.set_level(logging.WARNING)
    logged = [log.note("s", "POST", "/x") for _ in range(5)]
    time.sleep(0.25)
    logged.append(log.note("s", "POST", "/x"))
    assert logged == [True, False, False, False, False, True]
    assert "(5 such disconnect(s)" in caplog.records[-1].getMessage()
