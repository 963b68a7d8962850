"""Scripted Math-v0 agents: the oracle must score 1.0 everywhere (else a parser or scorer is wrong)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from toolgym.agents.base import AgentRequest
from toolgym.agents.scripted.math import baseline, oracle
from toolgym.envs.math.answers import extract_answer
from toolgym.envs.math.env import MathEnv
from toolgym.envs.math.readers import load_rows, task_from_row
from toolgym.envs.math.scoring import MathVerifier


@pytest.fixture(scope="module")
def strict_verifier() -> Iterator[MathVerifier]:
    """No string fast path: math-verify itself must accept every oracle answer."""
    verifier = MathVerifier(string_match=False)
    yield verifier
    verifier.close()


def play(env: MathEnv, policy, **reset_kwargs) -> tuple[float, dict]:
    observation, info = env.reset(**reset_kwargs)
    messages = list(observation)
    while True:
        action = policy(AgentRequest(messages=messages, tools=info["tools"], env_info=info))
        messages.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
        observation, reward, terminated, truncated, step_info = env.step(action)
        messages.extend(observation)
        if terminated or truncated:
            return reward, step_info


def oracle_pairs(rows: list[dict]) -> list[tuple[str, str]]:
    """(gold, what the oracle's reply extracts to) for each row, without stepping an env."""
    pairs = []
    for row in rows:
        reply = oracle(AgentRequest(messages=[], env_info={"task": row, "tools": [], "tool_format": "hermes"}))
        pairs.append((task_from_row(row).answer, extract_answer(reply).text))
    return pairs


def test_oracle_on_all_math500_rows(shared_data: Path, strict_verifier: MathVerifier) -> None:
    env = MathEnv("math500")
    rewards = [play(env, oracle, options={"index": i})[0] for i in range(len(env.tasks))]
    rows, _ = load_rows("math500")
    verdicts = strict_verifier.verify_many(oracle_pairs(rows))  # one round trip for all 500
    assert len(rewards) == 500 and sum(rewards) == 500.0
    assert [r.correct for r in verdicts] == [True] * 500


def test_oracle_on_gsm8k_test_first_200(shared_data: Path, strict_verifier: MathVerifier) -> None:
    env = MathEnv("gsm8k")
    rewards = [play(env, oracle, options={"index": i})[0] for i in range(200)]
    rows, _ = load_rows("gsm8k")
    verdicts = strict_verifier.verify_many(oracle_pairs(rows[:200]))
    assert sum(rewards) == 200.0
    assert all(r.correct for r in verdicts)


@pytest.mark.parametrize("difficulty", [1, 3, 5])
def test_oracle_on_the_procedural_world(difficulty: int, strict_verifier: MathVerifier) -> None:
    env = MathEnv(difficulty=difficulty)
    rewards = [play(env, oracle, seed=seed)[0] for seed in range(200)]
    rows = [env.tasks[i] for i in range(200)]
    verdicts = strict_verifier.verify_many(oracle_pairs(rows))
    assert sum(rewards) == 200.0
    assert all(r.correct for r in verdicts)


@pytest.mark.parametrize("tool_format", ["hermes", "python", "openai"])
def test_oracle_with_tools_calls_then_answers(tool_format: str) -> None:
    env = MathEnv(tools=True, tool_format=tool_format)
    results = [play(env, oracle, seed=seed) for seed in range(10)]
    assert all(reward == 1.0 and info["turn"] == 2 for reward, info in results)


@pytest.mark.parametrize("tools", [False, True])
def test_baseline_plays_without_the_gold(tools: bool) -> None:
    env = MathEnv(tools=tools)
    results = [play(env, baseline, seed=seed) for seed in range(50)]
    assert all(info["metrics"]["answer_found"] for _, info in results)
    assert sum(reward for reward, _ in results) < 50  # a heuristic, not an oracle


def test_baseline_never_reads_the_task_row() -> None:
    request = AgentRequest(
        messages=[{"role": "user", "content": "Ann has 3 apples and buys 4 more. How many?"}],
        env_info={"tools": [], "tool_format": "hermes", "task": {"problem": "x", "answer": "7"}},
    )
    assert baseline(request) == "\\boxed{4}"
