"""A frozen Fusion-in-Decoder reader whose cross-attention takes a soft document mask (arXiv 2502.11116).

FiD (Izacard & Grave) encodes every (question, passage) pair independently, with the same positions
(no cross-document leakage, no position bias), and the decoder cross-attends over the concatenation
of all passages' encoder states. Gumbel reranking's Differentiable Masked Attention is then

    DMA(Q_m, K_{i,t}) = M̂_i exp(Q_m K_{i,t}ᵀ / √d) / Σ_{i',t'} M̂_{i'} exp(Q_m K_{i',t'}ᵀ / √d)

which we apply as an additive bias log(M̂_i + ε) on every key token of passage i, in every decoder
layer and head (T5 adds a 4-D float encoder mask to its cross-attention logits as is). M̂_i = 1
leaves passage i untouched, M̂_i = 0 hides it. The reader is frozen: it only turns a mask into a
language-modelling loss on the gold answer, which the reranker is trained through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MASK_EPSILON = 1e-12
"""ε in log(M̂ + ε): a hidden passage keeps a weight of 1e-12 relative to a visible one (finite gradients)."""


def fid_input(question: str, title: str, text: str) -> str:
    """FiD's per-passage input string."""
    return f"question: {question} title: {title} context: {text}"


class FiDReader:
    """A T5 encoder-decoder used as a FiD reader; `loss` and `generate` take an optional soft mask M̂ (B, n)."""

    def __init__(self, model: Any, tokenizer: Any, *, passage_max_length: int = 192, answer_max_length: int = 24):
        self.model, self.tokenizer = model, tokenizer
        self.passage_max_length, self.answer_max_length = passage_max_length, answer_max_length

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "cpu", **options: Any) -> FiDReader:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from .model_folders import require_model_folder

        require_model_folder(path, "FiD reader")
        model = AutoModelForSeq2SeqLM.from_pretrained(str(path)).to(device)
        return cls(model, AutoTokenizer.from_pretrained(str(path)), **options)

    def freeze(self) -> FiDReader:
        """No parameter of the reader trains; dropout off."""
        self.model.requires_grad_(False)
        self.model.eval()
        return self

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def encode(self, questions: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]]) -> tuple[Any, Any]:
        """Encoder states (B, n·L, d) of every passage encoded on its own, and the token mask (B, n, L)."""
        n = len(passages[0])
        if any(len(row) != n for row in passages):
            raise ValueError("every question needs the same number of passages (pad with empty ones)")
        texts = [fid_input(q, title, text) for q, row in zip(questions, passages) for title, text in row]
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.passage_max_length, return_tensors="pt"
        ).to(self.device)
        states = self.model.get_encoder()(**batch).last_hidden_state  # (B·n, L, d): same positions per passage
        b, length = len(questions), states.shape[1]
        return states.reshape(b, n * length, -1), batch["attention_mask"].reshape(b, n, length)

    def cross_attention_bias(self, token_mask: Any, doc_mask: Any | None, dtype: Any) -> Any:
        """(B, 1, 1, n·L) additive bias: log(M̂_i + ε) on passage i's tokens, the dtype's minimum on padding."""
        import torch

        b, n, length = token_mask.shape
        if doc_mask is None:
            per_doc = torch.zeros((b, n), dtype=dtype, device=token_mask.device)
        else:
            if doc_mask.shape != (b, n):
                raise ValueError(f"the document mask has shape {tuple(doc_mask.shape)}, expected {(b, n)}")
            # log in float32: in float16 ε underflows to 0 and a hidden passage would get -inf (NaN gradients)
            per_doc = torch.log(doc_mask.float() + MASK_EPSILON).to(dtype)
        bias = per_doc.unsqueeze(-1).expand(b, n, length)
        bias = torch.where(token_mask.bool(), bias, torch.finfo(dtype).min)
        return bias.reshape(b, 1, 1, n * length)

    def answer_labels(self, answers: Sequence[str]) -> Any:
        batch = self.tokenizer(list(answers), truncation=True, max_length=self.answer_max_length - 1)["input_ids"]
        import torch

        eos, width = self.tokenizer.eos_token_id, 1 + max(len(row) for row in batch)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, row in enumerate(batch):
            labels[i, : len(row) + 1] = torch.tensor([*row, eos])
        return labels.to(self.device)

    def loss(
        self,
        questions: Sequence[str],
        passages: Sequence[Sequence[tuple[str, str]]],
        answers: Sequence[str],
        doc_mask: Any | None = None,
        *,
        encoded: tuple[Any, Any] | None = None,
    ) -> Any:
        """Mean token NLL of the gold answers, -Σ_t log P(a_t | q, {d_i}, M̂, a_<t), averaged over tokens."""
        from transformers.modeling_outputs import BaseModelOutput

        states, token_mask = encoded if encoded is not None else self.encode(questions, passages)
        bias = self.cross_attention_bias(token_mask, doc_mask, states.dtype)
        output = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            attention_mask=bias,
            labels=self.answer_labels(answers),
        )
        return output.loss

    def generate(
        self,
        questions: Sequence[str],
        passages: Sequence[Sequence[tuple[str, str]]],
        doc_mask: Any | None = None,
        *,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Greedy answers (the decoder re-runs on the prefix each step: answers are a few tokens)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        with torch.no_grad():
            states, token_mask = self.encode(questions, passages)
            bias = self.cross_attention_bias(token_mask, doc_mask, states.dtype)
            encoder_outputs = BaseModelOutput(last_hidden_state=states)
            start = self.model.config.decoder_start_token_id
            ids = torch.full((len(questions), 1), start, dtype=torch.long, device=self.device)
            done = torch.zeros(len(questions), dtype=torch.bool, device=self.device)
            for _ in range(max_new_tokens or self.answer_max_length):
                logits = self.model(encoder_outputs=encoder_outputs, attention_mask=bias, decoder_input_ids=ids).logits
                next_ids = logits[:, -1].argmax(dim=-1)
                next_ids = torch.where(done, torch.full_like(next_ids, self.tokenizer.pad_token_id), next_ids)
                ids = torch.cat([ids, next_ids[:, None]], dim=1)
                done |= next_ids == self.tokenizer.eos_token_id
                if bool(done.all()):
                    break
        return self.tokenizer.batch_decode(ids[:, 1:], skip_special_tokens=True)


def fit_reader(
    reader: FiDReader,
    questions: Sequence[str],
    passages: Sequence[Sequence[tuple[str, str]]],
    answers: Sequence[str],
    *,
    steps: int,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    seed: int = 0,
    show_progress: bool = True,
) -> list[float]:
    """Standard FiD training of the reader itself (every passage visible), before it is frozen.

    Only needed where no trained reader exists (the offline miniatures); the paper uses FiD-Large.
    """
    import random

    import torch

    from .loop import run_steps

    torch.manual_seed(seed)
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    reader.model.requires_grad_(True)
    reader.model.train()
    losses = run_steps(
        reader.model.parameters(),
        batches,
        lambda idx: reader.loss([questions[i] for i in idx], [passages[i] for i in idx], [answers[i] for i in idx]),
        steps=steps,
        learning_rate=learning_rate,
        warmup_steps=min(50, steps // 10),
        description="FiD reader",
        show_progress=show_progress,
    )
    reader.freeze()
    return losses


__all__ = ["MASK_EPSILON", "FiDReader", "fid_input", "fit_reader"]
