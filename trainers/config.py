"""`GRPOConfig`: every knob of the trainer, named after what it does, documented where it is defined.

Defaults follow ../shared notes §9.1 (TRL / veRL / Search-R1 read side by side): where the
anchors disagree, the default is the one that is cheapest and safest on one machine (no KL, so no
reference model; token-mean over the optimizer step; clip 0.2/0.2), and the alternatives are one
field away. YAML files in `configs/` are instances of this dataclass (`toolgym.trainers.config_io`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class GRPOConfig:
    """The whole training run: model, env, sampling, objective, optimizer, SFT warm-up, logging."""

    # --- run and model ------------------------------------------------------------------------------
    model: str = "tiny"
    """A local transformers checkpoint folder, or "tiny": the project's random-weight tiny Qwen2 chat
    model, built offline into `<output_dir>/tiny-model` (for CPU smoke runs and tests)."""
    output_dir: str = "runs/grpo"
    """Where metrics.jsonl, checkpoints/, the final model and plots go."""
    seed: int = 0
    """Seeds torch/numpy/python, the task order and the sampling stream (step s samples with seed·10⁶+s)."""
    device: str = "auto"
    """"auto" (cuda when available, else cpu), "cpu" or "cuda[:i]"."""
    dtype: str = "float32"
    """Parameter dtype; float32 on CPU (bfloat16 halves memory on a GPU)."""
    threads: int | None = None
    """torch intra-op threads for the process; None leaves torch's default (1 is often fastest for tiny
    models on a small shared CPU, docs/benchmarks.md)."""

    # --- environment and tasks ------------------------------------------------------------------------
    env_id: str = "Search-v0"
    """The registered env to train on (Math-v0, FunctionCall-v0, Search-v0, …)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for `gym.make(env_id, ...)`, e.g. {"max_turns": 2, "tool_format": "search_r1"}."""
    num_envs: int = 8
    """Episodes in flight at once (the env pool's size); rollouts batch the model across them."""
    train_tasks: int = 1024
    """Training draws task indices 0 … train_tasks−1 of the env's dataset (capped at its length)."""
    eval_tasks: int = 0
    """Held-out tasks scored greedily every `eval_every` steps (0 = no evaluation)."""
    eval_task_start: int | None = None
    """First held-out task index; None starts right after the training tasks (the ranges may not overlap)."""
    train_task_indices: list[int] | None = None
    """Explicit training task indices (e.g. the questions about training entities only); overrides train_tasks."""
    eval_task_indices: list[int] | None = None
    """Explicit held-out task indices; overrides eval_tasks / eval_task_start. Must not meet the training ones."""
    eval_every: int = 0
    """Evaluate every N optimizer steps and after the last one (0 = never)."""
    use_chat_template_tools: bool = True
    """Render native (openai) tool schemas through the chat template, as rollouts and evaluation do."""

    # --- group sampling --------------------------------------------------------------------------------
    num_generations: int = 8
    """G: samples per task, all from the same task seed (TRL default 8; Search-R1 uses 5)."""
    prompts_per_step: int = 16
    """Tasks per optimizer step; the batch holds prompts_per_step × G trajectories."""
    temperature: float = 1.0
    """Sampling temperature; the trainer's logprobs use the same temperature, as the engine's do."""
    top_p: float = 1.0
    """Nucleus sampling mass (not folded into the logprobs, as in TRL and veRL)."""
    max_new_tokens: int = 64
    """Tokens one assistant turn may sample."""
    max_episode_tokens: int = 1024
    """Token budget of a whole episode (prompt, turns, tool outputs); a longer one ends truncated."""
    stop: list[str] = field(default_factory=list)
    """Stop strings ending a turn (kept in the text), e.g. ["</search>", "</answer>"] for search_r1."""

    # --- advantages -------------------------------------------------------------------------------------
    advantage_baseline: Literal["mean", "rloo"] = "mean"
    """Group baseline: the group mean (GRPO) or the mean of the other members (RLOO)."""
    advantage_scale: Literal["group_std", "batch_std", "none"] = "group_std"
    """Divide by the group's std (GRPO, TRL default), the batch's std (Lite PPO) or nothing (Dr. GRPO)."""
    advantage_eps: float = 1e-6
    """Added to the std before dividing (veRL's 1e-6; TRL uses 1e-4)."""

    # --- policy loss --------------------------------------------------------------------------------------
    ratio_level: Literal["token", "sequence"] = "token"
    """Importance ratio per token (PPO/GRPO) or per sequence as a length-normalized geometric mean (GSPO)."""
    clip_eps_low: float = 0.2
    """Lower clip: ρ ≥ 1 − ε_low (0.2 in TRL, veRL, OpenRLHF)."""
    clip_eps_high: float = 0.2
    """Upper clip: ρ ≤ 1 + ε_high; DAPO's clip-higher uses 0.28."""
    dual_clip: float | None = None
    """Dual clip c > 1: the loss of a negative-advantage token is capped at −c·Â (veRL uses 3.0); None = off."""
    loss_aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "token_sum_norm"] = (
        "token_mean"
    )
    """How token losses become the step loss. token_mean: Σ over the step's trainable tokens / their
    count (DAPO; TRL and veRL default). seq_mean_token_mean: Σ over sequences of each one's token
    mean / sequences (original GRPO). seq_mean_token_sum: Σ tokens / sequences. token_sum_norm:
    Σ tokens / (sequences × token_sum_constant) (Dr. GRPO's constant normalizer, TRL `dr_grpo`).
    The divisor always covers the whole optimizer step, and "sequences" counts every row of it,
    failed and masked rows included (TRL; veRL's global_batch_size), so it does not change with
    how many rows are masked (`objective.step_normalizer`)."""
    token_sum_constant: int | None = None
    """The constant length of token_sum_norm (TRL's max_completion_length); None uses max_episode_tokens."""
    num_iterations: int = 1
    """μ: optimizer steps per generated batch, each against the stored old logprobs (TRL/veRL default 1)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass; gradients accumulate to one step and do not depend on it."""

    # --- KL and entropy -----------------------------------------------------------------------------------
    kl_coef: float = 0.0
    """β of the KL penalty to the initial model. 0 (TRL default, veRL off) loads no reference model;
    Search-R1 uses 0.001."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """k1 = ℓ, k2 = ½ℓ², k3 = e^−ℓ − 1 + ℓ with ℓ = log π_θ − log π_ref (k3: TRL, veRL low_var_kl)."""
    kl_placement: Literal["loss", "reward"] = "loss"
    """"loss": β·KL joins the per-token loss (GRPO, Search-R1); "reward": β·Σ_t KL is subtracted from
    each trajectory's shaped reward before the advantages (PPO-style, veRL use_kl_in_reward)."""
    entropy_coef: float = 0.0
    """Entropy bonus coefficient (loss −= coef · mean entropy); TRL/veRL default 0, Search-R1 0.001."""

    # --- rollout vs. trainer mismatch -------------------------------------------------------------------
    rollout_correction: Literal["none", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask"] = "none"
    """Importance correction from the engine's stored logprobs to the trainer's old logprobs. Off by
    default: the HF engine shares the trainer's weights; with vLLM TRL defaults to sequence_mask."""
    rollout_correction_cap: float = 2.0
    """C: truncation cap or mask threshold of the correction weights (veRL 2.0; TRL uses 3.0)."""

    # --- filtering and shaping ------------------------------------------------------------------------------
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop groups whose *unshaped* outcomes are all equal (no signal) and
    generate more until prompts_per_step groups remain or the round limit is hit."""
    dynamic_sampling_max_rounds: int = 4
    """Generation rounds per step while dynamic sampling refills (veRL's max_num_gen_batches)."""
    overlong_buffer: int = 0
    """DAPO's soft overlong punishment: tokens before the response budget where a linear penalty
    starts (0 = off). The penalty is on the shaped reward, never on the outcome."""
    overlong_penalty: float = 1.0
    """The penalty at the end of the budget (it grows linearly over the buffer)."""
    mask_truncated: bool = False
    """Exclude truncated episodes (budget or turn limit) from the loss (TRL mask_truncated_completions)."""

    # --- optimizer --------------------------------------------------------------------------------------------
    total_steps: int = 100
    """Optimizer steps of GRPO in the whole run (each generates one batch, then μ updates)."""
    learning_rate: float = 1e-6
    """AdamW peak learning rate (TRL's default 1e-6 for full fine-tuning; tiny models take ~3e-4)."""
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    """After warm-up: constant, cosine decay to min_lr_ratio, or linear decay to it."""
    warmup_steps: int = 0
    """Linear warm-up from 0 over this many optimizer steps."""
    min_lr_ratio: float = 0.0
    """Final learning rate of the cosine/linear decay, as a fraction of the peak."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm (TRL and veRL default 1.0); 0 disables."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (worth it for long sequences on a GPU)."""

    # --- LoRA -------------------------------------------------------------------------------------------------
    lora_rank: int = 0
    """LoRA rank r via peft (pip install "toolgym[train]"); 0 trains every parameter."""
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    # --- SFT warm-up ------------------------------------------------------------------------------------------
    sft_data: str | None = None
    """JSONL demonstrations for a supervised warm-up before GRPO: trajectories (`Trajectory.to_dict`)
    or {"messages": [...]} rows; the loss is on assistant tokens only."""
    sft_steps: int = 0
    """Optimizer steps of the warm-up (0 = none)."""
    sft_batch_size: int = 16
    sft_learning_rate: float = 1e-4
    sft_warmup_steps: int = 0

    # --- plug-ins ---------------------------------------------------------------------------------------------
    plugins: list[dict[str, Any]] = field(default_factory=list)
    """Plug-ins as {"name": <registered name or module:Class>, **kwargs}, run in list order."""

    # --- logging and checkpoints ------------------------------------------------------------------------------
    report_to: list[str] = field(default_factory=list)
    """Extra metric sinks besides metrics.jsonl: "tensorboard" (if installed), "wandb"."""
    progress_bar: bool = True
    """Show a rich progress bar on the terminal."""
    save_every: int = 0
    """Checkpoint every N optimizer steps (and at the end); 0 = only at the end."""
    save_total_limit: int = 2
    """Checkpoints kept on disk (oldest removed first); 0 keeps them all."""
    resume: bool = False
    """Continue from the latest complete checkpoint in output_dir (exact on CPU)."""
    save_rollouts: bool = False
    """Write each step's trajectories to rollouts/step-N.jsonl for inspection."""
