"""Load test of the retrieval server on loopback: many concurrent clients, with and without micro-batching.

The server runs in its own (spawned) process, as `toolgym serve retriever` would, so client and
server do not share a GIL. Each client sends one-query requests back to back (what an env pool's
Search-v0 steps do), for a bounded number of requests and a bounded time. Reported: requests,
errors, QPS, latency p50/p95/p99, and the server's backend calls (from /health).

    python benchmarks/server_load.py                      # HotpotQA shared corpus if present
    python benchmarks/server_load.py --clients 64 --requests 50 --topk 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    """What one load run measured (latencies in milliseconds)."""

    requests: int = 0
    errors: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def qps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "qps": round(self.qps, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
        }


def _client(
    host: str, port: int, queries: list[str], offset: int, n: int, topk: int, deadline: float, result: LoadResult
) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                return
            body = json.dumps({"queries": [queries[(offset + i) % len(queries)]], "topk": topk, "return_scores": True})
            start = time.perf_counter()
            try:
                connection.request("POST", "/retrieve", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and len(json.loads(payload)["result"]) == 1
                problem = "" if ok else f"HTTP {response.status}: {payload[:200]!r}"
            except Exception as exc:  # any failure is counted, never hidden
                ok, problem = False, f"{type(exc).__name__}: {exc}"
                connection.close()  # reconnects on the next request
            with result.lock:
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.requests += 1
                if not ok:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(problem)
    finally:
        connection.close()


def run_load(
    url: str,
    queries: list[str],
    *,
    clients: int = 32,
    requests_per_client: int = 20,
    topk: int = 3,
    limit_s: float = 60,
) -> LoadResult:
    """`clients` concurrent clients each sending up to `requests_per_client` one-query requests (until `limit_s`).

    Each client is a thread with one keep-alive `http.client` connection: the stdlib client costs
    far less per request than httpx's async pool, so the numbers measure the server, not the client.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    result = LoadResult()
    deadline = time.monotonic() + limit_s
    threads = [
        threading.Thread(
            target=_client, args=(host, port, queries, c * 7919, requests_per_client, topk, deadline, result)
        )
        for c in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - start
    return result


# --- the benchmark: a spawned server per setting ------------------------------------------------


def load_corpus_and_queries() -> tuple[str, list[Any], list[str]]:
    """HotpotQA's shared corpus and questions when the shared data is present, else the procedural world."""
    from toolgym.data import shared_data_dir

    if shared_data_dir() is not None:
        from toolgym.envs.search.readers import load_rows, parse_row, shared_documents

        rows = load_rows("hotpotqa")
        return "HotpotQA IRCoT dev 500, shared corpus", shared_documents(rows), [parse_row(r).question for r in rows]
    from toolgym.envs.search.world import WorldConfig, get_world

    world = get_world(WorldConfig())
    questions = [world.question_row(i)["question"] for i in range(500)]
    return "procedural world (200 entities)", list(world.documents), questions


def _serve(port: int, config_kwargs: dict[str, Any]) -> None:
    from toolgym.retrievers.bm25 import BM25Retriever
    from toolgym.retrievers.server import ServerConfig, serve

    _, documents, _ = load_corpus_and_queries()
    serve(BM25Retriever(documents), ServerConfig(**config_kwargs), port=port, log_level="warning")  # 127.0.0.1


def _wait_healthy(url: str, process: multiprocessing.Process, timeout_s: float = 60) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError("the server process exited during start-up")
        try:
            return httpx.get(url + "/health", timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"no healthy server at {url} after {timeout_s} s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_setting(name: str, config_kwargs: dict[str, Any], queries: list[str], args: argparse.Namespace) -> dict:
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, config_kwargs), daemon=True)
    process.start()
    try:
        _wait_healthy(url, process)
        run_load(url, queries, clients=args.clients, requests_per_client=5, topk=args.topk, limit_s=10)  # warm-up
        before = httpx.get(url + "/health").json()["stats"]
        result = run_load(
            url, queries, clients=args.clients, requests_per_client=args.requests, topk=args.topk, limit_s=args.limit_s
        )
        after = httpx.get(url + "/health").json()["stats"]
    finally:
        process.terminate()
        process.join(10)
    calls = after["backend_calls"] - before["backend_calls"]
    row = {"setting": name, **result.summary(), "backend_calls": calls}
    row["queries_per_backend_call"] = round(result.requests / calls, 1) if calls else None
    if result.error_samples:
        row["error_samples"] = result.error_samples
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--topk", type=int, default=3)
    parser.add_argument("--limit-s", type=float, default=120, help="time limit per setting")
    args = parser.parse_args()

    corpus_name, documents, queries = load_corpus_and_queries()
    print(f"corpus: {corpus_name}, {len(documents)} documents; {args.clients} clients x {args.requests} requests")
    settings = [
        ("micro-batching (2 ms wait, 1 backend thread)", {"micro_batching": True, "batch_wait_ms": 2.0}),
        ("micro-batching (0 ms wait, 1 backend thread)", {"micro_batching": True, "batch_wait_ms": 0.0}),
        ("no batching, 1 backend thread", {"micro_batching": False}),
        ("no batching, 4 backend threads", {"micro_batching": False, "backend_threads": 4}),
    ]
    rows = [bench_setting(name, config, queries, args) for name, config in settings]
    header = "| setting | requests | errors | QPS | p50 ms | p95 ms | p99 ms | backend calls | queries/call |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['requests']} | {r['errors']} | {r['qps']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['backend_calls']} | {r['queries_per_backend_call']} |"
        )
        for sample in r.get("error_samples", []):
            print(f"    error: {sample}")


if __name__ == "__main__":
    main()
