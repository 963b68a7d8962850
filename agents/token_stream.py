"""How a rollout lays out the tokens of one episode: the "chat" and "raw" layouts.

Both layouts start with the chat-template render of the env's opening messages plus the
generation prompt, append each turn's sampled ids as they came from the engine (loss mask 1), and
differ in what goes between turns (loss mask 0):

- "chat" (native tool calling, hermes, python, and the eval agents): the rest of the template's end
  of turn, then the env/tool messages rendered as chat turns plus the next generation prompt (the
  fixed-base suffix of `toolgym.agents.chat_format.suffix_text`).
- "raw" (Search-R1, `search_r1/llm_agent/generation.py`): the env's observation text itself,
  tokenized on its own and appended inside the still-open assistant turn (Search-R1's
  `_update_rolling_state` concatenates `responses` and `next_obs_ids`), e.g.
  `\\n\\n<information>Doc 1(Title: …) …</information>\\n\\n`. A checkpoint trained by Search-R1
  sees exactly this stream. The template's end of turn follows the last turn only.

A turn that ended on the template's own end-of-turn token (eos) keeps that sampled token in both
layouts (token-in/token-out: the trainer scores what was sampled); Search-R1 itself decodes with
`skip_special_tokens=True` and would drop it.
"""

from __future__ import annotations

from typing import Any

from .chat_format import closing_text, content_text, encode, render, suffix_text
from .engine import Generation
from .trajectory import LAYOUTS, Trajectory

RAW_TOOL_FORMATS = ("search_r1",)
"""Tool formats whose reference implementation appends observations as raw tokens."""


def resolve_layout(layout: str, tool_format: str) -> str:
    """`layout` ("auto", "chat" or "raw") for an env speaking `tool_format`."""
    if layout == "auto":
        return "raw" if tool_format in RAW_TOOL_FORMATS else "chat"
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto', 'chat' or 'raw', got {layout!r}")
    return layout


def observation_text(messages: list[dict[str, Any]]) -> str:
    """The raw-layout text of an env observation: its messages' contents, concatenated as they are."""
    return "".join(content_text(message.get("content")) for message in messages)


class TokenStream:
    """Token pieces of one tokenizer and tool set, cached: end of turn, suffixes, raw observations."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._closing: dict[bool, list[int]] = {}

    def closing_ids(self, tools: list[dict[str, Any]] | None) -> list[int]:
        """The template's end of an assistant turn (ChatML: `<|im_end|>\\n`)."""
        key = bool(tools)
        if key not in self._closing:
            self._closing[key] = encode(self.tokenizer, closing_text(self.tokenizer, tools))
        return self._closing[key]

    def prompt_ids(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        return encode(self.tokenizer, render(self.tokenizer, messages, tools, add_generation_prompt=True))

    def between_turns(self, trajectory: Trajectory, observation: list[dict[str, Any]], ended_on_eos: bool) -> list[int]:
        """The non-policy ids after a non-final turn: (rest of) end of turn + env messages + generation prompt,
        or, in the raw layout, the observation text alone."""
        if trajectory.layout == "raw":
            return encode(self.tokenizer, observation_text(observation))
        closing = self.closing_ids(trajectory.tools)
        suffix = encode(self.tokenizer, suffix_text(self.tokenizer, observation, trajectory.tools))
        return (closing[1:] if ended_on_eos else closing) + suffix

    def final_closing(self, trajectory: Trajectory, ended_on_eos: bool) -> list[int]:
        """The non-policy ids after the final turn: the (rest of the) template's end of turn."""
        closing = self.closing_ids(trajectory.tools)
        return closing[1:] if ended_on_eos else closing

    def ends_turn(self, trajectory: Trajectory, generation: Generation) -> bool:
        """Whether the generation's last token is the template's own end-of-turn token."""
        closing = self.closing_ids(trajectory.tools)
        return (
            generation.finish_reason == "eos"
            and bool(closing)
            and bool(generation.token_ids)
            and generation.token_ids[-1] == closing[0]
        )

    def room(self, trajectory: Trajectory, max_episode_tokens: int) -> int:
        """New tokens a turn may sample while the template's end of turn still fits in the budget."""
        return max_episode_tokens - len(trajectory.token_ids) - len(self.closing_ids(trajectory.tools))


def append_masked(trajectory: Trajectory, ids: list[int]) -> None:
    """Append non-policy ids: loss mask 0, logprob 0.0."""
    trajectory.token_ids.extend(ids)
    trajectory.loss_mask.extend([0] * len(ids))
    trajectory.logprobs.extend([0.0] * len(ids))


def append_sampled(trajectory: Trajectory, generation: Generation) -> None:
    """Append a turn's sampled ids (loss mask 1, engine logprobs) and record its span and finish reason."""
    start = len(trajectory.token_ids)
    trajectory.token_ids.extend(generation.token_ids)
    trajectory.loss_mask.extend([1] * len(generation.token_ids))
    trajectory.logprobs.extend(generation.logprobs)
    trajectory.turn_spans.append((start, len(trajectory.token_ids)))
    trajectory.finish_reasons.append(generation.finish_reason)
