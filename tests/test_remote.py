"""RemoteRetriever against a real server on loopback: results, batching, retries, errors, Search-v0."""

from __future__ import annotations

import socket
import time

import gymnasium as gym
import httpx
import pytest

from toolgym.agents.base import AgentRequest
from toolgym.agents.scripted import search as scripted
from toolgym.envs.search.env import SearchEnv
from toolgym.envs.search.world import WorldConfig, get_world
from toolgym.retriever_contract import Document, Retriever
from toolgym.retrievers import build_retriever
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.remote import (
    RemoteRetriever,
    RetrievalRequestError,
    RetrievalResponseError,
    RetrieverUnavailableError,
    hit_from_document,
)
from toolgym.retrievers.server import ServerConfig, running_app, running_server

DOCS = [
    Document("d1", "Paris", "Paris is the capital and largest city of France."),
    Document("d2", "Berlin", "Berlin is the capital of Germany, on the river Spree."),
    Document("d3", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
    Document("d4", "東京", "東京は日本の首都です。 Tokyo is the capital of Japan."),
]
QUERIES = ["capital of France", "river", "Japan", "", "Berlin Spree", "東京", "zzqxv", "capital"]


class FlakyRetriever:
    """BM25 whose first `failures` calls raise, as a backend that is still warming up would."""

    def __init__(self, retriever: BM25Retriever, failures: int):
        self.retriever = retriever
        self.failures = failures
        self.calls = 0

    def search(self, queries, k):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"not ready (call {self.calls})")
        return self.retriever.search(queries, k)


@pytest.fixture(scope="module")
def bm25() -> BM25Retriever:
    return BM25Retriever(DOCS)


@pytest.fixture(scope="module")
def url(bm25):
    with running_server(bm25, ServerConfig(max_queries=8, max_topk=10)) as base_url:
        yield base_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_remote_results_equal_in_process_results(url, bm25):
    with RemoteRetriever(url) as remote:
        assert isinstance(remote, Retriever)
        assert remote.search(QUERIES, 3) == bm25.search(QUERIES, 3)


def test_url_may_name_the_retrieve_endpoint(url, bm25):
    with RemoteRetriever(url + "/retrieve/") as remote:
        assert remote.search(["Japan"], 1) == bm25.search(["Japan"], 1)


def test_big_query_lists_are_split_into_batches(url, bm25):
    before = httpx.get(url + "/health").json()["stats"]["requests"]
    with RemoteRetriever(url, batch_size=3) as remote:
        results = remote.search(QUERIES, 2)
    after = httpx.get(url + "/health").json()["stats"]["requests"]
    assert results == bm25.search(QUERIES, 2)
    assert after - before == 3  # 8 queries in batches of 3, 3, 2


def test_no_request_for_nothing_to_do(url):
    with RemoteRetriever(url) as remote:
        assert remote.search([], 3) == [] and remote.search(["capital"], 0) == [[]]


def test_single_string_is_refused(url):
    with RemoteRetriever(url) as remote, pytest.raises(TypeError, match="list of strings"):
        remote.search("capital", 3)


def test_client_errors_are_not_retried(url):
    before = httpx.get(url + "/health").json()["stats"]["rejected"]
    with RemoteRetriever(url, max_retries=3, backoff_s=0.5) as remote:
        started = time.perf_counter()
        with pytest.raises(RetrievalRequestError, match=r"422.*limit of 10"):
            remote.search(["capital"], 50)
    assert time.perf_counter() - started < 0.5
    assert httpx.get(url + "/health").json()["stats"]["rejected"] - before == 1


def test_server_errors_are_retried_until_the_backend_answers(bm25):
    flaky = FlakyRetriever(bm25, failures=2)
    with running_server(flaky) as base_url, RemoteRetriever(base_url, max_retries=3, backoff_s=0.01) as remote:
        assert remote.search(["Japan"], 1) == bm25.search(["Japan"], 1)
    assert flaky.calls == 3


def test_persistent_server_errors_give_up_with_the_last_reason(bm25):
    flaky = FlakyRetriever(bm25, failures=100)
    with (
        running_server(flaky) as base_url,
        RemoteRetriever(base_url, max_retries=2, backoff_s=0.01) as remote,
        pytest.raises(RetrieverUnavailableError, match=r"failed 3 times.*HTTP 500.*not ready"),
    ):
        remote.search(["Japan"], 1)
    assert flaky.calls == 3


def test_server_down_is_a_clear_error_after_backoff():
    remote = RemoteRetriever(f"http://127.0.0.1:{_free_port()}", max_retries=2, backoff_s=0.05, timeout_s=2)
    started = time.perf_counter()
    with pytest.raises(RetrieverUnavailableError, match=r"ConnectError.*toolgym serve retriever"):
        remote.search(["anything"], 3)
    assert time.perf_counter() - started >= 0.05 + 0.1  # two backoffs: 0.05 s then 0.1 s


def test_rate_limited_requests_are_retried():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen = []

    async def retrieve(request):
        seen.append(1)
        if len(seen) == 1:
            return JSONResponse({"detail": "slow down"}, status_code=429)
        doc = {"contents": '"Paris"\nParis is the capital of France.'}  # a Search-R1 wiki-18 row
        return JSONResponse({"result": [[{"document": doc, "score": 1.5}]]})

    app = Starlette(routes=[Route("/retrieve", retrieve, methods=["POST"])])
    with running_app(app) as base_url, RemoteRetriever(base_url, backoff_s=0.01) as remote:
        [[hit]] = remote.search(["capital"], 1)
    assert len(seen) == 2
    assert (hit.title, hit.text, hit.score) == ("Paris", "Paris is the capital of France.", 1.5)


@pytest.mark.parametrize(
    "body",
    [{"results": []}, {"result": [[], []]}, {"result": ["not a list"]}, {"result": [["not a dict"]]}, [1, 2]],
)
def test_a_response_in_another_format_is_a_clear_error(body):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def retrieve(request):
        return JSONResponse(body)

    app = Starlette(routes=[Route("/retrieve", retrieve, methods=["POST"])])
    with running_app(app) as base_url, RemoteRetriever(base_url) as remote, pytest.raises(RetrievalResponseError):
        remote.search(["capital"], 1)


def test_documents_without_scores_or_ids_still_become_hits():
    hit = hit_from_document({"contents": "Title line\nbody text"}, 0.0)
    assert (hit.doc_id, hit.title, hit.text) == ("Title line", "Title line", "body text")


def test_bad_url_and_arguments_are_refused():
    with pytest.raises(ValueError, match="http://"):
        RemoteRetriever("127.0.0.1:8000")
    with pytest.raises(ValueError, match="batch_size"):
        RemoteRetriever("http://127.0.0.1:1", batch_size=0)


# --- build_retriever("remote") and Search-v0 -----------------------------------------------------


def test_build_retriever_checks_the_served_corpus_size(url):
    assert isinstance(build_retriever("remote", DOCS, url=url), RemoteRetriever)
    with pytest.raises(ValueError, match="serves 4 documents, but the corpus to search here has 2"):
        build_retriever("remote", DOCS[:2], url=url)
    assert isinstance(build_retriever("remote", DOCS[:2], url=url, check_corpus=False), RemoteRetriever)


def test_build_retriever_works_against_a_server_without_health():
    """Search-R1's own retrieval_server.py has only /retrieve: GET /health is a 404 there."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def retrieve(request):
        doc = {"contents": '"Paris"\nParis is the capital of France.'}
        return JSONResponse({"result": [[{"document": doc, "score": 1.5}]]})

    app = Starlette(routes=[Route("/retrieve", retrieve, methods=["POST"])])
    with running_app(app) as base_url:
        remote = build_retriever("remote", DOCS, url=base_url)
        [[hit]] = remote.search(["capital"], 1)
        remote.close()
    assert (hit.title, hit.score) == ("Paris", 1.5)


def _play(env, seed: int | None = None, options: dict | None = None) -> tuple[float, list[dict], list[str]]:
    """One episode of the scripted search-then-answer agent: (reward, conversation, retrieved ids)."""
    messages, info = env.reset(seed=seed, options=options)
    conversation, retrieved = list(messages), []
    while True:
        action = scripted.baseline(AgentRequest(messages=conversation, tools=info["tools"], env_info=info))
        conversation.append({"role": "assistant", "content": action} if isinstance(action, str) else action)
        observation, reward, terminated, truncated, step_info = env.step(action)
        conversation.extend(observation)
        retrieved.extend(step_info.get("retrieved_doc_ids", []))
        if terminated or truncated:
            return reward, conversation, retrieved


@pytest.fixture(scope="module")
def world_url():
    world = get_world(WorldConfig())
    with running_server(BM25Retriever(world.documents)) as base_url:
        yield base_url


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes"])
def test_search_v0_episodes_through_the_server_match_in_process_ones(world_url, tool_format):
    kwargs = {"retriever": "remote", "retriever_kwargs": {"url": world_url}, "tool_format": tool_format}
    remote_env = gym.make("toolgym:Search-v0", **kwargs)
    local_env = gym.make("toolgym:Search-v0", tool_format=tool_format)
    remote = [_play(remote_env.unwrapped, seed=seed) for seed in range(12)]
    local = [_play(local_env.unwrapped, seed=seed) for seed in range(12)]
    assert remote == local
    assert all(ids for _, _, ids in remote) and sum(reward for reward, _, _ in remote) >= 3


def test_search_v0_hotpotqa_shared_corpus_through_the_server(shared_data):
    from toolgym.envs.search.loaders import load_rows, shared_documents

    documents = shared_documents(load_rows("hotpotqa"))
    with running_server(BM25Retriever(documents)) as base_url:
        remote_env = SearchEnv(
            dataset="hotpotqa", corpus="shared", retriever="remote", retriever_kwargs={"url": base_url}
        )
        local_env = SearchEnv(dataset="hotpotqa", corpus="shared")
        for index in range(5):
            remote = _play(remote_env, options={"index": index})
            local = _play(local_env, options={"index": index})
            assert remote == local and remote[2]

        per_question = SearchEnv(dataset="hotpotqa", retriever="remote", retriever_kwargs={"url": base_url})
        with pytest.raises(ValueError, match=r"serves 4858 documents.*corpus='shared'"):
            per_question.reset(options={"index": 0})


def test_search_v0_accepts_a_remote_retriever_object_for_any_corpus(world_url):
    """For a large served corpus (wiki-18 for NQ-open), pass the client itself: nothing is loaded locally."""
    with RemoteRetriever(world_url) as remote:
        env = SearchEnv(retriever=remote)
        reward, _, retrieved = _play(env, seed=0)
    assert retrieved and reward == _play(SearchEnv(), seed=0)[0]
