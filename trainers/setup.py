"""Everything a run builds before its first step: checks, tokenizer, model (+ LoRA), reference, optimizer.

The order is deliberate: every check that can fail on the config alone (the env accepts its
arguments and tool format, the model folder exists, the prompt fits the token budget) runs before
the model's weights are read, so a bad config costs a second, not a model load.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from toolgym.extras import require

from .config import GRPOConfig
from .config_io import ConfigError, check_model_path

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def make_env(config: GRPOConfig) -> gym.Env:
    """One env from the config, or a ConfigError naming env_id / env_kwargs (e.g. an unknown tool format)."""
    import toolgym  # noqa: F401 - registers the ids

    try:
        return gym.make(config.env_id, **config.env_kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"env_id {config.env_id!r} cannot be made: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"env_kwargs {config.env_kwargs} are not accepted by {config.env_id}: {exc}") from exc


def model_folder(config: GRPOConfig) -> Path:
    """The checkpoint folder to load: the given one, or the tiny model built (once) in the run folder."""
    check_model_path(config)
    if config.model != "tiny":
        return Path(config.model)
    folder = Path(config.output_dir) / "tiny-model"
    if not (folder / "config.json").is_file():
        from toolgym.agents.tiny import make_tiny_model

        make_tiny_model(folder, seed=config.seed)
    return folder


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_prompt_fits(config: GRPOConfig, env: gym.Env, tokenizer: Any, task_index: int) -> int:
    """The first training prompt's length in tokens; a ConfigError when no turn would fit after it."""
    from toolgym.agents.chat_format import encode, render, template_tools

    messages, info = env.reset(seed=task_index, options={"index": task_index})
    tools = template_tools(
        tokenizer, info.get("tools"), info.get("tool_format", "text"), config.use_chat_template_tools
    )
    length = len(encode(tokenizer, render(tokenizer, messages, tools, add_generation_prompt=True)))
    if length + 2 > config.max_episode_tokens:
        raise ConfigError(
            f"max_episode_tokens={config.max_episode_tokens} is below the prompt ({length} tokens for task "
            f"{task_index} of {config.env_id}): raise max_episode_tokens above {length + 2}"
        )
    return length


def load_model(folder: Path, config: GRPOConfig) -> Any:
    """The policy in train-ready form: dtype/device set, dropout off (TRL's disable_dropout), LoRA if asked."""
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, config.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(f"dtype must name a torch dtype such as 'float32' or 'bfloat16', got {config.dtype!r}")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    model.to(resolve_device(config.device))
    model.eval()  # dropout off: ratios and old logprobs must see the same function
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.lora_rank > 0:
        model = add_lora(model, config)
    return model


def add_lora(model: Any, config: GRPOConfig) -> Any:
    """Wrap with peft LoRA; the returned base model carries the adapters (peft injects them in place)."""
    peft = require("peft", "train", "lora_rank > 0")
    lora = peft.LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    peft_model = peft.get_peft_model(model, lora)
    peft_model.eval()
    return peft_model


def policy_module(model: Any) -> Any:
    """The module to call forward on: a peft model's base model (adapters injected), else the model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def reference_model(model: Any, config: GRPOConfig) -> Any | None:
    """The frozen KL anchor: None when kl_coef == 0 (no second model is loaded, as in TRL)."""
    if config.kl_coef == 0:
        return None
    if hasattr(model, "disable_adapter"):
        return model  # LoRA: the base weights without adapters are the reference (see ref_logprobs)
    return frozen_copy(model)


def frozen_copy(module: Any) -> Any:
    """A deep copy with every parameter frozen: a KL anchor that later updates cannot move."""
    reference = copy.deepcopy(module)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


def build_optimizer(model: Any, config: GRPOConfig, learning_rate: float, warmup: int, total: int) -> tuple[Any, Any]:
    """AdamW over trainable parameters and a warm-up + constant / cosine / linear schedule (per optimizer step)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    # torch's fused AdamW kernel (CPU and CUDA; HF Trainer's and so TRL's default "adamw_torch_fused")
    # updates all tensors in one pass instead of a dozen foreach ops per step.
    fused = bool(parameters) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    optimizer = torch.optim.AdamW(
        parameters,
        lr=learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
        fused=fused or None,
    )

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "constant" or total <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if config.lr_schedule == "cosine" else 1 - progress
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * decay

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
