"""The procedural tool world: generation, tool execution, and goal checking through the env."""

from __future__ import annotations

import json

import pytest

from toolgym.agents.base import AgentRequest
from toolgym.agents.scripted.function_call import baseline, oracle
from toolgym.dialects import get_dialect
from toolgym.envs.function_call.env import FunctionCallEnv
from toolgym.envs.function_call.world import generate_world_task
from toolgym.envs.function_call.world_tools import ToolWorld
from toolgym.tool_calls import ToolCall

STATE = {
    "fs": {"cwd": "/", "tree": {"docs": {"a.txt": "hello"}, "archive": {}}},
    "bank": {"accounts": {"ACC-1": {"owner": "Ann", "balance": 100}, "ACC-2": {"owner": "Bo", "balance": 5}}},
    "shop": {"stock": {"widget": 3}, "orders": {"1001": {"item": "widget", "quantity": 1}}, "next_order_id": 1002},
}


def run_episode(env: FunctionCallEnv, agent, **reset_kwargs) -> tuple[float, dict]:
    messages, info = env.reset(**reset_kwargs)
    conversation = list(messages)
    while True:
        action = agent(AgentRequest(conversation, info["tools"], info))
        conversation.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
        observation, reward, terminated, truncated, step_info = env.step(action)
        conversation.extend(observation)
        if terminated or truncated:
            return reward, step_info


def test_same_seed_gives_the_same_json_serializable_task():
    row = generate_world_task(11, difficulty=3)
    assert row == generate_world_task(11, difficulty=3)
    assert json.loads(json.dumps(row)) == row
    assert row != generate_world_task(12, difficulty=3)


def test_schema_violations_are_returned_not_raised():
    world = ToolWorld(STATE)
    outcome = world.execute("transfer", {"from_account": "ACC-1", "to_account": "ACC-2", "amount": "lots"})
    assert outcome.error_kind == "schema" and "amount" in outcome.content
    assert world.execute("transfer", {"from_account": "ACC-1"}).error_kind == "schema"
    assert world.execute("ls", {"path": "/", "color": "red"}).error_kind == "schema"
    assert world.execute("ls", ["not", "a", "dict"]).error_kind == "schema"


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("transfer", {"from_account": "ACC-2", "to_account": "ACC-1", "amount": 50}, "insufficient funds"),
        ("transfer", {"from_account": "ACC-9", "to_account": "ACC-1", "amount": 5}, "no such account"),
        ("cat", {"file_name": "/docs/missing.txt"}, "no such file"),
        ("cd", {"folder": "/nowhere"}, "no such folder"),
        ("mv", {"source": "/docs", "destination": "/docs"}, "into itself"),
        ("place_order", {"item": "widget", "quantity": 4}, "out of stock"),
        ("cancel_order", {"order_id": "9999"}, "no open order"),
    ],
)
def test_domain_errors_are_tool_errors(name, arguments, message):
    outcome = ToolWorld(STATE).execute(name, arguments)
    assert outcome.error_kind == "domain" and message in outcome.content


def test_unknown_tool_lists_the_available_ones():
    outcome = ToolWorld({"bank": STATE["bank"]}).execute("ls", {})
    assert outcome.error_kind == "unknown_tool" and "transfer" in outcome.content


def test_tools_change_the_state():
    world = ToolWorld(STATE)
    assert world.execute("cd", {"folder": "docs"}).ok
    assert world.execute("mv", {"source": "a.txt", "destination": "/archive"}).ok
    assert world.execute("transfer", {"from_account": "ACC-1", "to_account": "ACC-2", "amount": 60}).ok
    assert world.state["fs"]["tree"] == {"docs": {}, "archive": {"a.txt": "hello"}}
    assert world.state["bank"]["accounts"]["ACC-2"]["balance"] == 65
    assert STATE["fs"]["tree"]["docs"] == {"a.txt": "hello"}  # the task's initial state is not mutated


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_oracle_reaches_the_goal_on_100_seeds(difficulty):
    env = FunctionCallEnv(difficulty=difficulty)
    rewards = [run_episode(env, oracle, seed=seed)[0] for seed in range(100)]
    assert rewards == [1.0] * 100


@pytest.mark.parametrize("tool_format", ["python", "openai"])
def test_oracle_works_in_every_tool_format(tool_format):
    env = FunctionCallEnv(difficulty=2, tool_format=tool_format)
    assert [run_episode(env, oracle, seed=seed)[0] for seed in range(20)] == [1.0] * 20


def test_doing_nothing_does_not_meet_the_goal():
    env = FunctionCallEnv(difficulty=2)
    env.reset(seed=5)
    _, reward, terminated, _, info = env.step("All done!")
    assert terminated and reward == 0.0
    assert info["metrics"] == {"goal_met": False, "n_tool_calls": 0, "n_tool_errors": 0}
    assert info["stop_reason"] == "answer"


def test_baseline_only_looks_around_and_scores_zero():
    env = FunctionCallEnv(difficulty=1)
    assert sum(run_episode(env, baseline, seed=seed)[0] for seed in range(20)) == 0.0


def test_reward_is_judged_on_the_state_at_max_turns():
    env = FunctionCallEnv(difficulty=1, max_turns=1)
    _messages, info = env.reset(seed=3)
    gold = [ToolCall(c["name"], c["arguments"]) for c in info["task"]["gold_calls"]]
    _, reward, terminated, truncated, step_info = env.step(get_dialect("hermes").render(gold))
    assert truncated and not terminated and reward == 1.0
    assert step_info["stop_reason"] == "max_turns" and step_info["metrics"]["goal_met"]


def test_a_failed_call_is_a_tool_message_with_the_error():
    env = FunctionCallEnv(difficulty=1, tool_format="openai", categories=["bank"])
    env.reset(seed=0)
    action = get_dialect("openai").render(
        [ToolCall("transfer", {"from_account": "ACC-0", "to_account": "ACC-1", "amount": 1}, id="c1")]
    )
    messages, _reward, terminated, truncated, info = env.step(action)
    assert messages[0]["role"] == "tool" and messages[0]["tool_call_id"] == "c1"
    assert "no such account" in messages[0]["content"] and "no such account" in info["tool_error"]
    assert info["invalid_action"] is False  # a well-formed call the world refused
    assert not (terminated or truncated)


def test_categories_restrict_the_domains():
    env = FunctionCallEnv(difficulty=3, categories=["shop"])
    _, info = env.reset(seed=1)
    assert {t["function"]["name"] for t in info["tools"]} == {
        "check_stock",
        "list_orders",
        "place_order",
        "cancel_order",
        "restock",
    }
    with pytest.raises(ValueError, match="unknown tool-world domains"):
        FunctionCallEnv(categories=["casino"])
