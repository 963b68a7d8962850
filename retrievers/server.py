"""A retrieval server that speaks Search-R1's protocol, with bounds and micro-batching.

Search-R1 (and SkyRL, verl's search tool, and most "search agent" code since) call a retriever
over HTTP: ``POST /retrieve {"queries": [...], "topk": k, "return_scores": bool}`` answered by
``{"result": [[{"document": {...,"contents": "title\\ntext"}, "score": s}, ...], ...]}`` (or, without
scores, one list of documents per query). Serving that shape exactly lets those clients point at a
ToolGym index unchanged; ``GET /health`` adds what a client needs to check it reached the right
corpus (backend, document count) and the server's limits.

Why micro-batching: RL rollouts send many small concurrent requests (one query per env step), while
every backend answers a batch much faster per query than one query at a time (bm25s scores a batch
with one sparse product; a dense encoder fills a GPU). The batcher gathers requests for up to
``batch_wait_ms`` (or until ``max_batch_size``), runs one backend `search` per distinct top-k in a
worker thread, and hands each request its slice. If that call fails, each request is retried alone,
so a query that breaks the backend fails only the request that sent it. While a batch runs, new requests queue up, so the
next batch grows with the load.

Bounds: the body size is checked before parsing (413), then the query count, query length and top-k
(422), the queue depth (503, retry later) and the time per request, body upload included (408 while
the body is still arriving, 504 while waiting for results).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from toolgym.extras import require
from toolgym.http_server import quiet_client_disconnects, running_app
from toolgym.microbatch import BatcherBusy, MicroBatcher
from toolgym.retriever_contract import Hit, Retriever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching of the retrieval server; every limit answers with a clear HTTP error."""

    default_topk: int = 3
    """Top-k used when a request sends no `topk` (or 0/null, as Search-R1's server does); Search-R1's default is 3."""
    max_queries: int = 4_096
    """Most queries in one request (422 beyond). Search-R1's trainer sends its whole rollout batch in one
    request (512 queries in its PPO script, 2,560 in its GRPO script), so the default leaves room for both."""
    max_query_chars: int = 4_096
    """Longest query in characters (422 beyond); Search-v0 already cuts queries at 2,000."""
    max_topk: int = 100
    """Largest top-k a request may ask for (422 beyond)."""
    max_body_bytes: int = 16 << 20
    """Largest request body in bytes, checked before parsing (413 beyond): room for `max_queries`
    queries of 4 KB (a 2,560-query Search-R1 batch is about 0.3 MB)."""
    request_timeout_s: float = 30.0
    """Time a request may take from its arrival to its results, body upload and queueing included
    (408 beyond while the body is still arriving, 504 beyond while it waits for results)."""
    micro_batching: bool = True
    """Coalesce concurrent requests into one backend call (False: one backend call per request)."""
    batch_wait_ms: float = 2.0
    """How long the batcher waits for more requests after the first one arrives."""
    max_batch_size: int = 1_024
    """A batch stops gathering more requests once it holds this many queries (one larger request is
    still answered by one backend call)."""
    max_pending: int = 65_536
    """Queries waiting in the queue beyond which new requests get 503 (with Retry-After)."""
    backend_threads: int = 1
    """Worker threads that call the backend (1 serializes calls, which JVM-backed searchers need)."""

    def __post_init__(self) -> None:
        for name in ("default_topk", "max_queries", "max_query_chars", "max_topk", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.default_topk > self.max_topk:
            raise ValueError(f"default_topk {self.default_topk} exceeds max_topk {self.max_topk}")
        if self.request_timeout_s <= 0 or self.batch_wait_ms < 0:
            raise ValueError("request_timeout_s must be positive and batch_wait_ms non-negative")
        if self.max_batch_size < 1 or self.max_pending < 1 or self.backend_threads < 1:
            raise ValueError("max_batch_size, max_pending and backend_threads must be at least 1")


@dataclass
class BackendStats:
    """Counters exposed by /health; `backend_calls` < `requests` shows the batcher coalescing."""

    requests: int = 0
    queries: int = 0
    backend_calls: int = 0
    largest_batch: int = 0
    rejected: int = 0
    errors: int = 0
    timeouts: int = 0
    started: float = field(default_factory=time.monotonic)


class BackendRunner:
    """Runs `retriever.search` in worker threads; with micro-batching, concurrent requests with the
    same top-k share one backend call (`toolgym.microbatch`)."""

    def __init__(self, retriever: Retriever, config: ServerConfig):
        self.retriever = retriever
        self.config = config
        self.stats = BackendStats()
        self._batcher: MicroBatcher[list[str], list[list[Hit]]] = MicroBatcher(
            self._search_requests,
            batch_wait_s=config.batch_wait_ms / 1000,
            max_batch_size=config.max_batch_size,
            max_pending=config.max_pending,
            size_of=len,
            threads=config.backend_threads,
            thread_name="retriever",
        )

    def _search_requests(self, k: int, requests: list[list[str]]) -> list[list[list[Hit]]]:
        """One backend call for several requests' queries, split back per request."""
        queries = [query for request in requests for query in request]
        results = self.retriever.search(queries, k)
        if len(results) != len(queries):
            raise RuntimeError(f"backend returned {len(results)} hit lists for {len(queries)} queries")
        split, start = [], 0
        for request in requests:
            split.append(results[start : start + len(request)])
            start += len(request)
        return split

    async def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Hits for `queries`, exactly as `retriever.search(queries, k)` would return them.

        Raises `BatcherBusy` when `max_pending` queries are already waiting.
        """
        self.stats.requests += 1
        self.stats.queries += len(queries)
        if not queries:
            return []
        try:
            if not self.config.micro_batching:
                return (await self._batcher.run(k, [queries]))[0]
            return await self._batcher.submit(queries, k)
        finally:
            self.stats.backend_calls = self._batcher.calls
            self.stats.largest_batch = self._batcher.largest_batch

    def close(self) -> None:
        self._batcher.close()


# --- the wire format -----------------------------------------------------------------------------


def document_json(hit: Hit) -> dict[str, Any]:
    """A hit as Search-R1's corpus row: `contents` is "title\\ntext", which its clients split on."""
    return {"id": hit.doc_id, "title": hit.title, "text": hit.text, "contents": f"{hit.title}\n{hit.text}"}


def results_json(hit_lists: list[list[Hit]], return_scores: bool) -> list[list[dict[str, Any]]]:
    """Search-R1's `result`: per query, `{"document", "score"}` pairs or bare documents."""
    if not return_scores:
        return [[document_json(hit) for hit in hits] for hits in hit_lists]
    return [[{"document": document_json(hit), "score": _finite(hit.score)} for hit in hits] for hits in hit_lists]


def _finite(score: float) -> float | None:
    score = float(score)
    return score if math.isfinite(score) else None


def describe_retriever(retriever: Retriever) -> dict[str, Any]:
    """Backend name and document count for /health, from whatever the retriever exposes."""
    module = sys.modules.get(type(retriever).__module__)  # ToolGym backends name themselves per module
    backend = getattr(retriever, "backend", None) or getattr(module, "BACKEND_NAME", None) or type(retriever).__name__
    n_documents: int | None = None
    try:
        n_documents = len(retriever)  # type: ignore[arg-type]
    except TypeError:
        documents = getattr(retriever, "documents", None)
        n_documents = len(documents) if documents is not None else None
    return {"backend": str(backend), "n_documents": n_documents}


def validate_request(payload: Any, config: ServerConfig) -> tuple[list[str], int, bool]:
    """(queries, topk, return_scores) of a decoded /retrieve body, or ValueError saying what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError(f"the body must be a JSON object with 'queries', got {type(payload).__name__}")
    if "queries" not in payload:
        raise ValueError("missing field 'queries' (a list of strings)")
    queries = payload["queries"]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ValueError("'queries' must be a list of strings")
    if len(queries) > config.max_queries:
        raise ValueError(
            f"{len(queries)} queries in one request; this server takes at most {config.max_queries} "
            "(start it with a larger --max-queries)"
        )
    for i, query in enumerate(queries):
        if len(query) > config.max_query_chars:
            raise ValueError(f"query {i} has {len(query)} characters; the limit is {config.max_query_chars}")
    topk = payload.get("topk")
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int)):
        raise ValueError(f"'topk' must be an integer or null, got {topk!r}")
    if topk is not None and topk < 0:
        raise ValueError(f"'topk' must not be negative, got {topk}")
    topk = topk or config.default_topk  # Search-R1's server also treats 0/null as "the default"
    if topk > config.max_topk:
        raise ValueError(f"'topk' {topk} exceeds this server's limit of {config.max_topk}")
    return_scores = payload.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise ValueError(f"'return_scores' must be true or false, got {return_scores!r}")
    return queries, topk, return_scores


# --- the app -------------------------------------------------------------------------------------


def create_app(retriever: Retriever, config: ServerConfig | None = None, *, info: dict[str, Any] | None = None) -> Any:
    """The ASGI app serving `retriever`: POST /retrieve (Search-R1's protocol) and GET /health.

    `info` is merged into /health (e.g. the index directory and its manifest).
    """
    require("fastapi", "serve", "the retrieval server")
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    config = config or ServerConfig()
    runner = BackendRunner(retriever, config)
    description = {**describe_retriever(retriever), **(info or {})}

    class SafeJSONResponse(JSONResponse):
        """UTF-8 JSON; falls back to ASCII escapes when a text holds lone surrogates."""

        def render(self, content: Any) -> bytes:
            try:
                return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            except UnicodeEncodeError:
                return json.dumps(content, separators=(",", ":")).encode("ascii")

    def error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
        if 400 <= status < 500:
            runner.stats.rejected += 1
        return SafeJSONResponse({"detail": detail}, status_code=status, headers=headers)

    @asynccontextmanager
    async def lifespan(app: Any):
        yield
        runner.close()

    app = FastAPI(title="ToolGym retrieval server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runner = runner
    app.state.config = config
    app.state.disconnects = quiet_client_disconnects(app, "retrieval server")

    async def read_body(request: Any) -> bytes | None:
        """The whole body, or None as soon as it grows past `max_body_bytes`."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                return None
        return bytes(body)

    # Plain Starlette routes: the body is read and checked here, not parsed by FastAPI beforehand.
    async def retrieve(request: Any) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
            return error(413, f"request body of {declared} bytes exceeds the limit of {config.max_body_bytes} bytes")
        started = time.monotonic()
        try:
            # A client that sends its body slowly (or never finishes it) must not hold a handler forever.
            body = await asyncio.wait_for(read_body(request), config.request_timeout_s)
        except asyncio.TimeoutError:
            return error(408, f"the request body did not arrive within {config.request_timeout_s} s")
        if body is None:
            return error(413, f"request body exceeds the limit of {config.max_body_bytes} bytes")
        try:
            payload = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and bad UTF-8 alike
            return error(400, f"request body is not valid JSON: {exc}")
        except RecursionError:  # "[[[[…" a few thousand deep: json's recursion limit, not a server fault
            return error(400, "request body is not valid JSON: nested too deeply")
        try:
            queries, topk, return_scores = validate_request(payload, config)
        except ValueError as exc:
            return error(422, str(exc))
        remaining_s = max(config.request_timeout_s - (time.monotonic() - started), 0.001)
        try:
            hit_lists = await asyncio.wait_for(runner.search(queries, topk), remaining_s)
        except asyncio.TimeoutError:
            runner.stats.timeouts += 1
            return error(504, f"retrieval took longer than {config.request_timeout_s} s")
        except BatcherBusy as exc:
            return error(503, f"server busy: {exc}; retry later", headers={"Retry-After": "1"})
        except Exception as exc:
            runner.stats.errors += 1
            logger.exception("retriever failed on a batch")
            return error(500, f"retriever failed: {type(exc).__name__}: {exc}")
        return SafeJSONResponse({"result": results_json(hit_lists, return_scores)})

    async def health(request: Any) -> Response:
        stats = asdict(runner.stats)
        started = stats.pop("started")
        return SafeJSONResponse(
            {
                "status": "ok",
                **description,
                "uptime_s": round(time.monotonic() - started, 3),
                "stats": stats,
                "limits": asdict(config),
            }
        )

    app.router.add_route("/retrieve", retrieve, methods=["POST"])
    app.router.add_route("/health", health, methods=["GET"])
    return app


# --- running it ----------------------------------------------------------------------------------


def serve(
    retriever: Retriever,
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    info: dict[str, Any] | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve `retriever` until interrupted (binds 127.0.0.1 unless told otherwise)."""
    uvicorn = require("uvicorn", "serve", "the retrieval server")
    app = create_app(retriever, config, info=info)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)


@contextmanager
def running_server(retriever: Retriever, config: ServerConfig | None = None, **kwargs: Any) -> Iterator[str]:
    """Serve `retriever` from a background thread and yield its base URL; it stops when the block exits.

    For tests, notebooks and benchmarks; `kwargs` go to `running_app` (host, port).
    """
    with running_app(create_app(retriever, config), **kwargs) as url:
        yield url
