"""CPU miniature of Gumbel reranking (arXiv 2502.11116) on HotpotQA's distractor paragraphs.

Each question of IRCoT's processed HotpotQA dev sample comes with 10 paragraphs (2 supporting).
The first `--train` questions train, the rest are scored. Nothing pretrained is available offline
for the paper's parts, so:
- the reader is a small T5 (FiD, random init) trained here on the training questions with all
  paragraphs visible, then frozen;
- the reranker is all-MiniLM-L6-v2's first two layers with a fresh one-logit head (a cross-encoder).
Compared per seed (head init, data order, Gumbel noise): the untrained reranker, Gumbel training
through the frozen reader, and supervised training on the gold supporting paragraphs. Reported:
Recall@5 of supporting paragraphs, of "indirectly relevant" ones (no answer string), reader EM/F1
with the top 5.

Run: `python benchmarks/gumbel_rerank_miniature.py --seeds 0 1 2`
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from toolgym.envs.search.loaders import load_rows
from toolgym.evals.retriever_training import rerank_examples_from_hotpotqa, rerank_report
from toolgym.retrievers.training.fid_reader import FiDReader, fit_reader
from toolgym.retrievers.training.gumbel_rerank import (
    CrossEncoderScorer,
    GumbelRerankConfig,
    rank_passages,
    train_reranker,
)
from toolgym.retrievers.training.tiny_models import make_cross_encoder, make_fid_reader


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=300, help="questions used for training (the rest are scored)")
    parser.add_argument("--test", type=int, default=150, help="questions scored")
    parser.add_argument("--reader-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=60, help="reranker steps per objective")
    parser.add_argument("--max-length", type=int, default=96, help="tokens per passage (reader and reranker)")
    parser.add_argument("--kappa", type=float, default=1.0)
    parser.add_argument("--tau", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        examples = rerank_examples_from_hotpotqa(load_rows("hotpotqa"))
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    train, test = examples[: args.train], examples[args.train : args.train + args.test]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        reader = FiDReader.from_pretrained(make_fid_reader(Path(tmp) / "reader"), passage_max_length=args.max_length)
        losses = fit_reader(
            reader,
            [e.question for e in train],
            [list(e.passages) for e in train],
            [e.answers[0] for e in train],
            steps=args.reader_steps,
            batch_size=8,
            learning_rate=1e-3,
        )
        print(f"reader: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {time.perf_counter() - start:.0f}s", flush=True)
        for seed in args.seeds:
            base = make_cross_encoder(Path(tmp) / f"ce-{seed}", seed=seed, layers=2)
            for method in ("untrained", "gumbel", "supervised"):
                start = time.perf_counter()
                scorer = CrossEncoderScorer.from_pretrained(base, max_length=args.max_length)
                if method != "untrained":
                    config = GumbelRerankConfig(
                        objective=method,
                        k=5,
                        kappa=args.kappa,
                        tau=args.tau,
                        steps=args.steps,
                        batch_size=4,
                        learning_rate=5e-5,
                        warmup_steps=5,
                        seed=seed,
                    )
                    train_reranker(scorer, train, config, reader=reader)
                report = rerank_report(test, rank_passages(scorer, test), k=5, reader=reader)
                row = {
                    "seed": seed,
                    "method": method,
                    **{k: round(v, 4) for k, v in report.items()},
                    "seconds": round(time.perf_counter() - start, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    for method in ("untrained", "gumbel", "supervised"):
        picked = [r for r in rows if r["method"] == method]
        summary = []
        for key in ("recall@5", "indirect_recall@5", "reader_em@5", "reader_f1@5"):
            values = [r[key] for r in picked]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            summary.append(f"{key} {statistics.mean(values):.3f}±{spread:.3f}")
        print(f"{method:10s} " + "  ".join(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
