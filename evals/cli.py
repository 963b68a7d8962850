"""Command-line wiring of `toolgym eval` (with `rescore` and `merge`) and `toolgym compare`.

Only argparse is imported at module level; each handler imports the harness when it runs.
`python -m toolgym.evals.cli eval …` works on its own, before the commands are wired into
`toolgym.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from toolgym.cli_help import HelpFormatter
from toolgym.cli_values import parse_key_value

EVAL_DESCRIPTION = """\
Evaluate an agent on a benchmark: n tasks × k samples, played in batches through an env pool.

Writes into --out: results.jsonl (one line per episode: task, sample, seed, messages, actions,
rewards, metrics, timing, error; appended and flushed as each episode ends), summary.json,
report.md and run.json (configuration, seeds, agent, env kwargs, package versions, command,
start/end times). A run killed at any moment, SIGKILL included, continues with --resume without
losing or repeating an episode; an agent or env failure on one episode becomes an error row and
the run goes on.

Datasets (--dataset) pick the env: hotpotqa, hotpotqa:train_sample, nq_open (Search-v0; nq_open
needs --env-kwargs corpus=PATH), math500, math, gsm8k (Math-v0), bfcl, bfcl:simple,
bfcl_v4:simple_python,multiple … (FunctionCall-v0), procedural (with --env), a data file (with
--env) or hf:<name> (online). BEIR SciFact is a retrieval benchmark: `toolgym eval retrieval`.
Agents (--agent): scripted:<oracle|baseline|random>, py:<module>:<function>, hf:<model path>,
vllm:<model>, openai:<base_url>#<model>.
"""

EVAL_EPILOG = """\
examples:
  toolgym eval --dataset hotpotqa --agent scripted:baseline --limit 100 --out runs/hotpotqa-baseline
  toolgym eval --env Search-v0 --dataset procedural --agent scripted:oracle --limit 50 --samples 4 --out runs/proc
  toolgym eval --dataset math500 --agent openai:http://127.0.0.1:8000/v1#my-model --concurrency 32 --out runs/m500
  toolgym eval --out runs/m500 --resume                   continue a killed run (saved options are reused)
  toolgym eval --out runs/m500 --resume --retry-errors    also rerun the episodes that errored
  toolgym eval --dataset bfcl:simple --agent scripted:oracle --shard 0/2 --out runs/s0   (and --shard 1/2 …)
  toolgym eval merge runs/s0 runs/s1 --out runs/bfcl-simple
  toolgym eval rescore runs/hotpotqa-baseline             recompute metrics with the current scorers
"""

COMPARE_EPILOG = """\
examples:
  toolgym compare runs/hotpotqa-baseline runs/hotpotqa-oracle
  toolgym compare runs/* --out leaderboard --labels base oracle
"""

# (flag, dest, type, help). Defaults are applied by the harness, so on --resume "not given" means
# "use the saved value" (argparse.SUPPRESS keeps an option out of the namespace until given).
CONFIG_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--env", "env", str, "env id: Search-v0, Math-v0 or FunctionCall-v0 (implied by a named dataset)"),
    ("--dataset", "dataset", str, "dataset name, data file or hf:<name> (see above); default procedural"),
    ("--agent", "agent", str, "agent spec, e.g. scripted:baseline or openai:http://127.0.0.1:8000/v1#model"),
    ("--limit", "limit", int, "evaluate the first N tasks (default: the whole dataset; required for procedural)"),
    ("--samples", "samples", int, "samples per task (k); pass@k is reported for k > 1 (default 1)"),
    ("--seed", "seed", int, "base seed of episode seeds and agent sampling (default 0)"),
    ("--shard", "shard", str, "i/n: play every n-th task starting at i (0-based); join shards with `eval merge`"),
    ("--temperature", "temperature", float, "sampling temperature for model agents (default: the agent's)"),
    ("--top-p", "top_p", float, "nucleus sampling mass for model agents (default: the agent's)"),
    ("--max-tokens", "max_tokens", int, "max new tokens per assistant turn (default: the agent's)"),
)


def add_eval_command(
    subparsers: argparse._SubParsersAction, extra_subcommands: Iterable[Callable[[Any], None]] = ()
) -> None:
    """Add `toolgym eval` (options for a run, plus `rescore` / `merge` and any extra sub-commands).

    Each function in `extra_subcommands` receives the eval sub-parsers action and adds its own
    sub-command (for example `retrieval`).
    """
    parser = subparsers.add_parser(
        "eval",
        help="evaluate an agent on a benchmark (resumable), or rescore / merge runs",
        description=EVAL_DESCRIPTION,
        epilog=EVAL_EPILOG,
        formatter_class=HelpFormatter,
    )
    for flag, dest, kind, text in CONFIG_OPTIONS:
        parser.add_argument(flag, dest=dest, type=kind, default=argparse.SUPPRESS, help=text)
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        default=argparse.SUPPRESS,
        metavar="KWARGS",
        help="env constructor arguments as key=value pairs (values parsed as JSON when they can be) "
        "or one JSON object, e.g. --env-kwargs top_k=5 max_turns=6 or '{\"top_k\": 5}'",
    )
    parser.add_argument("--out", help="run directory (created; must not hold a run unless --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out with its saved configuration")
    parser.add_argument("--retry-errors", action="store_true", help="with --resume: rerun the episodes that errored")
    parser.add_argument("--concurrency", type=int, default=8, help="episodes in flight (env pool size, agent batch)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_eval)

    commands = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND", title="sub-commands")
    rescore = commands.add_parser(
        "rescore",
        help="recompute metrics of a saved run with the current scorers",
        description=(
            "Replay each saved episode's actions through a fresh env (same task and seed; envs are "
            "deterministic), take the current scorer's metrics, and rewrite results.jsonl (atomically; "
            "previous metrics kept per row), summary.json and report.md. run.json records the rescore."
        ),
        epilog="example:\n  toolgym eval rescore runs/hotpotqa-baseline",
        formatter_class=HelpFormatter,
    )
    rescore.add_argument("run_dir", metavar="DIR", help="a run directory written by toolgym eval")
    rescore.set_defaults(handler=_rescore)
    merge = commands.add_parser(
        "merge",
        help="merge the shard directories of one run",
        description=(
            "Join run directories made with --shard i/n into one run. They must share every option but "
            "--shard; overlapping episodes are refused, and missing shards or episodes are reported."
        ),
        epilog=(
            "example:\n"
            "  toolgym eval --dataset math500 --agent scripted:baseline --shard 0/2 --out runs/m500-s0\n"
            "  toolgym eval --dataset math500 --agent scripted:baseline --shard 1/2 --out runs/m500-s1\n"
            "  toolgym eval merge runs/m500-s0 runs/m500-s1 --out runs/m500"
        ),
        formatter_class=HelpFormatter,
    )
    merge.add_argument("run_dirs", nargs="+", metavar="DIR", help="shard run directories")
    merge.add_argument("--out", required=True, metavar="DIR", help="the merged run directory (must be new)")
    merge.set_defaults(handler=_merge)
    for add in extra_subcommands:
        add(commands)


def add_compare_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `toolgym compare DIR...`: leaderboard table (terminal + Markdown) and PNG plots."""
    parser = subparsers.add_parser(
        "compare",
        help="leaderboard across evaluation runs, with plots",
        description=(
            "Print one table per benchmark (one row per run, each metric as mean [95% CI]) and write "
            "leaderboard.md, accuracy_by_benchmark.png and accuracy_vs_tool_calls.png into --out."
        ),
        epilog=COMPARE_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dirs", nargs="+", metavar="DIR", help="run directories written by toolgym eval")
    parser.add_argument("--out", default=".", help="folder for leaderboard.md and the PNG plots")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: the agent spec)")
    parser.set_defaults(handler=_compare)


def parse_env_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """`["top_k=5", "corpus=x.jsonl"]` or `['{"top_k": 5}']` -> dict (values parsed as JSON if possible)."""
    kwargs: dict[str, Any] = {}
    for item in items:
        text = item.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--env-kwargs {item!r} is not a valid JSON object: {exc}") from exc
            if not isinstance(value, dict):
                raise ValueError(f"--env-kwargs {item!r} must be a JSON object")
            kwargs.update(value)
            continue
        try:
            key, value = parse_key_value(text)
        except ValueError as exc:
            raise ValueError(f"--env-kwargs {item!r} must be key=value or a JSON object") from exc
        kwargs[key] = value
    return kwargs


def _fail(command: str, exc: BaseException) -> int:
    print(f"toolgym {command}: {exc}", file=sys.stderr)
    return 2


_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, ImportError, RuntimeError, TypeError)


def _eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .harness import run_eval
    from .results import RunDirError

    if not args.out:
        return _fail("eval", ValueError("--out DIR is required (the run directory)"))
    try:
        options = {dest: getattr(args, dest) for _, dest, _, _ in CONFIG_OPTIONS if hasattr(args, dest)}
        if hasattr(args, "env_kwargs"):
            options["env_kwargs"] = parse_env_kwargs(args.env_kwargs)
        if args.retry_errors and not args.resume:
            raise ValueError("--retry-errors only applies with --resume")
        outcome = run_eval(
            args.out,
            options,
            resume=args.resume,
            retry_errors=args.retry_errors,
            concurrency=args.concurrency,
            command=sys.argv,
            show_progress=not args.no_progress,
        )
    except (RunDirError, *_USER_ERRORS) as exc:
        return _fail("eval", exc)
    summary = outcome.summary
    console = Console()
    console.print(_summary_table(summary))
    console.print(
        f"played {outcome.played} episodes ({outcome.skipped} already done), {summary.get('errors', 0)} errors; "
        f"wrote {outcome.out_dir}/results.jsonl, summary.json, report.md"
    )
    return 0


def _summary_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    from .report import format_interval

    info = summary.get("run", {})
    table = Table(title=f"{info.get('agent')} on {info.get('dataset')} ({info.get('env')})")
    table.add_column("metric")
    table.add_column("mean [95% CI]", justify="right")
    primary = summary.get("primary_metric")
    metrics = summary.get("metrics", {})
    for name in [primary, *(n for n in metrics if n != primary)]:
        if name in metrics:
            table.add_row(f"[bold]{name}[/bold]" if name == primary else name, format_interval(metrics[name]))
    for name, stats in (summary.get("pass_at_k") or {}).items():
        table.add_row(name, format_interval(stats))
    non_live = (summary.get("bfcl") or {}).get("non_live") or {}
    if non_live.get("summary_ast") is not None:
        table.add_row("BFCL non-live AST summary", f"{non_live['summary_ast']:.3f}")
    return table


def _rescore(args: argparse.Namespace) -> int:
    from .rescore import rescore_run
    from .results import RunDirError

    try:
        outcome = rescore_run(args.run_dir)
    except (RunDirError, *_USER_ERRORS) as exc:
        return _fail("eval rescore", exc)
    accuracy = outcome.summary.get("accuracy") or {}
    print(
        f"rescored {outcome.episodes} episodes: {outcome.changed} changed, {outcome.diverged} diverged, "
        f"{outcome.failed} failed, {outcome.skipped_errors} error rows kept; "
        f"{outcome.summary.get('primary_metric')} = {accuracy.get('mean', float('nan')):.4f}"
    )
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .merge import merge_runs
    from .results import RunDirError

    try:
        outcome = merge_runs(args.run_dirs, args.out)
    except (RunDirError, *_USER_ERRORS) as exc:
        return _fail("eval merge", exc)
    print(f"merged {len(args.run_dirs)} shards into {outcome.out_dir}: {outcome.episodes} episodes")
    if outcome.missing_shards:
        print(f"warning: missing shards {outcome.missing_shards}", file=sys.stderr)
    if outcome.missing_keys:
        shown = ", ".join(f"(task {t}, sample {s})" for t, s in outcome.missing_keys[:10])
        print(f"warning: {len(outcome.missing_keys)} planned episodes missing, e.g. {shown}", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .compare import compare_runs, leaderboard_tables
    from .results import RunDirError

    try:
        outcome = compare_runs(args.run_dirs, args.out, args.labels)
    except (RunDirError, *_USER_ERRORS) as exc:
        return _fail("compare", exc)
    console = Console()
    for table in leaderboard_tables(outcome.entries):
        console.print(table)
    console.print(f"wrote {outcome.markdown} and {', '.join(str(p) for p in outcome.plots)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with `eval` and `compare` (what `toolgym.cli` wires in)."""
    parser = argparse.ArgumentParser(prog="toolgym", formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_eval_command(commands)
    add_compare_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
