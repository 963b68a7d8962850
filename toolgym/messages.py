"""The chat-message contract shared by envs, agents, servers and rollouts.

A message is an OpenAI-format dict (`role`, `content`, optional `tool_calls`, `tool_call_id`,
`name`): envs emit them as observations, agents read them, servers parse them from requests.
Content may be a string, None, or a list of OpenAI content parts; `content_text` is the one place
that turns any of these into the text a model reads, so an env, an agent and the model server
never disagree about what a message says.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]
"""One chat message, OpenAI format."""


class ContentPartError(ValueError):
    """A content part that is not text, where only text is accepted (the model server's strict mode)."""


def content_text(content: Any, *, strict: bool = False) -> str:
    """A message's content as one string: a string as is, None as '', text parts joined in order.

    Lenient (the default, for model output and observations): parts that are not `{"text": str}`
    are skipped and any other value becomes `str(value)`. `strict=True` (for client requests)
    raises ContentPartError on a part that is not `{"type": "text", "text": str}` or on content
    that is neither a string, None nor a list.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            is_text = isinstance(part, dict) and isinstance(part.get("text"), str)
            if strict and not (is_text and part.get("type") == "text"):
                raise ContentPartError("only text parts are supported")
            if is_text:
                texts.append(part["text"])
        return "".join(texts)
    if strict:
        raise ContentPartError(f"content must be a string or a list of text parts, got {type(content).__name__}")
    return str(content)


__all__ = ["ContentPartError", "Message", "content_text"]
