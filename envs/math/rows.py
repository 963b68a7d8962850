"""Math-v0's row formats as schemas: MATH / MATH-500 / procedural rows and GSM8K rows."""

from __future__ import annotations

from typing import Any

from toolgym.envs.rows import RowFormat, TaskRowError, check_row

ENV_ID = "Math-v0"
_ANSWER = {"type": ["string", "integer", "number"]}
_ID = {"type": ["string", "integer"]}

MATH_ROW = RowFormat(
    "MATH format: problem, answer (or a solution with \\boxed{})",
    {
        "type": "object",
        "required": ["problem"],
        "properties": {
            "problem": {"type": "string", "minLength": 1},
            "answer": _ANSWER,
            "solution": {"type": "string"},
            "unique_id": _ID,
            "id": _ID,
        },
    },
)
GSM8K_ROW = RowFormat(
    "GSM8K format: question, answer",
    {
        "type": "object",
        "required": ["question", "answer"],
        "properties": {"question": {"type": "string", "minLength": 1}, "answer": _ANSWER, "id": _ID},
    },
)


def check_math_row(row: Any) -> str:
    """Validate a Math-v0 task row; returns its format, 'math' or 'gsm8k'. Raises `TaskRowError`."""
    if isinstance(row, dict) and "problem" not in row and "question" in row:
        check_row(ENV_ID, row, GSM8K_ROW)
        return "gsm8k"
    if isinstance(row, dict) and "problem" not in row:
        raise TaskRowError(
            ENV_ID,
            "problem",
            f"is missing: a Math-v0 row needs 'problem' (MATH) or 'question' (GSM8K); got keys {sorted(row)[:10]}",
        )
    check_row(ENV_ID, row, MATH_ROW)
    return "math"
