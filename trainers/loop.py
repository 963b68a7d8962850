"""`GRPOTrainer`: the training run around the objective — rollouts, shaping, filtering, updates, eval, resume.

One step:
    1. draw prompts_per_step training tasks (the resumable `TaskSampler`);
    2. roll out G episodes per draw with the policy itself (HF engine over the same weights); each
       draw is its own group, keyed by its sampler slot, even when a task is drawn twice;
    3. score old / reference logprobs when the objective needs them;
    4. shape rewards: overlong penalty, KL-in-reward, then each plug-in's `shape_rewards`;
    5. dynamic sampling: drop groups whose UNSHAPED outcomes are all equal, refill up to a limit;
    6. advantages (GRPO default, then plug-ins), μ optimizer steps (`grpo.optimizer_step`);
    7. `on_step_end`, metrics, periodic held-out evaluation and checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from toolgym.agents.base import SamplingParams
from toolgym.agents.hf_engine import HFEngine
from toolgym.agents.rollout import collect_rollouts
from toolgym.agents.trajectory import write_trajectories
from toolgym.envs.base import list_tasks
from toolgym.envs.pool import EnvPool

from . import checkpoint, setup
from .batch import RolloutBatch, collate, concat
from .config import GRPOConfig
from .grpo import advantages, batch_logprobs, optimizer_step
from .objective import all_equal_groups, kl_divergence
from .plugins import OrderContext, Plugin, load_plugins
from .sampler import TaskSampler
from .step_metrics import batch_metrics, rollout_metrics
from .tracking import MetricsLogger, Progress

logger = logging.getLogger(__name__)


class GRPOTrainer:
    """Builds the run from a `GRPOConfig` (checks first, model last) and trains it with `train()`."""

    def __init__(self, config: GRPOConfig, plugins: list[Plugin] | None = None):
        self.config = config
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        setup.seed_everything(config.seed)
        probe = setup.make_env(config)
        self.model_path = setup.model_folder(config)
        self.tokenizer = setup.load_tokenizer(self.model_path)
        n_tasks = len(list_tasks(probe))
        self.train_indices = list(config.train_task_indices or range(min(config.train_tasks, n_tasks)))
        start = config.eval_task_start if config.eval_task_start is not None else len(self.train_indices)
        self.eval_indices = list(config.eval_task_indices or range(start, min(start + config.eval_tasks, n_tasks)))
        if config.eval_every and not self.eval_indices:
            raise setup.ConfigError(f"eval_task_start={start} is past the env's {n_tasks} tasks")
        outside = [i for i in self.train_indices + self.eval_indices if not 0 <= i < n_tasks]
        if outside:
            raise setup.ConfigError(f"task indices {outside[:5]} are outside the env's {n_tasks} tasks")
        setup.check_prompt_fits(config, probe, self.tokenizer, self.train_indices[0])
        self.plugins = plugins if plugins is not None else load_plugins(config.plugins)
        resume_state = self.resume_state() if config.resume else None

        self.model = setup.load_model(self.model_path, config)
        self.policy = setup.policy_module(self.model)
        self.reference = setup.reference_model(self.model, config)
        # True once the KL anchor was re-taken after an SFT warm-up (it is then saved in checkpoints).
        self.reference_is_warm_start = False
        self.engine = HFEngine(self.policy, self.tokenizer, batch_size=max(config.num_envs, 8), seed=config.seed)
        self.optimizer, self.scheduler = setup.build_optimizer(
            self.model,
            config,
            config.learning_rate,
            config.warmup_steps * config.num_iterations,
            config.total_steps * config.num_iterations,
        )
        order = None
        context = OrderContext(self.policy, self.tokenizer, probe, config.seed)
        for plugin in self.plugins:
            order = plugin.order_dataset(self.train_indices, context) or order
        self.sampler = TaskSampler(self.train_indices, config.seed, order)
        probe.close()
        self.pool = EnvPool.make(config.env_id, config.num_envs, max_workers=1, **config.env_kwargs)
        self.step = 0
        if resume_state is not None:
            self.load_state(resume_state)
            logger.info("resumed from step %d", self.step)

    def resume_state(self) -> dict[str, Any] | None:
        """The latest checkpoint's state, checked against this config before any model is loaded.

        None (a fresh start, logged) when output_dir has no complete checkpoint yet, so `resume=true`
        can always be passed. A ConfigError when a training-shaping field changed since the checkpoint
        (`checkpoint.RESUME_MAY_CHANGE` lists the ones that may), since resuming would either silently
        keep the old value or break the exact continuation.
        """
        latest = checkpoint.latest_checkpoint(self.config.output_dir)
        if latest is None:
            logger.warning("resume=true but %s has no checkpoint yet: starting at step 0", self.config.output_dir)
            return None
        state = checkpoint.load_checkpoint(latest)
        changes = checkpoint.config_changes(state.get("config", {}), dataclasses.asdict(self.config))
        if changes:
            raise setup.ConfigError(
                f"resume=true but {latest.name} was trained with a different config ({'; '.join(changes)}): "
                "resume with the same values, or start a new output_dir"
            )
        if len(state.get("plugins", [])) != len(self.plugins):
            raise setup.ConfigError(
                f"resume=true but {latest.name} holds state for {len(state.get('plugins', []))} plug-ins and "
                f"this run has {len(self.plugins)}: resume with the same plug-ins"
            )
        return state

    # --- rollouts -------------------------------------------------------------------------------------

    def sampling(self, seed: int | None, greedy: bool = False) -> SamplingParams:
        config = self.config
        return SamplingParams(
            temperature=0.0 if greedy else config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_new_tokens,
            stop=tuple(config.stop),
            seed=seed,
        )

    def rollouts(
        self,
        task_indices: list[int],
        seed: int,
        group_size: int,
        greedy: bool = False,
        draws: list[str] | None = None,
    ) -> list[Any]:
        """G episodes per task index (episode seed = task index, so a group shares its task).

        `draws` names each task's draw (the sampler slot), so a task drawn twice is two groups.
        """
        return collect_rollouts(
            self.engine,
            self.tokenizer,
            self.pool,
            seeds=task_indices,
            sampling=self.sampling(seed, greedy),
            max_episode_tokens=self.config.max_episode_tokens,
            group_size=group_size,
            options=[{"index": index} for index in task_indices],
            use_chat_template_tools=self.config.use_chat_template_tools,
            draws=draws,
        )

    def anchor_reference_to_warm_start(self) -> None:
        """Re-take the KL anchor from the warmed-up policy, as TRL and veRL anchor to the SFT model.

        Called after the SFT warm-up: the KL term then pulls towards the model GRPO started from,
        not the weights before the warm-up. The anchor is a frozen copy of the policy module (with
        LoRA, of the base model with the warmed-up adapters injected) and goes into every checkpoint,
        since a resumed run cannot rebuild it.
        """
        if self.reference is None:
            return
        self.reference = setup.frozen_copy(self.policy)
        self.reference_is_warm_start = True

    def score(self, batch: RolloutBatch) -> None:
        """Old logprobs (μ > 1 or a rollout correction needs them) and reference logprobs (KL)."""
        config = self.config
        if config.num_iterations > 1 or config.rollout_correction != "none":
            batch.old_logprobs = batch_logprobs(self.policy, batch, config.temperature, config.micro_batch_size)
        if self.reference is not None:
            if hasattr(self.reference, "disable_adapter"):
                with self.reference.disable_adapter():
                    batch.ref_logprobs = batch_logprobs(self.policy, batch, config.temperature, config.micro_batch_size)
            else:
                batch.ref_logprobs = batch_logprobs(self.reference, batch, config.temperature, config.micro_batch_size)

    def shape(self, batch: RolloutBatch) -> None:
        """Shaped reward = outcome − overlong penalty − β·Σ KL (if in reward), then the plug-ins' shaping."""
        config = self.config
        if config.overlong_buffer > 0:
            for row, trajectory in enumerate(batch.trajectories):
                budget = config.max_episode_tokens - trajectory.prompt_length
                excess = len(trajectory.token_ids) - trajectory.prompt_length - (budget - config.overlong_buffer)
                if excess > 0:
                    batch.shaped_rewards[row] -= min(excess / config.overlong_buffer, 1.0) * config.overlong_penalty
        if config.kl_coef > 0 and config.kl_placement == "reward":
            kl = kl_divergence(batch.policy_logprobs, batch.ref_logprobs, config.kl_estimator) * batch.loss_mask
            batch.shaped_rewards -= config.kl_coef * kl.sum(-1)
        for plugin in self.plugins:
            plugin.shape_rewards(batch)

    def generate_batch(self, step: int) -> tuple[RolloutBatch, dict[str, float]]:
        """Steps 1–5: rollouts, scoring, shaping and dynamic sampling, until the batch is full or rounds run out."""
        config = self.config
        kept: list[RolloutBatch] = []
        all_trajectories: list[Any] = []
        groups = 0
        rounds = 0
        while True:
            drawn = self.sampler.draw_with_ids(config.prompts_per_step)
            seed = config.seed * 1_000_003 + step * 101 + rounds
            tasks, draws = [task for task, _ in drawn], [draw for _, draw in drawn]
            trajectories = self.rollouts(tasks, seed, config.num_generations, draws=draws)
            all_trajectories.extend(trajectories)
            batch = collate(trajectories, self.engine.pad_token_id)
            self.score(batch)
            self.shape(batch)
            rounds += 1
            if not config.dynamic_sampling:
                kept.append(batch)
                break
            informative = ~all_equal_groups(batch.outcome, batch.group_ids)
            if informative.any():
                kept.append(batch.select(torch.nonzero(informative).flatten().tolist()))
                groups += len(set(kept[-1].group_keys))
            if groups >= config.prompts_per_step or rounds >= config.dynamic_sampling_max_rounds:
                break
        if not kept:  # every group was uninformative in every round: train on nothing, but log it
            kept.append(batch.select([]) if batch.size else batch)
        batch = concat(kept, self.engine.pad_token_id)
        if config.dynamic_sampling:
            first_groups = list(dict.fromkeys(batch.group_keys))[: config.prompts_per_step]
            batch = batch.select([i for i, key in enumerate(batch.group_keys) if key in set(first_groups)])
        if config.mask_truncated:
            batch.sample_weights = batch.sample_weights * (~batch.truncated).float()
        metrics = rollout_metrics(all_trajectories)
        metrics["dynamic_sampling/rounds"] = float(rounds)
        return batch, metrics

    # --- one step and the run ---------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, Any]:
        started = time.perf_counter()
        batch, metrics = self.generate_batch(step)
        generated = time.perf_counter()
        if self.config.save_rollouts:
            folder = Path(self.config.output_dir) / "rollouts"
            folder.mkdir(parents=True, exist_ok=True)
            write_trajectories(folder / f"step-{step + 1:06d}.jsonl", batch.trajectories)
        update: dict[str, float] = {}
        if batch.size:
            batch.advantages = advantages(batch, self.config)
            for plugin in self.plugins:
                replaced = plugin.advantages(batch)
                if replaced is not None:
                    batch.advantages = replaced
            for _ in range(self.config.num_iterations):
                update = optimizer_step(self.policy, self.optimizer, self.scheduler, batch, self.config, self.plugins)
                self.engine.update_weights(self.policy)  # shared module: no copy, bumps policy_version
            metrics.update(batch_metrics(batch))
        else:
            # No group was informative: the schedule still follows the step count (veRL's), which
            # is deliberate, so torch's "scheduler before optimizer" warning is noise here.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
                for _ in range(self.config.num_iterations):
                    self.scheduler.step()
        finished = time.perf_counter()
        metrics.update(update)
        metrics["grad_accum"] = float(-(-batch.size // self.config.micro_batch_size))
        metrics["timing_s/gen"] = generated - started
        metrics["timing_s/update"] = finished - generated
        metrics["perf/time_per_step"] = finished - started
        metrics["perf/throughput"] = float(batch.attention_mask.sum()) / max(finished - started, 1e-9)
        for plugin in self.plugins:
            plugin.on_step_end(batch, metrics)
        return metrics

    def train(self) -> list[dict[str, Any]]:
        """Run from the current step to total_steps; return the logged step metrics of this call."""
        config = self.config
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(_json(dataclasses.asdict(config)), encoding="utf-8")
        sink = MetricsLogger(out, config.report_to, dataclasses.asdict(config), resume_step=self.step)
        progress = Progress(config.total_steps, self.step, config.progress_bar)
        history = []
        try:
            if config.eval_every and self.step == 0:  # the starting point, after any SFT warm-up
                sink.log(0, self.evaluate())
            while self.step < config.total_steps:
                metrics = self.train_step(self.step)
                self.step += 1
                if config.eval_every and (self.step % config.eval_every == 0 or self.step == config.total_steps):
                    metrics.update(self.evaluate())
                sink.log(self.step, metrics)
                history.append({"step": self.step, **metrics})
                progress.update(metrics)
                if (config.save_every and self.step % config.save_every == 0) or self.step == config.total_steps:
                    self.save()
        finally:
            progress.close()
            sink.close()
        return history

    def evaluate(self) -> dict[str, float]:
        """Greedy episodes on the held-out tasks, scored by the env's own scorer (eval/ metrics)."""
        trajectories = self.rollouts(self.eval_indices, seed=0, group_size=1, greedy=True)
        return rollout_metrics(trajectories, prefix="eval/")

    # --- checkpoints -------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": checkpoint.rng_state(),
            "sampler": self.sampler.state_dict(),
            "plugins": [plugin.state_dict() for plugin in self.plugins],
            "config": dataclasses.asdict(self.config),
            "policy_version": self.engine.policy_version,
            "reference": self.reference.state_dict() if self.reference_is_warm_start else None,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])
        self.sampler.load_state_dict(state["sampler"])
        for plugin, plugin_state in zip(self.plugins, state["plugins"]):
            plugin.load_state_dict(plugin_state)
        self.step = int(state["step"])
        self.engine.policy_version = int(state.get("policy_version", 0))
        if state.get("reference") is not None and self.reference is not None:
            self.reference = setup.frozen_copy(self.policy)
            self.reference.load_state_dict(state["reference"])
            self.reference_is_warm_start = True

    def save(self) -> Path:
        """An atomic checkpoint of the current step, plus the final model folder at the end of the run."""
        path = checkpoint.save_checkpoint(self.config.output_dir, self.step, self.state(), self.config.save_total_limit)
        if self.step == self.config.total_steps:
            final = Path(self.config.output_dir) / "final-model"
            self.model.save_pretrained(final)
            self.tokenizer.save_pretrained(final)
        return path

    def close(self) -> None:
        self.pool.close()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
