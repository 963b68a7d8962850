"""What the OpenAI-compatible path costs: ToolGym's model server + `OpenAIAgent` on loopback.

The served agent answers instantly (an echo), so every second measured is protocol overhead:
JSON, HTTP, the openai client, the server's gather window and batching. Also plays Search-v0
episodes (native tool calls) with the scripted baseline in-process and over HTTP, so the
overhead can be set against real env time.

    python benchmarks/openai_roundtrip.py [--requests 512] [--episodes 128]
"""

from __future__ import annotations

import argparse
import time

from toolgym.agents.base import AgentRequest
from toolgym.agents.episodes import play_episodes
from toolgym.agents.model_server import create_app, serve_in_background
from toolgym.agents.model_server_protocol import ServerLimits
from toolgym.agents.openai_agent import OpenAIAgent
from toolgym.agents.scripted import ScriptedAgent, policy_for
from toolgym.envs.pool import EnvPool


class EchoAgent:
    """Answers at once and records batch sizes."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def act(self, requests: list[AgentRequest]) -> list[str]:
        self.batch_sizes.append(len(requests))
        return [f"echo {request.messages[-1]['content']}" for request in requests]


def http_baseline(requests: list[AgentRequest]) -> list:
    """The scripted Search-v0 baseline, driven only by messages and tools (as a server sees them)."""
    info = {"env": "Search-v0", "tool_format": "hermes"}
    return [policy_for("Search-v0", "baseline")(AgentRequest(r.messages, r.tools, info)) for r in requests]


def roundtrip(requests: int, concurrency: int, batch_wait_ms: float) -> tuple[float, float]:
    agent = EchoAgent()
    app = create_app(agent, "echo", ServerLimits(batch_wait_ms=batch_wait_ms, max_batch_size=64))
    with serve_in_background(app) as base_url, OpenAIAgent(base_url, "echo", max_concurrency=concurrency) as client:
        client.act([AgentRequest([{"role": "user", "content": "warm-up"}])])
        agent.batch_sizes.clear()
        batch = [AgentRequest([{"role": "user", "content": f"q{i}"}]) for i in range(requests)]
        started = time.perf_counter()
        client.act(batch)
        elapsed = time.perf_counter() - started
    return requests / elapsed, sum(agent.batch_sizes) / len(agent.batch_sizes)


def episodes(count: int, pool_size: int) -> tuple[float, float]:
    from toolgym.agents.specs import CallableAgent

    seeds = list(range(count))
    started = time.perf_counter()
    play_episodes(ScriptedAgent("baseline"), EnvPool.make("toolgym:Search-v0", pool_size, tool_format="openai"), seeds)
    in_process = time.perf_counter() - started
    app = create_app(CallableAgent(http_baseline), "baseline")
    with serve_in_background(app) as base_url, OpenAIAgent(base_url, "baseline", max_concurrency=pool_size) as client:
        pool = EnvPool.make("toolgym:Search-v0", pool_size, tool_format="openai")
        started = time.perf_counter()
        play_episodes(client, pool, seeds)
        over_http = time.perf_counter() - started
    return count / in_process, count / over_http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--episodes", type=int, default=128)
    args = parser.parse_args()
    print("| concurrency | gather window | requests/s | mean batch |")
    print("|---:|---:|---:|---:|")
    for concurrency, batch_wait_ms in ((1, 10.0), (1, 0.0), (8, 10.0), (32, 10.0), (32, 2.0)):
        rate, batch = roundtrip(args.requests if concurrency > 1 else args.requests // 4, concurrency, batch_wait_ms)
        print(f"| {concurrency} | {batch_wait_ms:g} ms | {rate:,.0f} | {batch:.1f} |")
    local, remote = episodes(args.episodes, pool_size=8)
    print(
        f"\nSearch-v0 baseline, {args.episodes} episodes, pool 8: in-process {local:.1f} episodes/s, "
        f"over HTTP {remote:.1f} episodes/s"
    )


if __name__ == "__main__":
    main()
