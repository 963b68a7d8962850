"""Golden numbers for every formula of the GRPO objective, each worked out by hand in the comment.

Sources of the formulas: trainer notes §2 (TRL grpo_trainer.py, veRL core_algos.py, OpenRLHF), the
GRPO / Dr. GRPO / DAPO / GSPO papers. The expected values below are arithmetic on the stated inputs,
not outputs of the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from toolgym.trainers.objective import (
    aggregate,
    all_equal_groups,
    clipped_policy_loss,
    group_advantages,
    importance_ratio,
    kl_divergence,
    rollout_correction_weights,
    step_normalizer,
)


def approx(values, expected, tol=1e-5):
    return torch.allclose(
        torch.as_tensor(values, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), atol=tol
    )


# --- advantages ---------------------------------------------------------------------------------------


def test_group_std_advantage_of_one_group():
    # r = [1, 0, 0, 1]: mean 0.5; Bessel std = sqrt(4 · 0.25 / 3) = sqrt(1/3) = 0.577350;
    # Â = ±0.5 / 0.577350 = ±0.866025.
    rewards, groups = torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([0, 0, 0, 0])
    assert approx(
        group_advantages(rewards, groups, "mean", "group_std", eps=0.0), [0.866025, -0.866025, -0.866025, 0.866025]
    )


def test_group_std_uses_biased_std_when_asked():
    # Same rewards, population std = 0.5, so Â = ±1.
    rewards, groups = torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.zeros(4, dtype=torch.long)
    advantages = group_advantages(rewards, groups, "mean", "group_std", eps=0.0, std_unbiased=False)
    assert approx(advantages, [1.0, -1.0, -1.0, 1.0])


def test_rloo_baseline_leaves_the_sample_out():
    # r = [1, 0, 0]: b_1 = (0+0)/2 = 0 → 1; b_2 = (1+0)/2 = 0.5 → −0.5; b_3 likewise −0.5 (no scaling).
    advantages = group_advantages(torch.tensor([1.0, 0.0, 0.0]), torch.zeros(3, dtype=torch.long), "rloo", "none")
    assert approx(advantages, [1.0, -0.5, -0.5])


def test_dr_grpo_no_scaling_is_reward_minus_group_mean():
    # Groups [3, 1] and [2, 2, 5]: means 2 and 3 → [1, −1] and [−1, −1, 2].
    rewards, groups = torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0]), torch.tensor([0, 0, 1, 1, 1])
    assert approx(group_advantages(rewards, groups, "mean", "none"), [1.0, -1.0, -1.0, -1.0, 2.0])


def test_batch_std_scaling_divides_group_centred_rewards_by_the_batch_std():
    # Groups [1, 0] and [1, 1]: centred [0.5, −0.5, 0, 0]. Batch [1, 0, 1, 1]: mean 0.75, squared
    # deviations 0.0625 + 0.5625 + 0.0625 + 0.0625 = 0.75, /3 = 0.25, std 0.5 → Â = [1, −1, 0, 0].
    rewards, groups = torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    assert approx(group_advantages(rewards, groups, "mean", "batch_std", eps=0.0), [1.0, -1.0, 0.0, 0.0])


def test_singleton_and_all_equal_groups_get_zero_not_the_raw_reward():
    # Group 0 has one member (veRL would give Â = r = 1); group 1 is all 1s; both must be 0.
    rewards, groups = torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0, 1, 1, 1])
    assert approx(group_advantages(rewards, groups), [0.0, 0.0, 0.0, 0.0])


def test_all_equal_groups_are_exactly_zero_even_without_eps():
    # eps = 0 used to give 0/0 = NaN for an all-equal group (std 0), and [0.1] × 3 has a rounded mean
    # (0.30000000000000004 / 3), so r − mean was ~1e-17, not 0. Both groups must be exactly 0.
    rewards, groups = torch.tensor([1.0, 1.0, 0.1, 0.1, 0.1]), torch.tensor([0, 0, 1, 1, 1])
    for scale in ("group_std", "batch_std", "none"):
        assert group_advantages(rewards[:2], groups[:2], scale=scale, eps=0.0).tolist() == [0.0, 0.0]
        assert group_advantages(rewards, groups, scale=scale, eps=0.0).tolist() == [0.0] * 5


def test_nan_rewards_are_left_out_of_the_group_statistics():
    # [1, NaN, 0]: scored members [1, 0], mean 0.5, std sqrt(0.5) = 0.707107 → ±0.707107; NaN → 0.
    rewards, groups = torch.tensor([1.0, math.nan, 0.0]), torch.zeros(3, dtype=torch.long)
    assert approx(group_advantages(rewards, groups, eps=0.0), [0.707107, 0.0, -0.707107])


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_rewards_are_left_out_like_nan(bad):
    # [1, ±inf, 0] scores like [1, NaN, 0] (±0.707107, bad → 0, as above); before, the inf made the
    # group's mean inf and every advantage of the group NaN, and 0·NaN poisoned the whole step loss.
    rewards, groups = torch.tensor([1.0, bad, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 1, 1])
    advantages = group_advantages(rewards, groups, eps=0.0)
    assert approx(advantages, [0.707107, 0.0, -0.707107, 0.0, 0.0])
    # batch_std: the finite rewards [1, 0, 1, 1] have std 0.5, so group 0's ±0.5 becomes ±1.
    assert approx(group_advantages(rewards, groups, scale="batch_std"), [1.0, 0.0, -1.0, 0.0, 0.0])
    assert all_equal_groups(torch.tensor([bad, 1.0, 1.0]), torch.zeros(3, dtype=torch.long)).all()


def test_all_equal_groups_uses_a_range_test_that_works_for_continuous_rewards():
    # Group 0: [0.3, 0.3] equal; group 1: [0.3, 0.30001] not equal (spread 1e-5 > tolerance 1e-9).
    flags = all_equal_groups(torch.tensor([0.3, 0.3, 0.3, 0.30001]), torch.tensor([0, 0, 1, 1]))
    assert flags.tolist() == [True, True, False, False]


# --- ratios, clipping, dual clip ---------------------------------------------------------------------


def test_token_ratio_and_gspo_sequence_ratio():
    # log ρ = [0.2, 0.4] on two policy tokens: token ratios e^0.2 = 1.221403, e^0.4 = 1.491825;
    # GSPO s = exp((0.2 + 0.4) / 2) = e^0.3 = 1.349859 on both tokens.
    logprobs, old = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-1.2, -1.4]])
    mask = torch.ones(1, 2)
    assert approx(importance_ratio(logprobs, old, mask, "token"), [[1.221403, 1.491825]])
    assert approx(importance_ratio(logprobs, old, mask, "sequence"), [[1.349859, 1.349859]])


def test_gspo_ratio_ignores_masked_tokens():
    # The masked middle token's log-ratio (5.0) must not count: s = exp((0.2 + 0.4) / 2) = 1.349859.
    logprobs, old = torch.tensor([[-1.0, 4.0, -1.0]]), torch.tensor([[-1.2, -1.0, -1.4]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert approx(importance_ratio(logprobs, old, mask, "sequence")[0, 0], 1.349859)


def test_clip_with_positive_advantage():
    # Â = 1, ρ = 1.5, ε = 0.2: max(−1.5, −1.2) = −1.2, clip active. Clip-higher ε_high = 0.28: −1.28.
    loss, active = clipped_policy_loss(torch.tensor([1.5]), torch.tensor([1.0]), 0.2, 0.2)
    assert approx(loss, [-1.2]) and active.tolist() == [True]
    loss, _ = clipped_policy_loss(torch.tensor([1.5]), torch.tensor([1.0]), 0.2, 0.28)
    assert approx(loss, [-1.28])


def test_clip_with_negative_advantage_and_inside_the_trust_region():
    # Â = −1, ρ = 0.5: max(0.5, 0.8) = 0.8 (clip active at 1 − ε). Â = 2, ρ = 1.1: max(−2.2, −2.2) = −2.2, inactive.
    loss, active = clipped_policy_loss(torch.tensor([0.5, 1.1]), torch.tensor([-1.0, 2.0]), 0.2, 0.2)
    assert approx(loss, [0.8, -2.2]) and active.tolist() == [True, False]


def test_dual_clip_caps_negative_advantage_loss():
    # Â = −1, ρ = 5: max(5, 1.2) = 5; dual clip c = 3 caps at −c·Â = 3. Positive Â is untouched:
    # Â = 1, ρ = 5 → max(−5, −1.2) = −1.2.
    loss, _ = clipped_policy_loss(torch.tensor([5.0, 5.0]), torch.tensor([-1.0, 1.0]), 0.2, 0.2, dual_clip=3.0)
    assert approx(loss, [3.0, -1.2])


# --- rollout-vs-trainer importance correction --------------------------------------------------------


def test_token_level_truncated_and_masked_importance_weights():
    # log w = old − rollout = [1.0, 0.5]: w = [e = 2.718282, e^0.5 = 1.648721].
    # token_truncate C = 2: [2, 1.648721]; token_mask C = 2: [0, 1.648721] (the token above C is
    # dropped, the one below keeps its IS weight: TRL's masked_fill(w > C, 0) on w, not a 0/1 mask).
    old, rollout, mask = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-2.0, -1.5]]), torch.ones(1, 2)
    assert approx(rollout_correction_weights(old, rollout, mask, "token_truncate", 2.0), [[2.0, 1.648721]])
    assert approx(rollout_correction_weights(old, rollout, mask, "token_mask", 2.0), [[0.0, 1.648721]])


def test_sequence_level_importance_weights():
    # Sequence log w = 1.0 + 0.5 = 1.5, W = e^1.5 = 4.481689. sequence_truncate C = 3 → 3 on every
    # token; sequence_mask C = 3 → 0 (dropped), C = 5 → 1 (kept).
    old, rollout, mask = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-2.0, -1.5]]), torch.ones(1, 2)
    assert approx(rollout_correction_weights(old, rollout, mask, "sequence_truncate", 3.0), [[3.0, 3.0]])
    assert approx(rollout_correction_weights(old, rollout, mask, "sequence_mask", 3.0), [[0.0, 0.0]])
    assert approx(rollout_correction_weights(old, rollout, mask, "sequence_mask", 5.0), [[4.481689, 4.481689]])


def test_no_correction_is_all_ones():
    old, rollout = torch.tensor([[-1.0]]), torch.tensor([[-9.0]])
    assert approx(rollout_correction_weights(old, rollout, torch.ones(1, 1), "none"), [[1.0]])


# --- KL estimators -------------------------------------------------------------------------------------


def test_kl_estimators():
    # ℓ = log π − log π_ref = −1 − (−2) = 1: k1 = 1; k2 = ½ = 0.5; k3 = e^−1 − 1 + 1 = 0.367879.
    # ℓ = −0.5: k1 = −0.5; k2 = 0.125; k3 = e^0.5 − 1 − 0.5 = 0.148721.
    logprobs, ref = torch.tensor([-1.0, -1.0]), torch.tensor([-2.0, -0.5])
    assert approx(kl_divergence(logprobs, ref, "k1"), [1.0, -0.5])
    assert approx(kl_divergence(logprobs, ref, "k2"), [0.5, 0.125])
    assert approx(kl_divergence(logprobs, ref, "k3"), [0.367879, 0.148721])


# --- aggregation --------------------------------------------------------------------------------------------

PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("aggregation", "constant", "expected"),
    [
        ("token_mean", None, 2.5),  # (1 + 2 + 3 + 4) / 4 tokens
        ("seq_mean_token_mean", None, 3.0),  # (mean(1,2,3) = 2  +  4) / 2 sequences
        ("seq_mean_token_sum", None, 5.0),  # (6 + 4) / 2 sequences
        ("token_sum_norm", 10, 0.5),  # (6 + 4) / (2 sequences × 10)
    ],
)
def test_aggregation_modes(aggregation, constant, expected):
    normalizer = step_normalizer([MASK], aggregation, constant)
    assert approx(aggregate(PER_TOKEN, MASK, aggregation, normalizer), expected)


# Row 3 is fully masked (a truncated row under mask_truncated: tokens, but weight 0); row 4 is a
# failed episode (no trainable token at all). Both are rows of the step.
PER_TOKEN_MASKED = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [5.0, 5.0, 5.0], [7.0, 7.0, 7.0]])
MASK_MASKED = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("aggregation", "constant", "normalizer", "expected"),
    [
        ("token_mean", None, 4.0, 2.5),  # (1 + 2 + 3 + 4) / 4 trainable tokens: masked rows add none
        ("seq_mean_token_mean", None, 4.0, 1.5),  # (2 + 4) / 4 rows (TRL grpo, veRL global_batch_size)
        ("seq_mean_token_sum", None, 4.0, 2.5),  # (6 + 4) / 4 rows (veRL seq-mean-token-sum, global)
        ("token_sum_norm", 10, 40.0, 0.25),  # (6 + 4) / (4 rows × 10): TRL dr_grpo's B × L_max
    ],
)
def test_masked_and_failed_rows_count_in_every_per_row_normalizer(aggregation, constant, normalizer, expected):
    assert step_normalizer([MASK_MASKED], aggregation, constant) == normalizer
    assert approx(aggregate(PER_TOKEN_MASKED, MASK_MASKED, aggregation, normalizer), expected)
    # Split {0, 2} | {1, 3}: the step-wide divisor is the same, and the shares add up to the whole.
    parts = [(PER_TOKEN_MASKED[[0, 2]], MASK_MASKED[[0, 2]]), (PER_TOKEN_MASKED[[1, 3]], MASK_MASKED[[1, 3]])]
    assert step_normalizer([m for _, m in parts], aggregation, constant) == normalizer
    assert approx(sum(aggregate(p, m, aggregation, normalizer) for p, m in parts), expected)


def test_dr_grpo_normalizer_is_constant_whatever_is_masked():
    # Dr. GRPO's divisor is B × L: masking more rows must lower the loss, not re-weight the others.
    for masked_rows in range(MASK_MASKED.shape[0] + 1):
        mask = MASK_MASKED.clone()
        mask[:masked_rows] = 0.0
        assert step_normalizer([mask[:2], mask[2:]], "token_sum_norm", 10) == 40.0


def test_normalizer_spans_all_micro_batches_of_the_step():
    # Split the two rows into two micro-batches: token_mean's divisor stays 4 (not 3 and 1), so the
    # shares 6/4 + 4/4 add up to the unsplit 2.5.
    parts = [(PER_TOKEN[:1], MASK[:1]), (PER_TOKEN[1:], MASK[1:])]
    normalizer = step_normalizer([m for _, m in parts], "token_mean")
    assert normalizer == 4.0
    assert approx(sum(aggregate(p, m, "token_mean", normalizer) for p, m in parts), 2.5)


def test_empty_step_gives_zero_loss_not_nan():
    mask = torch.zeros(1, 3)
    normalizer = step_normalizer([mask], "token_mean")
    assert float(aggregate(PER_TOKEN[:1], mask, "token_mean", normalizer)) == 0.0
