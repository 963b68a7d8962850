"""Retrieval backends head to head on one corpus and one query set (BEIR SciFact by default).

For each backend: index time (from the in-memory documents), batch QPS (all queries in one
`search` call, best of `--repeats`), p50 / p99 latency of single-query calls, and nDCG@10 with
pytrec_eval; then ratios against Pyserini, the Lucene reference.

Backends: bm25s (our default BM25), pyserini (Lucene via Anserini, `batch_search` on --threads
Java threads), rank-bm25 (the naive peer: scores every document per query, same tokenizer as
bm25s so only the engine differs) and faiss (dense, MiniLM by default; encoding dominates).

Run: `python benchmarks/retrieval.py [--backends bm25s pyserini rank-bm25 faiss] [--max-docs N]`.
This process starts a JVM for Pyserini; it never forks afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from toolgym.data import shared_data_dir
from toolgym.retriever_contract import Document, Hit, Retriever
from toolgym.retrievers import INDEX_BACKENDS, build_retriever
from toolgym.retrievers.corpus import iter_documents
from toolgym.retrievers.evaluation import evaluate_run, read_qrels, read_queries

# The index backends of the one backend table, plus rank-bm25 as an outside reference point.
BACKENDS = (*INDEX_BACKENDS, "rank-bm25")


class RankBM25Retriever:
    """rank-bm25's BM25Okapi behind the Retriever contract (k1=0.9, b=0.4, bm25s's tokenizer)."""

    def __init__(self, documents: list[Document], k1: float = 0.9, b: float = 0.4):
        import Stemmer
        from rank_bm25 import BM25Okapi

        self.documents = documents
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = BM25Okapi(self._tokens([f"{d.title} {d.text}" for d in documents]), k1=k1, b=b)

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        import numpy as np

        results = []
        for tokens in self._tokens(list(queries)):
            scores = self._bm25.get_scores(tokens)
            top = np.argsort(-scores)[:k]
            results.append([Hit(self.documents[i].doc_id, float(scores[i]), "", "") for i in top if scores[i] > 0])
        return results


def build(
    backend: str, documents: list[Document], args: argparse.Namespace, workdir: Path
) -> tuple[Retriever, dict[str, float]]:
    """The retriever of `backend` over `documents`, with its index time and the time to open it.

    Pyserini's index is built by Anserini in a `java` subprocess; opening it imports pyserini
    (~10 s of torch / transformers imports) and boots the JVM, reported apart as `open_s`.
    """
    start = time.perf_counter()
    if backend == "pyserini":
        from toolgym.retrievers.pyserini_backend import PyseriniRetriever

        PyseriniRetriever.build(documents, workdir / "lucene", threads=args.threads, heap=args.heap)
        built = time.perf_counter()
        retriever = PyseriniRetriever.load(workdir / "lucene", threads=args.threads, heap=args.heap, verify=False)
        return retriever, {"index_s": built - start, "open_s": time.perf_counter() - built}
    if backend == "rank-bm25":
        retriever = RankBM25Retriever(documents)
    elif backend in INDEX_BACKENDS:
        retriever = build_retriever(backend, documents, **({"encoder": args.encoder} if backend == "faiss" else {}))
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return retriever, {"index_s": time.perf_counter() - start, "open_s": 0.0}


def load_data(args: argparse.Namespace) -> tuple[list[Document], dict[str, str], dict[str, dict[str, int]]]:
    """Documents, judged queries and qrels; `--max-docs` keeps every judged document plus random others."""
    folder = Path(args.corpus)
    qrels = read_qrels(args.qrels or folder / "qrels" / "test.tsv")
    queries = {q: text for q, text in read_queries(args.queries or folder / "queries.jsonl").items() if q in qrels}
    documents = list(iter_documents(folder))
    if args.max_docs and args.max_docs < len(documents):
        judged = {doc for docs in qrels.values() for doc in docs}
        keep = [d for d in documents if d.doc_id in judged]
        others = [d for d in documents if d.doc_id not in judged]
        random.Random(0).shuffle(others)
        documents = keep + others[: max(0, args.max_docs - len(keep))]
    return documents, queries, qrels


def measure(retriever: Retriever, queries: dict[str, str], qrels: dict, args: argparse.Namespace) -> dict[str, float]:
    """Batch QPS (best of repeats), single-query p50 / p99 latency and nDCG@10 of one retriever."""
    texts = list(queries.values())
    for _ in range(args.warmup):  # the JVM's JIT needs a few thousand queries to settle
        retriever.search(texts, args.k)
    best, results = float("inf"), []
    for _ in range(args.repeats):
        start = time.perf_counter()
        results = retriever.search(texts, args.k)
        best = min(best, time.perf_counter() - start)
    latencies = []
    for text in texts[: args.latency_queries]:
        start = time.perf_counter()
        retriever.search([text], args.k)
        latencies.append((time.perf_counter() - start) * 1000)
    run = {q: {h.doc_id: float(len(hits) - r) for r, h in enumerate(hits)} for q, hits in zip(queries, results)}
    return {
        "batch_qps": len(texts) / best,
        "p50_ms": statistics.median(latencies),
        "p99_ms": statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0],
        "ndcg@10": evaluate_run(run, qrels, ks=(10,))["ndcg@10"],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """A markdown table, with ratios against Pyserini when it ran."""
    reference = next((r for r in rows if r["backend"] == "pyserini"), None)
    header = "| backend | index s | open s | batch QPS | p50 ms | p99 ms | nDCG@10 |"
    if reference:
        header += " QPS vs pyserini | p50 vs pyserini |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        line = (
            f"| {r['backend']} | {r['index_s']:.2f} | {r['open_s']:.2f} | {r['batch_qps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['ndcg@10']:.4f} |"
        )
        if reference:
            line += f" {r['batch_qps'] / reference['batch_qps']:.2f}× | {r['p50_ms'] / reference['p50_ms']:.2f}× |"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = shared_data_dir()
    default_corpus = str(root / "beir_scifact") if root else None
    parser.add_argument("--corpus", default=default_corpus, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--queries", default=None, help="queries file (default: <corpus>/queries.jsonl)")
    parser.add_argument("--qrels", default=None, help="qrels TSV (default: <corpus>/qrels/test.tsv)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--max-docs", type=int, default=None, help="subsample the corpus (judged docs always kept)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5, help="untimed batch runs first (JIT warm-up)")
    parser.add_argument("--repeats", type=int, default=5, help="timed batch runs; the best counts")
    parser.add_argument("--latency-queries", type=int, default=300, help="single-query calls timed")
    parser.add_argument("--threads", type=int, default=None, help="Pyserini batch_search threads (default: cores)")
    parser.add_argument("--heap", default="2g", help="Pyserini JVM heap")
    parser.add_argument("--encoder", default="st:minilm", help="faiss encoder spec")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.corpus is None:
        parser.error("no shared data folder found: pass --corpus (a BEIR folder) or set TOOLGYM_DATA_DIR")

    documents, queries, qrels = load_data(args)
    print(f"{len(documents):,} documents, {len(queries)} queries, k={args.k}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="toolgym-bench-") as workdir:
        for backend in args.backends:
            retriever, timings = build(backend, documents, args, Path(workdir))
            row = {"backend": backend, **timings, **measure(retriever, queries, qrels, args)}
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
