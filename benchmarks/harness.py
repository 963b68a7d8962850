"""Evaluation-harness overhead per episode: what `toolgym eval` adds on top of the agent and the env.

Runs the scripted search-then-answer agent (`scripted:baseline`, which costs microseconds) through
the full harness — env pool, error isolation, JSONL writing with flush and background fsync,
progress bookkeeping — and splits the loop's wall time into agent time, env (tool) time (reset +
step inside the pool, retrieval included) and the rest, the harness overhead. The goal is an
overhead below 5 % of the tool time on Search-v0.

Run: `python benchmarks/harness.py [--episodes N] [--concurrency C]` (HotpotQA rows need the
shared data folder; the procedural world needs nothing).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from toolgym.data import shared_data_dir
from toolgym.evals.harness import run_eval


def measure(dataset: str, episodes: int, concurrency: int, samples: int) -> dict[str, float]:
    """One fresh run; returns per-episode milliseconds and the overhead's shares."""
    options = {"env": "Search-v0", "dataset": dataset, "agent": "scripted:baseline", "limit": episodes // samples}
    options["samples"] = samples
    with tempfile.TemporaryDirectory() as folder:
        outcome = run_eval(Path(folder) / "run", options, concurrency=concurrency, show_progress=False)
    clock = outcome.clock
    n = max(1, clock.episodes)
    return {
        "episodes": clock.episodes,
        "total_ms": 1000 * clock.total / n,
        "env_ms": 1000 * clock.env / n,
        "agent_ms": 1000 * clock.agent / n,
        "overhead_ms": 1000 * clock.overhead / n,
        "record_ms": 1000 * clock.record / n,
        "overhead_of_total": clock.overhead / clock.total,
        "overhead_of_env": clock.overhead / clock.env if clock.env else float("inf"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    datasets = ["procedural"] + (["hotpotqa"] if shared_data_dir() is not None else [])
    print(f"machine: {platform.machine()} {platform.processor() or ''} Python {platform.python_version()}")
    header = "| dataset | concurrency | episodes | ms/episode | env (tool) ms | agent ms | harness ms | of which writing | harness / total | harness / tool |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dataset in datasets:
        episodes = min(args.episodes, 500) if dataset == "hotpotqa" else args.episodes
        measure(dataset, min(episodes, 50), 1, 1)  # warm-up: imports, index builds, verifier start
        for concurrency in args.concurrency:
            m = measure(dataset, episodes, concurrency, 1)
            print(
                f"| {dataset} | {concurrency} | {m['episodes']} | {m['total_ms']:.3f} | {m['env_ms']:.3f} | "
                f"{m['agent_ms']:.3f} | {m['overhead_ms']:.3f} | {m['record_ms']:.3f} | {m['overhead_of_total']:.1%} | {m['overhead_of_env']:.1%} |"
            )


if __name__ == "__main__":
    main()
