"""`toolgym serve retriever`: argument parsing, bad arguments, and a real server process on an index."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from toolgym.retrievers.serve_cli import add_serve_retriever_command

CORPUS = [
    {"id": "d1", "title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"id": "d2", "title": "Berlin", "text": "Berlin is the capital of Germany, on the river Spree."},
    {"id": "d3", "title": "Spree", "text": "The Spree is a river that flows through Saxony and Berlin."},
]

SERVE_SCRIPT = """
import argparse, sys
from toolgym.retrievers.serve_cli import add_serve_retriever_command
parser = argparse.ArgumentParser()
add_serve_retriever_command(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="toolgym serve")
    add_serve_retriever_command(parser.add_subparsers())
    return parser.parse_args(["retriever", *argv])


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in CORPUS), encoding="utf-8")
    return path


def test_defaults_bind_loopback_with_search_r1_topk():
    args = parse("--index", "somewhere")
    assert (args.host, args.port, args.topk, args.no_batching) == ("127.0.0.1", 8000, 3, False)


def test_missing_source_and_two_sources_are_clear_errors(corpus_file, capsys):
    assert parse().handler(parse()) == 2
    assert "--index DIR or --corpus FILE" in capsys.readouterr().err
    args = parse("--index", "x", "--corpus", str(corpus_file))
    assert args.handler(args) == 2
    assert "only one of --index, --corpus" in capsys.readouterr().err


def test_missing_index_directory_is_a_clear_error(tmp_path, capsys):
    args = parse("--index", str(tmp_path / "nope"))
    assert args.handler(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_params_that_cannot_apply_are_refused_not_ignored(corpus_file, tmp_path, capsys):
    args = parse("--index", str(tmp_path), "--param", "k1=1.2")
    assert args.handler(args) == 2
    assert "--param (k1) sets backend parameters for --corpus" in capsys.readouterr().err
    args = parse("--corpus", str(corpus_file), "--param", "k_one=1.2")
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    assert "does not fit the bm25s backend" in err and "k_one" in err


def test_bad_limits_are_refused(corpus_file, capsys):
    args = parse("--corpus", str(corpus_file), "--max-topk", "2")
    assert args.handler(args) == 2
    assert "default_topk 3 exceeds max_topk 2" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(*argv: str) -> Iterator[tuple[str, dict]]:
    """`toolgym serve retriever ARGV` in a real process on a free port: (base URL, its /health)."""
    port = _free_port()
    command = [sys.executable, "-c", SERVE_SCRIPT, "retriever", *argv, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        health = None
        deadline = time.monotonic() + 60
        while health is None and time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(base_url + "/health", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, process.stderr.read() if process.poll() is not None else "server did not start"
        yield base_url, health
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_serving_a_built_index_in_a_real_process(corpus_file, tmp_path):
    from toolgym.retrievers.index import build_index

    build_index(corpus_file, "bm25s", tmp_path / "index", progress=False)
    with serving("--index", str(tmp_path / "index")) as (base_url, health):
        assert health["backend"] == "bm25s" and health["n_documents"] == 3
        assert health["index"] == str(tmp_path / "index")

        payload = {"queries": ["capital of France"], "topk": 1, "return_scores": True}
        [[entry]] = httpx.post(base_url + "/retrieve", json=payload).json()["result"]
        assert entry["document"]["contents"] == "Paris\nParis is the capital and largest city of France."


def test_default_limits_take_search_r1_grpo_batch_in_one_request(tmp_path):
    """Search-R1's GRPO script sends 2,560 queries in one POST (its client: `requests.post(url,
    json={"queries", "topk", "return_scores": True}).json()["result"]`); the default limits accept it."""
    requests = pytest.importorskip("requests")
    corpus = tmp_path / "corpus.jsonl"
    topics = ["Paris France capital", "Berlin Spree river", "Tokyo Japan", "Nile Egypt river", "Andes mountains"]
    records = [{"id": f"d{i}", "title": f"doc {i}", "text": f"{topics[i % 5]} passage number {i}"} for i in range(300)]
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    queries = [f"{topics[i % 5]} {i}" for i in range(2560)]

    with serving("--corpus", str(corpus)) as (base_url, health):
        assert health["limits"]["max_queries"] >= 4096
        response = requests.post(base_url + "/retrieve", json={"queries": queries, "topk": 3, "return_scores": True})
        result = response.json()["result"]

    assert response.status_code == 200 and len(result) == 2560
    assert all(len(hits) == 3 for hits in result)
    assert all(topics[i % 5] in hits[0]["document"]["contents"] for i, hits in enumerate(result))


def test_max_queries_flag_sets_the_limit(corpus_file):
    assert parse("--corpus", str(corpus_file)).max_queries == 4096
    assert parse("--corpus", str(corpus_file), "--max-queries", "10000").max_queries == 10000
