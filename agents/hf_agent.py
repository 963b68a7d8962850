"""`hf:<path-or-hub-id>`: a local transformers model as an agent.

Each request's conversation is rendered with the model's chat template (tool schemas go to the
template for native tool calling), generated in batches by `HFEngine` (KV cache, left padding,
stop strings, per-turn token limit), and returned as one assistant turn: text for the text
dialects, or for a native dialect (`tool_format="openai"`) an assistant message whose hermes ``<tool_call>``
blocks became OpenAI `tool_calls`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolgym.dialects import Dialect, dialect_of

from .base import Action, AgentRequest, SamplingParams
from .chat_format import action_from_text, encode, render, template_tools, truncate_at_stop
from .hf_engine import HFEngine


@dataclass
class Completion:
    """One generated assistant turn with its accounting (the model server reports these)."""

    text: str
    """The turn's text, cut right after the first stop string (kept), without the eos token."""
    action: Action
    """What an env receives: `text`, or an assistant message dict with `tool_calls`."""
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """"eos", "stop" (a stop string) or "length" (the per-turn `max_tokens`)."""
    stop: str | None = None


def request_dialect(request: AgentRequest) -> Dialect:
    """The dialect to answer in: the env's, else native calls when tools came with the request."""
    return dialect_of(request.env_info, default="openai" if request.tools else "text")


class HFAgent:
    """A transformers causal LM answering batches of conversations, one assistant turn each.

    Args:
        model_path: a local checkpoint folder or a hub id (hub ids need network access).
        sampling: default sampling for `act`; `complete` may override it per call.
        device, dtype: default CUDA + bfloat16 when a GPU is present, else CPU + float32.
        batch_size: conversations per forward pass; larger batches are split.
        use_chat_template_tools: hand the env's tool schemas to the chat template for native
            (`openai`) tool calling; text dialects carry their own instructions.
        chat_template: a Jinja template replacing the tokenizer's (for base checkpoints).
        seed: the sampling stream's seed (default: `sampling.seed`, else 0).
        engine: an already loaded `HFEngine` to share (e.g. with rollouts) instead of loading.
        threads: torch intra-op threads for the process (None leaves the setting alone).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        sampling: SamplingParams | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        use_chat_template_tools: bool = True,
        chat_template: str | None = None,
        seed: int | None = None,
        engine: HFEngine | None = None,
        threads: int | None = None,
    ):
        if engine is None and model_path is None:
            raise ValueError("HFAgent needs a model_path (local folder or hub id) or an engine")
        self.sampling = sampling or SamplingParams()
        seed = seed if seed is not None else (self.sampling.seed or 0)
        if engine is None:
            engine = HFEngine.load(
                model_path,
                device,
                dtype,
                batch_size=batch_size,
                seed=seed,
                chat_template=chat_template,
                threads=threads,
            )
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.model_path = str(model_path) if model_path is not None else ""
        self.use_chat_template_tools = use_chat_template_tools

    def prompt_ids(self, request: AgentRequest) -> list[int]:
        """The token ids the model is conditioned on for this request (template + generation prompt)."""
        tools = template_tools(self.tokenizer, request.tools, request_dialect(request), self.use_chat_template_tools)
        return encode(self.tokenizer, render(self.tokenizer, request.messages, tools, add_generation_prompt=True))

    def complete(self, requests: list[AgentRequest], sampling: SamplingParams | None = None) -> list[Completion]:
        """Generate one assistant turn per request, with token counts and finish reasons."""
        sampling = sampling or self.sampling
        prompts = [self.prompt_ids(request) for request in requests]
        generations = self.engine.generate(prompts, sampling)
        completions = []
        for request, prompt, generation in zip(requests, prompts, generations):
            ids = generation.token_ids
            if generation.finish_reason == "eos":
                ids = ids[:-1]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if generation.finish_reason == "stop":
                text, _ = truncate_at_stop(text, sampling.stop)
            completions.append(
                Completion(
                    text=text,
                    action=action_from_text(text, request_dialect(request)),
                    prompt_tokens=len(prompt),
                    completion_tokens=len(generation.token_ids),
                    finish_reason=generation.finish_reason,
                    stop=generation.stop,
                )
            )
        return completions

    def act(self, requests: list[AgentRequest]) -> list[Action]:
        return [completion.action for completion in self.complete(requests)]

    def __repr__(self) -> str:
        return f"HFAgent({self.model_path!r}, sampling={self.sampling})"
