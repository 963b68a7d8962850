"""`RemoteRetriever`: the `Retriever` contract over HTTP, against a Search-R1-protocol server.

It talks to `toolgym serve retriever` and to Search-R1's own `retrieval_server.py` alike (it sends
``{"queries", "topk", "return_scores": true}`` to ``/retrieve``). Large query lists are split into
batches; connection errors, timeouts, 5xx and 429 are retried with exponential backoff, other 4xx
are not (retrying a bad request cannot fix it). Every failure names the URL and what to do.

The corpus lives on the server. `remote_for_documents` (what `build_retriever("remote", docs)`
calls) therefore checks that the server holds as many documents as the caller meant to search, so a
Search-v0 with a per-question corpus is never silently answered from a different corpus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from toolgym.extras import require
from toolgym.retriever_contract import Document, Hit

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RetrieverUnavailableError(ConnectionError):
    """The server could not be reached, or kept failing, after every retry."""


class RetrievalRequestError(ValueError):
    """The server refused the request (4xx): retrying the same request cannot succeed."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class RetrievalResponseError(ValueError):
    """The server answered, but not in Search-R1's response format."""


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"retriever url must start with http:// or https://, got {url!r}")
    return url[: -len("/retrieve")] if url.endswith("/retrieve") else url


def hit_from_json(item: Any) -> tuple[dict[str, Any], float]:
    """(document, score) from one result entry, with or without Search-R1's score wrapper."""
    if isinstance(item, dict) and isinstance(item.get("document"), dict):
        score = item.get("score")
        return item["document"], float(score) if isinstance(score, (int, float)) else 0.0
    if isinstance(item, dict):
        return item, 0.0
    raise RetrievalResponseError(f"a result entry must be a JSON object, got {type(item).__name__}")


def hit_from_document(document: dict[str, Any], score: float) -> Hit:
    """A `Hit` from a served document: ToolGym's `id`/`title`/`text`, or Search-R1's `contents` alone."""
    title, text = document.get("title"), document.get("text")
    if text is None:
        contents = str(document.get("contents", ""))
        first, newline, rest = contents.partition("\n")
        if title is None:  # wiki-18 rows quote the title line: '"Title"\ntext'
            title, text = (first.strip('"'), rest) if newline else ("", contents)
        else:
            text = rest if newline and first.strip('"') == title else contents
    doc_id = document.get("id", document.get("_id", document.get("docid", title)))
    return Hit(str(doc_id), float(score), str(title or ""), str(text or ""))


class RemoteRetriever:
    """Batched top-k search against a retrieval server at `url` (base URL or its /retrieve endpoint).

    Args:
        url: e.g. "http://127.0.0.1:8000" (as printed by `toolgym serve retriever`).
        timeout_s: time limit of one HTTP request (connect + read).
        max_retries: retries after the first attempt on connection errors, timeouts, 5xx and 429.
        backoff_s: wait before the first retry; doubles each retry (capped at `max_backoff_s`).
        batch_size: most queries per request; keep it at or below the server's `--max-queries`.
    """

    backend = "remote"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        batch_size: int = 64,
    ):
        httpx = require("httpx", "serve", "the remote retriever")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or batch_size < 1:
            raise ValueError("timeout_s must be positive, max_retries and backoff_s non-negative, batch_size >= 1")
        self.url = _base_url(url)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch_size = batch_size
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout_s)  # thread-safe: env pools may share one

    def __repr__(self) -> str:
        return f"RemoteRetriever({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP with retries ------------------------------------------------------------------------

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = self.url + path
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                logger.warning("retrying %s %s in %.2f s (%s)", method, url, delay, last_problem)
                time.sleep(delay)
            try:
                response = self._client.request(method, url, json=payload)
            except self._httpx.TransportError as exc:  # refused, reset, timed out, DNS
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRYABLE_STATUS:
                last_problem = f"HTTP {response.status_code}: {_detail(response)}"
                continue
            if response.status_code >= 400:
                raise RetrievalRequestError(
                    f"{method} {url} was refused with HTTP {response.status_code}: {_detail(response)}",
                    response.status_code,
                )
            try:
                return response.json()
            except ValueError as exc:
                raise RetrievalResponseError(f"{method} {url} answered with a body that is not JSON") from exc
        raise RetrieverUnavailableError(
            f"retrieval server {url} failed {self.max_retries + 1} times; last error: {last_problem}. "
            "Is `toolgym serve retriever` running there?"
        )

    def health(self) -> dict[str, Any]:
        """The server's /health report (backend, n_documents, limits); Search-R1's own server has none."""
        report = self._request("GET", "/health")
        if not isinstance(report, dict):
            raise RetrievalResponseError(f"{self.url}/health did not answer with a JSON object")
        return report

    # --- the Retriever contract -------------------------------------------------------------------

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` hits per query from the server, best first, in the order of `queries`."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        queries = list(queries)
        if not all(isinstance(q, str) for q in queries):
            raise TypeError("queries must be a list of strings")
        k = int(k)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        results: list[list[Hit]] = []
        for start in range(0, len(queries), self.batch_size):
            batch = queries[start : start + self.batch_size]
            payload = {"queries": batch, "topk": k, "return_scores": True}
            results.extend(self._parse(self._request("POST", "/retrieve", payload), len(batch)))
        return results

    def _parse(self, body: Any, n_queries: int) -> list[list[Hit]]:
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, list):
            raise RetrievalResponseError(f"{self.url}/retrieve answered without a 'result' list: {str(body)[:200]}")
        if len(result) != n_queries:
            raise RetrievalResponseError(
                f"{self.url}/retrieve returned {len(result)} hit lists for {n_queries} queries"
            )
        hit_lists = []
        for entries in result:
            if not isinstance(entries, list):
                raise RetrievalResponseError(f"{self.url}/retrieve: each result must be a list of documents")
            hit_lists.append([hit_from_document(*hit_from_json(entry)) for entry in entries])
        return hit_lists


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or "(empty body)"
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:300]


def remote_for_documents(
    documents: Sequence[Document], *, url: str, check_corpus: bool = True, **kwargs: Any
) -> RemoteRetriever:
    """A `RemoteRetriever` standing in for an index of `documents` (what `build_retriever` returns).

    The server searches its own corpus, so with `check_corpus` (and a non-empty `documents`) the
    server's document count, when it reports one on /health (Search-R1's own server has no /health),
    must equal `len(documents)`: a per-question corpus of 10 paragraphs
    against a server holding 5,000 is a configuration error, reported here rather than giving
    results from outside the question's corpus.
    """
    retriever = RemoteRetriever(url, **kwargs)
    if check_corpus and documents:
        try:
            served = retriever.health().get("n_documents")
        except RetrievalRequestError as exc:
            if exc.status_code != 404:
                retriever.close()
                raise
            # Search-R1's own retrieval_server.py serves /retrieve only: nothing to check against.
            logger.warning("%s has no /health endpoint; its corpus size cannot be checked", retriever.url)
            served = None
        if served is not None and served != len(documents):
            retriever.close()
            raise ValueError(
                f"the retrieval server at {retriever.url} serves {served} documents, but the corpus to search "
                f"here has {len(documents)}. A remote retriever searches the server's corpus: serve an index "
                "built from this same corpus (for Search-v0 use corpus='shared' or corpus=<path> with an "
                "index built from it; per-question corpora cannot be served), or pass check_corpus=False."
            )
    return retriever
