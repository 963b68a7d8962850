"""The loss on real multi-turn rollouts: split-invariant gradients, order-free group keys, no gradient on tool tokens.

Rollouts come from the tiny chat model on Search-v0 (two turns, Search-R1 layout): its random
turns are mostly invalid actions, so the env appends corrective messages, which sit in the token
stream with loss_mask 0, exactly like search results.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from toolgym.agents.base import SamplingParams
from toolgym.agents.rollout import collect_rollouts
from toolgym.envs.pool import EnvPool
from toolgym.trainers.batch import collate
from toolgym.trainers.config import GRPOConfig
from toolgym.trainers.grpo import PolicyOutput, accumulate_gradients, advantages, micro_batch_loss, policy_forward
from toolgym.trainers.objective import AGGREGATIONS, all_equal_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trajectories(engine):
    sampling = SamplingParams(temperature=1.0, max_tokens=12, seed=3)
    with EnvPool.make("toolgym:Search-v0", 6, max_turns=2) as pool:
        return collect_rollouts(
            engine, engine.tokenizer, pool, seeds=[0, 1], sampling=sampling, max_episode_tokens=1024, group_size=3
        )


def make_batch(trajectories, engine, seed=0):
    """A batch with varied rewards, stale old logprobs (ratios ≠ 1, some clipped) and a reference."""
    batch = collate(trajectories, engine.pad_token_id)
    generator = torch.Generator().manual_seed(seed)
    batch.shaped_rewards = torch.rand(batch.size, generator=generator)
    batch.advantages = advantages(batch, GRPOConfig(num_generations=3))
    with torch.no_grad():
        logprobs, _ = policy_forward(engine.model, batch, 1.0)
    batch.old_logprobs = (logprobs + 0.3 * torch.randn(logprobs.shape, generator=generator)) * batch.loss_mask
    batch.ref_logprobs = (logprobs + 0.2 * torch.randn(logprobs.shape, generator=generator)) * batch.loss_mask
    return batch


def gradients(model, batch, config):
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, batch, config)
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def test_rollouts_hold_env_tokens_with_loss_mask_zero(trajectories):
    spans = [(t, span) for t in trajectories for span in t.observation_spans]
    assert spans, "expected multi-turn episodes with env observations in the token stream"
    for trajectory, (start, end) in spans:
        assert end > start and not any(trajectory.loss_mask[start:end])


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gradient_does_not_depend_on_the_micro_batch_split(engine, trajectories, aggregation):
    batch = make_batch(trajectories, engine)
    base = dict(kl_coef=0.1, entropy_coef=0.01, loss_aggregation=aggregation, num_generations=3, clip_eps_high=0.28)
    reference = gradients(engine.model, batch, GRPOConfig(micro_batch_size=batch.size, **base))
    assert any(g.abs().sum() > 0 for g in reference.values())
    for micro_batch_size in (1, 2, 4):
        split = gradients(engine.model, batch, GRPOConfig(micro_batch_size=micro_batch_size, **base))
        for name, grad in reference.items():
            # float32 sums in another order differ in the last bits: compare against the tensor's scale.
            error = float((split[name] - grad).abs().max())
            assert error <= 1e-5 * float(grad.abs().max()) + 1e-9, (aggregation, micro_batch_size, name, error)
    engine.model.zero_grad(set_to_none=True)


@pytest.mark.parametrize(
    ("aggregation", "per_row"), [("token_sum_norm", 16.0), ("seq_mean_token_sum", 1.0), ("seq_mean_token_mean", 1.0)]
)
def test_per_row_normalizers_count_failed_and_masked_rows(engine, trajectories, aggregation, per_row):
    # Row 1 failed (an env error: weight 0), row 0 masked (mask_truncated: weight 0). Dr. GRPO's
    # divisor is still all 6 rows × 16 (TRL dr_grpo: B × max_completion_length), whatever the split.
    played = list(trajectories)
    played[1] = dataclasses.replace(played[1], failed=True)
    batch = make_batch(played, engine)
    batch.sample_weights[0] = 0.0
    assert batch.sample_weights.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    for micro_batch_size in (1, 4, 6):
        config = GRPOConfig(
            num_generations=3, loss_aggregation=aggregation, token_sum_constant=16, micro_batch_size=micro_batch_size
        )
        metrics = accumulate_gradients(engine.model, batch, config)
        assert metrics["normalizer"] == 6 * per_row
    engine.model.zero_grad(set_to_none=True)


def test_a_per_micro_batch_mean_would_break_the_invariance(engine, trajectories):
    # The bug class the step normalizer prevents: normalizing each micro-batch by its own tokens.
    batch = make_batch(trajectories, engine)
    config = GRPOConfig(num_generations=3)

    def per_micro_mean_grad(size):
        engine.model.zero_grad(set_to_none=True)
        for start in range(0, batch.size, size):
            micro = batch.rows(start, min(start + size, batch.size))
            logprobs, _ = policy_forward(engine.model, micro, 1.0)
            loss, _ = micro_batch_loss(PolicyOutput(logprobs, None, float(micro.loss_mask.sum())), micro, config)
            loss.backward()
        return engine.model.model.embed_tokens.weight.grad.clone()

    one, whole = per_micro_mean_grad(1), per_micro_mean_grad(batch.size)
    assert float((one - whole).abs().max()) > 1e-2 * float(whole.abs().max())
    engine.model.zero_grad(set_to_none=True)


def test_tool_and_prompt_tokens_get_zero_gradient(engine, trajectories):
    batch = make_batch(trajectories, engine)
    config = GRPOConfig(kl_coef=0.1, entropy_coef=0.01, num_generations=3, rollout_correction="token_truncate")
    with torch.no_grad():
        logprobs, entropy = policy_forward(engine.model, batch, 1.0, with_entropy=True)
    logprobs.requires_grad_(True)
    entropy.requires_grad_(True)
    loss, _ = micro_batch_loss(PolicyOutput(logprobs, entropy, 10.0), batch, config)
    loss.backward()
    masked = batch.loss_mask == 0
    assert float(logprobs.grad[masked].abs().max()) == 0.0
    assert float(entropy.grad[masked].abs().max()) == 0.0
    assert float(logprobs.grad[~masked].abs().max()) > 0.0


def test_advantages_follow_the_task_not_the_batch_order(engine, trajectories):
    batch = make_batch(trajectories, engine)
    rewards = dict(zip(map(id, trajectories), batch.shaped_rewards.tolist()))
    expected = dict(zip(map(id, trajectories), batch.advantages.sum(-1).tolist()))
    shuffled = list(trajectories)
    random.Random(7).shuffle(shuffled)
    again = collate(shuffled, engine.pad_token_id)
    again.shaped_rewards = torch.tensor([rewards[id(t)] for t in shuffled])
    got = advantages(again, GRPOConfig(num_generations=3)).sum(-1).tolist()
    for trajectory, value in zip(shuffled, got):
        assert value == pytest.approx(expected[id(trajectory)], abs=1e-6)
    flags_before = dict(zip(map(id, trajectories), all_equal_groups(batch.shaped_rewards, batch.group_ids).tolist()))
    flags_after = all_equal_groups(again.shaped_rewards, again.group_ids).tolist()
    assert flags_after == [flags_before[id(t)] for t in shuffled]


def test_group_keys_come_from_the_task_and_seed(trajectories):
    keys = [t.group_key for t in trajectories]
    assert keys[0] == keys[1] == keys[2] and keys[3] == keys[4] == keys[5] and keys[0] != keys[3]
    assert collate(trajectories, 0).group_ids.tolist() == [0, 0, 0, 1, 1, 1]


def test_trainer_logprobs_match_the_engine_logprobs_on_policy_tokens(engine, trajectories):
    # The engine scored each sampled token while generating (left padding, KV cache); the trainer
    # rescored it (right padding, one pass, logits only where policy tokens follow). Same function,
    # same weights: they may differ only by float rounding.
    batch = collate(trajectories, engine.pad_token_id)
    with torch.no_grad():
        logprobs, _ = policy_forward(engine.model, batch, 1.0)
    mask = batch.loss_mask.bool()
    assert mask.sum() > 20
    assert float((logprobs[mask] - batch.rollout_logprobs[mask]).abs().max()) < 1e-4
