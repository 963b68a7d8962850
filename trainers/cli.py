"""`toolgym train` and `toolgym plot` (argparse only at import time; torch loads when a command runs)."""

from __future__ import annotations

import argparse
import sys

TRAIN_EPILOG = """\
examples:
  toolgym train --config configs/search_tiny.yaml
  toolgym train --config configs/math_tiny.yaml total_steps=5 learning_rate=3e-4 output_dir=runs/math
  toolgym train --config configs/search_tiny.yaml env_kwargs.max_turns=3 resume=true
Every key is a field of toolgym.trainers.config.GRPOConfig (documented there and in the README);
values are YAML (numbers, true/false, [lists]); dict fields take dotted keys.
"""


def add_train_command(commands: argparse._SubParsersAction) -> None:
    from toolgym.trainers.config_io import field_help  # dataclasses and yaml only, no torch

    train = commands.add_parser(
        "train",
        help="train a policy with GRPO on an env (config file + key=value overrides)",
        description="Run GRPO (optionally after an SFT warm-up) and write metrics, checkpoints and the model "
        "to output_dir. A config that cannot work fails with a one-line error before any model is loaded.",
        epilog=TRAIN_EPILOG + "\n" + field_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--config", metavar="FILE", help="YAML file of GRPOConfig fields")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="fields overriding the file")
    train.set_defaults(handler=_train)


def add_plot_command(commands: argparse._SubParsersAction) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw a training run's reward and length curves to PNG",
        description="Read RUN_DIR/metrics.jsonl and write reward.png and length.png (and eval curves) there.",
    )
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `toolgym train`")
    plot.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: RUN_DIR)")
    plot.set_defaults(handler=_plot)


def _train(args: argparse.Namespace) -> int:
    from toolgym.trainers.config_io import ConfigError, load_config
    from toolgym.trainers.run import run_training

    try:
        config = load_config(args.config, args.overrides)
        history = run_training(config)
    except ConfigError as exc:
        print(f"toolgym train: {exc}", file=sys.stderr)
        return 2
    last = history[-1] if history else {}
    summary = {k: last[k] for k in ("step", "reward/mean", "eval/reward/mean", "loss") if k in last}
    print(f"toolgym train: done, {config.output_dir} {summary}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from toolgym.trainers.plot import plot_run

    try:
        paths = plot_run(args.run_dir, args.out)
    except FileNotFoundError as exc:
        print(f"toolgym plot: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
