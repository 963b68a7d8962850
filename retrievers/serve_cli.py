"""CLI: `toolgym serve retriever` and `toolgym eval retrieval` (argparse only at import time)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import textwrap
from typing import Any

from toolgym.cli_values import key_value_argument

SERVE_EPILOG = """\
examples:
  toolgym index build --corpus ../shared/data/beir_scifact --backend bm25s --out indexes/scifact
  toolgym serve retriever --index indexes/scifact --port 8000
  toolgym serve retriever --corpus ../shared/data/hotpotqa/ircot_processed/dev_subsampled.jsonl

  # any Search-R1 client works unchanged:
  curl -s localhost:8000/retrieve -H 'content-type: application/json' \\
       -d '{"queries": ["protein folding"], "topk": 3, "return_scores": true}'
  curl -s localhost:8000/health

  # and so does Search-v0 (the server must hold the env's corpus: corpus="shared" here):
  gym.make("toolgym:Search-v0", dataset="hotpotqa", corpus="shared",
           retriever="remote", retriever_kwargs={"url": "http://127.0.0.1:8000"})
"""

EVAL_EPILOG = """\
examples:
  # BEIR files against a built index (or build one in memory with --corpus/--backend):
  toolgym eval retrieval --index indexes/scifact \\
      --queries ../shared/data/beir_scifact/queries.jsonl \\
      --qrels ../shared/data/beir_scifact/qrels/test.tsv --k 10 100
  toolgym eval retrieval --corpus ../shared/data/beir_scifact --backend bm25s \\
      --queries ../shared/data/beir_scifact/queries.jsonl \\
      --qrels ../shared/data/beir_scifact/qrels/test.tsv --out scifact.json

  # HotpotQA supporting-paragraph recall@k (IRCoT dev 500, shared corpus of all paragraphs):
  toolgym eval retrieval --hotpotqa --backend bm25s --k 2 5 10 20

  # a running server:
  toolgym eval retrieval --url http://127.0.0.1:8000 --queries Q.jsonl --qrels QRELS.tsv
"""


def _add_source_arguments(parser: argparse.ArgumentParser, *, with_url: bool) -> None:
    source = parser.add_argument_group("what to search (one of)")
    source.add_argument("--index", metavar="DIR", help="an index directory built by `toolgym index build`")
    source.add_argument("--corpus", metavar="FILE", help="a corpus file or BEIR folder, indexed in memory")
    if with_url:
        source.add_argument("--url", help="a running retrieval server (Search-R1 protocol)")
    source.add_argument("--backend", default="bm25s", help="backend for --corpus (bm25s, pyserini, faiss, …)")
    source.add_argument(
        "--param", dest="params", action="append", type=key_value_argument, default=[], metavar="KEY=VALUE",
        help="a backend parameter for --corpus (JSON values), e.g. --param k1=1.2; repeatable",
    )  # fmt: skip


def _load_retriever(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """(retriever, description) from --index / --corpus / --url."""
    chosen = [name for name in ("index", "corpus", "url") if getattr(args, name, None)]
    if len(chosen) > 1:
        raise ValueError(f"give only one of --index, --corpus, --url (got {', '.join('--' + c for c in chosen)})")
    if args.params and not args.corpus:
        names = ", ".join(key for key, _ in args.params)
        raise ValueError(f"--param ({names}) sets backend parameters for --corpus; an --index or --url keeps its own")
    if getattr(args, "url", None):
        from .remote import RemoteRetriever

        return RemoteRetriever(args.url), {"url": args.url}
    if args.index:
        from .index import load_index, read_manifest

        manifest = read_manifest(args.index)
        return load_index(args.index), {"backend": manifest["backend"], "index": str(args.index)}
    if args.corpus:
        from . import build_retriever
        from .corpus import iter_documents

        documents = list(iter_documents(args.corpus))
        try:
            retriever = build_retriever(args.backend, documents, **dict(args.params))
        except TypeError as exc:  # an unknown --param name reaches the backend's constructor
            raise ValueError(f"a --param does not fit the {args.backend} backend: {exc}") from exc
        return retriever, {
            "backend": args.backend,
            "corpus": str(args.corpus),
        }
    raise ValueError("say what to search: --index DIR or --corpus FILE" + (" or --url URL" if "url" in args else ""))


# --- toolgym serve retriever ---------------------------------------------------------------------


def add_serve_retriever_command(subparsers: Any) -> None:
    """Add `retriever` under `toolgym serve`."""
    parser = subparsers.add_parser(
        "retriever",
        help="serve an index over HTTP with Search-R1's /retrieve protocol",
        description=textwrap.fill(
            "Serve a retrieval index over HTTP. POST /retrieve takes Search-R1's body "
            '{"queries": [...], "topk": k, "return_scores": bool} and answers {"result": [...]}, so '
            "Search-R1, SkyRL and verl search clients work unchanged; GET /health reports the backend, "
            "document count, limits and counters. Concurrent requests are micro-batched into one backend "
            "call. Binds 127.0.0.1 unless --host says otherwise; every request is bounded in size and time."
        ),
        epilog=SERVE_EPILOG,
        formatter_class=_Formatter,
    )
    _add_source_arguments(parser, with_url=False)
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    net.add_argument("--port", type=int, default=8000, help="port to bind")
    net.add_argument("--access-log", action="store_true", help="log every request")
    limits = parser.add_argument_group("limits and batching")
    limits.add_argument("--topk", type=int, default=3, help="top-k when a request sends none (Search-R1: 3)")
    limits.add_argument("--max-queries", type=int, default=256, help="most queries per request (422 beyond)")
    limits.add_argument("--max-query-chars", type=int, default=4096, help="longest query (422 beyond)")
    limits.add_argument("--max-topk", type=int, default=100, help="largest top-k (422 beyond)")
    limits.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest body (413 beyond)")
    limits.add_argument("--timeout", type=float, default=30.0, help="seconds per request (504 beyond)")
    limits.add_argument("--no-batching", action="store_true", help="one backend call per request")
    limits.add_argument("--batch-wait-ms", type=float, default=2.0, help="how long a batch waits for more requests")
    limits.add_argument("--max-batch-queries", type=int, default=1024, help="queries per backend call at most")
    limits.add_argument("--backend-threads", type=int, default=1, help="threads calling the backend")
    parser.set_defaults(handler=serve_retriever)


def serve_retriever(args: argparse.Namespace) -> int:
    """Handler of `toolgym serve retriever`."""
    from .server import ServerConfig, serve

    try:
        config = ServerConfig(
            default_topk=args.topk,
            max_queries=args.max_queries,
            max_query_chars=args.max_query_chars,
            max_topk=args.max_topk,
            max_body_bytes=args.max_body_bytes,
            request_timeout_s=args.timeout,
            micro_batching=not args.no_batching,
            batch_wait_ms=args.batch_wait_ms,
            max_batch_queries=args.max_batch_queries,
            backend_threads=args.backend_threads,
        )
        retriever, info = _load_retriever(args)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"toolgym serve retriever: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"toolgym serve retriever: warning: binding {args.host} exposes the server beyond this machine",
              file=sys.stderr)  # fmt: skip
    print(f"serving {info} on http://{args.host}:{args.port}/retrieve (health: /health)", file=sys.stderr)
    serve(retriever, config, host=args.host, port=args.port, info=info, access_log=args.access_log)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- toolgym eval retrieval ----------------------------------------------------------------------


def add_eval_retrieval_command(subparsers: Any) -> None:
    """Add `retrieval` under `toolgym eval`."""
    parser = subparsers.add_parser(
        "retrieval",
        help="score a retriever: nDCG@10, Recall@k, MRR@10, MAP (pytrec_eval) or HotpotQA supporting recall",
        description=textwrap.fill(
            "Score a retriever with pytrec_eval (trec_eval's code, as BEIR and Pyserini use) on BEIR-format "
            "queries (queries.jsonl) and qrels (TSV with a header), or measure HotpotQA supporting-paragraph "
            "recall@k: each question's is_supporting paragraphs, searched in one corpus of every paragraph "
            "of the dataset (as Search-v0 with corpus='shared'). Averages count a query with no hits as 0."
        ),
        epilog=EVAL_EPILOG,
        formatter_class=_Formatter,
    )
    _add_source_arguments(parser, with_url=True)
    data = parser.add_argument_group("queries and judgements")
    data.add_argument("--queries", metavar="FILE", help="BEIR queries.jsonl (_id, text) or id<TAB>text TSV")
    data.add_argument("--qrels", metavar="FILE", help="BEIR qrels TSV (query-id, corpus-id, score) or TREC qrels")
    data.add_argument(
        "--hotpotqa", nargs="?", const="hotpotqa", metavar="DATASET",
        help="HotpotQA supporting-paragraph recall instead of qrels (default: the shared IRCoT dev 500; "
        "or a path to HotpotQA rows); without --index/--corpus/--url the rows' paragraphs are indexed with --backend",
    )  # fmt: skip
    parser.add_argument("--k", type=int, nargs="+", default=None, help="cut-offs (default 10 100; HotpotQA 2 5 10 20)")
    parser.add_argument("--batch-size", type=int, default=256, help="queries per search call")
    parser.add_argument("--out", metavar="FILE", help="also write the report as JSON")
    parser.set_defaults(handler=eval_retrieval)


def eval_retrieval(args: argparse.Namespace) -> int:
    """Handler of `toolgym eval retrieval`."""
    from . import evaluation

    try:
        if args.hotpotqa:
            if args.queries or args.qrels:
                raise ValueError("--hotpotqa takes its questions and gold from the dataset; drop --queries/--qrels")
            from toolgym.envs.search.loaders import load_rows

            rows = load_rows(args.hotpotqa)
            given = args.index or args.corpus or args.url
            retriever = _load_retriever(args)[0] if given else None
            report = evaluation.evaluate_hotpotqa(
                rows,
                retriever,
                backend=args.backend,
                backend_params=None if given else dict(args.params),
                ks=args.k or (2, 5, 10, 20),
                batch_size=args.batch_size,
            )
            report.extra["dataset"] = args.hotpotqa
        else:
            if not (args.queries and args.qrels):
                raise ValueError("give --queries FILE and --qrels FILE (or --hotpotqa)")
            queries, qrels = evaluation.read_queries(args.queries), evaluation.read_qrels(args.qrels)
            retriever, info = _load_retriever(args)
            report = evaluation.evaluate_retriever(
                retriever, queries, qrels, args.k or evaluation.DEFAULT_KS, batch_size=args.batch_size
            )
            report.extra.update(info)
    except (ValueError, TypeError, FileNotFoundError, ImportError, ConnectionError) as exc:
        print(f"toolgym eval retrieval: {exc}", file=sys.stderr)
        return 2
    for name, value in report.metrics.items():
        print(f"{name:24} {value:.4f}")
    print(f"{'queries':24} {report.n_queries}  ({report.search_seconds:.2f} s searching)")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report.as_dict(), handle, indent=1)
    return 0


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's examples as written and show every default."""
