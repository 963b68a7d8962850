"""Token-level rollout throughput on the tiny local model (no downloads).

    python benchmarks/rollout.py                      # Search-v0 and Math-v0, 64 episodes each
    python benchmarks/rollout.py --episodes 128 --batch-size 32 --threads 2
    python benchmarks/rollout.py --compare-kv-reuse   # the same rollouts with and without KV reuse

Prints, per env: episodes/s, sampled tokens/s, all episode tokens/s, and the share of wall time
spent in the engine (generation), so the rest is env steps plus chat-template suffix rendering,
and how many prompt tokens the engine served from its KV cache instead of encoding them.
The tiny model is random, so episodes mostly run to the turn limit: a worst case for turn count.
Search-v0 uses its default search_r1 dialect (raw layout); Math-v0 uses hermes tools (chat layout).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

ENVS = {
    "Search-v0": {"max_turns": 3},
    "Math-v0": {"tools": True, "max_turns": 3},
}


class TimedEngine:
    """Wraps an engine and adds up the seconds spent in `generate`."""

    def __init__(self, engine: Any):
        self.engine, self.seconds = engine, 0.0

    @property
    def policy_version(self) -> int:
        return self.engine.policy_version

    def reseed(self, seed: int) -> None:
        self.engine.reseed(seed)

    def update_weights(self, weights: Any) -> None:
        self.engine.update_weights(weights)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.engine.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=64, help="episodes per env (seeds × group size)")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32, help="engine batch and env pool size")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per assistant turn")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--model", default=None, help="a model folder; default: build the tiny model")
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--kv-cache-sequences", type=int, default=None, help="HFEngine KV reuse (0 = off)")
    parser.add_argument("--compare-kv-reuse", action="store_true", help="run with KV reuse off, then on")
    args = parser.parse_args()

    import torch

    import toolgym  # noqa: F401  (registers the envs)
    from toolgym.agents.base import SamplingParams
    from toolgym.agents.drift import check_drift
    from toolgym.agents.hf_engine import HFEngine
    from toolgym.agents.rollout import collect_rollouts
    from toolgym.agents.tiny import make_tiny_model
    from toolgym.envs.pool import EnvPool

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(args.model) if args.model else make_tiny_model(Path(folder) / "tiny")
        engine = HFEngine.load(model_path, batch_size=args.batch_size)
        params = sum(p.numel() for p in engine.model.parameters())
        print(f"model {model_path.name}: {params / 1e6:.2f} M parameters, torch threads {args.threads}")
        sampling = SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=0)
        seeds = list(range(args.episodes // args.group_size))
        settings = [0, 64] if args.compare_kv_reuse else [args.kv_cache_sequences]
        print(
            "| env | KV reuse | episodes | turns | sampled tokens | episodes/s | sampled tok/s | episode tok/s "
            "| engine s | engine share | prompt tokens from cache | drift check / episode |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        runs = [(env_id, kwargs, setting) for env_id, kwargs in ENVS.items() for setting in settings]
        for env_id, env_kwargs, setting in runs:
            if setting is not None:
                engine.kv_cache.capacity = setting
            engine.kv_cache.clear()
            env_kwargs = {**env_kwargs, "max_turns": args.max_turns}
            timed = TimedEngine(engine)
            with EnvPool.make(f"toolgym:{env_id}", args.batch_size, **env_kwargs) as pool:
                collect_rollouts(timed, engine.tokenizer, pool, seeds[:2], sampling, 4096, group_size=1)  # warm-up
                timed.seconds = 0.0
                engine.kv_cache.reused_tokens = engine.kv_cache.encoded_tokens = 0
                started = time.perf_counter()
                trajectories = collect_rollouts(
                    timed, engine.tokenizer, pool, seeds, sampling, max_episode_tokens=4096, group_size=args.group_size
                )
                wall = time.perf_counter() - started
            sampled = sum(t.num_generated_tokens for t in trajectories)
            total = sum(len(t.token_ids) for t in trajectories)
            turns = sum(len(t.turn_spans) for t in trajectories)
            check_started = time.perf_counter()
            drifted = sum(not check_drift(t, engine.tokenizer).ok for t in trajectories)
            check_seconds = (time.perf_counter() - check_started) / len(trajectories)
            if drifted:
                print(f"WARNING: {drifted} trajectories drifted from the full render")
            cache = engine.kv_cache
            from_cache = cache.reused_tokens / max(1, cache.reused_tokens + cache.encoded_tokens)
            print(
                f"| {env_id} | {'on' if cache.capacity else 'off'} | {len(trajectories)} | {turns} | {sampled} | "
                f"{len(trajectories) / wall:.1f} | {sampled / wall:,.0f} | {total / wall:,.0f} | {timed.seconds:.2f} | "
                f"{timed.seconds / wall:.0%} | {from_cache:.0%} | {check_seconds * 1000:.1f} ms |"
            )


if __name__ == "__main__":
    main()
