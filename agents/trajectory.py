"""`Trajectory`: one episode at the token level, the record a trainer consumes (and its JSONL form).

Turn numbering has one convention everywhere: **env turns count from 1**. The env's
`info["turn"]` after the first assistant turn is 1, Search-v0's `first_gold_turn` is the 1-based
turn whose tool output first held the gold answer, and `Trajectory.span_of_turn(turn)` /
`observation_of_turn(turn)` take that number. The lists (`turn_spans`, `turn_rewards`,
`turn_infos`, `observations`, …) are plain Python lists indexed from 0, so call sites use the
accessors instead of doing `turn - 1` themselves.

Layouts (`layout`):

- "chat": every env/tool message is a chat-template turn (`<|im_end|>\\n<|im_start|>user …`),
  the layout of native tool calling and of the eval agents.
- "raw": Search-R1's layout. The prompt is the chat-template render of the opening messages plus
  the generation prompt; then the assistant turn stays open: sampled ids, the env's observation
  text appended as raw tokens (`\\n\\n<information>…</information>\\n\\n`, loss mask 0), sampled
  ids, …, and the template's end of turn after the last one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .base import Action

logger = logging.getLogger(__name__)

LAYOUTS = ("chat", "raw")


@dataclass
class Trajectory:
    """One episode at the token level (the contract of DESIGN.md, "Rollouts and trajectories")."""

    messages: list[dict[str, Any]]
    """The conversation; assistant turns are the decoded text of their sampled ids."""
    token_ids: list[int]
    """The whole episode: prompt, generated turns, end-of-turn and env/tool tokens."""
    loss_mask: list[int]
    """1 exactly on tokens the policy sampled, 0 on prompt, template and env/tool tokens."""
    logprobs: list[float]
    """The engine's logprob of each sampled token (`token_logprobs`); 0.0 where `loss_mask` is 0."""
    turn_spans: list[tuple[int, int]]
    """[start, end) token indices of each assistant turn's sampled ids (env turn t is entry t - 1)."""
    reward: float = 0.0
    """The outcome reward: the env's reward on the final step (0 for failed or budget-cut episodes)."""
    info: dict[str, Any] = field(default_factory=dict)
    """The env's final info (metrics, gold, stop_reason)."""
    turn_infos: list[dict[str, Any]] = field(default_factory=list)
    """The env's info after each assistant turn."""
    actions: list[Action] = field(default_factory=list)
    """What the env received each turn (text, or an assistant message with `tool_calls`)."""
    finish_reasons: list[str] = field(default_factory=list)
    """Why each turn's generation stopped: "eos", "stop" or "length"."""
    tools: list[dict[str, Any]] | None = None
    """The tool schemas rendered by the chat template (native tool calling), else None."""
    prompt_length: int = 0
    seed: int | None = None
    task_id: str = ""
    group: int = 0
    """Position of the group in this call's `seeds` (convenience only; key groups by `group_key`)."""
    terminated: bool = False
    truncated: bool = False
    seconds: float = 0.0
    turn_rewards: list[float] = field(default_factory=list)
    """The env's step reward after each assistant turn (the last one is `reward` for finished episodes)."""
    group_key: str = ""
    """Identifies the GRPO group across batches and batch orders: the task id, the episode seed and
    the draw (`toolgym.agents.rollout.group_key`), never a position in a seed list or a batch.
    Members of a group share it; two draws of the same task in one step are two groups."""
    sample_index: int = 0
    """Index of this sample within its group (`sample_offset` + position in the group)."""
    sampling: dict[str, Any] = field(default_factory=dict)
    """How the turns were sampled: temperature, top_p, top_k, max_tokens, stop, seed, policy_version."""
    observation_spans: list[tuple[int, int]] = field(default_factory=list)
    """[start, end) token range of the non-policy tokens after each non-final turn: the end of turn,
    the env/tool messages and the next generation prompt ("chat"), or the raw observation ("raw")."""
    observations: list[list[dict[str, Any]]] = field(default_factory=list)
    """The env messages returned after each turn (empty for the final turn)."""
    failed: bool = False
    """An env/tool exception ended this episode; trainers exclude it from the loss and count it."""
    error: dict[str, Any] | None = None
    """For failed episodes: stage ("reset" or "env"), exception type, message and traceback."""
    layout: str = "chat"
    """"chat" or "raw" (see the module docstring)."""

    @property
    def num_generated_tokens(self) -> int:
        """Tokens the policy sampled (the loss-mask sum)."""
        return sum(self.loss_mask)

    @property
    def response_length(self) -> int:
        """Tokens after the prompt: sampled turns plus everything appended between them."""
        return len(self.token_ids) - self.prompt_length

    @property
    def num_turns(self) -> int:
        return len(self.turn_spans)

    def span_of_turn(self, turn: int) -> tuple[int, int]:
        """The [start, end) token range of env turn `turn` (1-based, as `info["turn"]`)."""
        return self.turn_spans[self._turn_index(turn)]

    def observation_of_turn(self, turn: int) -> list[dict[str, Any]]:
        """The env messages that answered env turn `turn` (1-based); empty for the final turn."""
        index = self._turn_index(turn)
        return self.observations[index] if index < len(self.observations) else []

    def _turn_index(self, turn: int) -> int:
        if isinstance(turn, bool) or not isinstance(turn, int) or not 1 <= turn <= len(self.turn_spans):
            raise IndexError(
                f"turn {turn!r} is not a turn of this trajectory: env turns count from 1 and it has "
                f"{len(self.turn_spans)} (task {self.task_id!r})"
            )
        return turn - 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable record of the trajectory (spans as lists)."""
        record = asdict(self)
        record["turn_spans"] = [list(span) for span in self.turn_spans]
        record["observation_spans"] = [list(span) for span in self.observation_spans]
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Trajectory:
        """The inverse of `to_dict`; records written before a field existed get its default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"unknown trajectory fields {unknown}; expected a subset of {sorted(known)}")
        missing = [
            name for name in ("messages", "token_ids", "loss_mask", "logprobs", "turn_spans") if name not in record
        ]
        if missing:
            raise ValueError(f"a trajectory record needs the fields {missing}")
        values = dict(record)
        values["turn_spans"] = [_span(s) for s in record["turn_spans"]]
        values["observation_spans"] = [_span(s) for s in record.get("observation_spans", [])]
        if values.get("layout", "chat") not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {values['layout']!r}")
        return cls(**values)


def _span(value: Any) -> tuple[int, int]:
    start, end = value
    return int(start), int(end)


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays and other stray objects in env infos, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def write_trajectories(path: str | Path, trajectories: list[Trajectory], append: bool = False) -> Path:
    """Write one JSON object per line (`Trajectory.to_dict`); `append` adds to an existing file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        for trajectory in trajectories:
            handle.write(_json_line(trajectory.to_dict()))
    return path


def _json_line(record: dict[str, Any]) -> str:
    """One JSON line, readable UTF-8 where possible; a lone surrogate (from env text) is written
    escaped (`\\udXXX`) so the file stays valid UTF-8 and reads back to the same string."""
    line = json.dumps(record, ensure_ascii=False, default=_json_default)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, default=_json_default)
    return line + "\n"


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Read a file written by `write_trajectories`; a bad line is an error naming its line number."""
    path = Path(path)
    trajectories = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                trajectories.append(Trajectory.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a trajectory record ({exc})") from exc
    return trajectories
