"""End-to-end GRPO runs of the tiny model (TRL's CPU bar: G = 3, 8 new tokens, lr 0.1): every trained
parameter changes, for each loss aggregation, the sequence-level ratio, μ > 1, KL, dual clip, the
rollout correction and LoRA; dynamic sampling judges the unshaped outcome; plug-in hooks all run.

The env is `Parity-v0` (tests/trainer_fixtures.py): a real ChatEnv whose reward a random policy
earns about half the time, so groups have spread from the first step.
"""

from __future__ import annotations

import json

import pytest
import torch
import trainer_fixtures  # noqa: F401 - registers Parity-v0
from tiny_model_fixture import tiny_model_path

from toolgym.trainers import checkpoint
from toolgym.trainers.config_io import load_config
from toolgym.trainers.loop import GRPOTrainer
from toolgym.trainers.plugins import Plugin
from toolgym.trainers.plugins.format_reward import FormatReward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(tmp_path, *overrides):
    base = [
        f"model={tiny_model_path()}",
        f"output_dir={tmp_path / 'run'}",
        "env_id=Parity-v0",
        "num_generations=3",
        "prompts_per_step=2",
        "max_new_tokens=8",
        "max_episode_tokens=160",
        "learning_rate=0.1",
        "total_steps=2",
        "micro_batch_size=4",
        "num_envs=6",
        "progress_bar=false",
    ]
    return load_config(None, [*base, *overrides])


VARIANTS = {
    "token_mean": [],
    "seq_mean_token_mean": ["loss_aggregation=seq_mean_token_mean"],
    "seq_mean_token_sum": ["loss_aggregation=seq_mean_token_sum"],
    "token_sum_norm": ["loss_aggregation=token_sum_norm", "token_sum_constant=8"],
    "gspo_sequence_ratio": ["ratio_level=sequence", "num_iterations=2"],
    "mu_2_clip_higher_dual_clip": ["num_iterations=2", "clip_eps_high=0.28", "dual_clip=3.0"],
    "kl_k3_in_loss": ["kl_coef=0.05", "kl_estimator=k3", "entropy_coef=0.01"],
    "kl_k1_in_reward_rloo": ["kl_coef=0.05", "kl_estimator=k1", "kl_placement=reward", "advantage_baseline=rloo"],
    "rollout_correction_batch_std": ["rollout_correction=token_truncate", "advantage_scale=batch_std"],
    "dr_grpo": ["advantage_scale=none", "loss_aggregation=token_sum_norm"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_trained_parameter_changes(tmp_path, variant):
    trainer = GRPOTrainer(tiny_config(tmp_path, *VARIANTS[variant]))
    before = {name: p.detach().clone() for name, p in trainer.policy.named_parameters() if p.requires_grad}
    history = trainer.train()
    trainer.close()
    unchanged = [
        name for name, p in trainer.policy.named_parameters() if name in before and torch.equal(p, before[name])
    ]
    assert not unchanged, f"{variant}: parameters did not change: {unchanged}"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    for key in ("loss", "reward/mean", "response_length/mean", "entropy", "pg_clipfrac", "tools/call_frequency"):
        assert key in rows[-1], key
    for key in ("turns/mean", "perf/time_per_step", "timing_s/gen", "timing_s/update"):
        assert key in rows[-1], key
    if "kl_coef=0.05" in VARIANTS[variant]:
        assert "kl" in history[-1]


def test_lora_trains_only_the_adapters(tmp_path):
    trainer = GRPOTrainer(tiny_config(tmp_path, "lora_rank=4", "lora_target_modules=[q_proj, v_proj]", "kl_coef=0.05"))
    trained = {name: p.detach().clone() for name, p in trainer.policy.named_parameters() if p.requires_grad}
    frozen = {name: p.detach().clone() for name, p in trainer.policy.named_parameters() if not p.requires_grad}
    assert trained and all("lora_" in name for name in trained)
    trainer.train()
    trainer.close()
    params = dict(trainer.policy.named_parameters())
    assert all(not torch.equal(params[name], value) for name, value in trained.items())
    assert all(torch.equal(params[name], value) for name, value in frozen.items())


class NoisyShaping(Plugin):
    """Adds a distinct bonus to every sample, so no group is all-equal on the *shaped* reward."""

    def __init__(self):
        self.groups_seen: list[list[float]] = []

    def shape_rewards(self, batch):
        batch.shaped_rewards += torch.arange(batch.size, dtype=torch.float) * 0.01
        for group in torch.unique(batch.group_ids):
            self.groups_seen.append(batch.outcome[batch.group_ids == group].tolist())


def test_dynamic_sampling_drops_groups_that_are_all_equal_on_the_unshaped_outcome(tmp_path):
    shaping = NoisyShaping()
    config = tiny_config(tmp_path, "dynamic_sampling=true", "dynamic_sampling_max_rounds=3", "prompts_per_step=8")
    trainer = GRPOTrainer(config, plugins=[shaping])
    batch, metrics = trainer.generate_batch(0)
    trainer.close()
    assert any(len(set(outcomes)) == 1 for outcomes in shaping.groups_seen), "no all-equal group was generated"
    for group in torch.unique(batch.group_ids):
        outcomes = batch.outcome[batch.group_ids == group]
        assert outcomes.max() > outcomes.min(), "an all-equal (zero-signal) group reached the loss"
    assert len(set(batch.group_keys)) <= config.prompts_per_step
    assert metrics["dynamic_sampling/rounds"] >= 1


class HookRecorder(Plugin):
    """Records which hooks ran, in order, and what they received."""

    def __init__(self):
        self.calls: list[str] = []

    def order_dataset(self, task_indices, context):
        self.calls.append("order_dataset")
        return list(reversed(task_indices))

    def shape_rewards(self, batch):
        self.calls.append("shape_rewards")
        assert batch.sequence_perplexity.shape == (batch.size,) and bool((batch.sequence_perplexity >= 1).all())
        assert len(batch.turn_rewards) == batch.size and batch.trajectories[0].turn_spans

    def advantages(self, batch):
        self.calls.append("advantages")
        return batch.advantages * 2.0

    def extra_loss(self, micro_batch, policy):
        self.calls.append("extra_loss")
        return 0.0 * policy.logprobs.sum()

    def on_step_end(self, batch, metrics):
        self.calls.append("on_step_end")
        metrics["recorder/calls"] = float(len(self.calls))


def test_plugin_hooks_run_in_pipeline_order_and_the_order_is_kept(tmp_path):
    recorder = HookRecorder()
    trainer = GRPOTrainer(tiny_config(tmp_path, "total_steps=1", "train_tasks=8"), plugins=[recorder])
    assert trainer.sampler.draw(8) == list(reversed(range(8)))  # the orderer's order, never reshuffled
    trainer.sampler.load_state_dict({"epoch": 0, "position": 0, "fixed_order": list(reversed(range(8)))})
    history = trainer.train()
    trainer.close()
    assert recorder.calls[:3] == ["order_dataset", "shape_rewards", "advantages"]
    assert "extra_loss" in recorder.calls and recorder.calls[-1] == "on_step_end"
    assert history[-1]["recorder/calls"] == len(recorder.calls)


def test_format_reward_shapes_but_never_touches_the_outcome(tmp_path):
    plugin = FormatReward(bonus=0.5)
    trainer = GRPOTrainer(tiny_config(tmp_path, "total_steps=1"), plugins=[plugin])
    batch, _ = trainer.generate_batch(0)
    trainer.close()
    well_formed = torch.tensor([plugin.well_formed(t) for t in batch.trajectories], dtype=torch.float)
    assert torch.allclose(batch.shaped_rewards, batch.outcome + 0.5 * well_formed)
    assert plugin.state_dict()["seen"] == batch.size


def test_kl_anchors_to_the_warmed_up_model_and_survives_resume(tmp_path):
    # After an SFT warm-up the KL reference must be the warmed-up model (TRL and veRL anchor to the SFT
    # checkpoint): at the first GRPO step policy and reference are then the same weights, so KL is 0.
    # Anchored to the pre-SFT weights instead, the warm-up's change shows up as KL > 0.
    from toolgym.trainers.run import run_training

    demos = tmp_path / "demos.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Is {n} even?"}, {"role": "assistant", "content": "no yes"}]}
        for n in range(8)
    ]
    demos.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    warm = [f"sft_data={demos}", "sft_steps=5", "sft_batch_size=4", "sft_learning_rate=0.05", "kl_coef=0.1"]
    first = run_training(tiny_config(tmp_path, *warm, "total_steps=1", "save_every=1"))
    assert abs(first[0]["kl"]) < 1e-5, first[0]

    resumed = GRPOTrainer(tiny_config(tmp_path, *warm, "total_steps=2", "save_every=1", "resume=true"))
    try:
        assert resumed.reference_is_warm_start
        saved = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "run"))
        for name, value in resumed.reference.state_dict().items():
            assert torch.equal(value, saved["reference"][name]), name
    finally:
        resumed.close()
