"""The `toolgym` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

DESCRIPTION = """\
ToolGym: Gymnasium environments, retrieval, agents and evaluation for tool-using LLM agents.

Environments (import toolgym, then gym.make(ID), or gym.make("toolgym:ID") with no import):
  Math-v0          math with verifiable answers (MATH, MATH-500, GSM8K, procedural)
  FunctionCall-v0  BFCL-style function calling and executable multi-turn tool worlds
  Search-v0        multi-turn search over a corpus (Search-R1 tags or native tool calls)
"""

EPILOG = """\
examples:
  toolgym quickstart                      scripted agents on all three procedural worlds
  toolgym quickstart --episodes 200 --json results.json
  toolgym envs                            list the registered environments
  toolgym eval --dataset hotpotqa --agent scripted:baseline --limit 100 --out runs/hotpotqa-baseline
  toolgym compare runs/hotpotqa-baseline runs/hotpotqa-oracle --out leaderboard
  toolgym index build --corpus corpus.jsonl --backend bm25s --out indexes/my-corpus
  toolgym serve retriever --index indexes/my-corpus      # Search-R1's POST /retrieve on 127.0.0.1:8000
  toolgym serve model --agent hf:models/tiny-qwen        # OpenAI /v1/chat/completions on 127.0.0.1:8001
  toolgym train --config configs/search_tiny.yaml total_steps=20   # GRPO; metrics in runs/…/metrics.jsonl
  toolgym plot runs/search-tiny                           # reward and length curves to PNG
  toolgym train-retriever --help                          train the LLM embedder or the Gumbel reranker
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolgym",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    quickstart = commands.add_parser(
        "quickstart",
        help="run scripted agents on the procedural worlds of all three envs and print a results table",
        description=(
            "Play seeded episodes of the scripted `baseline` and `oracle` agents on the procedural worlds "
            "of Math-v0, FunctionCall-v0 and Search-v0 (no downloads, no model), then print accuracy with a "
            "95%% confidence interval, turns, tool calls, invalid-action rate and throughput. The oracle "
            "must score 1.0: anything less means a parser or scorer is broken."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    quickstart.add_argument("--episodes", type=int, default=64, help="episodes per (env, agent) pair")
    quickstart.add_argument("--agents", nargs="+", default=["baseline", "oracle"], help="scripted agents to run")
    quickstart.add_argument(
        "--envs", nargs="+", default=["Math-v0", "FunctionCall-v0", "Search-v0"], help="environments to run"
    )
    quickstart.add_argument("--pool-size", type=int, default=8, help="episodes in flight at once")
    quickstart.add_argument("--seed", type=int, default=0, help="first episode seed (episodes use seed, seed+1, …)")
    quickstart.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    quickstart.set_defaults(handler=_quickstart)

    envs = commands.add_parser("envs", help="list the registered ToolGym environments and their entry points")
    envs.set_defaults(handler=_list_envs)
    _add_area_commands(commands)
    return parser


def _add_area_commands(commands: argparse._SubParsersAction) -> None:
    """Commands defined next to the code they drive (each module imports only argparse at the top)."""
    from toolgym.agents.cli import add_serve_model_command
    from toolgym.evals.cli import add_compare_command, add_eval_command
    from toolgym.evals.retrieval_cli import add_eval_retrieval_command
    from toolgym.evals.retriever_training_cli import add_train_retriever_command
    from toolgym.retrievers.cli import add_index_command
    from toolgym.retrievers.serve_cli import add_serve_retriever_command
    from toolgym.trainers.cli import add_plot_command, add_train_command

    add_eval_command(commands, extra_subcommands=(add_eval_retrieval_command,))
    add_compare_command(commands)
    add_index_command(commands)
    add_train_command(commands)
    add_plot_command(commands)
    add_train_retriever_command(commands)
    serve = commands.add_parser(
        "serve",
        help="serve a retriever (Search-R1 protocol) or a model (OpenAI chat completions) over HTTP",
        description="Serve a retrieval index or any agent over HTTP on 127.0.0.1 (use --host to expose it).",
    )
    serve_commands = serve.add_subparsers(dest="serve_command", metavar="WHAT", required=True)
    add_serve_retriever_command(serve_commands)
    add_serve_model_command(serve_commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except ImportError as exc:  # an optional extra is missing: say which, without a traceback
        print(f"toolgym {args.command}: {exc}", file=sys.stderr)
        return 1


def _list_envs(args: argparse.Namespace) -> int:
    from toolgym.registration import ENV_ENTRY_POINTS

    for env_id, entry_point in ENV_ENTRY_POINTS.items():
        print(f"{env_id:18} {entry_point}")
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from rich.console import Console

    from toolgym.agents.scripted import ScriptedAgent
    from toolgym.evals.quickstart import results_table, rows_as_dicts, run_quickstart

    if args.episodes < 1 or args.pool_size < 1:
        print(
            f"toolgym quickstart: --episodes and --pool-size must be at least 1, got {args.episodes} and {args.pool_size}",
            file=sys.stderr,
        )
        return 2
    try:
        for name in args.agents:
            ScriptedAgent(name)
    except ValueError as exc:
        print(f"toolgym quickstart: {exc}", file=sys.stderr)
        return 2
    console = Console(width=max(Console().width, 100))
    rows = run_quickstart(
        episodes=args.episodes,
        agents=args.agents,
        envs=args.envs,
        pool_size=args.pool_size,
        seed=args.seed,
        console=console,
    )
    console.print(results_table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows_as_dicts(rows), handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
