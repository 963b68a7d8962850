"""A GRPO group is one draw of a task: the same task drawn twice in a step is two groups.

Draws repeat a task when one `collect_rollouts` call lists a seed twice, when the trainer's sampler
wraps its epoch inside a step (prompts_per_step > training tasks, or repeated training indices),
and when a later dynamic-sampling round draws a task already in the batch. Merging such draws into
one group of 2G would change the baseline, the group counts and dynamic sampling's choice.
"""

from __future__ import annotations

import random

import pytest
import torch
import trainer_fixtures  # noqa: F401 - registers Parity-v0
from tiny_model_fixture import tiny_model_path

from toolgym.agents.base import SamplingParams
from toolgym.agents.rollout import collect_rollouts
from toolgym.envs.pool import EnvPool
from toolgym.trainers.batch import collate
from toolgym.trainers.config_io import load_config
from toolgym.trainers.loop import GRPOTrainer
from toolgym.trainers.objective import group_advantages
from toolgym.trainers.sampler import TaskSampler
from toolgym.trainers.step_metrics import batch_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=8, seed=0)


def test_a_seed_listed_twice_in_one_call_is_two_groups(engine):
    with EnvPool.make("toolgym:Math-v0", 3) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [5, 5, 6], SAMPLING, 2048, group_size=2)
    keys = [t.group_key for t in trajectories]
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[4] == keys[5]
    assert len(set(keys)) == 3
    assert trajectories[0].task_id == trajectories[2].task_id and trajectories[0].seed == trajectories[2].seed == 5
    assert [t.sample_index for t in trajectories] == [0, 1, 0, 1, 0, 1]
    assert collate(trajectories, 0).group_ids.tolist() == [0, 0, 1, 1, 2, 2]


def test_two_draws_of_a_task_get_the_advantages_of_two_separate_groups(engine):
    with EnvPool.make("toolgym:Math-v0", 3) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [3, 3], SAMPLING, 2048, group_size=3)
    rewards = dict(zip(map(id, trajectories), [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]))
    # Two groups: [1, 0, 0] has mean 1/3 and Bessel std sqrt(1/3) = 0.577350, so Â = 1.154701,
    # −0.577350, −0.577350; [1, 1, 0] gives 0.577350, 0.577350, −1.154701. One merged group of six
    # (mean 0.5, std 0.547723) would give ±0.912871 instead.
    expected = dict(zip(map(id, trajectories), [1.154701, -0.577350, -0.577350, 0.577350, 0.577350, -1.154701]))
    shuffled = list(trajectories)
    random.Random(3).shuffle(shuffled)
    for order in (trajectories, shuffled):  # the keys travel with the trajectories, not the rows
        batch = collate(order, 0)
        got = group_advantages(torch.tensor([rewards[id(t)] for t in order]), batch.group_ids, eps=0.0)
        assert got.tolist() == pytest.approx([expected[id(t)] for t in order], abs=1e-5)


def test_explicit_draw_ids_name_the_groups_and_a_repeated_pair_is_refused(engine):
    with EnvPool.make("toolgym:Math-v0", 2) as pool:
        first = collect_rollouts(engine, engine.tokenizer, pool, [4, 4], SAMPLING, 2048, draws=["0:1", "1:0"])
        swapped = collect_rollouts(engine, engine.tokenizer, pool, [4, 4], SAMPLING, 2048, draws=["1:0", "0:1"])
        with pytest.raises(ValueError, match="give each draw of a task its own draw id"):
            collect_rollouts(engine, engine.tokenizer, pool, [4, 4], SAMPLING, 2048, draws=["x", "x"])
        with pytest.raises(ValueError, match="got 2 seeds but 1 draws"):
            collect_rollouts(engine, engine.tokenizer, pool, [4, 4], SAMPLING, 2048, draws=["x"])
    assert len({t.group_key for t in first}) == 2
    assert {t.group_key for t in first} == {t.group_key for t in swapped}  # the draw, not the position
    assert first[0].group_key == swapped[1].group_key


def test_the_sampler_names_each_draw_by_its_slot_even_when_the_epoch_wraps():
    sampler = TaskSampler([0, 1], seed=0)
    drawn = sampler.draw_with_ids(5)
    tasks, ids = [task for task, _ in drawn], [draw for _, draw in drawn]
    assert sorted(tasks[:2]) == sorted(tasks[2:4]) == [0, 1]
    assert ids == ["0:0", "0:1", "1:0", "1:1", "2:0"]
    resumed = TaskSampler([0, 1], seed=0)
    resumed.load_state_dict(sampler.state_dict())
    assert [draw for _, draw in resumed.draw_with_ids(2)] == ["2:1", "3:0"]
    repeated = TaskSampler([7, 7, 7], seed=0).draw_with_ids(3)
    assert [task for task, _ in repeated] == [7, 7, 7] and len({draw for _, draw in repeated}) == 3


def trainer_config(tmp_path, *overrides):
    base = [
        f"model={tiny_model_path()}",
        f"output_dir={tmp_path / 'run'}",
        "env_id=Parity-v0",
        "num_generations=3",
        "max_new_tokens=8",
        "max_episode_tokens=160",
        "num_envs=6",
        "eval_every=0",
        "progress_bar=false",
    ]
    return load_config(None, [*base, *overrides])


def assert_groups_of(batch, group_size):
    for group in torch.unique(batch.group_ids):
        assert int((batch.group_ids == group).sum()) == group_size


def test_a_step_whose_draws_wrap_the_epoch_keeps_every_draw_its_own_group(tmp_path):
    trainer = GRPOTrainer(trainer_config(tmp_path, "train_tasks=2", "prompts_per_step=3"))
    batch, _ = trainer.generate_batch(0)
    trainer.close()
    assert batch.size == 9
    assert len({t.task_id for t in batch.trajectories}) == 2  # three draws of two tasks: one task twice
    assert len(set(batch.group_keys)) == 3 and batch_metrics(batch)["batch/groups"] == 3.0
    assert_groups_of(batch, 3)


def test_dynamic_sampling_keeps_a_redrawn_task_as_its_own_group(tmp_path):
    # One training task: every draw is task 0. With seed 4, round 1 keeps one informative group and
    # round 2 draws task 0 again; the kept batch must be two groups of G, not one of 2G.
    config = trainer_config(
        tmp_path,
        "train_task_indices=[0]",
        "prompts_per_step=2",
        "dynamic_sampling=true",
        "dynamic_sampling_max_rounds=4",
        "seed=4",
    )
    trainer = GRPOTrainer(config)
    batch, metrics = trainer.generate_batch(0)
    trainer.close()
    assert metrics["dynamic_sampling/rounds"] >= 2, "the premise: a later round re-drew the task"
    assert {t.task_id for t in batch.trajectories} == {"parity-0"}
    assert len(set(batch.group_keys)) == 2 and batch.size == 6
    assert_groups_of(batch, 3)
    for group in torch.unique(batch.group_ids):
        outcomes = batch.outcome[batch.group_ids == group]
        assert outcomes.max() > outcomes.min()  # each kept group is informative on its own
