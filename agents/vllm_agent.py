"""`vllm:<model>`: vLLM's offline engine as an agent, and as a token engine for rollouts.

GPU only. vLLM is imported when an agent or engine is built, never at module import, so the rest
of ToolGym works without it. Prompts are rendered by the same helpers as `HFAgent`
(`toolgym.agents.chat_format`), so both backends show a model the same text.

Logprobs: the engine is started with `logprobs_mode="processed_logprobs"`, i.e. after temperature
(and vLLM's top-p/top-k masking), which matches `HFEngine`'s `log_softmax(logits / T)` whenever
top_p = 1. vLLM seeds each request separately, so the members of a GRPO group get distinct seeds
(`sampling.seed + request number`) or they would sample the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.extras import require

from .base import Action, AgentRequest, SamplingParams
from .chat_format import action_from_text, encode, render, template_tools, truncate_at_stop
from .engine import Generation
from .hf_agent import Completion, request_dialect


def import_vllm() -> Any:
    """The vllm module, or an ImportError that says how to install it."""
    return require("vllm", "gpu", "the vllm agent")


def vllm_sampling_params(sampling: SamplingParams, max_tokens: int | None = None, seed: int | None = None) -> Any:
    """ToolGym's `SamplingParams` as vLLM's, with the sampled token's logprob requested."""
    vllm = import_vllm()
    return vllm.SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k if sampling.top_k > 0 else -1,
        max_tokens=max_tokens if max_tokens is not None else sampling.max_tokens,
        stop=list(sampling.stop) or None,
        include_stop_str_in_output=True,  # the env must see the closing tag
        logprobs=0,  # 0 = only the sampled token's logprob
        seed=seed if seed is not None else sampling.seed,
        skip_special_tokens=False,
    )


class VLLMEngine:
    """Token ids in, sampled ids and logprobs out, on vLLM's offline `LLM` (same interface as `HFEngine`)."""

    def __init__(self, model: str | Path | Any, seed: int = 0, **engine_kwargs: Any):
        vllm = import_vllm()
        if isinstance(model, (str, Path)):
            engine_kwargs.setdefault("logprobs_mode", "processed_logprobs")
            model = vllm.LLM(model=str(model), seed=seed, **engine_kwargs)
        self.llm = model
        self.tokenizer = model.get_tokenizer()
        self._seed = seed
        self._requests = 0
        self.policy_version = 0

    def reseed(self, seed: int) -> None:
        """Restart the per-request seed sequence, so equal seeds sample equal tokens."""
        self._seed, self._requests = seed, 0

    def update_weights(self, weights: Any) -> None:
        """Load new weights (a torch module or a state dict with HF parameter names) into vLLM.

        Uses the model's own `load_weights` (which maps HF names onto vLLM's fused layers): directly
        on the in-process driver model when vLLM exposes it (V0, or V1 with
        `VLLM_ENABLE_V1_MULTIPROCESSING=0`), else through `LLM.collective_rpc` on every worker, which
        pickles CPU copies of the tensors. Tensor parallelism above 1 is not supported here (each
        worker would receive full tensors). The prefix cache is reset, since its blocks hold keys
        and values of the old weights. GPU-only and untested in ToolGym's CPU test suite.
        """
        state = weights.state_dict() if hasattr(weights, "state_dict") else weights
        if not isinstance(state, dict):
            raise TypeError(f"update_weights takes a torch module or a state dict, got {type(weights).__name__}")
        model = _driver_model(self.llm)
        if model is not None:
            model.load_weights(list(state.items()))
        else:
            cpu_items = [(name, tensor.detach().cpu()) for name, tensor in state.items()]
            self.llm.collective_rpc(_load_weights_on_worker, args=(cpu_items,))
        self.llm.reset_prefix_cache()
        self.policy_version += 1

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams, max_new_tokens: Sequence[int] | None = None
    ) -> list[Generation]:
        from vllm.inputs import TokensPrompt

        budgets = [sampling.max_tokens] * len(prompts) if max_new_tokens is None else list(max_new_tokens)
        results: list[Generation | None] = [Generation() if budget < 1 else None for budget in budgets]
        todo = [i for i, result in enumerate(results) if result is None]
        params = []
        for i in todo:
            seed = None if sampling.temperature == 0 else self._seed + self._requests
            self._requests += 1
            params.append(vllm_sampling_params(sampling, budgets[i], seed))
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=list(prompts[i])) for i in todo], params, use_tqdm=False
        )
        for i, output in zip(todo, outputs):
            results[i] = _generation(output.outputs[0])
        return [result for result in results if result is not None]


def _driver_model(llm: Any) -> Any:
    """The in-process model of vLLM's driver worker, or None when the engine runs out of process."""
    executor = getattr(getattr(llm, "llm_engine", None), "model_executor", None)
    worker = getattr(executor, "driver_worker", None)
    worker = getattr(worker, "worker", worker)  # V1 wraps the worker
    runner = getattr(worker, "model_runner", None)
    model = getattr(runner, "model", None)
    return model if hasattr(model, "load_weights") else None


def _load_weights_on_worker(worker: Any, items: list[tuple[str, Any]]) -> None:
    """Run on each vLLM worker by `collective_rpc`: load HF-named tensors into its model."""
    device = next(worker.model_runner.model.parameters()).device
    worker.model_runner.model.load_weights([(name, tensor.to(device)) for name, tensor in items])


def _generation(completion: Any) -> Generation:
    ids = list(completion.token_ids)
    logprobs = [entry[token].logprob for token, entry in zip(ids, completion.logprobs or [])]
    if len(logprobs) != len(ids):
        raise RuntimeError(f"vLLM returned {len(logprobs)} logprobs for {len(ids)} tokens; request logprobs=0")
    if completion.finish_reason == "length":
        return Generation(ids, logprobs, "length")
    if isinstance(completion.stop_reason, str):
        return Generation(ids, logprobs, "stop", completion.stop_reason)
    return Generation(ids, logprobs, "eos")


class VLLMAgent:
    """A model served by vLLM's offline engine, answering one assistant turn per conversation."""

    def __init__(
        self,
        model: str | Path,
        sampling: SamplingParams | None = None,
        use_chat_template_tools: bool = True,
        seed: int | None = None,
        **engine_kwargs: Any,
    ):
        self.sampling = sampling or SamplingParams()
        self.engine = VLLMEngine(model, seed=seed if seed is not None else (self.sampling.seed or 0), **engine_kwargs)
        self.tokenizer = self.engine.tokenizer
        self.model = str(model)
        self.use_chat_template_tools = use_chat_template_tools

    def complete(self, requests: list[AgentRequest], sampling: SamplingParams | None = None) -> list[Completion]:
        sampling = sampling or self.sampling
        prompts = []
        for request in requests:
            tools = template_tools(
                self.tokenizer, request.tools, request_dialect(request), self.use_chat_template_tools
            )
            prompts.append(
                encode(self.tokenizer, render(self.tokenizer, request.messages, tools, add_generation_prompt=True))
            )
        completions = []
        for request, prompt, generation in zip(requests, prompts, self.engine.generate(prompts, sampling)):
            ids = generation.token_ids[:-1] if generation.finish_reason == "eos" else generation.token_ids
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if generation.finish_reason == "stop":
                text, _ = truncate_at_stop(text, sampling.stop)
            action = action_from_text(text, request_dialect(request))
            completions.append(
                Completion(
                    text, action, len(prompt), len(generation.token_ids), generation.finish_reason, generation.stop
                )
            )
        return completions

    def act(self, requests: list[AgentRequest]) -> list[Action]:
        return [completion.action for completion in self.complete(requests)]
