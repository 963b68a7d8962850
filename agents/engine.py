"""The token-engine contract: what rollouts need from an inference backend, and how logprobs are scored.

Rollouts (`toolgym.agents.rollout`) and trainers (`toolgym.trainers`) depend on this module, not on
an implementation: `HFEngine` (transformers, CPU or one GPU) and `VLLMEngine` (vLLM, GPU) both
satisfy `TokenEngine`. Token ids go in, token ids with their logprobs come out, so the trainer
scores exactly what the policy sampled.

`token_logprobs` is the one place where logits become logprobs. The HF engine calls it while
sampling and the trainer calls it when it recomputes old/current logprobs, so the two can differ
only by the numerics of the forward pass, never by a formula (temperature, dtype, gathering).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from .base import SamplingParams

FINISH_REASONS = ("eos", "stop", "length")


@dataclass
class Generation:
    """One sequence's continuation: sampled ids, their logprobs, and why it stopped."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"
    """"eos" (an end-of-turn token, included in `token_ids`), "stop" (a stop string), or "length"."""
    stop: str | None = None
    """The stop string that ended generation, when `finish_reason == "stop"`."""


@runtime_checkable
class TokenEngine(Protocol):
    """Anything that continues token-id prompts: `HFEngine`, `VLLMEngine`.

    - `generate` continues each prompt by at most its own `max_new_tokens` (default
      `sampling.max_tokens`); each `Generation.logprobs[t]` is `token_logprobs` of the sampled token
      under the distribution it was drawn from (temperature applied; top-p/top-k truncation not
      folded in, as trainers do not recompute it either).
    - `update_weights(weights)` loads new policy weights (a `torch.nn.Module` or a state dict) and
      increments `policy_version`. An engine that shares the trainer's module (the HF engine built on
      the model being trained) may treat that module as a no-op load, but still bumps the version
      and drops any state computed with the old weights (KV caches).
    - `reseed(seed)` restarts the sampling stream, so equal seeds sample equal tokens.
    - `policy_version` counts weight updates since the engine was built (0 = initial weights); the
      rollout stores it in each trajectory's `sampling` record.
    """

    policy_version: int

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams, max_new_tokens: Sequence[int] | None = None
    ) -> list[Generation]: ...

    def update_weights(self, weights: Any) -> None: ...

    def reseed(self, seed: int) -> None: ...


def scoring_temperature(temperature: float) -> float:
    """The temperature logprobs are scored at: greedy decoding (T = 0) is scored at T = 1."""
    return 1.0 if temperature <= 0 else float(temperature)


def token_logprobs(logits: Any, token_ids: Any, temperature: float = 1.0) -> Any:
    """`log_softmax(logits / T)` gathered at `token_ids`, in float32.

    `logits[..., t, :]` must be the distribution that produced `token_ids[..., t]` (callers pass
    already-shifted logits: for a full sequence, `logits[:, :-1]` against `ids[:, 1:]`). Shapes:
    logits `(..., V)`, token_ids `(...)`; returns `(...)`. Computed as `x[id] - logsumexp(x)`, which
    never materialises the full log-softmax (a `(B, T, V)` float32 copy is the largest tensor of a
    training step otherwise). T = 0 (greedy) is scored at T = 1.
    """
    import torch

    scaled = logits.float()
    temperature = scoring_temperature(temperature)
    if temperature != 1.0:
        scaled = scaled / temperature
    index = token_ids.long().unsqueeze(-1)
    picked = torch.gather(scaled, -1, index).squeeze(-1)
    return picked - torch.logsumexp(scaled, dim=-1)


def token_entropy(logits: Any, temperature: float = 1.0) -> Any:
    """Entropy of `softmax(logits / T)` over the last dimension, in float32 (T = 0 scored at T = 1)."""
    import torch

    scaled = logits.float()
    temperature = scoring_temperature(temperature)
    if temperature != 1.0:
        scaled = scaled / temperature
    log_probs = torch.log_softmax(scaled, dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def token_logprobs_and_entropy(
    logits: Any, token_ids: Any, temperature: float = 1.0, entropy_grad: bool = False
) -> tuple[Any, Any]:
    """`token_logprobs` and `token_entropy` of the same logits, for a training step.

    A step needs both: the logprobs for the loss, the entropy for the metrics veRL logs every step.
    Without `entropy_grad` (the usual case: entropy only logged) they come from one fused autograd
    function that shares a softmax per chunk of rows (`_logprob_with_logged_entropy`); with it (an
    entropy bonus, which differentiates the entropy) they are the two functions themselves.
    """
    if entropy_grad:  # an entropy bonus differentiates the entropy: the composed, autograd-able pair
        return token_logprobs(logits, token_ids, temperature), token_entropy(logits, temperature)
    scaled = logits.float()
    temperature = scoring_temperature(temperature)
    if temperature != 1.0:
        scaled = scaled / temperature
    return _logprob_with_logged_entropy().apply(scaled, token_ids.long())


LOGIT_CHUNK_ELEMENTS = 1 << 18
"""Logits processed per chunk by the fused logprob/entropy function (1 MiB of float32)."""


@lru_cache(maxsize=1)
def _logprob_with_logged_entropy() -> Any:
    """An autograd function: token logprobs (differentiable) and entropies (logged, no gradient).

    Forward, per chunk of rows: `e = exp(x - max)`, `lse = max + log(sum e)`, the entropy
    `lse - <e, x> / sum e`; then the logprob `x[id] - lse`. Backward recomputes the softmax from the
    saved logits and `lse` (as `logsumexp`'s own backward does) into the gradient tensor:
    `d logprob / dx = onehot(id) - softmax(x)`. Composed from torch ops, the same numbers took twice
    the passes over the `(N, V)` logits and three fresh `(N, V)` tensors per call (logsumexp, its
    backward's softmax, the entropy's exp and product); here the only one is the gradient itself,
    and each chunk's work stays in a small reused buffer, so first-touch page faults of freshly
    allocated large tensors, a visible share of a small model's update on CPU, mostly go away.
    """
    import torch

    def chunks(rows: int, width: int) -> range:
        return range(0, rows, max(1, LOGIT_CHUNK_ELEMENTS // max(width, 1)))

    class LogprobWithLoggedEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, scaled: Any, token_ids: Any) -> tuple[Any, Any]:
            shape, width = scaled.shape[:-1], scaled.shape[-1]
            flat = scaled.reshape(-1, width)
            ids = token_ids.reshape(-1, 1)
            lse = flat.new_empty(flat.shape[0])
            entropy = flat.new_empty(flat.shape[0])
            step = max(1, LOGIT_CHUNK_ELEMENTS // max(width, 1))
            buffer = flat.new_empty((min(step, flat.shape[0]), width))
            for start in chunks(flat.shape[0], width):
                x = flat[start : start + step]
                exps = buffer[: x.shape[0]]
                peak = x.amax(dim=-1, keepdim=True)
                torch.sub(x, peak, out=exps).exp_()
                total = exps.sum(dim=-1)
                part = peak.squeeze(-1) + total.log()
                lse[start : start + step] = part
                entropy[start : start + step] = part - exps.mul_(x).sum(dim=-1) / total
            logprob = torch.gather(flat, -1, ids).squeeze(-1) - lse
            ctx.save_for_backward(flat, ids, lse)
            ctx.shape = shape
            logprob, entropy = logprob.view(shape), entropy.view(shape)
            ctx.mark_non_differentiable(entropy)
            return logprob, entropy

        @staticmethod
        def backward(ctx: Any, grad_logprob: Any, _grad_entropy: Any) -> tuple[Any, None]:
            flat, ids, lse = ctx.saved_tensors
            weight = grad_logprob.reshape(-1, 1)
            grad = torch.empty_like(flat)
            step = max(1, LOGIT_CHUNK_ELEMENTS // max(flat.shape[-1], 1))
            for start in chunks(flat.shape[0], flat.shape[-1]):
                rows = grad[start : start + step]
                torch.sub(flat[start : start + step], lse[start : start + step, None], out=rows).exp_()
                rows.mul_(weight[start : start + step].neg())
            grad.scatter_add_(-1, ids, weight.to(grad.dtype))
            return grad.view(*ctx.shape, flat.shape[-1]), None

    return LogprobWithLoggedEntropy


def sampling_record(sampling: SamplingParams, policy_version: int) -> dict[str, Any]:
    """What a trajectory stores about how it was sampled; its logprobs depend on every field."""
    return {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "max_tokens": sampling.max_tokens,
        "stop": list(sampling.stop),
        "seed": sampling.seed,
        "policy_version": policy_version,
    }


__all__ = [
    "FINISH_REASONS",
    "Generation",
    "SamplingParams",
    "TokenEngine",
    "sampling_record",
    "scoring_temperature",
    "token_entropy",
    "token_logprobs",
    "token_logprobs_and_entropy",
]
