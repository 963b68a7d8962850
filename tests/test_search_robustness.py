"""Search-v0 under hostile actions: every str or dict gives an observation, never an exception or a hang."""

from __future__ import annotations

import json
import random
import time

import pytest

from toolgym.envs.search.env import SearchEnv

FORMATS = ["search_r1", "hermes", "openai", "python"]


def _bad_actions() -> list:
    rng = random.Random(0)
    random_bytes = bytes(rng.randrange(256) for _ in range(2000)).decode("latin-1")
    return [
        random_bytes,
        "x" * 1_000_000,
        "<search>" * 100_000,
        "<search>" + "q " * 500_000 + "</search>",
        "日本語の質問 😀 <search>東京 😀</search>",
        "\x00\ud800\udfff",
        '<tool_call>{"name": "search", "arguments": {"query": </tool_call>',  # broken JSON
        '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>',  # unknown tool
        '<tool_call>{"name": "search", "arguments": {"query": 42}}</tool_call>',  # wrong type
        '<tool_call>{"name": "search", "arguments": {"query": ["a", "b"]}}</tool_call>',
        '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"say \\\\\\"hi\\\\\\" \'there\'\\"}"}</tool_call>',
        '[search(query="it\'s \\"nested\\"")]',
        "[search(query=__import__('os').system('echo pwned'))]",
        "[search(query=10**10**10)]",
        "[search(query=b'bytes are not JSON')]",
        '<tool_call>{"name": "search", "arguments": {"query": ' + "9" * 5000 + "}}</tool_call>",  # int past 4300 digits
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "d", "function": {"name": "search", "arguments": '{"query": ' + "9" * 5000 + "}"}}],
        },
        {"role": "assistant", "content": None},
        {"role": "assistant", "content": "", "tool_calls": "not a list"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "a", "function": {"name": "search", "arguments": "{bad"}}],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "b", "function": {"name": "search", "arguments": {"query": None}}}],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": f"c{i}", "function": {"name": "search", "arguments": '{"query": "x"}'}} for i in range(50)
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "<answer>parts</answer>"}]},
        {"unexpected": object()},
    ]


@pytest.mark.parametrize("tool_format", FORMATS)
def test_bad_actions_never_raise(tool_format):
    env = SearchEnv(tool_format=tool_format, max_turns=2)
    for action in _bad_actions():
        env.reset(seed=0)
        start = time.perf_counter()
        obs, reward, _, _, info = env.step(action)
        assert time.perf_counter() - start < 5.0, repr(action)[:80]
        assert env.observation_space.contains(obs), repr(action)[:80]
        assert isinstance(reward, float) and isinstance(info["invalid_action"], bool)
        json.dumps(info)  # info stays plain data


def test_wrong_argument_type_is_reported_as_a_tool_error():
    env = SearchEnv(tool_format="hermes")
    env.reset(seed=0)
    obs, *_, info = env.step('<tool_call>{"name": "search", "arguments": {"query": 42}}</tool_call>')
    assert info["invalid_action"] and "string 'query'" in info["tool_error"]
    assert obs[0]["role"] == "tool" and obs[0]["content"].startswith("Error:")


def test_unknown_tool_is_reported_by_name():
    env = SearchEnv(tool_format="openai")
    env.reset(seed=0)
    action = {"role": "assistant", "tool_calls": [{"id": "z", "function": {"name": "rm", "arguments": "{}"}}]}
    obs, *_, info = env.step(action)
    assert "unknown tool 'rm'" in info["tool_error"] and obs[0]["tool_call_id"] == "z"


def test_every_openai_tool_call_id_gets_a_reply():
    env = SearchEnv(tool_format="openai")
    env.reset(seed=0)
    action = {
        "role": "assistant",
        "tool_calls": [
            {"id": "ok", "function": {"name": "search", "arguments": '{"query": "river"}'}},
            {"id": "broken", "function": {"name": "search", "arguments": "{oops"}},
        ],
    }
    obs, *_ = env.step(action)
    assert sorted(m["tool_call_id"] for m in obs) == ["broken", "ok"]


def test_too_many_searches_in_one_turn_are_capped():
    env = SearchEnv(tool_format="hermes")
    env.reset(seed=0)
    action = '<tool_call>{"name": "search", "arguments": {"query": "river"}}</tool_call>' * 12
    obs, *_, info = env.step(action)
    assert len(obs) == 12 and "at most 8 searches" in info["tool_error"]
