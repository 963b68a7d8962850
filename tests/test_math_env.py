"""Math-v0: the gymnasium contract, the tool loop, and a battery of bad actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gymnasium.utils.env_checker import check_env

from toolgym.dialects import get_dialect
from toolgym.envs.base import EpisodeError
from toolgym.envs.math.env import MathEnv
from toolgym.tool_calls import ToolCall

ROW = {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "answer": "\\frac{3}{4}", "unique_id": "toy/1"}


def calculator_call(expression: object, tool_format: str = "hermes") -> str | dict:
    return get_dialect(tool_format).render([ToolCall("calculator", {"expression": expression}, id="call_0")])


@pytest.mark.parametrize("kwargs", [{}, {"tools": True}, {"tools": "calculator", "tool_format": "openai"}])
def test_check_env_passes(kwargs: dict) -> None:
    check_env(MathEnv(**kwargs), skip_render_check=True)


def test_gym_make_in_a_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('toolgym:Math-v0')\n"
        "obs, info = env.reset(seed=3)\n"
        "print(info['env'], obs[1]['role'], len(info['tools']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Math-v0", "user", "0"]


def test_same_seed_same_task() -> None:
    first, second = MathEnv(difficulty=3), MathEnv(difficulty=3)
    obs_a, info_a = first.reset(seed=42)
    obs_b, info_b = second.reset(seed=42)
    assert obs_a == obs_b and info_a["task_id"] == info_b["task_id"]
    assert first.reset(seed=43)[1]["task_id"] != info_a["task_id"]


def test_reset_info_carries_task_and_tools() -> None:
    _, info = MathEnv(tools=True).reset(options={"task": ROW})
    assert info["task"] == ROW and info["task_id"] == "toy/1"
    assert [tool["function"]["name"] for tool in info["tools"]] == ["calculator"]


def test_correct_answer_scores_one_without_tools() -> None:
    env = MathEnv()
    env.reset(options={"task": ROW})
    obs, reward, terminated, truncated, info = env.step("It is $\\boxed{0.75}$.")
    assert (obs, reward, terminated, truncated) == ([], 1.0, True, False)
    assert info["metrics"]["correct"] and info["gold"] == "\\frac{3}{4}" and info["stop_reason"] == "answer"


def test_wrong_unparseable_and_missing_answers_are_told_apart() -> None:
    env = MathEnv()
    outcomes = {}
    for name, action in {"wrong": "\\boxed{0.7}", "unparseable": "\\boxed{}{}", "missing": "about 0.75"}.items():
        env.reset(options={"task": ROW})
        _, reward, _, _, info = env.step(action)
        metrics = info["metrics"]
        outcomes[name] = (reward, metrics["answer_found"], metrics["parse_failure"])
    assert outcomes == {"wrong": (0.0, True, False), "unparseable": (0.0, True, True), "missing": (0.0, False, False)}


def test_gsm8k_task_row_is_accepted() -> None:
    env = MathEnv()
    env.reset(options={"task": {"question": "2 + 2?", "answer": "2 + 2 = 4\n#### 4"}})
    assert env.step("\\boxed{4}")[1] == 1.0


@pytest.mark.parametrize("tool_format", ["hermes", "python", "openai"])
def test_tool_loop_then_answer(tool_format: str) -> None:
    env = MathEnv(tools=True, tool_format=tool_format)
    env.reset(options={"task": ROW})
    obs, reward, terminated, _, info = env.step(calculator_call("1/2 + 1/4", tool_format))
    assert not terminated and reward == 0.0
    assert obs[0]["role"] == "tool" and obs[0]["content"].startswith("3/4")
    assert info["tool_calls"][0]["name"] == "calculator" and info["tool_error"] is None
    _, reward, terminated, _, info = env.step("So \\boxed{\\frac{3}{4}}")
    assert (reward, terminated, info["turn"]) == (1.0, True, 2)


def test_turn_without_call_or_answer_gets_a_correction() -> None:
    env = MathEnv(tools=True)
    env.reset(options={"task": ROW})
    obs, _, terminated, _, info = env.step("hmm, let me think")
    assert not terminated and info["invalid_action"]
    assert obs[0]["role"] == "user" and "boxed" in obs[0]["content"]


def test_turn_budget_truncates_with_final_metrics() -> None:
    env = MathEnv(tools=True, max_turns=2)
    env.reset(options={"task": ROW})
    env.step(calculator_call("1+1"))
    obs, reward, terminated, truncated, info = env.step(calculator_call("2+2"))
    assert (obs, reward, terminated, truncated) == ([], 0.0, False, True)
    assert info["stop_reason"] == "max_turns" and info["metrics"]["answer_found"] is False


def test_step_after_the_end_raises_a_clear_error() -> None:
    env = MathEnv()
    env.reset(options={"task": ROW})
    env.step("\\boxed{1}")
    with pytest.raises(EpisodeError, match="reset"):
        env.step("\\boxed{1}")


def test_bad_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="tools"):
        MathEnv(tools="search")
    with pytest.raises(ValueError, match="tool_format"):
        MathEnv(tools=True, tool_format="search_r1")


BAD_ACTIONS = [
    bytes(range(256)).decode("latin-1"),
    "x" * 1_000_000,
    "\\boxed{" + "9" * 1_000_000 + "}",
    "日本語 😀 \\boxed{π}",
    "<tool_call>{not json</tool_call>",
    "<tool_call>" * 10_000,
    '<tool_call>{"name": "rm", "arguments": {"path": "/"}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expression": 5}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expr": "1+1", "x": 1}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expression": "\\"\'\\"\'"}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expression": "__import__(\'os\').system(\'ls\')"}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expression": "9**9**9"}}</tool_call>',
    '<tool_call>{"name": "calculator", "arguments": {"expression": '
    + "9" * 5000
    + "}}</tool_call>",  # int past 4300 digits
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{9^{9^{9}}}",
    "\\boxed{2^{99999999999}}",
    "<answer>" + "{" * 5000 + "</answer>",
    {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "calculator", "arguments": "{bad"}}]},
    {"role": "assistant", "content": None, "tool_calls": "not a list"},
    {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{3/4}"}]},
    {"unexpected": "keys"},
]


@pytest.mark.parametrize("tools", [False, True])
def test_bad_action_battery_never_crashes_or_hangs(tools: bool) -> None:
    env = MathEnv(tools=tools, verify_timeout_s=2.0)
    for action in BAD_ACTIONS:
        env.reset(options={"task": ROW})
        started = time.monotonic()
        obs, reward, _, _, info = env.step(action)
        assert time.monotonic() - started < 4.0, repr(action)[:80]
        assert isinstance(reward, float) and isinstance(obs, list)
        assert env.observation_space.contains(obs)
        json.dumps(info)  # info stays plain data


def test_bad_tool_calls_are_reported_as_tool_errors() -> None:
    env = MathEnv(tools=True)
    env.reset(options={"task": ROW})
    obs, _, _, _, info = env.step('<tool_call>{"name": "rm", "arguments": {}}</tool_call>')
    assert info["invalid_action"] and "unknown tool" in info["tool_error"]
    assert obs[0]["role"] == "tool" and obs[0]["content"].startswith("Error:")
    _, _, _, _, info = env.step(calculator_call(12))
    assert info["invalid_action"] and "string" in info["tool_error"]
    _, _, _, _, info = env.step(calculator_call("1/0"))
    assert not info["invalid_action"] and "division by zero" in info["tool_error"]


def test_envs_stepped_from_threads_share_the_verifier() -> None:
    envs = [MathEnv() for _ in range(8)]
    for env in envs:
        env.reset(options={"task": ROW})
    with ThreadPoolExecutor(max_workers=8) as pool:  # "0.75" is not the gold string: math-verify decides
        rewards = list(pool.map(lambda env: env.step("\\boxed{0.75}")[1], envs))
    assert rewards == [1.0] * 8


def test_an_unparsable_huge_gold_answer_is_logged_in_one_short_line(caplog) -> None:
    """A task row's gold answer (user input, any size) is cut in the warning, not logged whole."""
    env = MathEnv()
    env.reset(options={"task": {"id": "m" * 10_000, "problem": "1+1?", "answer": "x" * 1_000_000}})
    with caplog.at_level("WARNING", logger="toolgym.envs.math.env"):
        env.step("<answer>2</answer>")
    assert caplog.records and all(len(record.getMessage()) < 1_000 for record in caplog.records)
