"""Property-based fuzzing of the three envs in every dialect: no model output makes `step` raise.

Actions are built from the dialects' own syntax (tags, call brackets, JSON, huge literals, answer
markers) mixed with arbitrary text, and from native tool-call dicts with arbitrary JSON-like
arguments. For every action: `step` returns, the observation lies in the declared observation
space, and the info encodes as a results row without any value needing the safe form.

The budget is fixed (derandomized, 50 examples per env and dialect, BFCL rows included, no deadline), so the test is
deterministic and takes seconds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toolgym.envs.function_call.env import FunctionCallEnv  # noqa: E402
from toolgym.envs.math.env import MathEnv  # noqa: E402
from toolgym.envs.search.env import SearchEnv  # noqa: E402
from toolgym.evals.results import ENCODING_PROBLEMS_FIELD, encode_row  # noqa: E402
from toolgym.json_values import json_safe  # noqa: E402

EXAMPLES_PER_CASE = 50
FUZZ = settings(
    max_examples=EXAMPLES_PER_CASE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOOL_NAMES = ["search", "calculator", "cd", "ls", "transfer", "get_balance", "list_accounts", "nope", ""]
FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>",
    "<information>", "\\boxed{", "}", "{", "[", "]", "(", ")", ",", "=", ":", '"', "'", "\n", "```python", "```",
    '{"name": ', '"arguments": ', "search(query=", "calculator(expression=", "f(a=", "pkg.fn(",
    "0x" + "f" * 5000, "1e309", "-0b1011", "NaN", "Infinity", "None", "True", "**kwargs", "lambda: 0",
    "__import__('os')", "10**400/3", "9**9**9", "\\frac{1}{2}", "\ud800", "\x00", "日本語",
]  # fmt: skip


def _huge_int(choice: int) -> int:
    """Integers past Python's 4,300-digit str(int) limit (built lazily: Hypothesis repr()s its constants)."""
    return [1 << 20_000, -(1 << 14_500), 10**1000][choice]


huge_ints = st.integers(0, 2).map(_huge_int)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | huge_ints,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
python_literals = st.recursive(
    st.integers().map(str)
    | st.sampled_from(["0x" + "f" * 5000, "0b" + "1" * 20_000, "1e309", "-1e309", "None", "True", "...", "b'x'", "1j"])
    | st.floats(allow_nan=False).map(repr)
    | st.text(max_size=12).map(repr),
    lambda children: (
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.lists(st.tuples(st.text(max_size=5).map(repr), children), max_size=3).map(
            lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"
        )
        | st.lists(children, min_size=1, max_size=3).map(lambda xs: "(" + ", ".join(xs) + ",)")
    ),
    max_leaves=10,
)
model_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12) | st.integers().map(str), max_size=14).map(
    "".join
)


def _dumps(value: Any) -> str:
    """JSON text of a drawn value (integers past 4,300 digits have none: those become markers)."""
    return json.dumps(json_safe(value)[0])


raw_arguments = json_values | json_values.map(_dumps) | st.text(max_size=30)


def _actions(names: list[str]) -> st.SearchStrategy:
    """Actions for an env whose tools are `names`: well-formed calls in every dialect, and noise."""
    name = st.sampled_from(names) | st.text(max_size=8)
    keyword = st.sampled_from(["query", "expression", "path", "amount", "x"]) | st.from_regex(
        r"[a-z_]{1,6}", fullmatch=True
    )
    python_call = st.builds(
        lambda n, kvs: f"{n}({', '.join(f'{k}={v}' for k, v in kvs)})",
        name,
        st.lists(st.tuples(keyword, python_literals), max_size=3),
    )
    python_turn = st.lists(python_call, min_size=1, max_size=4).map(lambda calls: "[" + ", ".join(calls) + "]")
    arguments = st.dictionaries(keyword, json_values, max_size=3)
    hermes_turn = st.lists(
        st.builds(lambda n, a: {"name": n, "arguments": a}, name, arguments | raw_arguments), min_size=1, max_size=4
    ).map(lambda calls: "".join(f"<tool_call>{_dumps(c)}</tool_call>" for c in calls))
    native_call = st.fixed_dictionaries(
        {"function": st.fixed_dictionaries({"name": name, "arguments": arguments | raw_arguments})},
        optional={"id": st.text(max_size=6) | st.none(), "type": st.just("function")},
    )
    assistant_dict = st.fixed_dictionaries(
        {"role": st.just("assistant")},
        optional={
            "content": model_text | python_turn | st.none(),
            "tool_calls": st.lists(native_call, max_size=5) | json_values,
        },
    )
    turn = python_turn | hermes_turn | assistant_dict | model_text | json_values
    return st.lists(turn, min_size=1, max_size=3)


BFCL_ROW = {  # a BFCL parallel question (format of BFCL_v4_parallel.json plus its possible answer)
    "id": "parallel_0",
    "question": [[{"role": "user", "content": "Weather in Paris and in Rome?"}]],
    "function": [
        {
            "name": "weather.get",
            "description": "Weather of a city.",
            "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ],
    "ground_truth": [{"weather.get": {"city": ["Paris"]}}, {"weather.get": {"city": ["Rome"]}}],
}

CASES = [
    ("Math-v0", "hermes", lambda: MathEnv(tools=True, tool_format="hermes")),
    ("Math-v0", "python", lambda: MathEnv(tools=True, tool_format="python")),
    ("Math-v0", "openai", lambda: MathEnv(tools=True, tool_format="openai")),
    ("Math-v0", "no tools", lambda: MathEnv()),
    ("FunctionCall-v0", "hermes", lambda: FunctionCallEnv(tool_format="hermes")),
    ("FunctionCall-v0", "python", lambda: FunctionCallEnv(tool_format="python")),
    ("FunctionCall-v0", "openai", lambda: FunctionCallEnv(tool_format="openai")),
    ("FunctionCall-v0", "bfcl python", lambda: FunctionCallEnv([BFCL_ROW], tool_format="python")),
    ("FunctionCall-v0", "bfcl openai", lambda: FunctionCallEnv([BFCL_ROW], tool_format="openai")),
    ("Search-v0", "search_r1", lambda: SearchEnv(n_entities=30)),
    ("Search-v0", "hermes", lambda: SearchEnv(n_entities=30, tool_format="hermes")),
    ("Search-v0", "python", lambda: SearchEnv(n_entities=30, tool_format="python")),
    ("Search-v0", "openai", lambda: SearchEnv(n_entities=30, tool_format="openai")),
]


def _check_episode(env: Any, seed: int, data: Any) -> None:
    observation, info = env.reset(seed=seed)
    assert env.observation_space.contains(observation)
    names = [tool.get("function", tool).get("name", "") for tool in info.get("tools") or []] + ["search", "calculator"]
    for action in data.draw(_actions(names)):
        observation, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(observation), observation[:2]
        assert isinstance(reward, float)
        row = json.loads(encode_row({"task_index": 0, "sample_index": 0, "info": info}))
        assert ENCODING_PROBLEMS_FIELD not in row, row[ENCODING_PROBLEMS_FIELD]
        if terminated or truncated:
            break


@pytest.mark.parametrize(("env_id", "dialect", "make"), CASES, ids=[f"{e}-{d}" for e, d, _ in CASES])
def test_no_action_makes_step_raise(env_id: str, dialect: str, make: Any) -> None:
    env = make()

    @FUZZ
    @given(seed=st.integers(0, 1000), data=st.data())
    def episode(seed: int, data: Any) -> None:
        _check_episode(env, seed, data)

    try:
        episode()
    finally:
        env.close()
