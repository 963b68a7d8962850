"""Dense retrieval on BEIR SciFact: encoder throughput, FAISS flat vs HNSW speed, and nDCG@10.

Prints: documents/s and queries/s of the encoder (MiniLM by default); index build time, batch
QPS (all 300 test queries in one call, vectors precomputed, best of --repeats) and p50/p99
single-query latency for flat and HNSW; nDCG@10 (pytrec_eval) of flat, HNSW, bm25s, and the
bm25s + dense RRF hybrid. Encoding the 5,183 documents takes ~2 minutes on 2 CPU cores; pass
`--embeddings FILE.npz` (outside the repo) to reuse them across runs.

Run: `python benchmarks/dense.py [--encoder st:minilm] [--embeddings /tmp/scifact_minilm.npz]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from toolgym.data import shared_data_dir
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.dense import FaissRetriever
from toolgym.retrievers.encoders import load_encoder
from toolgym.retrievers.evaluation import evaluate_retriever, read_beir_folder
from toolgym.retrievers.hybrid import HybridRetriever


def ndcg_at_10(retriever, query_ids: list[str], texts: list[str], qrels: dict) -> float:
    return evaluate_retriever(retriever, dict(zip(query_ids, texts)), qrels, ks=(10,)).metrics["ndcg@10"]


def timings(retriever: FaissRetriever, query_vectors: np.ndarray, repeats: int) -> tuple[float, float, float]:
    """(batch QPS, p50 ms, p99 ms) of vector search only: encoding is measured separately."""
    best = min(_timed(lambda: retriever.search_vectors(query_vectors, 10)) for _ in range(repeats))
    single = [_timed(lambda v=v: retriever.search_vectors(v[None, :], 10)) * 1000 for v in query_vectors]
    quantiles = statistics.quantiles(single, n=100)
    return len(query_vectors) / best, quantiles[49], quantiles[98]


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="st:minilm", help="encoder spec (see toolgym.retrievers.encoders)")
    parser.add_argument("--embeddings", type=Path, help="cache of document/query vectors (.npz, outside the repo)")
    parser.add_argument("--ef-search", type=int, default=128, help="HNSW efSearch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--throughput-docs", type=int, default=0, help="also time encoding this many documents (with a cache)"
    )
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        print("benchmark data not found: set TOOLGYM_DATA_DIR to the shared/data folder", file=sys.stderr)
        return 2
    documents, queries, qrels = read_beir_folder(data / "beir_scifact")
    query_ids = list(queries)
    texts = [queries[q] for q in query_ids]
    encoder = load_encoder(args.encoder, show_progress=False)

    if args.embeddings and args.embeddings.is_file():
        cached = np.load(args.embeddings)
        doc_vectors, query_vectors = cached["documents"], cached["queries"]
        print(f"encoder {encoder.spec}: vectors from {args.embeddings}")
    else:
        start = time.perf_counter()
        doc_vectors = encoder.encode_documents(documents)
        doc_seconds = time.perf_counter() - start
        start = time.perf_counter()
        query_vectors = encoder.encode_queries(texts)
        query_seconds = time.perf_counter() - start
        print(
            f"encoder {encoder.spec}: {len(documents)} documents in {doc_seconds:.1f} s "
            f"({len(documents) / doc_seconds:.1f} docs/s); {len(texts)} queries in {query_seconds:.2f} s "
            f"({len(texts) / query_seconds:.0f} queries/s)"
        )
        if args.embeddings:
            np.savez(args.embeddings, documents=doc_vectors, queries=query_vectors)

    if args.throughput_docs:
        sample = documents[: args.throughput_docs]
        start = time.perf_counter()
        encoder.encode_documents(sample)
        doc_seconds = time.perf_counter() - start
        start = time.perf_counter()
        encoder.encode_queries(texts)
        query_seconds = time.perf_counter() - start
        print(
            f"encoder {encoder.spec}: {len(sample)} documents {len(sample) / doc_seconds:.1f} docs/s; "
            f"{len(texts)} queries {len(texts) / query_seconds:.0f} queries/s"
        )

    print("| index | build s | batch QPS | p50 ms | p99 ms | nDCG@10 |\n|---|---:|---:|---:|---:|---:|")
    retrievers = {}
    for name, kwargs in (("flat", {}), (f"hnsw M=32 efC=200 efS={args.ef_search}", {"ef_search": args.ef_search})):
        index_type = name.split()[0]
        start = time.perf_counter()
        retriever = FaissRetriever(documents, encoder, index_type, embeddings=doc_vectors, device="cpu", **kwargs)
        build = time.perf_counter() - start
        retrievers[index_type] = retriever
        qps, p50, p99 = timings(retriever, query_vectors, args.repeats)
        ndcg = ndcg_at_10(retriever, query_ids, texts, qrels)
        print(f"| {name} | {build:.2f} | {qps:,.0f} | {p50:.2f} | {p99:.2f} | {ndcg:.4f} |")

    bm25 = BM25Retriever(documents)
    print(f"bm25s nDCG@10 {ndcg_at_10(bm25, query_ids, texts, qrels):.4f}")
    for fusion in ("rrf", "weighted"):
        hybrid = HybridRetriever(bm25, retrievers["flat"], fusion, depth=100)
        print(
            f"hybrid bm25s + {encoder.spec} flat ({fusion}) nDCG@10 {ndcg_at_10(hybrid, query_ids, texts, qrels):.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
