"""An LLM text embedder: any Hugging Face causal LM read out at its last ([EOS]) token.

The encoder of arXiv 2509.03020 (and of llm2vec's supervised recipe it builds on):

    e_X = f(x_1 .. x_n, [EOS])[-1]          the final hidden state at the appended EOS token

with causal attention, left padding (so the EOS sits in the last column) and explicit position
ids from the attention mask (so padding never shifts a text's positions), a task instruction
prepended to queries only, and the output L2-normalized for cosine search.

`LLMEmbedder.save_pretrained(folder)` writes a normal HF folder (config, weights, tokenizer) plus
`toolgym_encoder.json` with the instruction and EOS rule, so the dense retriever loads it as
`hf:<folder>:last` (FAISS backend, Search-v0) and produces the same vectors as training did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolgym.retrievers.encoders import ENCODER_OPTIONS_FILE, tokenizable_text, tokenize_texts

from .model_folders import require_model_folder

logger = logging.getLogger(__name__)

# E5's instruction for SciFact-like retrieval; any "Given ..., retrieve ..." sentence works.
DEFAULT_QUERY_INSTRUCTION = "Given a question, retrieve passages that answer the question; "


@dataclass
class EmbedderOptions:
    """How texts become token ids; saved beside the weights as the dense encoder's options."""

    query_instruction: str = DEFAULT_QUERY_INSTRUCTION
    """Prepended to queries only (documents carry no instruction), as in E5 / llm2vec."""
    max_length: int = 512
    """Tokens per text including the appended EOS (the paper trains with 512)."""

    def encoder_options(self) -> dict[str, Any]:
        """The same rules in the dense encoder's vocabulary (retrievers/encoders.py)."""
        return {
            "pooling": "last",
            "query_prefix": self.query_instruction,
            "document_prefix": "",
            "max_length": self.max_length,
            "append_eos": True,
        }


def _require_torch() -> Any:
    from toolgym.extras import require

    require("transformers", "train", "training the LLM embedder")
    return require("torch", "train", "training the LLM embedder")


def position_ids_from_mask(attention_mask: Any) -> Any:
    """Positions 0, 1, ... counted over real tokens only (pads get 0): left padding leaves positions intact."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


class LLMEmbedder:
    """A causal LM plus its tokenizer, embedding texts at the last (EOS) token; differentiable."""

    def __init__(self, model: Any, tokenizer: Any, options: EmbedderOptions | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.options = options or EmbedderOptions()
        if tokenizer.eos_token_id is None:
            raise ValueError(
                "the tokenizer has no eos token; an EOS-pooled embedder needs one (set tokenizer.eos_token)"
            )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "cpu", dtype: str = "float32") -> LLMEmbedder:
        """Load a causal-LM folder (a base model, or one saved by `save_pretrained` with its options)."""
        torch = _require_torch()
        import json

        from transformers import AutoModelForCausalLM, AutoTokenizer

        require_model_folder(path, "base causal LM")
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use 'float32', 'bfloat16' or 'float16'")
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype).to(device)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        options = EmbedderOptions()
        saved = Path(path) / ENCODER_OPTIONS_FILE
        if saved.is_file():
            record = json.loads(saved.read_text(encoding="utf-8"))
            options = EmbedderOptions(record.get("query_prefix", ""), int(record.get("max_length", 512)))
        return cls(model, tokenizer, options)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def tokenize(self, texts: Sequence[str], *, is_query: bool) -> dict[str, Any]:
        """Left-padded ids, mask and position ids of `texts` (+ instruction for queries) with EOS appended."""
        if self.options.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (a token and the EOS), got {self.options.max_length}")
        prefix = self.options.query_instruction if is_query else ""
        texts = [prefix + tokenizable_text(text) for text in texts]
        batch = tokenize_texts(
            self.tokenizer, texts, max_length=self.options.max_length, append_eos=True, padding_side="left"
        )
        batch["position_ids"] = position_ids_from_mask(batch["attention_mask"])
        return {key: value.to(self.device) for key, value in batch.items()}

    def anchor(self, texts: Sequence[str], *, is_query: bool) -> Any:
        """e_X: the final-layer hidden state at the EOS token, not normalized (Stage I's anchor)."""
        batch = self.tokenize(texts, is_query=is_query)
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model.base_model
        hidden = decoder(**batch).last_hidden_state
        return hidden[:, -1]  # left padding: the EOS of every row is in the last column

    def embed(self, texts: Sequence[str], *, is_query: bool) -> Any:
        """L2-normalized embeddings (batch, hidden); gradients flow (used by Stage II)."""
        torch = _require_torch()
        return torch.nn.functional.normalize(self.anchor(texts, is_query=is_query).float(), dim=-1)

    def save_pretrained(self, folder: str | Path) -> Path:
        """A normal HF folder plus `toolgym_encoder.json`; load it back with `hf:<folder>:last`."""
        import json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model = self.model
        if hasattr(model, "merge_and_unload"):  # a peft LoRA model: save plain merged weights
            model = model.merge_and_unload()
            self.model = model
        model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / ENCODER_OPTIONS_FILE).write_text(json.dumps(self.options.encoder_options(), indent=2) + "\n")
        (folder / "toolgym_embedder.json").write_text(json.dumps(asdict(self.options), indent=2) + "\n")
        logger.info("saved the embedder to %s (dense encoder spec hf:%s:last)", folder, folder)
        return folder


__all__ = ["DEFAULT_QUERY_INSTRUCTION", "EmbedderOptions", "LLMEmbedder", "position_ids_from_mask"]
