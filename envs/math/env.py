"""Math-v0: solve a math problem, optionally with a calculator tool; reward 1 for a verified answer.

Without tools an episode is one turn: the assistant's reply is final and scored. With tools
(`tools=True`) a turn that calls the calculator gets the results back and the episode goes on; a
turn with a final answer (``\\boxed{}`` or ``<answer>``) ends it, even if it also holds calls; a
turn with neither gets a corrective message and counts as an invalid action. Answers are checked
by `MathVerifier` (math-verify in a killable worker process), gold first.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from toolgym.envs.base import ChatEnv, TurnResult
from toolgym.envs.observation_limits import DEFAULT_MAX_OBSERVATION_CHARS, DEFAULT_MAX_TOOL_CALLS_PER_TURN
from toolgym.messages import Message
from toolgym.tool_calls import ToolCall, turn_text

from .answers import ExtractedAnswer, extract_answer
from .calculator import CALCULATOR_SCHEMA, CalculatorError, calculator
from .data import MathTask, load_rows, task_from_row
from .verifier import MathVerifier, VerifyResult, shared_verifier
from .world import procedural_tasks

logger = logging.getLogger(__name__)

MATH_TOOL_FORMATS = ("hermes", "python", "openai")
DEFAULT_SYSTEM_PROMPT = (
    "You are a careful mathematician. Solve the problem step by step, "
    "then give the final answer in the form \\boxed{answer}."
)
TOOLS_PROMPT = (
    "You can use the calculator tool for arithmetic. When you know the answer, reply with the final "
    "answer as \\boxed{answer} and no tool call."
)
CORRECTION = (
    "Your reply had no tool call and no final answer. Call the calculator tool, "
    "or give the final answer as \\boxed{answer}."
)
MAX_ANSWER_IN_INFO = 1000  # characters of the extracted answer echoed in the final info


class MathEnv(ChatEnv[MathTask]):
    """Math problems from MATH / MATH-500 / GSM8K / a file / the Hub, or the procedural world.

    Args:
        dataset: 'procedural' (default), 'math500', 'math[:test|train]', 'gsm8k[:test|train]',
            a path to a JSONL / JSON file in one of those formats, or 'hf:<name>[:<config>][:<split>]'.
        difficulty: 1–5, for the procedural world only.
        tools: False (default); True or 'calculator' enables the calculator tool.
        tool_format: how tool calls are written: 'hermes' (default), 'python' or 'openai'.
        max_turns: the turn budget; 1 without tools and 6 with tools by default.
        verify_timeout_s: hard wall-clock limit for one answer check.
        system_prompt: replaces the default instruction (tool instructions are still appended).
        verifier: a `MathVerifier` to use instead of the process-wide shared one.
        max_tool_calls_per_turn, max_observation_chars: bounds on one observation
            (`toolgym.envs.observation_limits`).
    """

    env_id = "Math-v0"

    def __init__(
        self,
        dataset: str = "procedural",
        *,
        difficulty: int = 2,
        tools: bool | str = False,
        tool_format: str = "hermes",
        max_turns: int | None = None,
        verify_timeout_s: float = 5.0,
        system_prompt: str | None = None,
        verifier: MathVerifier | None = None,
        render_mode: str | None = None,
        max_tool_calls_per_turn: int = DEFAULT_MAX_TOOL_CALLS_PER_TURN,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
    ):
        if tools not in (False, None, True, "calculator"):
            raise ValueError(f"tools must be False, True or 'calculator', got {tools!r}")
        if isinstance(verify_timeout_s, bool) or not isinstance(verify_timeout_s, (int, float)):
            raise TypeError(f"verify_timeout_s must be a number of seconds, got {type(verify_timeout_s).__name__}")
        if not 0 < verify_timeout_s < math.inf:  # NaN fails this too
            raise ValueError(f"verify_timeout_s must be positive and finite, got {verify_timeout_s}")
        self.tools_enabled = tools in (True, "calculator")
        if dataset == "procedural":
            tasks, self.source = procedural_tasks(difficulty), "procedural"
        else:
            tasks, self.source = load_rows(dataset)
        super().__init__(
            tasks,
            max_turns=max_turns if max_turns is not None else (6 if self.tools_enabled else 1),
            tool_format=tool_format,
            allowed_formats=MATH_TOOL_FORMATS,
            render_mode=render_mode,
            max_tool_calls_per_turn=max_tool_calls_per_turn,
            max_observation_chars=max_observation_chars,
        )
        self.dataset = dataset
        self.verify_timeout_s = verify_timeout_s
        self.system_prompt = system_prompt if system_prompt is not None else DEFAULT_SYSTEM_PROMPT
        self.tools: list[dict[str, Any]] = [CALCULATOR_SCHEMA] if self.tools_enabled else []
        self.verifier = verifier
        self.row: dict[str, Any] = {}

    # --- ChatEnv hooks ---------------------------------------------------------------------------

    def load_task(self, row: dict[str, Any], index: int | None) -> MathTask:
        task = task_from_row(row, source=self.source if index is not None else None, index=index)
        self.row = dict(row)
        return task

    def task_identifier(self, task: MathTask) -> str:
        return task.id

    def opening_messages(self, task: MathTask) -> list[Message]:
        system = self.system_prompt
        if self.tools_enabled:
            system = f"{system}\n\n{TOOLS_PROMPT}\n\n{self.dialect.instructions(self.tools)}"
        return [{"role": "system", "content": system}, {"role": "user", "content": task.problem}]

    def reset_info(self, task: MathTask) -> dict[str, Any]:
        return {"tools": list(self.tools), "task": self.row, "source": task.source}

    def take_turn(self, action: Any) -> TurnResult:
        if not self.tools_enabled:
            answer = extract_answer(turn_text(action))
            return self._final(answer, {"invalid_action": not answer.found})
        parsed = self.limit_calls(self.dialect.parse(action))
        calls = [call.to_dict() for call in parsed.tool_calls]
        answer = extract_answer(parsed.text)
        if answer.found:
            return self._final(answer, {"tool_calls": calls})
        messages: list[Message] = []
        errors = list(parsed.errors)
        invalid = bool(parsed.errors)
        for call in parsed.tool_calls:
            content, error, malformed = self._run_tool(call)
            messages.append(self.dialect.tool_result_message(call, content))
            if error:
                errors.append(error)
            invalid = invalid or malformed
        if parsed.errors or not parsed.tool_calls:
            problems = "".join(f"\n- {e}" for e in parsed.errors)
            correction = "" if parsed.tool_calls else CORRECTION
            if problems:
                correction = f"{correction}\nProblems with your tool calls:{problems}".strip()
            messages.append({"role": "user", "content": correction})
            invalid = True
        info = {"tool_calls": calls, "tool_error": "; ".join(errors) or None, "invalid_action": invalid}
        return TurnResult(messages=messages, info=info)

    def unanswered_result(self) -> tuple[float, dict[str, Any]]:
        metrics = dict.fromkeys(("correct", "answer_found", "parse_failure", "timeout", "gold_parse_failure"), False)
        return 0.0, {"metrics": metrics, "gold": self._task().answer}

    # --- helpers --------------------------------------------------------------------------------

    def _task(self) -> MathTask:
        assert self.task is not None, "reset() must run before scoring"
        return self.task

    def _run_tool(self, call: ToolCall) -> tuple[str, str | None, bool]:
        """Run one call: (result text, error or None, whether the call itself was malformed)."""
        if call.name != "calculator":
            error = f"unknown tool {call.name!r:.80}; available tools: calculator"
            return f"Error: {error}", error, True
        unexpected = sorted(set(call.arguments) - {"expression"})
        expression = call.arguments.get("expression")
        if unexpected or not isinstance(expression, str):
            error = "calculator takes one string argument 'expression'" + (
                f"; unexpected arguments {unexpected!r:.120}" if unexpected else f", got {type(expression).__name__}"
            )
            return f"Error: {error}", error, True
        try:
            return calculator(expression), None, False
        except CalculatorError as exc:
            return f"Error: {exc}", f"calculator: {exc}", False

    def _final(self, answer: ExtractedAnswer, info: dict[str, Any]) -> TurnResult:
        """Score a final answer and end the episode."""
        task = self._task()
        result: VerifyResult | None = None
        if answer.found and answer.text is not None:
            verifier = self.verifier if self.verifier is not None else shared_verifier()
            result = verifier.verify(task.answer, answer.text, timeout_s=self.verify_timeout_s)
            if not result.gold_parsed:
                logger.warning(
                    "gold answer of %.100s could not be parsed (%.200r): %.300s", task.id, task.answer, result.error
                )
        correct = bool(result and result.correct)
        metrics = {
            "correct": correct,
            "answer_found": answer.found,
            "parse_failure": bool(result and not result.parsed and not result.timeout),
            "timeout": bool(result and result.timeout),
            "gold_parse_failure": bool(result and not result.gold_parsed),
        }
        info = {
            **info,
            "metrics": metrics,
            "gold": task.answer,
            "answer": None if answer.text is None else answer.text[:MAX_ANSWER_IN_INFO],
            "stop_reason": "answer" if answer.found else "no_answer",
        }
        return TurnResult(messages=[], reward=1.0 if correct else 0.0, terminated=True, info=info)
