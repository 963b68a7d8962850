"""Scripted Search-v0 agents: the oracle is perfect, the search-then-answer baseline is non-trivial."""

from __future__ import annotations

import pytest

from toolgym.agents.base import AgentRequest
from toolgym.agents.scripted import search as scripted
from toolgym.envs.search.env import SearchEnv


def run_episode(env: SearchEnv, agent, **reset_kwargs) -> tuple[float, dict]:
    """Play one episode, feeding the agent the whole conversation each turn."""
    messages, info = env.reset(**reset_kwargs)
    conversation = list(messages)
    while True:
        action = agent(AgentRequest(messages=conversation, tools=info["tools"], env_info=info))
        conversation.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
        observation, reward, terminated, truncated, step_info = env.step(action)
        conversation.extend(observation)
        if terminated or truncated:
            return reward, step_info


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes", "openai", "python"])
def test_oracle_scores_one_on_the_procedural_world(tool_format):
    env = SearchEnv(tool_format=tool_format)
    rewards = [run_episode(env, scripted.oracle, seed=seed)[0] for seed in range(100)]
    assert rewards == [1.0] * 100


def test_oracle_scores_one_on_all_500_hotpotqa_questions(shared_data):
    env = SearchEnv(dataset="hotpotqa")
    rewards = [run_episode(env, scripted.oracle, options={"index": i})[0] for i in range(len(env.tasks))]
    assert len(rewards) == 500 and sum(rewards) == 500


def test_oracle_scores_one_on_the_hotpotqa_train_sample(shared_data):
    env = SearchEnv(dataset="hotpotqa:train_sample", tool_format="hermes")
    rewards = [run_episode(env, scripted.oracle, options={"index": i})[0] for i in range(len(env.tasks))]
    assert rewards == [1.0] * 100


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes", "openai"])
def test_baseline_answers_one_hop_questions(tool_format):
    env = SearchEnv(hops=1, tool_format=tool_format)
    results = [run_episode(env, scripted.baseline, seed=seed) for seed in range(100)]
    em = sum(reward for reward, _ in results) / len(results)
    assert all(info["metrics"]["n_searches"] == 1 for _, info in results)
    assert em >= 0.5  # 0.85 on seeds 0..199 when written


def test_baseline_does_not_read_the_gold():
    env = SearchEnv(hops=1)
    messages, info = env.reset(seed=3)
    blinded = {**info, "task": {"question": "hidden", "answers": ["hidden"]}}
    action = scripted.baseline(AgentRequest(messages=list(messages), env_info=blinded))
    assert action == f"<search> {info['task']['question']} </search>"


def test_extract_answer_prefers_years_for_when_questions():
    passages = [
        ("Ada Quill", "Ada Quill is a painter. Ada Quill was born in Velmora. Records give 1874 as her birth year.")
    ]
    assert scripted.extract_answer("When was Ada Quill born?", passages) == "1874"
    assert scripted.extract_answer("Where was Ada Quill born?", passages) == "Velmora"
