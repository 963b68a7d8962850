"""Load a `GRPOConfig` from YAML plus `key=value` overrides, and refuse configs that cannot work.

Every error is one line naming the field, the value and what to do, raised before any model is
loaded: an unknown or ill-typed key, G = 1 with group-std scaling, a model folder that does not
exist, a tool format the env does not speak, a token budget below the prompt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .config import GRPOConfig


class ConfigError(ValueError):
    """A training config that cannot work; the message names the field."""


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> GRPOConfig:
    """A validated config from a YAML file (optional) and `key=value` overrides (YAML values)."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} does not exist")
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(file)!r} must hold a mapping of fields, got {type(loaded).__name__}")
        values.update(loaded)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like key=value (e.g. learning_rate=3e-4)")
        value = yaml.safe_load(raw) if raw.strip() else ""
        head, dot, rest = key.partition(".")
        if dot:  # env_kwargs.max_turns=2 sets one key of a dict field
            if head not in _FIELD_NAMES:
                raise ConfigError(f"unknown config field {head!r} in {key!r}; see toolgym.trainers.config.GRPOConfig")
            if head not in values or values[head] is None:
                values[head] = _default(head)
            if not isinstance(values[head], dict) or not rest:
                raise ConfigError(f"{head} is not a mapping, so {key!r} cannot be set; use {head}=VALUE")
            values[head] = dict(values[head])
            values[head][rest] = value
        else:
            values[key] = value
    return config_from_dict(values)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(GRPOConfig))

# Numeric ranges as (field, low, low_inclusive, high, high_inclusive); high None = unbounded. A value
# outside its range would run but silently do something else (a negative buffer turns shaping off,
# top_p = 0 samples nothing, a negative eps divides by ~0), so it is refused by name instead.
_RANGES: list[tuple[str, float, bool, float | None, bool]] = [
    ("top_p", 0.0, False, 1.0, True),
    ("advantage_eps", 0.0, False, None, False),
    ("overlong_buffer", 0, True, None, False),
    ("overlong_penalty", 0.0, True, None, False),
    ("max_grad_norm", 0.0, True, None, False),
    ("weight_decay", 0.0, True, None, False),
    ("adam_beta1", 0.0, True, 1.0, False),
    ("adam_beta2", 0.0, True, 1.0, False),
    ("adam_eps", 0.0, False, None, False),
    ("min_lr_ratio", 0.0, True, 1.0, True),
    ("sft_steps", 0, True, None, False),
    ("sft_warmup_steps", 0, True, None, False),
    ("sft_learning_rate", 0.0, False, None, False),
    ("lora_alpha", 0, False, None, False),
    ("lora_dropout", 0.0, True, 1.0, False),
    ("save_total_limit", 0, True, None, False),
    ("threads", 1, True, None, False),
    ("token_sum_constant", 1, True, None, False),
    ("eval_task_start", 0, True, None, False),
]


def _check_range(name: str, low: float, low_in: bool, high: float | None, high_in: bool, value: Any) -> None:
    """A ConfigError naming `name` and its interval when `value` (None = unset, allowed) is outside it."""
    if value is None:
        return
    too_low = value < low if low_in else value <= low
    too_high = high is not None and (value > high if high_in else value >= high)
    if too_low or too_high:
        right = "inf)" if high is None else f"{high}{']' if high_in else ')'}"
        raise ConfigError(f"{name} must be in {'[' if low_in else '('}{low}, {right}, got {value}")


def config_from_dict(values: dict[str, Any]) -> GRPOConfig:
    """Check every key and value against the dataclass's fields and types, then the cross-field rules."""
    hints = get_type_hints(GRPOConfig)
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            close = [name for name in known if key.lower() in name or name in key.lower()]
            hint = f" (did you mean {', '.join(sorted(close)[:3])}?)" if close else ""
            raise ConfigError(f"unknown config field {key!r}{hint}; see toolgym.trainers.config.GRPOConfig")
        checked[key] = _coerce(key, value, hints[key])
    config = GRPOConfig(**checked)
    validate(config)
    return config


def _default(name: str) -> Any:
    spec = next(f for f in dataclasses.fields(GRPOConfig) if f.name == name)
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key} got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; accept what float() accepts
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", item, args[0]) for i, item in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    return value


def validate(config: GRPOConfig) -> None:
    """Cross-field rules that need no model and no env (run on every load)."""
    positive = ["num_envs", "num_generations", "prompts_per_step", "max_new_tokens", "max_episode_tokens"]
    positive += ["num_iterations", "micro_batch_size", "dynamic_sampling_max_rounds", "sft_batch_size"]
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("total_steps", "train_tasks", "eval_tasks", "eval_every", "warmup_steps", "save_every"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)}")
    for name, low, low_in, high, high_in in _RANGES:
        _check_range(name, low, low_in, high, high_in, getattr(config, name))
    if config.overlong_buffer >= config.max_episode_tokens:
        raise ConfigError(
            f"overlong_buffer={config.overlong_buffer} must be below max_episode_tokens={config.max_episode_tokens}"
            " (it is the stretch before the budget where DAPO's length penalty ramps up)"
        )
    if config.dtype not in ("float32", "bfloat16", "float16", "float64"):
        raise ConfigError(f"dtype must be float32, bfloat16, float16 or float64, got {config.dtype!r}")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", config.device):
        raise ConfigError(f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got {config.device!r}")
    if config.num_generations == 1 and config.advantage_scale == "group_std":
        raise ConfigError(
            "num_generations=1 with advantage_scale='group_std' gives every sample advantage 0 (a group of one "
            "has no spread): use num_generations >= 2, or advantage_scale='batch_std'"
        )
    if config.num_generations == 1 and config.advantage_baseline == "rloo":
        raise ConfigError("advantage_baseline='rloo' needs num_generations >= 2 (it leaves each sample out)")
    if config.max_new_tokens >= config.max_episode_tokens:
        raise ConfigError(
            f"max_new_tokens={config.max_new_tokens} must be below max_episode_tokens={config.max_episode_tokens}"
        )
    if not 0 <= config.clip_eps_low < 1 or config.clip_eps_high < 0:
        raise ConfigError(
            f"clip_eps_low must be in [0, 1) and clip_eps_high >= 0, got {config.clip_eps_low}, {config.clip_eps_high}"
        )
    if config.dual_clip is not None and config.dual_clip <= 1:
        raise ConfigError(f"dual_clip must be > 1 (veRL uses 3.0) or null, got {config.dual_clip}")
    if config.kl_coef < 0 or config.entropy_coef < 0:
        raise ConfigError(f"kl_coef and entropy_coef must be >= 0, got {config.kl_coef}, {config.entropy_coef}")
    if config.temperature <= 0:
        raise ConfigError(f"temperature must be > 0 for GRPO sampling, got {config.temperature}")
    if config.rollout_correction_cap <= 0:
        raise ConfigError(f"rollout_correction_cap must be > 0, got {config.rollout_correction_cap}")
    if config.learning_rate <= 0:
        raise ConfigError(f"learning_rate must be > 0, got {config.learning_rate}")
    if config.train_task_indices is not None and not config.train_task_indices:
        raise ConfigError("train_task_indices is an empty list: give at least one task index, or null")
    if config.train_task_indices and config.eval_task_indices:
        shared = sorted(set(config.train_task_indices) & set(config.eval_task_indices))
        if shared:
            raise ConfigError(
                f"eval_task_indices overlap train_task_indices at {shared[:5]}: held-out tasks must be unseen"
            )
    if config.eval_every and not (config.eval_tasks or config.eval_task_indices):
        raise ConfigError("eval_every is set but eval_tasks is 0: give the number of held-out tasks")
    if config.eval_tasks and config.eval_task_start is not None and config.eval_task_start < config.train_tasks:
        raise ConfigError(
            f"eval_task_start={config.eval_task_start} overlaps the training tasks 0..{config.train_tasks - 1}: "
            "held-out tasks must start at or after train_tasks"
        )
    if config.sft_steps and not config.sft_data:
        raise ConfigError("sft_steps is set but sft_data is empty: give a JSONL file of demonstrations")
    if config.lora_rank < 0:
        raise ConfigError(f"lora_rank must be >= 0, got {config.lora_rank}")
    for sink in config.report_to:
        if sink not in ("tensorboard", "wandb"):
            raise ConfigError(f"report_to entries must be 'tensorboard' or 'wandb', got {sink!r}")
    for position, plugin in enumerate(config.plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("name"), str):
            raise ConfigError(f"plugins[{position}] must be a mapping with a 'name', got {plugin!r}")


def field_help(width: int = 100) -> str:
    """Every GRPOConfig field as `name = default  doc`, read from the attribute docstrings in config.py.

    `toolgym train --help` prints it, so the knobs, their defaults and what they do are one command
    away (the docstrings stay the single source; nothing is restated here).
    """
    import ast
    import inspect
    import textwrap

    from . import config as config_module

    try:
        body = ast.parse(inspect.getsource(config_module.GRPOConfig)).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError):  # no source shipped: names and defaults only
        body = []
    docs: dict[str, str] = {}
    for statement, following in zip(body, [*body[1:], None]):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            text = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                text = " ".join(str(following.value.value).split())
            docs[statement.target.id] = text
    lines = ["fields (name = default: what it does):"]
    for spec in dataclasses.fields(GRPOConfig):
        head = f"  {spec.name} = {_default(spec.name)!r}"
        doc = docs.get(spec.name, "")
        lines.append(head + (":" if doc else ""))
        if doc:
            lines.extend(textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def check_model_path(config: GRPOConfig) -> None:
    """The model must be "tiny" or an existing local folder (no hub downloads at train time)."""
    if config.model != "tiny" and not Path(config.model).is_dir():
        raise ConfigError(
            f"model {config.model!r} does not exist: give a local transformers checkpoint folder, or model=tiny"
        )
    if config.sft_data and not Path(config.sft_data).is_file():
        raise ConfigError(f"sft_data {config.sft_data!r} does not exist")
