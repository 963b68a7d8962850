"""The retrieval server over real HTTP on loopback: Search-R1's protocol, bounds, errors and batching."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from toolgym.envs.search.protocol import format_passages
from toolgym.envs.search.world import WorldConfig, get_world
from toolgym.retriever_contract import Document, Hit
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.server import ServerConfig, create_app, running_server

DOCS = [
    Document("d1", "Paris", "Paris is the capital and largest city of France."),
    Document("d2", "Berlin", "Berlin is the capital of Germany, on the river Spree."),
    Document("d3", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
    Document("d4", "東京", "東京は日本の首都です。 Tokyo is the capital of Japan."),
]
SMALL_LIMITS = ServerConfig(max_queries=8, max_query_chars=200, max_topk=5, max_body_bytes=4096)


class CountingRetriever:
    """A real BM25 retriever that records the size of every backend call and takes `delay_s` per call,
    like a backend whose per-call cost dominates (a GPU encoder, a JVM round trip)."""

    def __init__(self, retriever: BM25Retriever, delay_s: float = 0.0):
        self.retriever = retriever
        self.delay_s = delay_s
        self.calls: list[int] = []

    def __len__(self) -> int:
        return len(self.retriever)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        self.calls.append(len(queries))
        time.sleep(self.delay_s)
        return self.retriever.search(queries, k)


@pytest.fixture(scope="module")
def bm25() -> BM25Retriever:
    return BM25Retriever(DOCS)


@pytest.fixture(scope="module")
def url(bm25):
    with running_server(bm25, SMALL_LIMITS) as base_url:
        yield base_url


def post(url: str, payload, **kwargs) -> httpx.Response:
    return httpx.post(url + "/retrieve", json=payload, timeout=10, **kwargs)


# --- Search-R1's protocol --------------------------------------------------------------------------


def test_results_with_scores_match_in_process_search(url, bm25):
    queries = ["capital of France", "river through Berlin", "Japan"]
    body = post(url, {"queries": queries, "topk": 3, "return_scores": True}).json()
    expected = bm25.search(queries, 3)
    got = [[(e["document"]["id"], e["score"]) for e in entries] for entries in body["result"]]
    assert got == [[(h.doc_id, h.score) for h in hits] for hits in expected]


def test_document_shape_is_search_r1_corpus_row(url):
    [[entry]] = post(url, {"queries": ["capital of France"], "topk": 1, "return_scores": True}).json()["result"]
    assert set(entry) == {"document", "score"}
    assert entry["document"] == {
        "id": "d1",
        "title": "Paris",
        "text": "Paris is the capital and largest city of France.",
        "contents": "Paris\nParis is the capital and largest city of France.",
    }


def test_without_scores_each_query_gets_a_list_of_documents(url):
    body = post(url, {"queries": ["Germany", "Japan"], "topk": 1, "return_scores": False}).json()
    assert [[doc["id"] for doc in docs] for docs in body["result"]] == [["d2"], ["d4"]]
    assert "score" not in body["result"][0][0]


def test_missing_or_zero_topk_uses_the_default_of_three(url):
    for payload in (
        {"queries": ["capital"]},
        {"queries": ["capital"], "topk": None},
        {"queries": ["capital"], "topk": 0},
    ):
        assert len(post(url, payload).json()["result"][0]) == 3


def test_search_r1_client_code_reads_the_response(url, bm25):
    """Search-R1's generation.py: `requests.post(url, json=payload).json()['result']`, then
    `_passages2string` splits `contents` into title and text."""
    requests = pytest.importorskip("requests")
    payload = {"queries": ["capital of France"], "topk": 3, "return_scores": True}
    results = requests.post(url + "/retrieve", json=payload).json()["result"]

    format_reference = ""
    for idx, doc_item in enumerate(results[0]):
        content = doc_item["document"]["contents"]
        title = content.split("\n")[0]
        text = "\n".join(content.split("\n")[1:])
        format_reference += f"Doc {idx + 1}(Title: {title}) {text}\n"

    assert format_reference.strip() == format_passages(bm25.search(["capital of France"], 3)[0])


def test_unicode_queries_and_documents_round_trip(url):
    body = post(url, {"queries": ["東京は日本の首都です"], "topk": 1}).json()
    assert body["result"][0][0]["title"] == "東京"


def test_lone_surrogate_in_a_query_is_answered(url):
    raw = b'{"queries": ["\\ud800 capital"], "topk": 1}'
    response = httpx.post(url + "/retrieve", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200 and len(response.json()["result"]) == 1


def test_empty_query_and_empty_batch(url):
    assert post(url, {"queries": ["", "   "]}).json() == {"result": [[], []]}
    assert post(url, {"queries": []}).json() == {"result": []}


def test_health_reports_backend_documents_and_limits(url):
    health = httpx.get(url + "/health").json()
    assert health["status"] == "ok" and health["backend"] == "bm25s" and health["n_documents"] == 4
    assert health["uptime_s"] >= 0 and health["limits"]["max_queries"] == 8


# --- bounds and malformed input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_malformed_json_is_a_400_with_a_message(url, body, fragment):
    response = httpx.post(url + "/retrieve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (["capital"], "JSON object"),
        ({"query": "capital"}, "missing field 'queries'"),
        ({"queries": "capital"}, "list of strings"),
        ({"queries": ["ok", 3]}, "list of strings"),
        ({"queries": ["ok"], "topk": "3"}, "'topk' must be an integer"),
        ({"queries": ["ok"], "topk": -1}, "must not be negative"),
        ({"queries": ["ok"], "return_scores": "yes"}, "'return_scores'"),
        ({"queries": ["q"] * 9}, "at most 8"),
        ({"queries": ["ok"], "topk": 6}, "limit of 5"),
        ({"queries": ["ok", "x" * 201]}, "query 1 has 201 characters"),
    ],
)
def test_invalid_requests_are_a_422_naming_the_problem(url, payload, fragment):
    response = post(url, payload)
    assert response.status_code == 422 and fragment in response.json()["detail"]


def test_limits_are_inclusive(url):
    response = post(url, {"queries": ["x" * 200] * 8, "topk": 5})
    assert response.status_code == 200 and len(response.json()["result"]) == 8


def test_oversized_body_is_a_413_before_parsing(url):
    body = json.dumps({"queries": ["capital"], "padding": "x" * 5000}).encode()
    response = httpx.post(url + "/retrieve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "4096" in response.json()["detail"]


def test_oversized_chunked_body_without_length_is_a_413(url):
    def chunks():
        yield b'{"queries": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    response = httpx.post(url + "/retrieve", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_deeply_nested_json_is_a_400_not_a_crash(url):
    """json.loads raises RecursionError (not ValueError) on ~100k nested brackets; 2 x 100k bytes fits the body limit."""
    body = b"[" * 100_000 + b"]" * 100_000
    with running_server(BM25Retriever(DOCS), ServerConfig(max_body_bytes=1 << 20)) as base_url:
        response = httpx.post(base_url + "/retrieve", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
        assert post(base_url, {"queries": ["capital"]}).status_code == 200


def test_a_body_that_never_finishes_gets_a_408(bm25):
    """A client that announces 100 bytes and sends 10 must not hold the handler past the request timeout."""
    with running_server(bm25, ServerConfig(request_timeout_s=0.3)) as base_url:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(
                b"POST /retrieve HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"queries"'
            )
            started = time.perf_counter()
            status_line = connection.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.endswith(b"408 Request Timeout") and time.perf_counter() - started < 3


def test_wrong_method_and_unknown_path(url):
    assert httpx.get(url + "/retrieve").status_code == 405
    assert httpx.post(url + "/search", json={}).status_code == 404


def test_slow_backend_gets_a_504_and_the_server_keeps_serving(bm25):
    slow = CountingRetriever(bm25, delay_s=1.0)
    with running_server(slow, ServerConfig(request_timeout_s=0.2)) as base_url:
        started = time.perf_counter()
        response = post(base_url, {"queries": ["capital"]})
        assert response.status_code == 504 and "longer than 0.2 s" in response.json()["detail"]
        assert time.perf_counter() - started < 0.9
        slow.delay_s = 0.0
        time.sleep(1.0)  # the timed-out call finishes in its worker thread
        assert post(base_url, {"queries": ["capital"]}).status_code == 200


def test_a_full_queue_answers_503_with_retry_after(bm25):
    config = ServerConfig(max_pending=2, batch_wait_ms=500)
    with running_server(bm25, config) as base_url:
        first = threading.Thread(target=post, args=(base_url, {"queries": ["capital", "river"]}))
        first.start()
        time.sleep(0.2)  # the first request's 2 queries wait in the batch being gathered
        response = post(base_url, {"queries": ["Japan"]})
        first.join(timeout=10)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "server busy" in response.json()["detail"]


def test_backend_error_is_a_500_with_the_reason(bm25):
    class Broken:
        def search(self, queries, k):
            raise RuntimeError("index file vanished")

    with running_server(Broken()) as base_url:
        response = post(base_url, {"queries": ["capital"]})
        assert response.status_code == 500 and "index file vanished" in response.json()["detail"]


def test_a_query_that_breaks_the_backend_fails_only_its_own_request(bm25):
    """Coalesced with a good request, a poison query must not turn the good one into a 500."""

    class PoisonSensitive(CountingRetriever):
        def search(self, queries, k):
            if "poison" in queries:
                self.calls.append(len(queries))
                raise ValueError("cannot search 'poison'")
            return super().search(queries, k)

    backend = PoisonSensitive(bm25)
    with running_server(backend, ServerConfig(batch_wait_ms=300)) as base_url:
        barrier = threading.Barrier(2)
        statuses: dict[str, int] = {}

        def send(query: str) -> None:
            barrier.wait()
            statuses[query] = post(base_url, {"queries": [query]}).status_code

        threads = [threading.Thread(target=send, args=(q,)) for q in ("capital", "poison")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert backend.calls[0] == 2  # both requests went into one backend call, which failed
    assert statuses == {"capital": 200, "poison": 500}


def test_server_binds_loopback_by_default(url):
    from toolgym.retrievers import server

    assert server.serve.__kwdefaults__["host"] == "127.0.0.1"
    assert url.startswith("http://127.0.0.1:")


def test_config_rejects_nonsense_limits():
    with pytest.raises(ValueError, match="max_queries"):
        ServerConfig(max_queries=0)
    with pytest.raises(ValueError, match="default_topk"):
        ServerConfig(default_topk=10, max_topk=5)


# --- micro-batching ------------------------------------------------------------------------------


def _concurrent_posts(base_url: str, queries: list[str]) -> list[dict]:
    """One thread per query, released together, each sending a one-query request."""
    barrier = threading.Barrier(len(queries))
    bodies: list[dict] = [{}] * len(queries)

    def send(i: int) -> None:
        with httpx.Client(timeout=20) as client:
            barrier.wait()
            bodies[i] = client.post(base_url + "/retrieve", json={"queries": [queries[i]], "topk": 2}).json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return bodies


def _world_retriever() -> tuple[BM25Retriever, list[str]]:
    world = get_world(WorldConfig())
    questions = [world.question_row(i)["question"] for i in range(32)]
    return BM25Retriever(world.documents), questions


@pytest.mark.parametrize("micro_batching", [True, False])
def test_concurrent_requests_are_coalesced_only_with_micro_batching(micro_batching):
    retriever, questions = _world_retriever()
    counting = CountingRetriever(retriever, delay_s=0.05)
    config = ServerConfig(micro_batching=micro_batching, batch_wait_ms=20)
    with running_server(counting, config) as base_url:
        bodies = _concurrent_posts(base_url, questions)
        stats = httpx.get(base_url + "/health").json()["stats"]

    expected = retriever.search(questions, 2)
    assert [[doc["id"] for doc in body["result"][0]] for body in bodies] == [
        [h.doc_id for h in hits] for hits in expected
    ]
    assert sum(counting.calls) == 32 and stats["backend_calls"] == len(counting.calls)
    if micro_batching:
        assert len(counting.calls) <= 8 and max(counting.calls) >= 4  # 32 requests in a handful of calls
    else:
        assert counting.calls == [1] * 32


def test_requests_with_different_topk_in_one_batch_get_exact_results(bm25):
    counting = CountingRetriever(bm25, delay_s=0.05)
    with running_server(counting, ServerConfig(batch_wait_ms=50)) as base_url:
        barrier = threading.Barrier(4)
        answers: dict[int, list[str]] = {}

        def send(k: int) -> None:
            barrier.wait()
            body = httpx.post(base_url + "/retrieve", json={"queries": ["capital"], "topk": k}, timeout=10).json()
            answers[k] = [doc["id"] for doc in body["result"][0]]

        threads = [threading.Thread(target=send, args=(k,)) for k in (1, 2, 3, 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert answers == {k: [h.doc_id for h in bm25.search(["capital"], k)[0]] for k in (1, 2, 3, 4)}


def test_create_app_needs_no_running_server(bm25):
    app = create_app(bm25)
    assert {route.path for route in app.routes} >= {"/retrieve", "/health"}


def test_a_busy_port_is_a_clear_error_and_leaks_no_socket(url):
    import gc
    import warnings

    from toolgym.http_server import running_app

    port = int(url.rsplit(":", 1)[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            pytest.raises(OSError, match=f"cannot bind 127.0.0.1:{port}"),
            running_app(create_app(BM25Retriever(DOCS)), port=port),
        ):
            pass
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_default_limit_accepts_4096_queries_and_names_the_flag_beyond(bm25):
    """Search-R1 sends a whole rollout batch in one request; the default takes up to 4,096 queries."""
    with running_server(bm25) as base_url:
        ok = httpx.post(base_url + "/retrieve", json={"queries": ["capital"] * 4096, "topk": 1}, timeout=60)
        too_many = httpx.post(base_url + "/retrieve", json={"queries": ["capital"] * 4097, "topk": 1}, timeout=60)
    assert ok.status_code == 200 and len(ok.json()["result"]) == 4096
    assert too_many.status_code == 422 and "--max-queries" in too_many.json()["detail"]
