"""CLI: `toolgym eval retrieval`, scoring a retriever on qrels or on HotpotQA supporting paragraphs.

It joins the two halves that must not import each other: the retrievers (what to search, via the
`--index` / `--corpus` / `--url` options of `toolgym.retrievers.serve_cli`) and the env's HotpotQA
readers (`toolgym.evals.retrieval`). Only argparse is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from toolgym.cli_help import HelpFormatter
from toolgym.retrievers.serve_cli import add_source_arguments, load_retriever

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
        formatter_class=HelpFormatter,
    )
    add_source_arguments(parser, with_url=True)
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
    from toolgym.retrievers import evaluation

    try:
        if args.hotpotqa:
            if args.queries or args.qrels:
                raise ValueError("--hotpotqa takes its questions and gold from the dataset; drop --queries/--qrels")
            from toolgym.envs.search.readers import load_rows

            from .retrieval import HOTPOTQA_KS, evaluate_hotpotqa

            rows = load_rows(args.hotpotqa)
            given = args.index or args.corpus or args.url
            retriever = load_retriever(args)[0] if given else None
            report = evaluate_hotpotqa(
                rows,
                retriever,
                backend=args.backend,
                backend_params=None if given else dict(args.params),
                ks=args.k or HOTPOTQA_KS,
                batch_size=args.batch_size,
            )
            report.extra["dataset"] = args.hotpotqa
        else:
            if not (args.queries and args.qrels):
                raise ValueError("give --queries FILE and --qrels FILE (or --hotpotqa)")
            queries, qrels = evaluation.read_queries(args.queries), evaluation.read_qrels(args.qrels)
            retriever, info = load_retriever(args)
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


__all__ = ["add_eval_retrieval_command", "eval_retrieval"]
