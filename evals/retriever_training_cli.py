"""`toolgym train-retriever`: build training records, train the LLM embedder or the Gumbel reranker.

Lives in the CLI layer because it joins two sides that must not import each other: the trainers
(toolgym.retrievers.training, plain records) and the HotpotQA readers (toolgym.envs.search via
toolgym.evals.retriever_training). Only argparse is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from toolgym.cli_help import HelpFormatter, show_help
from toolgym.cli_values import non_negative_int, positive_int

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Train the retrieval models that Search-v0's dense retriever and rerank stage load by path.

  records     write query/positive/negatives JSONL from a BEIR folder's qrels or HotpotQA rows
  embedder    LLM embedder (arXiv 2509.03020): Stage I bidirectional reconstruction (EBQ2D + EBD2Q
              anchored on the EOS embedding), then Stage II InfoNCE (in-batch + hard negatives,
              optional LoRA); saves an HF folder used as the dense encoder `hf:<out>:last`
  reranker    Gumbel reranker (arXiv 2502.11116): a cross-encoder trained through a frozen FiD
              reader's answer loss with a relaxed top-k attention mask (or the supervised
              baseline); saves an HF folder used as the rerank stage `hf:<out>`
  tiny-bases  write small offline base models (causal LM, FiD reader, cross-encoder) for trying
              the commands without any download
"""

EPILOG = """\
examples:
  toolgym train-retriever tiny-bases --out models/bases
  toolgym train-retriever records beir --folder data/beir_scifact --split train --out scifact.jsonl
  toolgym train-retriever embedder --base models/bases/causal-lm --records scifact.jsonl \\
      --stage1-steps 200 --stage2-steps 200 --out models/scifact-embedder --eval-beir data/beir_scifact
  toolgym index build --corpus corpus.jsonl --backend faiss --encoder hf:models/scifact-embedder:last --out idx
  toolgym train-retriever reranker --base models/bases/cross-encoder --reader models/bases/fid-reader \\
      --fit-reader-steps 300 --dataset hotpotqa --objective gumbel --steps 200 --out models/gumbel-reranker
"""


def add_train_retriever_command(subparsers: Any) -> None:
    """Add `train-retriever` (records, embedder, reranker, tiny-bases) to the `toolgym` subparsers."""
    command = subparsers.add_parser(
        "train-retriever",
        help="train the LLM embedder (Stage I + II) or the Gumbel reranker; build their training records",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = command.add_subparsers(dest="train_retriever_command", metavar="WHAT")
    command.set_defaults(handler=show_help(command))

    records = actions.add_parser(
        "records",
        help="write training records (JSONL)",
        formatter_class=HelpFormatter,
        description="Write query/positive/negatives JSON Lines for `embedder`.",
    )
    records.add_argument("source", choices=("beir", "hotpotqa"), help="where the pairs come from")
    records.add_argument("--folder", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) for `beir`")
    records.add_argument("--split", default="train", help="BEIR qrels split (never train on test)")
    records.add_argument(
        "--dataset", default="hotpotqa:train_sample", help="HotpotQA dataset name or file for `hotpotqa`"
    )
    records.add_argument("--negatives", choices=("bm25", "random"), default="bm25", help="BEIR negative mining")
    records.add_argument("--n-negatives", type=non_negative_int, default=3, help="hard negatives per record")
    records.add_argument("--out", required=True, metavar="FILE", help="JSONL file to write")
    records.set_defaults(handler=_clear_errors(_records))

    embedder = actions.add_parser(
        "embedder",
        help="train the bidirectional-reconstruction LLM embedder",
        formatter_class=HelpFormatter,
        description=DESCRIPTION.split("\n\n")[0],
    )
    embedder.add_argument("--base", required=True, metavar="PATH", help="HF causal-LM folder to start from")
    embedder.add_argument("--records", required=True, nargs="+", metavar="FILE", help="training JSONL file(s)")
    embedder.add_argument("--out", required=True, metavar="DIR", help="folder to save the embedder to")
    embedder.add_argument("--instruction", default=None, help="query instruction (default: a generic retrieval one)")
    embedder.add_argument("--max-length", type=positive_int, default=512, help="tokens per text")
    embedder.add_argument("--stage1-steps", type=non_negative_int, default=2000, help="Stage I steps (0 skips Stage I)")
    embedder.add_argument("--stage1-lr", type=float, default=4e-5)
    embedder.add_argument("--alpha", type=float, default=0.2, help="weight of L_Q2D (1-alpha weighs L_D2Q)")
    embedder.add_argument(
        "--stage2-steps", type=non_negative_int, default=1000, help="Stage II steps (0 skips Stage II)"
    )
    embedder.add_argument("--stage2-lr", type=float, default=2e-4)
    embedder.add_argument("--batch-size", type=positive_int, default=32, help="pairs per step (each stage)")
    embedder.add_argument(
        "--hard-negatives", type=non_negative_int, default=1, help="hard negatives per query in Stage II"
    )
    embedder.add_argument("--lora", action="store_true", help="Stage II trains LoRA adapters (merged at save)")
    embedder.add_argument("--device", default="cpu", help="torch device (under torchrun: cuda -> cuda:LOCAL_RANK)")
    embedder.add_argument("--dtype", default="float32", help="weights dtype: float32, bfloat16 (GPU) or float16")
    embedder.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    embedder.add_argument("--seed", type=int, default=42)
    embedder.add_argument(
        "--eval-beir", metavar="DIR", help="score the result with mteb on this BEIR folder's test split"
    )
    embedder.set_defaults(handler=_clear_errors(_embedder))

    reranker = actions.add_parser(
        "reranker",
        help="train a reranker through a frozen FiD reader (Gumbel)",
        formatter_class=HelpFormatter,
        description=DESCRIPTION.split("\n\n")[0],
    )
    reranker.add_argument("--base", required=True, metavar="PATH", help="HF sequence-classification folder (1 logit)")
    reranker.add_argument("--reader", metavar="PATH", help="HF T5 folder used as the frozen FiD reader (gumbel)")
    reranker.add_argument(
        "--fit-reader-steps", type=non_negative_int, default=0, help="train the reader on the data first"
    )
    reranker.add_argument(
        "--dataset", default="hotpotqa", help="HotpotQA rows with paragraphs (name, file or hf:<name>)"
    )
    reranker.add_argument("--split", default="validation", help="split for hf:<name> datasets")
    reranker.add_argument("--train", type=non_negative_int, default=300, help="questions to train on (the first N)")
    reranker.add_argument(
        "--eval", type=non_negative_int, default=100, help="questions after those to score (0 = none)"
    )
    reranker.add_argument("--objective", choices=("gumbel", "supervised"), default="gumbel")
    reranker.add_argument("--k", type=positive_int, default=5, help="passages kept (relaxed top-k / hard top-k)")
    reranker.add_argument("--kappa", type=float, default=1.0, help="κ: logit scale against the Gumbel noise")
    reranker.add_argument("--tau", type=float, default=0.5, help="τ: Gumbel-softmax temperature")
    reranker.add_argument("--steps", type=non_negative_int, default=200, help="reranker steps (0: only score --base)")
    reranker.add_argument("--batch-size", type=positive_int, default=4, help="questions per step")
    reranker.add_argument("--lr", type=float, default=2e-5)
    reranker.add_argument("--max-length", type=positive_int, default=256, help="tokens per passage")
    reranker.add_argument("--device", default="cpu")
    reranker.add_argument("--seed", type=int, default=0)
    reranker.add_argument("--out", required=True, metavar="DIR", help="folder to save the reranker to")
    reranker.set_defaults(handler=_clear_errors(_reranker))

    bases = actions.add_parser(
        "tiny-bases",
        help="write small offline base models",
        formatter_class=HelpFormatter,
        description="A 2-layer causal LM, a small T5 FiD reader and a MiniLM cross-encoder, "
        "built from what ships offline (all-MiniLM-L6-v2's tokenizer and weights).",
    )
    bases.add_argument("--out", required=True, metavar="DIR")
    bases.add_argument("--small", action="store_true", help="toy sizes (seconds to train; for smoke tests)")
    bases.set_defaults(handler=_clear_errors(_tiny_bases))


def _clear_errors(handler: Any) -> Any:
    """Bad input (a missing folder, a malformed record, an unknown model) becomes one line, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (OSError, ValueError) as exc:
            return _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    return run


def _fail(message: str) -> int:
    print(f"toolgym train-retriever: {message}", file=sys.stderr)
    return 2


def _records(args: argparse.Namespace) -> int:
    from toolgym.retrievers.training.records import records_from_beir, write_records

    if args.source == "beir":
        if not args.folder:
            return _fail("records beir needs --folder (a BEIR folder with corpus.jsonl, queries.jsonl, qrels/)")
        rows = records_from_beir(args.folder, split=args.split, n_negatives=args.n_negatives, negatives=args.negatives)
    else:
        from toolgym.envs.search.readers import load_rows
        from toolgym.evals.retriever_training import embedding_records_from_hotpotqa

        rows = embedding_records_from_hotpotqa(load_rows(args.dataset), n_negatives=args.n_negatives)
    if not rows:  # an empty file would only fail later, in `embedder`
        where = args.folder if args.source == "beir" else args.dataset
        need = "qrels with relevant documents" if args.source == "beir" else "rows with supporting paragraphs"
        return _fail(f"{where!r} gave no training records: it needs {need}; nothing was written")
    count = write_records(rows, args.out)
    print(f"wrote {count} records to {args.out}")
    return 0


def _embedder(args: argparse.Namespace) -> int:
    from toolgym.retrievers.training.anchor_reconstruction import StageIConfig, train_stage_one
    from toolgym.retrievers.training.contrastive import StageIIConfig, check_hard_negatives, train_stage_two
    from toolgym.retrievers.training.embedder import LLMEmbedder
    from toolgym.retrievers.training.records import read_records

    records = [record for path in args.records for record in read_records(path)]
    if args.stage2_steps:
        check_hard_negatives(records, args.hard_negatives)  # before Stage I spends its steps
    if args.eval_beir:
        _check_beir_test_folder(args.eval_beir)  # before training, not after it
    _check_device(args.device)
    device, is_main = _init_distributed(args.device)
    embedder = LLMEmbedder.from_pretrained(args.base, device=device, dtype=args.dtype)
    if args.gradient_checkpointing:
        embedder.model.gradient_checkpointing_enable()
    embedder.options.max_length = args.max_length
    if args.instruction is not None:
        embedder.options.query_instruction = args.instruction
    summary: dict[str, Any] = {"records": len(records)}
    if args.stage1_steps:
        config = StageIConfig(
            alpha=args.alpha,
            steps=args.stage1_steps,
            batch_size=args.batch_size,
            learning_rate=args.stage1_lr,
            warmup_steps=min(300, args.stage1_steps // 10),
            target_max_length=args.max_length,
            seed=args.seed,
        )
        losses = train_stage_one(embedder, records, config)
        summary["stage1_loss"] = [losses[0], losses[-1]]
    if args.stage2_steps:
        config = StageIIConfig(
            steps=args.stage2_steps,
            batch_size=args.batch_size,
            hard_negatives=args.hard_negatives,
            learning_rate=args.stage2_lr,
            warmup_steps=min(300, args.stage2_steps // 10),
            lora=args.lora,
            seed=args.seed,
        )
        losses = train_stage_two(embedder, records, config)
        summary["stage2_loss"] = [losses[0], losses[-1]]
    _finish_distributed()
    if not is_main:
        return 0
    embedder.save_pretrained(args.out)
    summary["encoder_spec"] = f"hf:{args.out}:last"
    if args.eval_beir:
        from toolgym.retrievers.training.mteb_eval import evaluate_on_beir_folder

        summary["mteb"] = evaluate_on_beir_folder(args.out, args.eval_beir, device=args.device)
    print(json.dumps(summary, indent=2))
    return 0


def _check_beir_test_folder(folder: str) -> None:
    """A ValueError naming --eval-beir when the folder lacks what the mteb test-split scoring reads."""
    root = Path(folder)
    needed = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / "test.tsv"]
    missing = [str(path.relative_to(root)) for path in needed if not path.is_file()]
    if not root.is_dir() or missing:
        what = "is not a folder" if not root.is_dir() else f"lacks {', '.join(missing)}"
        raise ValueError(f"--eval-beir {folder!r} {what}: give a BEIR folder with a test split")


def _check_device(device: str) -> None:
    """A ValueError naming --device when torch cannot parse it or this machine lacks it (not a deep traceback)."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a torch device: use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: this torch has no usable CUDA GPU (use --device cpu)")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device!r}: MPS is not available here (use --device cpu)")


def _init_distributed(device: str) -> tuple[str, bool]:
    """Under torchrun (WORLD_SIZE > 1): join the process group, one GPU per rank; returns (device, is rank 0)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device, True
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if cuda else "gloo")
    return device, dist.get_rank() == 0


def _finish_distributed() -> None:
    """Wait for every rank to finish its collectives, then tear the group down (no-op alone).

    A rank that exits while a peer is still inside an all-gather aborts the job with gloo
    ("terminate called without an active exception"); the barrier rules that out.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _reranker(args: argparse.Namespace) -> int:
    from toolgym.envs.search.readers import load_rows
    from toolgym.evals.retriever_training import rerank_examples_from_hotpotqa, rerank_report
    from toolgym.retrievers.training.fid_reader import FiDReader, fit_reader
    from toolgym.retrievers.training.gumbel_rerank import (
        CrossEncoderScorer,
        GumbelRerankConfig,
        check_k_fits,
        rank_passages,
        train_reranker,
    )
    from toolgym.retrievers.training.model_folders import require_model_folder

    if args.objective == "gumbel" and not args.reader:
        return _fail("--objective gumbel trains through a reader: give --reader PATH (a T5 folder)")
    examples = rerank_examples_from_hotpotqa(load_rows(args.dataset, split=args.split))
    train, test = examples[: args.train], examples[args.train : args.train + args.eval]
    if not examples:
        return _fail(f"{args.dataset!r} has no rows with paragraphs, answers and supporting paragraphs")
    if (args.steps or args.fit_reader_steps) and not train:
        return _fail("--train 0 leaves nothing to train on: use --steps 0 to only score --base")
    _check_device(args.device)
    check_k_fits(train + test, args.k)
    require_model_folder(args.base, "reranker base")  # before any reader fitting, not after
    if args.reader:
        require_model_folder(args.reader, "FiD reader")
    config = GumbelRerankConfig(
        objective=args.objective,
        k=args.k,
        kappa=args.kappa,
        tau=args.tau,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
    )
    reader = None
    if args.reader:
        reader = FiDReader.from_pretrained(args.reader, device=args.device, passage_max_length=args.max_length)
        if args.fit_reader_steps:
            fit_reader(
                reader,
                [e.question for e in train],
                [list(e.passages) for e in train],
                [e.answers[0] for e in train],
                steps=args.fit_reader_steps,
                seed=args.seed,
            )
            reader.model.save_pretrained(Path(args.out) / "reader")
            reader.tokenizer.save_pretrained(Path(args.out) / "reader")
        reader.freeze()
    scorer = CrossEncoderScorer.from_pretrained(args.base, device=args.device, max_length=args.max_length)
    before = rerank_report(test, rank_passages(scorer, test), k=args.k) if test else {}
    losses = train_reranker(scorer, train, config, reader=reader) if args.steps else []
    scorer.save_pretrained(args.out)
    summary: dict[str, Any] = {"loss": [losses[0], losses[-1]] if losses else None, "rerank_spec": f"hf:{args.out}"}
    if test:
        summary["before"] = before
        summary["after"] = rerank_report(test, rank_passages(scorer, test), k=args.k, reader=reader)
    print(json.dumps(summary, indent=2))
    return 0


def _tiny_bases(args: argparse.Namespace) -> int:
    from toolgym.retrievers.training.tiny_models import make_causal_lm, make_cross_encoder, make_fid_reader

    out = Path(args.out)
    if args.small:
        paths = [
            make_causal_lm(out / "causal-lm", hidden_size=32, heads=2, init_embeddings_from_minilm=False),
            make_fid_reader(out / "fid-reader", d_model=32, heads=2),
            make_cross_encoder(out / "cross-encoder", layers=1),
        ]
    else:
        paths = [
            make_causal_lm(out / "causal-lm"),
            make_fid_reader(out / "fid-reader"),
            make_cross_encoder(out / "cross-encoder"),
        ]
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toolgym")
    add_train_retriever_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return args.handler(args) if hasattr(args, "handler") else 2


if __name__ == "__main__":
    raise SystemExit(main())
