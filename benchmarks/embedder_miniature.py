"""CPU miniature of arXiv 2509.03020 on BEIR SciFact: Stage II alone vs Stage I + Stage II.

Base model: a 2-layer Llama (hidden 384) built locally whose token embeddings and tokenizer come
from all-MiniLM-L6-v2 (the only text model that ships offline); every transformer layer is random.
So this measures whether the reconstruction stage helps a *weak* LM, not the paper's 1B-8B setting.
Training data: SciFact's train qrels (BM25 hard negatives); evaluation: mteb on the test split
(a local BEIR task) through the FAISS dense retriever, as Search-v0 would load the model.

Run: `python benchmarks/embedder_miniature.py --seeds 0 1 2 [--stage1-steps 60 --stage2-steps 60]`
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

from toolgym.data import shared_data_dir
from toolgym.retrievers.training.anchor_reconstruction import StageIConfig, train_stage_one
from toolgym.retrievers.training.contrastive import StageIIConfig, train_stage_two
from toolgym.retrievers.training.embedder import LLMEmbedder
from toolgym.retrievers.training.mteb_eval import evaluate_on_beir_folder
from toolgym.retrievers.training.records import records_from_beir
from toolgym.retrievers.training.tiny_models import make_causal_lm

INSTRUCTION = "Given a scientific claim, retrieve documents that support or refute the claim; "


def run(
    base: Path, records, beir: Path, out: Path, *, stage1_steps: int, stage2_steps: int, seed: int, max_length: int
) -> dict:
    embedder = LLMEmbedder.from_pretrained(base)
    embedder.options.query_instruction, embedder.options.max_length = INSTRUCTION, max_length
    start = time.perf_counter()
    stage1 = []
    if stage1_steps:
        config = StageIConfig(
            steps=stage1_steps,
            batch_size=16,
            learning_rate=5e-4,
            warmup_steps=10,
            target_max_length=max_length,
            seed=seed,
        )
        stage1 = train_stage_one(embedder, records, config)
    config = StageIIConfig(
        steps=stage2_steps, batch_size=32, learning_rate=5e-4, warmup_steps=10, lora=False, seed=seed
    )
    stage2 = train_stage_two(embedder, records, config)
    embedder.save_pretrained(out)
    train_seconds = time.perf_counter() - start
    scores = evaluate_on_beir_folder(out, beir, batch_size=64)
    return {
        "seed": seed,
        "stage1_steps": stage1_steps,
        "stage2_steps": stage2_steps,
        "stage1_loss": [stage1[0], stage1[-1]] if stage1 else None,
        "stage2_loss": [stage2[0], stage2[-1]],
        "ndcg_at_10": scores["ndcg_at_10"],
        "recall_at_100": scores["recall_at_100"],
        "train_seconds": round(train_seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stage1-steps", type=int, default=60)
    parser.add_argument("--stage2-steps", type=int, default=60)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = shared_data_dir()
    if data is None:
        print("benchmark data not found: set TOOLGYM_DATA_DIR", file=sys.stderr)
        return 1
    beir = data / "beir_scifact"
    records = records_from_beir(beir, split="train", n_negatives=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            base = make_causal_lm(Path(tmp) / f"base-{seed}", seed=seed)
            for stage1 in (0, args.stage1_steps):
                row = run(
                    base,
                    records,
                    beir,
                    Path(tmp) / f"model-{seed}-{stage1}",
                    stage1_steps=stage1,
                    stage2_steps=args.stage2_steps,
                    seed=seed,
                    max_length=args.max_length,
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
    for stage1 in (0, args.stage1_steps):
        values = [r["ndcg_at_10"] for r in rows if r["stage1_steps"] == stage1]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"Stage I steps {stage1:4d}: nDCG@10 {statistics.mean(values):.4f} ± {spread:.4f} over {len(values)} seeds"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
