"""Token-level generation with a transformers model: token ids in, token ids and logprobs out.

This is the engine under both `HFAgent` (text in, one assistant turn out) and the token-level
rollouts (`toolgym.agents.rollout`). Its own decode loop, rather than `model.generate`, because
rollouts need exactly three things `generate` makes awkward together: the logprob of each sampled
token under the distribution it was sampled from, stop strings checked token by token (stop after
the token that completes one), and a per-sequence token budget within one batch. It also keeps
the keys/values of recent sequences, so the next turn of a multi-turn rollout encodes only its
new tokens (`toolgym.agents.kv_reuse`).

Logprobs are `toolgym.agents.engine.token_logprobs`, i.e. `log_softmax(logits / T)` at the sampled
token (T = 1 for greedy decoding), the function a trainer recomputes them with. Top-k and nucleus
truncation change which tokens can be drawn but are not folded into the logprob, as trainers do
not recompute them either.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.extras import require

from .base import SamplingParams
from .engine import Generation, token_logprobs
from .kv_reuse import PrefixKVCache, cache_layers, row_layers, seed_cache

logger = logging.getLogger(__name__)


def import_torch_transformers() -> tuple[Any, Any]:
    """torch and transformers, or an ImportError that names the extra to install."""
    return require("torch", "hf", "HF models"), require("transformers", "hf", "HF models")


def load_model_and_tokenizer(
    model_path: str | Path, device: str | None = None, dtype: str | None = None, chat_template: str | None = None
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from a local folder or a hub id, ready for inference."""
    torch, transformers = import_torch_transformers()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    torch_dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"dtype must name a torch dtype such as 'float32' or 'bfloat16', got {dtype!r}")
    source = str(model_path)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        local = Path(source).exists()
        hint = (
            "the folder exists but does not hold a transformers checkpoint (config.json, weights, tokenizer)"
            if local
            else "it is not a local folder, and a hub id needs network access (HF_HUB_OFFLINE is "
            "set or the hub is unreachable): download it first or pass a local path"
        )
        raise OSError(f"cannot load model {source!r}: {hint}. Cause: {type(exc).__name__}: {exc}") from exc
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    model.to(device)
    model.eval()
    return model, tokenizer


class HFEngine:
    """Batched sampling with a KV cache and left padding over a transformers causal LM."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, seed: int = 0, kv_cache_sequences: int = 64):
        """`kv_cache_sequences`: how many recent sequences keep their keys/values for the next turn
        of a multi-turn rollout (`toolgym.agents.kv_reuse`); at least the number of episodes in
        flight for full reuse, 0 to encode every prompt from scratch."""
        torch, _ = import_torch_transformers()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.eos_token_ids = _eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.eos_token_ids, default=0)
        # transformers 5 calls the cache argument `cache`; 4.x called it `past_key_values`.
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._keeps_logits = "logits_to_keep" in parameters
        self.policy_version = 0
        self.kv_cache = PrefixKVCache(kv_cache_sequences)
        self._stop_enders_cache: dict[tuple[str, ...], frozenset[int] | None] = {}
        self._cached_weights = self._weights_version()

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        seed: int = 0,
        chat_template: str | None = None,
        threads: int | None = None,
    ) -> HFEngine:
        """An engine over a local checkpoint folder or hub id (see `load_model_and_tokenizer`).

        `threads` sets torch's intra-op thread count for the whole process (None leaves it): on a
        small, shared CPU machine one thread can be ten times faster for small models
        (docs/benchmarks.md, "Token-level rollouts").
        """
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            torch, _ = import_torch_transformers()
            torch.set_num_threads(threads)
        model, tokenizer = load_model_and_tokenizer(model_path, device, dtype, chat_template)
        return cls(model, tokenizer, batch_size=batch_size, seed=seed)

    def update_weights(self, weights: Any) -> None:
        """Load new policy weights (a module or a state dict) and bump `policy_version`.

        Passing the engine's own model (a trainer that samples with the module it optimises) loads
        nothing: the weights are already shared. Any other module's state dict, or a state dict, is
        copied in with `load_state_dict(strict=True)`.
        """
        if weights is not self.model:
            state = weights.state_dict() if hasattr(weights, "state_dict") else weights
            if not isinstance(state, dict):
                raise TypeError(f"update_weights takes a torch module or a state dict, got {type(weights).__name__}")
            self.model.load_state_dict(state, strict=True)
        self.kv_cache.clear()  # keys/values of the old weights
        self.policy_version += 1

    def reseed(self, seed: int) -> None:
        """Restart the sampling stream, so a run with the same seed samples the same tokens."""
        self.generator.manual_seed(seed)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        sampling: SamplingParams,
        max_new_tokens: Sequence[int] | None = None,
    ) -> list[Generation]:
        """Continue each prompt (token ids) by at most its own `max_new_tokens` (default: sampling.max_tokens)."""
        budgets = [sampling.max_tokens] * len(prompts) if max_new_tokens is None else list(max_new_tokens)
        if len(budgets) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(budgets)} max_new_tokens values")
        results: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = [list(p) for p in prompts[start : start + self.batch_size]]
            results.extend(self._generate_batch(chunk, sampling, budgets[start : start + self.batch_size]))
        return results

    def _generate_batch(
        self, prompts: list[list[int]], sampling: SamplingParams, budgets: list[int]
    ) -> list[Generation]:
        torch, _ = import_torch_transformers()
        if any(not prompt for prompt in prompts):
            raise ValueError("every prompt needs at least one token")
        generations = [Generation() for _ in prompts]
        done = [budget <= 0 for budget in budgets]
        if all(done):
            return generations
        weights = self._weights_version()
        if weights != self._cached_weights:  # changed in place (an optimizer step) without update_weights
            self.kv_cache.clear()
            self._cached_weights = weights
        reused = [self.kv_cache.take(prompt) if self.kv_cache.capacity else (0, None) for prompt in prompts]
        template = next((layers for _, layers in reused if layers is not None), None)
        cached_width = max(length for length, _ in reused)
        suffixes = [prompt[length:] for prompt, (length, _) in zip(prompts, reused)]
        width = max(len(s) for s in suffixes)
        batch = len(prompts)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((batch, cached_width + width), dtype=torch.long)
        positions = torch.zeros((batch, width), dtype=torch.long)
        for row, (suffix, (length, _)) in enumerate(zip(suffixes, reused)):
            input_ids[row, width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            attention[row, cached_width - length : cached_width] = 1
            attention[row, cached_width + width - len(suffix) :] = 1
            positions[row, width - len(suffix) :] = torch.arange(length, length + len(suffix))
        # Without reuse in this batch, equal prompts (the members of a GRPO group on their first
        # turn) share one prefill; their cache rows and logits are copied out afterwards.
        share = self.kv_cache.capacity > 0 and template is None
        first_row: dict[tuple[int, ...], int] = {}
        rows = [first_row.setdefault(tuple(p), row) if share else row for row, p in enumerate(prompts)]
        unique = sorted(set(rows))
        self.kv_cache.reused_tokens += sum(length for length, _ in reused)
        self.kv_cache.reused_tokens += sum(len(prompts[row]) for row in range(batch) if rows[row] != row)
        self.kv_cache.encoded_tokens += sum(len(suffixes[row]) for row in unique)
        input_ids, attention, positions = (
            input_ids.to(self.device),
            attention.to(self.device),
            positions.to(self.device),
        )
        stop_window = _stop_window_tokens(sampling.stop)
        stop_enders = self._stop_enders(tuple(sampling.stop))
        cache = self._new_cache()
        if template is not None:
            seed_cache(cache, reused, cached_width, template)
        fed = 0
        with torch.inference_mode():
            if len(unique) < batch:
                picked = torch.tensor(unique, device=self.device)
                logits = self._forward(input_ids[picked], attention[picked], positions[picked], cache)
                expand = torch.tensor([unique.index(row) for row in rows], device=self.device)
                cache.batch_select_indices(expand)
                logits = logits[expand]
            else:
                logits = self._forward(input_ids, attention, positions, cache)
            for _step in range(max(budgets)):
                tokens, logprobs = self._sample(logits, sampling)
                token_list, logprob_list = tokens.tolist(), logprobs.tolist()
                for row, generation in enumerate(generations):
                    if done[row]:
                        continue
                    token = token_list[row]
                    generation.token_ids.append(token)
                    generation.logprobs.append(logprob_list[row])
                    stops = sampling.stop if stop_enders is None or token in stop_enders else ()
                    done[row] = self._finished(generation, token, budgets[row], stops, stop_window)
                if all(done):
                    break
                positions = positions[:, -1:] + 1
                attention = torch.cat([attention, attention.new_ones((batch, 1))], dim=1)
                logits = self._forward(tokens.view(-1, 1), attention, positions, cache)
                fed += 1
        if self.kv_cache.capacity:
            self._keep_caches(cache, prompts, suffixes, reused, generations, cached_width, width, fed)
        return generations

    def _keep_caches(
        self,
        cache: Any,
        prompts: list[list[int]],
        suffixes: list[list[int]],
        reused: list[tuple[int, Any]],
        generations: list[Generation],
        cached_width: int,
        width: int,
        fed: int,
    ) -> None:
        """Store each row's keys/values of the tokens the model processed: prompt + fed generated ids."""
        torch, _ = import_torch_transformers()
        layers = cache_layers(cache)
        if layers is None:
            logger.info("this model's cache is not plain full attention; KV reuse across turns is off")
            self.kv_cache.capacity = 0
            return
        for row, (prompt, suffix, (length, _), generation) in enumerate(zip(prompts, suffixes, reused, generations)):
            kept = min(len(generation.token_ids), fed)
            columns = torch.cat(
                [
                    torch.arange(cached_width - length, cached_width),
                    torch.arange(cached_width + width - len(suffix), cached_width + width + kept),
                ]
            ).to(self.device)
            self.kv_cache.put(prompt + generation.token_ids[:kept], row_layers(layers, row, columns))

    def _stop_enders(self, stops: tuple[str, ...]) -> frozenset[int] | None:
        """Token ids whose text holds the last character of a stop string; None: check every token.

        A stop string completed by a token ends inside that token's text, so a token without any
        stop's last character cannot complete one, and the tail need not be decoded (decoding it
        for every row at every step was a visible share of a small model's decode loop). Stops
        ending in whitespace or a non-ASCII character (which byte-level tokens may split) are
        always checked. Computed once per stop tuple, with one batched decode of the vocabulary.
        """
        if stops not in self._stop_enders_cache:
            enders = {stop[-1] for stop in stops if stop}
            if not enders or any(not char.isascii() or char.isspace() for char in enders):
                self._stop_enders_cache[stops] = None
            else:
                vocabulary = len(self.tokenizer)
                texts = self.tokenizer.batch_decode([[i] for i in range(vocabulary)], skip_special_tokens=False)
                self._stop_enders_cache[stops] = frozenset(
                    i for i, text in enumerate(texts) if any(char in text for char in enders)
                )
        return self._stop_enders_cache[stops]

    def _weights_version(self) -> int:
        """Changes whenever a parameter is modified in place (torch's per-tensor version counters),
        so cached keys/values are never used with weights other than the ones that made them."""
        return sum(parameter._version for parameter in self.model.parameters())

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:  # transformers 4.x
            return DynamicCache()

    def _forward(self, input_ids: Any, attention: Any, positions: Any, cache: Any) -> Any:
        kwargs = {self._cache_argument: cache, "use_cache": True}
        if self._keeps_logits:
            kwargs["logits_to_keep"] = 1
        output = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, **kwargs)
        return output.logits[:, -1, :].float()

    def _sample(self, logits: Any, sampling: SamplingParams) -> tuple[Any, Any]:
        torch, _ = import_torch_transformers()
        if sampling.temperature == 0:
            tokens = logits.argmax(dim=-1)
        else:
            scaled = logits if sampling.temperature == 1.0 else logits / sampling.temperature
            probs = torch.softmax(scaled, dim=-1)
            if sampling.top_k > 0:
                probs = _top_k(probs, sampling.top_k)
            if sampling.top_p < 1.0:
                probs = _nucleus(probs, sampling.top_p)
            tokens = inverse_cdf_sample(probs, self.generator)
        return tokens, token_logprobs(logits, tokens, sampling.temperature)

    def _finished(
        self, generation: Generation, token: int, budget: int, stops: Sequence[str], stop_window: int
    ) -> bool:
        if token in self.eos_token_ids:
            generation.finish_reason = "eos"
            return True
        if stops:
            # A stop completed by this token lies within the last `stop_window` tokens.
            tail = self.tokenizer.decode(generation.token_ids[-stop_window:], skip_special_tokens=False)
            stop = next((s for s in stops if s and s in tail), None)
            if stop is not None:
                generation.finish_reason, generation.stop = "stop", stop
                return True
        if len(generation.token_ids) >= budget:
            generation.finish_reason = "length"
            return True
        return False


def inverse_cdf_sample(weights: Any, generator: Any) -> Any:
    """One index per row of `weights` (non-negative, any scale), drawn with probability `w_i / sum(w)`.

    Inverse-CDF sampling: one uniform `u` per row, scaled to the row's total, and the first index
    whose cumulative weight exceeds it. The cumulative sum is taken in float64, so rounding cannot
    shift measurable mass between tokens even over a 150k-token vocabulary. A zero weight adds
    nothing to the cumulative sum, so its index is never the first to exceed `u` and is never
    drawn. One random number per row instead of one per token: `torch.multinomial`'s (and an
    exponential race's) per-token randoms and the argmax over them were the largest cost of a
    small model's decode step on CPU (docs/benchmarks.md). The same generator state gives the
    same indices.
    """
    import torch

    wide = torch.float32 if weights.device.type == "mps" else torch.float64  # MPS has no float64
    cumulative = weights.cumsum(dim=-1, dtype=wide)
    uniform = torch.rand((weights.shape[0], 1), generator=generator, device=weights.device, dtype=wide)
    total = cumulative[:, -1:].contiguous()
    index = torch.searchsorted(cumulative, uniform * total, right=True)
    # u * total may round up to total (about once in 2^53 draws): take the last index with weight.
    last_weighted = torch.searchsorted(cumulative, total, right=False)
    return torch.minimum(index, last_weighted).squeeze(-1)


def _top_k(probs: Any, k: int) -> Any:
    """Zero out every token outside the `k` most likely ones."""
    if k >= probs.shape[-1]:
        return probs
    threshold = probs.topk(k, dim=-1).values[..., -1:]
    return probs.masked_fill(probs < threshold, 0.0)


def _nucleus(probs: Any, top_p: float) -> Any:
    """Zero out the tail outside the smallest set of tokens whose mass reaches `top_p`."""
    import torch

    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
    sorted_probs = sorted_probs.masked_fill(outside, 0.0)
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


def _stop_window_tokens(stops: Sequence[str]) -> int:
    """Tokens that can hold a stop string: every token carries at least one byte."""
    return max((len(stop.encode("utf-8")) for stop in stops if stop), default=0) + 1


def _eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if not ids:
        logger.warning("the model declares no eos token; every turn runs to max_tokens or a stop string")
    return ids
