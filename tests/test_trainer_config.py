"""Config loading: every key checked against GRPOConfig, and configs that cannot work refused in one
line before any model is loaded (the model loader is replaced by a tripwire to prove the order)."""

from __future__ import annotations

import pytest
import trainer_fixtures  # noqa: F401 - registers Parity-v0
from tiny_model_fixture import tiny_model_path

from toolgym.cli import main
from toolgym.trainers import setup
from toolgym.trainers.config import GRPOConfig
from toolgym.trainers.config_io import ConfigError, load_config
from toolgym.trainers.loop import GRPOTrainer

CONFIGS = ["configs/search_tiny.yaml", "configs/math_tiny.yaml", "configs/function_call_tiny.yaml"]


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_load(path):
    assert isinstance(load_config(path), GRPOConfig)


def test_overrides_are_typed_yaml_values_and_dotted_keys_reach_dicts():
    config = load_config("configs/search_tiny.yaml", ["learning_rate=1e-3", "env_kwargs.max_turns=3", "stop=[a, b]"])
    assert config.learning_rate == 1e-3 and config.env_kwargs["max_turns"] == 3 and config.stop == ["a", "b"]
    assert config.env_kwargs["top_k"] == 1  # the file's other keys survive


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["learning_rat=0.1"], "learning_rat"),  # unknown key
        (["num_generations=three"], "num_generations"),  # ill-typed
        (["num_generations=2.5"], "num_generations"),
        (["loss_aggregation=mean"], "loss_aggregation"),  # not one of the choices
        (["dynamic_sampling=1"], "dynamic_sampling"),
        (["num_generations=1"], "num_generations"),  # G = 1 with group-std scaling
        (["max_new_tokens=4096"], "max_new_tokens"),
        (["eval_tasks=0", "eval_every=3"], "eval_tasks"),
        (["eval_task_start=3"], "eval_task_start"),  # held-out range overlaps the training tasks
        (["plugins=[format_reward]"], "plugins"),
        # Dotted keys: an unknown head, or a head that is not a mapping (was StopIteration / TypeError).
        (["lerning_rate.x=1"], "lerning_rate"),
        (["learning_rate.x=1"], "learning_rate"),
        # Non-finite numbers (YAML .nan / .inf, or "nan") pass every `< 0` test, so they are refused by name.
        (["learning_rate=.nan"], "learning_rate"),
        (["kl_coef=.inf"], "kl_coef"),
        (["temperature=nan"], "temperature"),
        # Out-of-range numbers that would run but silently do something else.
        (["top_p=0"], "top_p"),
        (["top_p=1.5"], "top_p"),
        (["advantage_eps=-1e-6"], "advantage_eps"),
        (["overlong_buffer=-3"], "overlong_buffer"),
        (["overlong_buffer=5000"], "overlong_buffer"),
        (["overlong_penalty=-1"], "overlong_penalty"),
        (["max_grad_norm=-1"], "max_grad_norm"),
        (["min_lr_ratio=2"], "min_lr_ratio"),
        (["adam_beta2=1"], "adam_beta2"),
        (["token_sum_constant=0"], "token_sum_constant"),
        (["threads=0"], "threads"),
        (["sft_steps=-1"], "sft_steps"),
        (["lora_dropout=1.5"], "lora_dropout"),
        (["dtype=int64"], "dtype"),  # free strings with a fixed vocabulary
        (["dtype=float33"], "dtype"),
        (["device=gpu"], "device"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as error:
        load_config("configs/search_tiny.yaml", overrides)
    message = str(error.value)
    assert "\n" not in message and field in message, message


def test_group_size_one_is_fine_with_batch_std():
    assert load_config(None, ["num_generations=1", "advantage_scale=batch_std"]).num_generations == 1


@pytest.fixture
def no_model_load(monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr(setup, "load_model", tripwire)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["model=/no/such/model"], ["model", "does not exist"]),
        (["env_id=Math-v0", "env_kwargs={tool_format: search_r1}"], ["search_r1", "tool_format"]),
        (["env_id=NoSuchEnv-v0"], ["env_id", "NoSuchEnv-v0"]),
        (["env_id=Search-v0", "max_episode_tokens=40", "max_new_tokens=8"], ["max_episode_tokens", "prompt"]),
    ],
)
def test_bad_configs_fail_before_the_model_loads(tmp_path, no_model_load, overrides, words):
    base = [f"model={tiny_model_path()}", f"output_dir={tmp_path}", "env_id=Parity-v0", "progress_bar=false"]
    with pytest.raises(ConfigError) as error:
        GRPOTrainer(load_config(None, [*base, *overrides]))
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_cli_reports_a_bad_config_in_one_line(capsys):
    assert main(["train", "--config", "configs/math_tiny.yaml", "clip_eps_hgh=0.3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toolgym train:") and "clip_eps_hgh" in err and "\n" not in err
