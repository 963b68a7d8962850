"""A short, bounded load test on loopback (the full one is benchmarks/server_load.py)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import httpx
import pytest

from toolgym.envs.search.world import WorldConfig, get_world
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.server import ServerConfig, running_server

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "server_load.py"


@pytest.fixture(scope="module")
def server_load():
    spec = importlib.util.spec_from_file_location("server_load", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["server_load"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("micro_batching", [True, False])
def test_many_concurrent_clients_get_answers_without_errors(server_load, micro_batching):
    world = get_world(WorldConfig())
    questions = [world.question_row(i)["question"] for i in range(100)]
    with running_server(BM25Retriever(world.documents), ServerConfig(micro_batching=micro_batching)) as url:
        result = server_load.run_load(url, questions, clients=16, requests_per_client=10, limit_s=60)
        stats = httpx.get(url + "/health").json()["stats"]

    summary = result.summary()
    print(f"micro_batching={micro_batching}: {summary}, backend calls {stats['backend_calls']}")
    assert result.error_samples == [] and summary["errors"] == 0
    assert summary["requests"] == 160 == stats["requests"]
    assert all(math.isfinite(summary[p]) for p in ("p50_ms", "p95_ms", "p99_ms"))
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
