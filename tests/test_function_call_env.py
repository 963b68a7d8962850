"""FunctionCall-v0 as a Gymnasium env: API contract, tool formats, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from gymnasium.utils.env_checker import check_env

from toolgym.dialects import get_dialect
from toolgym.envs.base import EpisodeError
from toolgym.envs.function_call.env import FunctionCallEnv
from toolgym.tool_calls import ToolCall

# A BFCL-format row (question + function docs + possible answer), so these tests need no data files.
BFCL_ROW = {
    "id": "parallel_7",
    "question": [[{"role": "user", "content": "Weather in Paris and in Rome, please."}]],
    "function": [
        {
            "name": "weather.get",
            "description": "Weather of a city.",
            "parameters": {
                "type": "dict",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
                "required": ["city"],
            },
        }
    ],
    "ground_truth": [
        {"weather.get": {"city": ["Paris"], "unit": ["C", ""]}},
        {"weather.get": {"city": ["Rome"], "unit": ["C", ""]}},
    ],
}
GOLD_CALLS = [ToolCall("weather.get", {"city": "Rome"}), ToolCall("weather.get", {"city": "Paris", "unit": "C"})]


def _row_env(tool_format: str) -> FunctionCallEnv:
    return FunctionCallEnv([BFCL_ROW], tool_format=tool_format)


def test_default_env_passes_check_env():
    check_env(FunctionCallEnv())


def test_bfcl_env_passes_check_env(shared_data):
    check_env(FunctionCallEnv("bfcl:simple"))


def test_gym_make_works_in_a_fresh_interpreter():
    code = "import gymnasium as gym; env = gym.make('toolgym:FunctionCall-v0'); obs, info = env.reset(seed=0); print(info['env'], len(info['tools']) > 0)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.stdout.split() == ["FunctionCall-v0", "True"], completed.stderr


def test_same_seed_gives_the_same_task():
    first, second = FunctionCallEnv(difficulty=2), FunctionCallEnv(difficulty=2)
    messages_a, info_a = first.reset(seed=42)
    messages_b, info_b = second.reset(seed=42)
    assert messages_a == messages_b and info_a == info_b


def test_bfcl_defaults_to_python_format_and_one_turn(shared_data):
    env = FunctionCallEnv("bfcl:simple")
    assert (env.tool_format, env.max_turns) == ("python", 1)
    messages, info = env.reset(options={"index": 0})
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert info["task_id"] == "simple_0" and info["category"] == "simple"
    assert info["tools"][0]["function"]["parameters"]["type"] == "object"


@pytest.mark.parametrize("tool_format", ["python", "hermes", "openai"])
def test_every_tool_format_scores_the_same_calls(tool_format):
    env = _row_env(tool_format)
    _, info = env.reset(options={"index": 0})
    exposed = info["tools"][0]["function"]["name"]
    calls = [ToolCall(exposed, c.arguments) for c in GOLD_CALLS]
    _, reward, terminated, _, step_info = env.step(get_dialect(tool_format).render(calls))
    assert [(c["name"], c["arguments"]) for c in step_info["tool_calls"]] == [
        (exposed, c.arguments) for c in GOLD_CALLS
    ]
    assert reward == 1.0 and terminated
    assert step_info["metrics"] == {"ast_match": True, "category": "parallel", "error_type": "", "n_calls": 2}


def test_openai_format_exposes_legal_names():
    env = _row_env("openai")
    _, info = env.reset(options={"index": 0})
    assert info["tools"][0]["function"]["name"] == "weather_get"


def test_task_option_accepts_a_bfcl_row_and_a_world_row():
    env = FunctionCallEnv()
    _, info = env.reset(options={"task": BFCL_ROW})
    assert info["kind"] == "bfcl" and info["task_id"] == "parallel_7"
    world_row = FunctionCallEnv(difficulty=2).reset(seed=9)[1]["task"]
    _, info = env.reset(options={"task": world_row})
    assert info["kind"] == "tool_world" and info["task"] == world_row


def test_bfcl_row_without_ground_truth_is_refused():
    row = {k: v for k, v in BFCL_ROW.items() if k != "ground_truth"}
    with pytest.raises(ValueError, match="ground_truth"):
        FunctionCallEnv().reset(options={"task": row})


def test_wrong_answer_reports_bfcl_error_type():
    env = _row_env("python")
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step("[weather.get(city='Rome')]")
    assert reward == 0.0 and info["metrics"]["error_type"] == "parallel_function_checker_no_order:wrong_count"
    assert info["gold"] == BFCL_ROW["ground_truth"]


def test_step_after_the_end_is_a_clear_error():
    env = _row_env("python")
    env.reset(options={"index": 0})
    env.step("no call")
    with pytest.raises(EpisodeError, match="after episode"):
        env.step("again")


def test_step_before_reset_is_a_clear_error():
    with pytest.raises(EpisodeError, match="before reset"):
        FunctionCallEnv().step("hi")


BAD_ACTIONS = [
    bytes(range(256)).decode("latin-1"),
    "x" * 1_000_000,
    "<tool_call>" * 100_000,
    "日本語 😀 ∑ \u202e\x00",
    '<tool_call>{"name": "transfer", "arguments": {"amount": </tool_call>',
    '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "cd", "arguments": {"folder": 12}}</tool_call>',
    '<tool_call>{"name": "cd", "arguments": "{\\"folder\\": \\"/\\\\\\"x\\""}</tool_call>',
    '<tool_call>{"name": "write_file", "arguments": {"file_name": "/a", "content": "' + "[" * 5000 + '"}}</tool_call>',
    "[cd(folder='\"\\'nested\\'\"')]",
    "[cd(folder=b'/bytes')]",
    '<tool_call>{"name": "transfer", "arguments": {"amount": ' + "9" * 5000 + "}}</tool_call>",  # int past 4300 digits
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": "ls", "arguments": "[" + "9" * 5000 + "]"}}],
    },
    "[" * 10_000 + "f(a=1)" + "]" * 10_000,
    {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "ls", "arguments": "{bad json"}}]},
    {"role": "assistant", "content": None, "tool_calls": "not a list"},
    {"role": "assistant", "content": [{"type": "text", "text": 5}]},
    {},
]


@pytest.mark.parametrize("tool_format", ["hermes", "python", "openai"])
@pytest.mark.parametrize("kind", ["world", "bfcl"])
def test_bad_actions_never_crash_or_hang(kind, tool_format):
    env = (
        FunctionCallEnv(tool_format=tool_format, max_turns=len(BAD_ACTIONS) + 1)
        if kind == "world"
        else _row_env(tool_format)
    )
    start = time.perf_counter()
    for action in BAD_ACTIONS:
        if kind == "bfcl" or env.ended or env.task is None:
            env.reset(seed=1)
        observation, reward, _terminated, _truncated, info = env.step(action)
        assert env.observation_space.contains(observation)
        assert isinstance(reward, float) and isinstance(info["invalid_action"], bool)
        json.dumps(info)
    assert time.perf_counter() - start < 10


def test_world_parse_errors_are_invalid_actions_with_feedback():
    env = FunctionCallEnv()
    env.reset(seed=0)
    observation, _, terminated, _, info = env.step('<tool_call>{"name": broken</tool_call>')
    assert not terminated and info["invalid_action"] and "not valid JSON" in info["tool_error"]
    assert observation[-1]["role"] == "user" and "could not be parsed" in observation[-1]["content"]
