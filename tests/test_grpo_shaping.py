"""Reward shaping of `GRPOTrainer.shape` on hand-built batches (no model): DAPO's soft overlong
punishment and KL-in-reward, with golden numbers worked out from the formulas in the comments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from toolgym.trainers.batch import collate
from toolgym.trainers.config import GRPOConfig
from toolgym.trainers.loop import GRPOTrainer

PROMPT = 4


def trajectory(response_tokens: int, reward: float, task: str = "t") -> SimpleNamespace:
    n = PROMPT + response_tokens
    return SimpleNamespace(
        token_ids=list(range(1, n + 1)),
        loss_mask=[0] * PROMPT + [1] * response_tokens,
        logprobs=[0.0] * PROMPT + [-1.0] * response_tokens,
        reward=reward,
        truncated=False,
        prompt_length=PROMPT,
        task_id=task,
        seed=0,
        group_key=task,
    )


def shape(config: GRPOConfig, batch) -> None:
    GRPOTrainer.shape(SimpleNamespace(config=config, plugins=[]), batch)


def test_overlong_penalty_is_dapos_linear_ramp_on_the_shaped_reward_only():
    # DAPO (arXiv 2503.14476, eq. 13): L_max = 20 − 4 prompt tokens = 16, L_cache = 4. A response of
    # |y| ≤ 12 gets 0, 12 < |y| ≤ 16 gets (12 − |y|) / 4: |y| = 14 → −0.5, |y| = 16 → −1.
    config = GRPOConfig(max_episode_tokens=20, max_new_tokens=8, overlong_buffer=4, overlong_penalty=1.0)
    batch = collate([trajectory(12, 1.0), trajectory(14, 1.0), trajectory(16, 1.0), trajectory(10, 0.0)], 0)
    shape(config, batch)
    assert batch.shaped_rewards.tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert batch.outcome.tolist() == [1.0, 1.0, 1.0, 0.0]  # dynamic sampling still sees the unshaped outcome


@pytest.mark.parametrize(("estimator", "per_token"), [("k1", 0.5), ("k2", 0.125), ("k3", 0.10653066)])
def test_kl_in_reward_subtracts_beta_times_the_summed_token_kl(estimator, per_token):
    # ℓ = log π_old − log π_ref = −1 − (−1.5) = 0.5 on each of 12 policy tokens: k1 = 0.5, k2 = ½ℓ² =
    # 0.125, k3 = e^−ℓ − 1 + ℓ = 0.10653066. Shaped reward = 1 − β · 12 · k with β = 0.5.
    config = GRPOConfig(kl_coef=0.5, kl_placement="reward", kl_estimator=estimator)
    batch = collate([trajectory(12, 1.0), trajectory(12, 1.0)], 0)
    batch.ref_logprobs = torch.where(batch.loss_mask > 0, torch.tensor(-1.5), torch.tensor(0.0))
    shape(config, batch)
    assert batch.shaped_rewards.tolist() == pytest.approx([1.0 - 0.5 * 12 * per_token] * 2, rel=1e-6)
