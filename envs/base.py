"""The shared episode logic of ToolGym's chat environments.

`ChatEnv` owns what every env does the same way: the spaces, seeding and task selection, turn
counting against `max_turns`, API-misuse errors, the `info` keys of the design contract, and the
bounds on every observation (`observation_limits`: tool calls per turn, characters per observation).
A concrete env supplies three things: how a data row becomes a task (`load_task`), the opening
messages (`opening_messages`), and what one assistant turn does (`take_turn`).
"""

from __future__ import annotations

import numbers
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym

from toolgym.dialects import TOOL_FORMATS, Dialect, get_dialect
from toolgym.json_values import brief
from toolgym.messages import Message
from toolgym.spaces import AssistantTurn, MessageList
from toolgym.tool_calls import ParsedTurn

from .observation_limits import (
    DEFAULT_MAX_OBSERVATION_CHARS,
    DEFAULT_MAX_TOOL_CALLS_PER_TURN,
    bound_observation,
    check_limits,
    limit_calls,
    observation_space_for,
)
from .rows import TaskRowError
from .tasks import TaskRow, TaskSource, as_task_source

TaskT = TypeVar("TaskT")
RESET_OPTIONS = ("index", "task")  # what `reset(options=...)` accepts; anything else is a typo to report


@dataclass
class TurnResult:
    """What one assistant turn produced, before the base class applies the turn budget."""

    messages: list[Message]
    reward: float = 0.0
    terminated: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class EpisodeError(RuntimeError):
    """API misuse: stepping before `reset()` or after the episode ended."""


class ChatEnv(gym.Env[list, Any], Generic[TaskT]):
    """A multi-turn chat environment over a task source. Subclasses implement the task logic."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    env_id: str = ""  # the registered id, reported in reset info so agents and reports can dispatch on it

    def __init__(
        self,
        tasks: TaskSource | list[TaskRow],
        *,
        max_turns: int,
        tool_format: str,
        allowed_formats: tuple[str, ...] = TOOL_FORMATS,
        render_mode: str | None = None,
        max_tool_calls_per_turn: int = DEFAULT_MAX_TOOL_CALLS_PER_TURN,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
    ):
        check_count("max_turns", max_turns)
        if tool_format not in allowed_formats:
            raise ValueError(f"tool_format {tool_format!r} is not supported here; choose one of {allowed_formats}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'ansi' or None")
        check_limits(max_tool_calls_per_turn, max_observation_chars)
        self.max_tool_calls_per_turn = max_tool_calls_per_turn
        self.max_observation_chars = max_observation_chars
        self.tasks = as_task_source(tasks)
        self.max_turns = max_turns
        self.tool_format = tool_format
        self.dialect: Dialect = get_dialect(tool_format)
        """How this env reads and writes tool calls (`toolgym.dialects.dialect_of(env)` finds it)."""
        self.render_mode = render_mode
        self.observation_space: MessageList = observation_space_for(max_tool_calls_per_turn, max_observation_chars)
        self.action_space = AssistantTurn()
        self.task: TaskT | None = None
        self.task_id: str = ""
        self.turn = 0
        self.ended = False
        self.transcript: list[Message] = []

    # --- what a concrete env provides ------------------------------------------------------------

    @abstractmethod
    def load_task(self, row: TaskRow, index: int | None) -> TaskT:
        """Turn a data row (file format of the env's datasets) into the env's task object."""

    @abstractmethod
    def task_identifier(self, task: TaskT) -> str:
        """A stable id for the task (the dataset's id when it has one)."""

    @abstractmethod
    def opening_messages(self, task: TaskT) -> list[Message]:
        """The system and user messages that start an episode."""

    @abstractmethod
    def take_turn(self, action: Any) -> TurnResult:
        """Apply one assistant turn. Must never raise on any `str` or `dict` action."""

    @abstractmethod
    def unanswered_result(self) -> tuple[float, dict[str, Any]]:
        """Reward and final info when the turn budget runs out without a final answer."""

    def reset_info(self, task: TaskT) -> dict[str, Any]:
        """Extra keys for the `reset` info (tool schemas, the task row for scripted baselines)."""
        return {}

    # --- gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[list[Message], dict]:
        super().reset(seed=seed)
        options = self._checked_options(options)
        if "task" in options:
            row, index = options["task"], None
        else:
            index = options.get("index")
            if index is None:
                index = int(self.np_random.integers(len(self.tasks)))
            index = int(index)  # numpy integers (e.g. from a sampler) select like Python ints
            if not 0 <= index < len(self.tasks):
                raise IndexError(f"options['index'] must be in [0, {len(self.tasks)}), got {index}")
            row = self.tasks[index]
        self.task = None  # a reset that fails leaves no episode to step
        try:
            self.task = self.load_task(row, index)
        except TaskRowError as error:
            if index is None:
                raise
            raise error.at_row(index) from None  # a dataset row: say which one
        self.task_id = self.task_identifier(self.task)
        self.turn = 0
        self.ended = False
        messages, cut = self._bounded(self.opening_messages(self.task))
        self.transcript = list(messages)
        info = {
            "env": self.env_id,
            "task_id": self.task_id,
            "turn": 0,
            "tool_format": self.tool_format,
            "max_turns": self.max_turns,
        }
        info.update(self.reset_info(self.task))
        if cut:
            info["observation_truncated"] = True
        return messages, info

    def _checked_options(self, options: Any) -> dict[str, Any]:
        """`reset`'s options: None or a dict with `index` (an int) or `task` (a row dict), not both."""
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise TaskRowError(
                self.env_id,
                "options",
                f"must be a dict such as {{'task': row}} or {{'index': 3}}, got {type(options).__name__}",
            )
        unknown = sorted(str(key)[:40] for key in options if key not in RESET_OPTIONS)
        if unknown:
            raise TaskRowError(
                self.env_id, "options", f"has unknown keys {unknown}; the keys are {list(RESET_OPTIONS)}"
            )
        if "task" in options and options.get("index") is not None:
            raise TaskRowError(self.env_id, "options", "gives both 'task' and 'index'; give one")
        if "task" in options and not isinstance(options["task"], dict):
            raise TaskRowError(
                self.env_id, "options['task']", f"must be a task row (a dict), got {type(options['task']).__name__}"
            )
        index = options.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, numbers.Integral)):
            raise TaskRowError(
                self.env_id, "options['index']", f"must be an integer, got {type(index).__name__} {index!r:.60}"
            )
        return options

    def step(self, action: Any) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise EpisodeError("step() was called before reset(); call env.reset() first")
        if self.ended:
            raise EpisodeError(
                f"step() was called after episode {self.task_id!r} ended (turn {self.turn}); call env.reset() to start a new one"
            )
        self.turn += 1
        self.transcript.append(
            action if isinstance(action, dict) else {"role": "assistant", "content": _as_text(action)}
        )
        result = self.take_turn(action)
        info = {
            "task_id": self.task_id,
            "turn": self.turn,
            "tool_calls": [],
            "tool_error": None,
            "invalid_action": False,
        }
        info.update(result.info)
        reward, terminated, truncated = float(result.reward), bool(result.terminated), False
        if not terminated and self.turn >= self.max_turns:
            truncated = True
            reward, final_info = self.unanswered_result()
            info.update(final_info)
            info["stop_reason"] = "max_turns"
        messages, cut = self._bounded([] if terminated or truncated else result.messages)
        if cut:
            info["observation_truncated"] = True
        self.ended = terminated or truncated
        self.transcript.extend(messages)
        return messages, reward, terminated, truncated, info

    def limit_calls(self, parsed: ParsedTurn) -> ParsedTurn:
        """The turn's calls cut to `max_tool_calls_per_turn` (the rest become one parse error)."""
        return limit_calls(parsed, self.max_tool_calls_per_turn)

    def _bounded(self, messages: list[Message]) -> tuple[list[Message], bool]:
        return bound_observation(messages, self.observation_space.max_messages, self.max_observation_chars)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content') or m.get('tool_calls')}" for m in self.transcript)


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count argument (turns, results, characters) must be an integer of at least `minimum`.

    Range checks alone let a float through (``max_turns=1e999`` from a command line is infinity,
    and the episode never runs out of turns) and turn a list into a bare comparison TypeError.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        shown = f"{type(value).__name__} {brief(value, 60)}" if isinstance(value, (str, float)) else brief(value, 60)
        raise TypeError(f"{name} must be an integer, got {shown}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {brief(value, 60)}")
    return int(value)


def _as_text(action: Any) -> str:
    """The transcript text of a non-dict action; str() itself can fail (an int past 4,300 digits)."""
    if isinstance(action, str):
        return action
    try:
        return str(action)
    except Exception:  # any object's __str__ may raise; the turn is still recorded
        return f"<unprintable {type(action).__name__} action>"


def list_tasks(env: gym.Env) -> TaskSource:
    """The tasks an env draws from, in index order: `len()` and `[i]` give the row that
    `env.reset(options={"index": i})` plays.

    Works through Gymnasium wrappers (`gym.make` adds some). Procedural worlds return their
    generator source, whose rows are made on access, so listing never materialises them all.
    """
    inner = env.unwrapped
    if not isinstance(inner, ChatEnv):
        raise TypeError(
            f"list_tasks needs a ToolGym env (a ChatEnv, possibly wrapped), got {type(inner).__name__}; "
            "other envs do not expose an indexable task source"
        )
    return inner.tasks
