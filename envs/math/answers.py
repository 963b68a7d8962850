"""Final-answer extraction: find what a model committed to as its answer in free text.

Two conventions are recognised: the last ``\\boxed{...}`` (also ``\\fbox{...}`` and the brace-less
``\\boxed 5``), as in MATH solutions, and ``<answer>...</answer>`` tags, as in R1-style prompts. A
``<answer>`` block wins when present (its content is unwrapped if it is itself boxed). Braces are
matched with one linear scan, so megabytes of unbalanced ``\\boxed{`` cost milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolgym.tool_calls import last_answer_tag

# Boxed answers sit at the end of a solution, so only the tail of very long texts is scanned.
MAX_SCAN_CHARS = 200_000

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_RE = re.compile(r"\\[{}]|[{}]")  # escaped braces are literal characters, not groups
_BARE_ARGUMENT_RE = re.compile(r"\s*([^\s${}]+)")


@dataclass(frozen=True)
class ExtractedAnswer:
    """The answer a text commits to; `found` is False when it has no answer markup at all."""

    text: str | None
    found: bool
    source: str | None = None  # "boxed" or "answer_tag"


NO_ANSWER = ExtractedAnswer(text=None, found=False)


def matching_braces(text: str) -> dict[int, int]:
    """Map the index of each unescaped '{' to the index of its matching '}' (unclosed ones absent)."""
    closing: dict[int, int] = {}
    open_stack: list[int] = []
    for match in _BRACE_RE.finditer(text):
        token = match.group()
        if token == "{":
            open_stack.append(match.start())
        elif token == "}" and open_stack:
            closing[open_stack.pop()] = match.start()
    return closing


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed x`` in `text`, or None."""
    text = text[-MAX_SCAN_CHARS:]
    starts = [m.end() for m in _BOX_RE.finditer(text)]
    if not starts:
        return None
    closing = matching_braces(text)
    for start in reversed(starts):  # an unclosed last box (a cut-off generation) falls back to the one before
        brace = start
        while brace < len(text) and text[brace] in " \t\n":
            brace += 1
        if brace < len(text) and text[brace] == "{":
            end = closing.get(brace)
            if end is not None:
                return text[brace + 1 : end].strip()
            continue
        bare = _BARE_ARGUMENT_RE.match(text, start)
        if bare is not None:
            return bare.group(1).rstrip(".,;")
    return None


def extract_answer(text: str) -> ExtractedAnswer:
    """The final answer of a model turn: an ``<answer>`` block if any, else the last boxed expression."""
    if not isinstance(text, str):
        return NO_ANSWER
    tagged = last_answer_tag(text)
    if tagged is not None:
        inner = last_boxed(tagged)
        return ExtractedAnswer(text=inner if inner is not None else tagged, found=True, source="answer_tag")
    boxed = last_boxed(text)
    if boxed is not None:
        return ExtractedAnswer(text=boxed, found=True, source="boxed")
    return NO_ANSWER
