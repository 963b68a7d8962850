"""CLI: `toolgym serve retriever`, and the --index / --corpus / --url options that pick a retriever
(shared with `toolgym eval retrieval` in toolgym.evals.retrieval_cli). Only argparse at import time."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import textwrap
from typing import Any

from toolgym.cli_help import HelpFormatter
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


def add_source_arguments(parser: argparse.ArgumentParser, *, with_url: bool) -> None:
    """Add --index / --corpus (/ --url) and the backend options that say what to search."""
    source = parser.add_argument_group("what to search (one of)")
    source.add_argument("--index", metavar="DIR", help="an index directory built by `toolgym index build`")
    source.add_argument("--corpus", metavar="FILE", help="a corpus file or BEIR folder, indexed in memory")
    if with_url:
        source.add_argument("--url", help="a running retrieval server (Search-R1 protocol)")
    source.add_argument(
        "--allow-duplicate-ids",
        action="store_true",
        help="with --corpus: keep records that repeat a document id (counted in a warning) instead of failing",
    )
    source.add_argument("--backend", default="bm25s", help="backend for --corpus (bm25s, pyserini, faiss, …)")
    source.add_argument(
        "--param", dest="params", action="append", type=key_value_argument, default=[], metavar="KEY=VALUE",
        help="a backend parameter for --corpus (JSON values), e.g. --param k1=1.2; repeatable",
    )  # fmt: skip


def load_retriever(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
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
        from .index import load_index
        from .manifest import read_manifest

        manifest = read_manifest(args.index)
        return load_index(args.index), {"backend": manifest["backend"], "index": str(args.index)}
    if args.corpus:
        from . import build_retriever
        from .corpus import iter_documents

        policy = "warn" if getattr(args, "allow_duplicate_ids", False) else "error"
        documents = list(iter_documents(args.corpus, duplicate_ids=policy))
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
        formatter_class=HelpFormatter,
    )
    add_source_arguments(parser, with_url=False)
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    net.add_argument("--port", type=int, default=8000, help="port to bind")
    net.add_argument("--access-log", action="store_true", help="log every request")
    limits = parser.add_argument_group("limits and batching")
    limits.add_argument("--topk", type=int, default=3, help="top-k when a request sends none (Search-R1: 3)")
    limits.add_argument(
        "--max-queries", type=int, default=4096,
        help="most queries per request (422 beyond); Search-R1's trainer sends 512 (PPO) or 2,560 (GRPO) in one",
    )  # fmt: skip
    limits.add_argument("--max-query-chars", type=int, default=4096, help="longest query (422 beyond)")
    limits.add_argument("--max-topk", type=int, default=100, help="largest top-k (422 beyond)")
    limits.add_argument("--max-body-bytes", type=int, default=16 << 20, help="largest body (413 beyond)")
    limits.add_argument("--timeout", type=float, default=30.0, help="seconds per request (504 beyond)")
    limits.add_argument("--no-batching", action="store_true", help="one backend call per request")
    limits.add_argument("--batch-wait-ms", type=float, default=2.0, help="how long a batch waits for more requests")
    limits.add_argument(
        "--max-batch-size",
        type=int,
        default=1024,
        help="queries gathered into one backend call (one larger request is one call)",
    )
    limits.add_argument("--max-pending", type=int, default=65536, help="queries queued at most (503 beyond)")
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
            max_batch_size=args.max_batch_size,
            max_pending=args.max_pending,
            backend_threads=args.backend_threads,
        )
        retriever, info = load_retriever(args)
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
