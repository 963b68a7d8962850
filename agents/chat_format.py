"""Chat-template rendering, stop strings, and turning model text into an env action.

Shared by every model-backed agent (HF, vLLM, the local model server) and by token-level
rollouts, so an evaluation and a training rollout show the model exactly the same prompt.

Two template probes make token-in/token-out rollouts possible with any chat template:

- `closing_text`: what the template writes after an assistant message's content (ChatML:
  ``<|im_end|>\\n``). A generation that stops on eos produced the first token of it; the rest
  (or all of it, after a stop string or the token limit) is appended as non-policy tokens.
- `suffix_text`: the fixed-base method. New env/tool messages are rendered after a fixed,
  already-rendered base conversation and the text past the base is the suffix, including the next
  generation prompt. Nothing earlier is re-rendered, so earlier tokens never change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from toolgym.dialects import Dialect, get_dialect
from toolgym.messages import Message, content_text
from toolgym.tool_calls import MAX_CALLS_PER_TURN, MAX_PARSE_CHARS, parse_hermes

_TOOL_CALL_BLOCK_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_CONTENT_MARKER = "\u2063toolgym-content\u2063"  # invisible separator: no template alters it
_BASE_CONVERSATION: list[Message] = [
    {"role": "user", "content": "base"},
    {"role": "assistant", "content": "base"},
]


class ChatTemplateError(ValueError):
    """The tokenizer's chat template cannot be used the way an agent or rollout needs."""


def normalize_messages(messages: Sequence[Message]) -> list[Message]:
    """Copies that any HF chat template renders: string contents, tool-call arguments as dicts.

    OpenAI sends `arguments` as a JSON string; Qwen-style templates apply `tojson` to them, which
    would encode the string a second time, so parsable arguments are decoded once here.
    """
    normalized = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"each message must be a dict with a string 'role', got {message!r:.200}")
        copy = dict(message)
        copy["content"] = content_text(message.get("content"))
        calls = message.get("tool_calls")
        if calls:
            copy["tool_calls"] = [_normalize_call(call) for call in calls if isinstance(call, dict)]
        normalized.append(copy)
    return normalized


def _normalize_call(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            function["arguments"] = decoded
    return {**call, "function": function}


def template_supports_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template reads a `tools` variable (Qwen2.5, Llama 3.1, …)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default one renders conversations
        template = template.get("default") or next(iter(template.values()), None)
    return isinstance(template, str) and "tools" in template


def template_tools(
    tokenizer: Any, tools: list[dict[str, Any]] | None, dialect: Dialect | str, enabled: bool = True
) -> Any:
    """The `tools` to hand the chat template: only for native (`openai`) tool calling.

    Text dialects (hermes, python, search_r1) already carry their instructions in the env's
    system prompt; rendering the schemas again would show the model two different instructions.
    """
    if not enabled or not get_dialect(dialect).native or not tools or not template_supports_tools(tokenizer):
        return None
    return tools


def render(
    tokenizer: Any,
    messages: Sequence[Message],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
) -> str:
    """Render a conversation with the tokenizer's chat template, as text."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ChatTemplateError(
            f"tokenizer {name!r} has no chat template; pass chat_template=<jinja string> "
            "(e.g. toolgym.agents.tiny.TINY_CHAT_TEMPLATE for ChatML) or use an instruct checkpoint"
        )
    return tokenizer.apply_chat_template(
        normalize_messages(messages), tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of already-rendered text (the template wrote any special tokens itself)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def closing_text(tokenizer: Any, tools: list[dict[str, Any]] | None = None) -> str:
    """What the template writes after an assistant message's content (ChatML: `<|im_end|>\\n`)."""
    text = render(
        tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": _CONTENT_MARKER}], tools
    )
    position = text.rfind(_CONTENT_MARKER)
    if position < 0:
        raise ChatTemplateError("the chat template drops assistant content; it cannot be used for rollouts")
    return text[position + len(_CONTENT_MARKER) :]


def suffix_text(tokenizer: Any, new_messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> str:
    """The text that `new_messages` plus the next generation prompt add after an assistant turn.

    Fixed-base method: render a fixed base conversation ending in an assistant turn, then the
    base plus the new messages; the suffix is whatever follows the base's own rendering.
    """
    base = render(tokenizer, _BASE_CONVERSATION, tools)
    full = render(tokenizer, [*_BASE_CONVERSATION, *new_messages], tools, add_generation_prompt=True)
    if not full.startswith(base):
        raise ChatTemplateError(
            "the chat template is not prefix-preserving: rendering more messages changed the text of earlier "
            f"ones (base ends {base[-60:]!r}, extended render has {full[len(base) - 60 : len(base) + 20]!r}); "
            "use a training-safe template"
        )
    return full[len(base) :]


def find_stop(text: str, stops: Sequence[str], start: int = 0) -> tuple[int, str | None]:
    """The end index of the earliest stop string in `text[start:]` and the stop, or (-1, None)."""
    best_begin, best_stop = -1, None
    for stop in stops:
        if not stop:
            continue
        begin = text.find(stop, start)
        if begin >= 0 and (best_begin < 0 or begin < best_begin):
            best_begin, best_stop = begin, stop
    if best_stop is None:
        return -1, None
    return best_begin + len(best_stop), best_stop


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """Cut `text` right after its first stop string (which is kept); the stop, or None."""
    end, stop = find_stop(text, stops)
    return (text, None) if stop is None else (text[:end], stop)


def action_from_text(text: str, dialect: Dialect | str) -> str | dict[str, Any]:
    """The env action for generated text: the text itself, or for native tool calling an
    assistant message whose hermes ``<tool_call>`` blocks became OpenAI `tool_calls`.

    A block that does not parse still becomes a call (name "", the raw body as arguments), so the
    env answers it with a tool error the model can learn from, instead of reading it as an answer.
    """
    if not get_dialect(dialect).native:
        return text
    scanned = text[:MAX_PARSE_CHARS]
    calls: list[dict[str, Any]] = []
    for match in _TOOL_CALL_BLOCK_RE.finditer(scanned):
        if len(calls) >= MAX_CALLS_PER_TURN:
            break
        parsed = parse_hermes(match.group(0))
        call_id = f"call_{len(calls)}"
        if parsed.tool_calls:
            call = parsed.tool_calls[0]
            function = {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}
        else:
            function = {"name": "", "arguments": match.group(1).strip()}
        calls.append({"id": call_id, "type": "function", "function": function})
    if not calls:
        return {"role": "assistant", "content": text}
    content = _TOOL_CALL_BLOCK_RE.sub("", scanned).strip()
    return {"role": "assistant", "content": content, "tool_calls": calls}
