"""Model text that used to crash an env: huge integer literals, deep nesting, float overflow, runaway observations.

Each class is tried in every env and dialect it can reach: the action must give an error observation
and `invalid_action` (or, for the calculator, a tool result), never an exception, and every
observation must lie inside the env's declared observation space.
"""

from __future__ import annotations

import json

import pytest

from toolgym.dialects import get_dialect
from toolgym.envs.function_call.env import FunctionCallEnv
from toolgym.envs.math.calculator import calculator
from toolgym.envs.math.env import MathEnv
from toolgym.envs.observation_limits import DEFAULT_MAX_TOOL_CALLS_PER_TURN
from toolgym.envs.search.env import SearchEnv
from toolgym.json_values import MAX_DEPTH, MAX_INT_DIGITS, argument_problem, json_safe

HUGE_HEX = "0x" + "f" * 5000  # 6,000+ decimal digits: past Python's 4,300-digit str(int) limit
HUGE_BIN = "0b" + "1" * 20_000


def _deep(depth: int) -> list:
    """A list nested `depth` levels deep, built without recursion."""
    root = current = []
    for _ in range(depth):
        child: list = []
        current.append(child)
        current = child
    return root


def _envs() -> list[tuple[str, object]]:
    return [
        ("FunctionCall world, python", FunctionCallEnv(tool_format="python")),
        ("FunctionCall world, hermes", FunctionCallEnv(tool_format="hermes")),
        ("FunctionCall world, openai", FunctionCallEnv(tool_format="openai")),
        ("Search, python", SearchEnv(tool_format="python", n_entities=20)),
        ("Search, openai", SearchEnv(tool_format="openai", n_entities=20)),
        ("Math calculator, python", MathEnv(tools=True, tool_format="python")),
        ("Math calculator, openai", MathEnv(tools=True, tool_format="openai")),
    ]


def _first_tool(info: dict) -> str:
    tools = info.get("tools") or []
    return tools[0]["function"]["name"] if tools else "search"


def _step_ok(env, action) -> tuple[list, dict]:
    observation, _, _, _, info = env.step(action)
    assert env.observation_space.contains(observation)
    json.dumps(info)  # info stays JSON-encodable (the harness writes it into a results row)
    return observation, info


@pytest.mark.parametrize("literal", [HUGE_HEX, HUGE_BIN, f"-{HUGE_HEX}", f"[{HUGE_HEX}]", f"{{'k': {HUGE_HEX}}}"])
def test_huge_python_integer_literals_are_invalid_actions_in_every_env(literal: str) -> None:
    for name, env in _envs():
        if env.tool_format != "python":
            continue
        _, reset_info = env.reset(seed=0)
        _, info = _step_ok(env, f"[{_first_tool(reset_info)}(query={literal}, path={literal})]")
        assert info["invalid_action"], name
        # Refused by the argument check, or earlier by the decoder's own bound on folded arithmetic (`-0x…`).
        assert f"more than {MAX_INT_DIGITS} digits" in info["tool_error"] or "bits" in info["tool_error"], name


@pytest.mark.parametrize(
    "arguments",
    [
        {"query": int(HUGE_HEX, 16)},  # an in-process agent hands over Python objects, no text limit applies
        {"query": _deep(100_000)},  # RecursionError inside jsonschema's error message before
        {"query": "ok", "extra": {(1, 2): "tuple key"}},
        {"query": object()},
    ],
    ids=["huge-int", "nested-1e5", "tuple-key", "object"],
)
def test_in_process_native_calls_with_unencodable_arguments_are_invalid_actions(arguments: dict) -> None:
    for name, env in _envs():
        _, reset_info = env.reset(seed=0)
        call = {"id": "c1", "type": "function", "function": {"name": _first_tool(reset_info), "arguments": arguments}}
        _, info = _step_ok(env, {"role": "assistant", "content": "", "tool_calls": [call]})
        assert info["invalid_action"], name


class _Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    "name",
    [int(HUGE_HEX, 16), _deep(100_000), _Unshowable(), ["search"], 7],
    ids=["huge-int", "nested-1e5", "raising-repr", "list", "int"],
)
def test_a_tool_call_name_that_is_not_a_string_is_an_invalid_action(name: object) -> None:
    """The error message names the bad value without `repr`-ing it (repr itself raises on these)."""
    for label, env in _envs():
        env.reset(seed=0)
        _, info = _step_ok(env, {"role": "assistant", "tool_calls": [{"function": {"name": name, "arguments": {}}}]})
        assert info["invalid_action"] and "non-empty string 'name'" in info["tool_error"], label


@pytest.mark.parametrize("dialect", ["hermes", "python", "openai"])
def test_every_dialect_refuses_huge_and_deep_values_at_parse_time(dialect: str) -> None:
    deep_json = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    texts = {
        "hermes": f'<tool_call>{{"name": "f", "arguments": {{"a": {deep_json}}}}}</tool_call>',
        "python": f"f(a={HUGE_HEX})",
        "openai": {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": f'{{"a": {deep_json}}}'}}],
        },
    }
    parsed = get_dialect(dialect).parse(texts[dialect])
    assert parsed.tool_calls == [] and len(parsed.errors) == 1


def test_argument_values_within_the_limits_pass() -> None:
    fine = {"n": 10**999, "nested": _deep(MAX_DEPTH - 1), "x": [1.5, None, True, "é"], "d": {1: "int key"}}
    assert argument_problem(fine) is None
    assert argument_problem({"n": 10**1000}) is not None


@pytest.mark.parametrize(
    "expression", ["10**400/3", "1/3*10**400", "round(2**3000/3, 5)", "-10**400/7", "1/(3*10**400)"]
)
def test_calculator_results_past_float_range_are_answered_not_raised(expression: str) -> None:
    text = calculator(expression)
    approximation = text.rsplit("≈ ", 1)[1].rstrip(")")
    assert "e+" in approximation or "e-" in approximation


def test_calculator_overflow_through_the_env_is_a_tool_result() -> None:
    env = MathEnv(tools=True, tool_format="hermes")
    env.reset(seed=0)
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "round(2**3000/3, 5)"}}</tool_call>'
    observation, info = _step_ok(env, call)
    assert info["tool_error"] is None and "e+902" in observation[0]["content"]


def test_ten_thousand_native_calls_give_an_observation_inside_the_space() -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "search", "arguments": "{broken"}}
        for i in range(10_000)
    ]
    for env in (SearchEnv(tool_format="openai", n_entities=20), FunctionCallEnv(tool_format="openai")):
        env.reset(seed=0)
        observation, info = _step_ok(env, {"role": "assistant", "content": None, "tool_calls": calls})
        assert info["invalid_action"]
        assert len(observation) <= DEFAULT_MAX_TOOL_CALLS_PER_TURN + 4


def test_calls_past_the_per_turn_cap_are_not_run() -> None:
    env = FunctionCallEnv(tool_format="hermes", max_tool_calls_per_turn=3)
    _, reset_info = env.reset(seed=0)
    tool = _first_tool(reset_info)
    action = "\n".join(f'<tool_call>{{"name": "{tool}", "arguments": {{}}}}</tool_call>' for _ in range(10))
    _, info = _step_ok(env, action)
    assert info["n_tool_calls"] == 3
    assert "7 tool call(s) past the limit of 3 per turn were not run" in info["tool_error"]


def test_a_huge_document_is_cut_with_a_visible_marker() -> None:
    rows = [{"_id": "q1", "question": "What is big?", "answer": "big", "context": [["Big", ["big " * 300_000]]]}]
    env = SearchEnv(rows, max_observation_chars=5_000)
    env.reset(seed=0)
    observation, info = _step_ok(env, "<search>big</search>")
    assert info["observation_truncated"]
    assert sum(len(m["content"]) for m in observation) <= 5_000
    assert "[truncated: an observation holds at most 5000 characters]" in observation[-1]["content"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_observation_chars": 10}, ValueError),
        ({"max_tool_calls_per_turn": 0}, ValueError),
        ({"max_tool_calls_per_turn": 2.5}, TypeError),
    ],
)
def test_observation_limits_are_checked_at_construction(kwargs: dict, error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        FunctionCallEnv(**kwargs)


def test_json_safe_marks_and_lists_what_it_replaced() -> None:
    cycle: list = []
    cycle.append(cycle)
    safe, problems = json_safe({"big": 1 << 20_000, "nan": float("nan"), (1, 2): "k", "cycle": cycle, "s": {3}})
    text = json.dumps(safe, allow_nan=False)
    assert json.loads(text)["nan"] is None and json.loads(text)["s"] == [3]
    assert len(problems) == 3  # the integer, the tuple key and the cycle (cut at the depth limit)
    assert "<unencodable: an integer of 20001 bits>" in text
