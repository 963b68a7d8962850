"""Step metrics under TRL's / veRL's names, on hand-built trajectories (TRL's mocked tool-loop case)."""

from __future__ import annotations

import pytest

from toolgym.agents.trajectory import Trajectory
from toolgym.trainers.step_metrics import rollout_metrics


def episode(turn_infos, reward, length=10, prompt=4, truncated=False):
    return Trajectory(
        messages=[],
        token_ids=list(range(length)),
        loss_mask=[0] * prompt + [1] * (length - prompt),
        logprobs=[0.0] * length,
        turn_spans=[(prompt, length)] * len(turn_infos),
        reward=reward,
        turn_infos=turn_infos,
        prompt_length=prompt,
        truncated=truncated,
    )


def test_tool_call_and_failure_frequencies():
    # TRL's test: one valid call, one failing call, one turn without a call.
    # call_frequency = episodes with a call / episodes = 2/3; failure_frequency = failed calls / calls = 1/2.
    trajectories = [
        episode([{"tool_calls": [{"name": "search"}]}, {}], 1.0),
        episode([{"tool_calls": [{"name": "search"}], "tool_error": "bad arguments"}, {}], 0.0),
        episode([{}], 0.0, truncated=True),
    ]
    metrics = rollout_metrics(trajectories)
    assert metrics["tools/call_frequency"] == pytest.approx(2 / 3)
    assert metrics["tools/failure_frequency"] == pytest.approx(1 / 2)
    assert metrics["reward/mean"] == pytest.approx(1 / 3)
    assert metrics["turns/mean"] == pytest.approx(5 / 3)
    assert metrics["response_length/mean"] == 6 and metrics["truncated/frac"] == pytest.approx(1 / 3)


def test_failed_episodes_are_counted_and_left_out_of_the_reward():
    ok, failed = episode([{}], 1.0), episode([], 0.0)
    failed.failed = True
    metrics = rollout_metrics([ok, failed], prefix="eval/")
    assert metrics["eval/failed/count"] == 1.0 and metrics["eval/reward/mean"] == 1.0
