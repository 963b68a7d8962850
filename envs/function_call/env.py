"""FunctionCall-v0: BFCL single-turn questions and multi-turn executable tool worlds.

Two kinds of task share one env, chosen by the row (so `options={"task": row}` works for both):

- **BFCL** rows (`id`, `question`, `function`, `ground_truth`): the opening shows the question; the
  first assistant turn is final. Its calls are parsed in `tool_format` and scored by the AST
  checker (reward 1/0). Metrics: `ast_match`, `category`, `error_type`, `n_calls`.
- **Tool-world** rows (`initial_state`, `goal`, `goal_state`, `gold_calls`): the model calls tools
  over several turns; each call is validated and executed, results come back as tool messages.
  The episode ends on a turn without a tool call (or at `max_turns`); reward 1 iff the final
  state meets the goal. Metrics: `goal_met`, `n_tool_calls`, `n_tool_errors`.

Defaults: `dataset="procedural"` (the tool world). `tool_format` defaults to "python" (BFCL's own
call syntax) for BFCL datasets and to "hermes" for the tool world; `max_turns` to 1 for BFCL and
8 for the tool world. With `tool_format="openai"`, BFCL function names are exposed in the
OpenAI-legal form (`math.factorial` -> `math_factorial`) and mapped back before checking.

`bfcl_decoding` chooses how BFCL answers in the python dialect are read: "official" (default)
is BFCL's own decoder, so scores compare with the leaderboard; "lenient" is ToolGym's reading
(code fences and `<answer>` tags allowed, bare names and positional arguments refused); see
`toolgym.python_calls` for each rule. Tool-world turns always use the lenient reading.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from toolgym.dialects import PythonDialect
from toolgym.python_calls import PYTHON_DECODINGS
from toolgym.tool_calls import ParsedTurn

from ..base import ChatEnv, TurnResult
from ..observation_limits import DEFAULT_MAX_OBSERVATION_CHARS, DEFAULT_MAX_TOOL_CALLS_PER_TURN
from ..tasks import ProceduralTasks
from .bfcl_checker import check_bfcl
from .bfcl_data import category_of, load_bfcl, to_openai_tool
from .rows import check_function_call_row
from .world import SYSTEM_PROMPT, check_world_difficulty, generate_world_task, goal_met, is_world_row
from .world_tools import ToolWorld

FUNCTION_CALL_FORMATS = ("hermes", "python", "openai")
MAX_TOOL_RESULT_CHARS = 4000


@dataclass
class BfclTask:
    """A BFCL question ready to show and to check."""

    row: dict[str, Any]
    category: str
    tools: list[dict[str, Any]]
    name_map: dict[str, str]  # exposed tool name -> BFCL name (differs only for openai format)


@dataclass
class WorldTask:
    """A tool-world task plus the live world of the current episode."""

    row: dict[str, Any]
    world: ToolWorld
    n_tool_calls: int = 0
    n_tool_errors: int = 0
    log: list[str] = field(default_factory=list)


class FunctionCallEnv(ChatEnv[BfclTask | WorldTask]):
    """Function calling: BFCL AST-checked questions (`dataset="bfcl:<category>"`, a question-file path)
    or procedurally generated stateful tool worlds (`dataset="procedural"`, the default); `dataset` may
    also be a list of rows of either kind. `categories` picks BFCL categories for a bare "bfcl" /
    "bfcl_v4" spec, or tool-world domains ("fs", "bank", "shop") for the procedural world. `max_tool_calls_per_turn` and
    `max_observation_chars` bound one observation (`toolgym.envs.observation_limits`)."""

    env_id = "FunctionCall-v0"

    def __init__(
        self,
        dataset: str | list[dict[str, Any]] = "procedural",
        *,
        difficulty: int = 1,
        tool_format: str | None = None,
        max_turns: int | None = None,
        categories: Sequence[str] | None = None,
        bfcl_decoding: str = "official",
        render_mode: str | None = None,
        max_tool_calls_per_turn: int = DEFAULT_MAX_TOOL_CALLS_PER_TURN,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
    ):
        if isinstance(dataset, list):  # rows in memory: BFCL rows or tool-world rows
            tasks: Any = dataset
            bfcl = bool(dataset) and not is_world_row(dataset[0])
        elif dataset != "procedural":
            tasks, bfcl = load_bfcl(dataset, categories), True
        else:
            bfcl = False
            check_world_difficulty(difficulty)
            domains = list(categories) if categories else None
            generate_world_task(0, difficulty, domains)  # fail fast on bad domains
            tasks = ProceduralTasks(partial(generate_world_task, difficulty=difficulty, domains=domains))
        self.dataset = dataset if isinstance(dataset, str) else "rows"
        self.difficulty = difficulty
        super().__init__(
            tasks,
            max_turns=max_turns if max_turns is not None else (1 if bfcl else 8),
            tool_format=tool_format or ("python" if bfcl else "hermes"),
            allowed_formats=FUNCTION_CALL_FORMATS,
            render_mode=render_mode,
            max_tool_calls_per_turn=max_tool_calls_per_turn,
            max_observation_chars=max_observation_chars,
        )
        if bfcl_decoding not in PYTHON_DECODINGS:
            raise ValueError(f"bfcl_decoding must be one of {PYTHON_DECODINGS}, got {bfcl_decoding!r}")
        self.bfcl_decoding = bfcl_decoding
        # BFCL answers are read by BFCL's rules; only the python dialect has more than one reading.
        self.bfcl_dialect = PythonDialect(bfcl_decoding) if isinstance(self.dialect, PythonDialect) else self.dialect

    # --- tasks ---------------------------------------------------------------------------------

    def load_task(self, row: dict[str, Any], index: int | None) -> BfclTask | WorldTask:
        kind = check_function_call_row(row)  # TaskRowError naming the field of a malformed row
        row = copy.deepcopy(row)  # the episode must not share objects with the dataset or the caller
        if kind == "tool_world":
            return WorldTask(row=row, world=ToolWorld(row["initial_state"]))
        category = category_of(row["id"])
        sanitize = self.dialect.native
        tools = [to_openai_tool(doc, sanitize_name=sanitize) for doc in row["function"]]
        name_map = {tool["function"]["name"]: doc["name"] for tool, doc in zip(tools, row["function"])}
        return BfclTask(row=row, category=category, tools=tools, name_map=name_map)

    def task_identifier(self, task: BfclTask | WorldTask) -> str:
        return str(task.row["id"])

    def opening_messages(self, task: BfclTask | WorldTask) -> list[dict[str, Any]]:
        if isinstance(task, WorldTask):
            system = f"{SYSTEM_PROMPT}\n\n{self.dialect.instructions(task.world.tools())}"
            return [{"role": "system", "content": system}, {"role": "user", "content": task.row["goal"]}]
        instructions = self.dialect.instructions(task.tools)
        turn = [dict(m) for m in task.row["question"][0]]
        if turn and turn[0].get("role") == "system":
            return [{"role": "system", "content": f"{instructions}\n\n{turn[0]['content']}"}, *turn[1:]]
        return [{"role": "system", "content": instructions}, *turn]

    def reset_info(self, task: BfclTask | WorldTask) -> dict[str, Any]:
        if isinstance(task, WorldTask):
            return {
                "tools": task.world.tools(),
                "task": copy.deepcopy(task.row),
                "kind": "tool_world",
                "category": "tool_world",
            }
        return {
            "tools": copy.deepcopy(task.tools),
            "task": copy.deepcopy(task.row),
            "kind": "bfcl",
            "category": task.category,
            "bfcl_decoding": self.bfcl_decoding if isinstance(self.dialect, PythonDialect) else None,
        }

    # --- turns ---------------------------------------------------------------------------------

    def take_turn(self, action: Any) -> TurnResult:
        if isinstance(self.task, WorldTask):
            return self._world_turn(self.task, self.limit_calls(self.dialect.parse(action)))
        assert isinstance(self.task, BfclTask)
        return self._bfcl_turn(self.task, self.bfcl_dialect.parse(action))

    def _bfcl_turn(self, task: BfclTask, parsed: ParsedTurn) -> TurnResult:
        decoded = not parsed.errors and (bool(parsed.tool_calls) or parsed.empty_call_list)
        calls = [(task.name_map.get(c.name, c.name), c.arguments) for c in parsed.tool_calls] if decoded else None
        try:
            result = check_bfcl(
                task.category,
                task.row["function"],
                task.row.get("ground_truth"),
                calls,
                parsed.errors,
                refused_calls=parsed.refused_calls,
            )
        except RecursionError:
            result = None
        valid = bool(result and result.valid)
        error_type = result.error_type if result else "ast_decoder:too_deeply_nested"
        info = {
            "tool_calls": [c.to_dict() for c in parsed.tool_calls],
            "tool_error": "; ".join(parsed.errors)[:1000] or None,
            # Text that is not a call list is the right answer on irrelevance rows, not a format failure.
            "invalid_action": bool(parsed.errors) and "irrelevance" not in task.category,
            "category": task.category,
            "error_type": error_type,
            "check_error": result.error if result else "value too deeply nested",
            "metrics": {
                "ast_match": valid,
                "category": task.category,
                "error_type": error_type,
                "n_calls": len(parsed.tool_calls),
            },
            "gold": copy.deepcopy(task.row.get("ground_truth", [])),
            "stop_reason": "answer",
        }
        return TurnResult(messages=[], reward=float(valid), terminated=True, info=info)

    def _world_turn(self, task: WorldTask, parsed: ParsedTurn) -> TurnResult:
        info: dict[str, Any] = {"tool_calls": [c.to_dict() for c in parsed.tool_calls]}
        if not parsed.tool_calls and not parsed.errors:
            met = goal_met(task.world, task.row["goal_state"])
            info.update(self._world_final_info(task, met), stop_reason="answer")
            return TurnResult(messages=[], reward=float(met), terminated=True, info=info)
        messages: list[dict[str, Any]] = []
        errors: list[str] = []
        invalid = bool(parsed.errors)
        for call in parsed.tool_calls:
            outcome = task.world.execute(call.name, call.arguments)
            task.n_tool_calls += 1
            if not outcome.ok:
                task.n_tool_errors += 1
                errors.append(outcome.content)
                invalid = invalid or outcome.error_kind in ("unknown_tool", "schema")
            content = (
                outcome.content
                if len(outcome.content) <= MAX_TOOL_RESULT_CHARS
                else outcome.content[:MAX_TOOL_RESULT_CHARS] + " …[truncated]"
            )
            messages.append(self.dialect.tool_result_message(call, content))
        if parsed.errors:
            task.n_tool_errors += len(parsed.errors)
            errors.extend(f"Error: {e}" for e in parsed.errors)
            listing = "\n".join(f"- {e[:300]}" for e in parsed.errors[:5])
            messages.append(
                {
                    "role": "user",
                    "content": f"Some tool calls could not be parsed:\n{listing}\nFix them, or reply without a tool call when you are done.",
                }
            )
        info.update(tool_error="; ".join(errors)[:1000] or None, invalid_action=invalid, n_tool_calls=task.n_tool_calls)
        return TurnResult(messages=messages, reward=0.0, terminated=False, info=info)

    def _world_final_info(self, task: WorldTask, met: bool) -> dict[str, Any]:
        return {
            "metrics": {"goal_met": met, "n_tool_calls": task.n_tool_calls, "n_tool_errors": task.n_tool_errors},
            "gold": copy.deepcopy({"gold_calls": task.row.get("gold_calls", []), "goal_state": task.row["goal_state"]}),
            "final_state": json.loads(json.dumps(task.world.state)),
        }

    def unanswered_result(self) -> tuple[float, dict[str, Any]]:
        if isinstance(self.task, WorldTask):
            met = goal_met(self.task.world, self.task.row["goal_state"])
            return float(met), self._world_final_info(self.task, met)
        assert isinstance(self.task, BfclTask)
        metrics = {"ast_match": False, "category": self.task.category, "error_type": "no_answer", "n_calls": 0}
        return 0.0, {"metrics": metrics, "gold": copy.deepcopy(self.task.row.get("ground_truth", []))}
