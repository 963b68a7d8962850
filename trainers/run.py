"""`run_training(config)`: the whole job behind `toolgym train` — optional SFT warm-up, then GRPO."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .config import GRPOConfig
from .loop import GRPOTrainer
from .sft import load_demonstrations, sft_train

logger = logging.getLogger(__name__)


def run_training(config: GRPOConfig) -> list[dict[str, Any]]:
    """Build the trainer (all config checks first), warm up with SFT on a fresh run, train, close."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # per-file load/save bars would drown the step bar
    trainer = GRPOTrainer(config)
    try:
        if config.sft_steps and trainer.step == 0:
            demonstrations = load_demonstrations(config.sft_data, trainer.tokenizer)
            losses = sft_train(
                trainer.policy,
                demonstrations,
                config.sft_steps,
                config.sft_batch_size,
                config.sft_learning_rate,
                config.sft_warmup_steps,
                config.max_grad_norm,
                config.seed,
                trainer.engine.pad_token_id,
            )
            Path(config.output_dir).mkdir(parents=True, exist_ok=True)
            record = {"sft_steps": len(losses), "first_loss": losses[0], "last_loss": losses[-1]}
            (Path(config.output_dir) / "sft.json").write_text(json.dumps(record), encoding="utf-8")
            logger.info("SFT warm-up: %d steps, loss %.4f -> %.4f", len(losses), losses[0], losses[-1])
            trainer.anchor_reference_to_warm_start()
        return trainer.train()
    finally:
        trainer.close()
