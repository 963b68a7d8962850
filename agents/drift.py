"""Check a trajectory's token stream against a full chat-template render of its messages.

Multi-turn rollouts build the token stream turn by turn; a trainer or an inference server that
later renders the whole conversation with the chat template must see the same thing, or the
policy is trained on contexts it never meets (../shared/notes/environments.md §5.1). Templates
that strip earlier `<think>` blocks, add a thinking stub to the generation prompt, or drop the
newline between turns all break this. `check_drift` finds the first difference:

1. text: the decoded stream against the rendered text; any difference is drift.
2. tokens: where the text agrees, the non-policy spans (prompt, end-of-turn, env/tool messages)
   must be exactly the tokens the full render tokenizes to. Sampled turns are exempt: a policy
   may sample a non-canonical tokenization of its own text, and token-in/token-out keeps what it
   sampled; those turns are counted in `retokenized_turns` for information.

Raw-layout trajectories (Search-R1's, `toolgym.agents.token_stream`) are checked against the raw
concatenation instead: the chat-template render of the opening messages with the generation
prompt, then each turn's text, its observation text as is, and the template's end of turn after
the last turn. Each non-policy piece must be the tokenization of its own text, as Search-R1
tokenizes each observation on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chat_format import closing_text, encode, render
from .token_stream import observation_text
from .trajectory import Trajectory

CONTEXT_CHARS = 60


@dataclass
class DriftReport:
    """The outcome of `check_drift`; `str(report)` explains the first mismatch."""

    ok: bool
    kind: str = "none"
    """"none", "text" (the stream decodes to different text) or "tokens" (same text, other ids)."""
    token_index: int | None = None
    """Index in `trajectory.token_ids` of the first token that differs."""
    char_index: int | None = None
    """Character offset of the first difference in the rendered text."""
    in_generated_span: bool = False
    expected: str = ""
    """The full render around the mismatch."""
    actual: str = ""
    """The token stream, decoded, around the mismatch."""
    retokenized_turns: int = 0
    message: str = "no drift: the token stream equals the full chat-template render"

    def __str__(self) -> str:
        return self.message

    def raise_if_drift(self) -> None:
        """Raise `AssertionError` with the report's message when the stream drifted."""
        if not self.ok:
            raise AssertionError(self.message)


def check_drift(trajectory: Trajectory, tokenizer: Any) -> DriftReport:
    """Compare the trajectory's per-turn token stream with a full render of its messages
    (for the raw layout: with the raw concatenation of prompt, turns and observations)."""
    segments = _segments(trajectory)
    pieces = [tokenizer.decode(trajectory.token_ids[a:b], skip_special_tokens=False) for a, b, _ in segments]
    stream_text = "".join(pieces)
    if trajectory.layout == "raw":
        full_text, expected_pieces = _raw_reference(trajectory, tokenizer)
    else:
        full_text = render(tokenizer, trajectory.messages, trajectory.tools, add_generation_prompt=False)
    if stream_text != full_text:
        return _text_drift(trajectory, tokenizer, segments, pieces, stream_text, full_text)
    if trajectory.layout == "raw":
        return _raw_token_drift(trajectory, segments, pieces, expected_pieces, tokenizer, full_text, stream_text)
    encoded = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    full_ids, offsets = list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]
    starts = {start: i for i, (start, _) in reversed(list(enumerate(offsets)))}
    char_start, retokenized = 0, 0
    for (first, last, generated), piece in zip(segments, pieces):
        char_end = char_start + len(piece)
        i, j = starts.get(char_start), starts.get(char_end, len(full_ids) if char_end == len(full_text) else None)
        expected_ids = full_ids[i:j] if i is not None and j is not None else None
        actual_ids = trajectory.token_ids[first:last]
        if expected_ids != actual_ids:
            if generated:
                retokenized += 1
            else:
                offset = _first_difference(actual_ids, expected_ids or [])
                return _report(
                    "tokens",
                    first + offset,
                    char_start,
                    False,
                    full_text,
                    stream_text,
                    retokenized,
                    f"the non-policy tokens {actual_ids[offset : offset + 8]} differ from the full render's "
                    f"{(expected_ids or [])[offset : offset + 8]} although the text is the same",
                )
        char_start = char_end
    return DriftReport(
        ok=True,
        retokenized_turns=retokenized,
        message="no drift: the token stream equals the full chat-template render"
        + (f" ({retokenized} sampled turns use a non-canonical tokenization of their text)" if retokenized else ""),
    )


def _raw_reference(trajectory: Trajectory, tokenizer: Any) -> tuple[str, list[list[int]]]:
    """The raw layout's reference text, and the ids of each non-policy piece in stream order."""
    first_turn = next((i for i, m in enumerate(trajectory.messages) if m.get("role") == "assistant"), None)
    opening = trajectory.messages if first_turn is None else trajectory.messages[:first_turn]
    prompt = render(tokenizer, opening, trajectory.tools, add_generation_prompt=True)
    closing = closing_text(tokenizer, trajectory.tools)
    closing_ids = encode(tokenizer, closing)
    eos_text = tokenizer.decode(closing_ids[:1], skip_special_tokens=False) if closing_ids else ""
    turns = [m for m in trajectory.messages if m.get("role") == "assistant"]
    text, pieces = prompt, [encode(tokenizer, prompt)]
    for index, message in enumerate(turns):
        ended_on_eos = _ended_on_eos(trajectory, index, closing_ids)
        text += str(message.get("content") or "")
        if index < len(trajectory.observations):
            observation = observation_text(trajectory.observations[index])
            text += (eos_text if ended_on_eos else "") + observation
            pieces.append(encode(tokenizer, observation))
        else:
            text += closing
            pieces.append(closing_ids[1:] if ended_on_eos else closing_ids)
    return text, pieces


def _ended_on_eos(trajectory: Trajectory, turn: int, closing_ids: list[int]) -> bool:
    if turn >= len(trajectory.turn_spans) or not closing_ids:
        return False
    start, end = trajectory.turn_spans[turn]
    return trajectory.finish_reasons[turn] == "eos" and end > start and trajectory.token_ids[end - 1] == closing_ids[0]


def _raw_token_drift(
    trajectory: Trajectory,
    segments: list[tuple[int, int, bool]],
    pieces: list[str],
    expected_pieces: list[list[int]],
    tokenizer: Any,
    full_text: str,
    stream_text: str,
) -> DriftReport:
    """Same text: each non-policy segment must be its own piece's tokenization."""
    expected = iter([ids for ids in expected_pieces if ids])  # empty pieces make no segment
    char_start = 0
    for (first, last, generated), piece in zip(segments, pieces):
        if not generated:
            actual_ids, expected_ids = trajectory.token_ids[first:last], next(expected, [])
            if actual_ids != expected_ids:
                offset = _first_difference(actual_ids, expected_ids)
                return _report(
                    "tokens",
                    first + offset,
                    char_start,
                    False,
                    full_text,
                    stream_text,
                    0,
                    f"the non-policy tokens {actual_ids[offset : offset + 8]} differ from the raw layout's "
                    f"{expected_ids[offset : offset + 8]} although the text is the same",
                )
        char_start += len(piece)
    return DriftReport(ok=True, message="no drift: the token stream equals the raw concatenation (Search-R1 layout)")


def _segments(trajectory: Trajectory) -> list[tuple[int, int, bool]]:
    """[start, end) spans covering the stream, alternating non-policy and sampled tokens."""
    segments, position = [], 0
    for start, end in trajectory.turn_spans:
        if start > position:
            segments.append((position, start, False))
        if end > start:
            segments.append((start, end, True))
        position = end
    if position < len(trajectory.token_ids):
        segments.append((position, len(trajectory.token_ids), False))
    return segments


def _text_drift(
    trajectory: Trajectory,
    tokenizer: Any,
    segments: list[tuple[int, int, bool]],
    pieces: list[str],
    stream_text: str,
    full_text: str,
) -> DriftReport:
    char = _first_difference(stream_text, full_text)
    token_index, generated, seen = len(trajectory.token_ids), False, 0
    for (first, last, is_generated), piece in zip(segments, pieces):
        if char < seen + len(piece) or (first, last, is_generated) == segments[-1]:
            token_index = first + _token_at(tokenizer, trajectory.token_ids[first:last], char - seen)
            generated = is_generated
            break
        seen += len(piece)
    return _report(
        "text",
        token_index,
        char,
        generated,
        full_text,
        stream_text,
        0,
        "the token stream decodes to different text than the full chat-template render",
    )


def _report(
    kind: str,
    token_index: int,
    char: int,
    generated: bool,
    full_text: str,
    stream_text: str,
    retokenized: int,
    what: str,
) -> DriftReport:
    low = max(0, char - CONTEXT_CHARS)
    expected, actual = full_text[low : char + CONTEXT_CHARS], stream_text[low : char + CONTEXT_CHARS]
    where = "a sampled turn" if generated else "a prompt, end-of-turn or env/tool span"
    message = (
        f"chat-template drift at token {token_index} (character {char}, in {where}): {what}.\n"
        f"  full render : …{expected!r}…\n"
        f"  token stream: …{actual!r}…\n"
        "A trainer or server that renders the whole conversation would see other tokens than the rollout; "
        "use a prefix-preserving template (no stripping of earlier turns, no generation-prompt stubs)."
    )
    return DriftReport(
        ok=False,
        kind=kind,
        token_index=token_index,
        char_index=char,
        in_generated_span=generated,
        expected=expected,
        actual=actual,
        retokenized_turns=retokenized,
        message=message,
    )


def _first_difference(a: Any, b: Any) -> int:
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return min(len(a), len(b))


def _token_at(tokenizer: Any, ids: list[int], char: int) -> int:
    """The index in `ids` of the token whose decoded text covers character `char` (binary search)."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(tokenizer.decode(ids[: middle + 1], skip_special_tokens=False)) <= char:
            low = middle + 1
        else:
            high = middle
    return min(low, max(len(ids) - 1, 0))
