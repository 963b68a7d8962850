"""FunctionCall-v0's row formats as schemas: BFCL question rows and tool-world rows.

A tool-world row carries whole world states; their schema is what `ToolWorld`'s tools read, so a
row that passes here cannot fail at `step` on a missing key (`tree`, `balance`, …). Rules a
schema cannot say (an order names an item in stock, the goal has the same domains as the start)
are the formats' `semantic` checks.
"""

from __future__ import annotations

from typing import Any

from toolgym.envs.rows import RowFormat, TaskRowError, check_row

from .bfcl_data import UNSUPPORTED_CATEGORIES, category_of, is_relevance_category
from .world import MAX_DIFFICULTY, is_world_row
from .world_tools import DOMAINS

ENV_ID = "FunctionCall-v0"
_STRING = {"type": "string"}
_NAME = {"type": "string", "pattern": r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$"}  # a file or folder name, not . or ..
_COUNT = {"type": "integer", "minimum": 0, "maximum": 10**12}

_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {"role": _STRING, "content": _STRING}}
_FUNCTION_DOC = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": _STRING,
        "parameters": {
            "type": "object",
            "properties": {
                "properties": {"type": "object", "additionalProperties": {"type": "object"}},
                "required": {"type": "array", "items": _STRING},
            },
        },
    },
}
_EXPECTED_CALL = {  # {"function name": {"param": [allowed values, ...]}}
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {"type": "object", "additionalProperties": {"type": "array"}},
}
BFCL_ROW_FORMAT = RowFormat(
    "BFCL question row: id, question, function, ground_truth",
    {
        "type": "object",
        "required": ["id", "question", "function"],
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "question": {"type": "array", "minItems": 1, "items": {"type": "array", "items": _MESSAGE}},
            "function": {"type": "array", "items": _FUNCTION_DOC},
            "ground_truth": {"type": "array", "items": _EXPECTED_CALL},
        },
    },
)

_FOLDER = {
    "type": "object",
    "propertyNames": _NAME,
    "additionalProperties": {"anyOf": [_STRING, {"$ref": "#/$defs/folder"}]},
}
_STATE = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "fs": {
            "type": "object",
            "required": ["cwd", "tree"],
            "properties": {"cwd": {"type": "string", "pattern": "^/"}, "tree": {"$ref": "#/$defs/folder"}},
        },
        "bank": {
            "type": "object",
            "required": ["accounts"],
            "properties": {
                "accounts": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["owner", "balance"],
                        "properties": {"owner": _STRING, "balance": _COUNT},
                    },
                }
            },
        },
        "shop": {
            "type": "object",
            "required": ["stock", "orders", "next_order_id"],
            "properties": {
                "stock": {"type": "object", "additionalProperties": _COUNT},
                "orders": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["item", "quantity"],
                        "properties": {"item": _STRING, "quantity": {**_COUNT, "minimum": 1}},
                    },
                },
                "next_order_id": _COUNT,
            },
        },
    },
}
_CALL = {
    "type": "object",
    "required": ["name", "arguments"],
    "properties": {"name": _STRING, "arguments": {"type": "object"}},
}


def _world_semantics(row: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("initial_state", "goal_state"):
        problem = _state_semantics(row[key], key)
        if problem is not None:
            return problem
    if set(row["initial_state"]) != set(row["goal_state"]):
        return "goal_state", f"must have the same domains as initial_state ({sorted(row['initial_state'])})"
    return None


def _state_semantics(state: dict[str, Any], key: str) -> tuple[str, str] | None:
    if "fs" in state:
        node: Any = state["fs"]["tree"]
        for part in (p for p in state["fs"]["cwd"].split("/") if p):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return f"{key}.fs.cwd", f"must name a folder of the tree, got {state['fs']['cwd'][:80]!r}"
    if "shop" in state:
        shop = state["shop"]
        for order_id, order in shop["orders"].items():
            if order["item"] not in shop["stock"]:
                return f"{key}.shop.orders.{order_id}.item", f"names {order['item'][:60]!r}, which is not in stock"
            if order_id.isdigit() and int(order_id) >= shop["next_order_id"]:
                return f"{key}.shop.next_order_id", f"must be above every order id (order {order_id} exists)"
    return None


TOOL_WORLD_ROW_FORMAT = RowFormat(
    "tool-world row: id, goal, initial_state, goal_state",
    {
        "$defs": {"folder": _FOLDER},
        "type": "object",
        "required": ["id", "goal", "initial_state", "goal_state"],
        "properties": {
            "id": {"type": ["string", "integer"]},
            "goal": {"type": "string", "minLength": 1},
            "initial_state": _STATE,
            "goal_state": _STATE,
            "gold_calls": {"type": "array", "items": _CALL},
            "difficulty": {"type": "integer", "minimum": 1, "maximum": MAX_DIFFICULTY},
            "domains": {"type": "array", "items": {"enum": list(DOMAINS)}},
        },
    },
    semantic=_world_semantics,
)


def check_function_call_row(row: Any) -> str:
    """Validate a FunctionCall-v0 row; returns 'tool_world' or 'bfcl'. Raises `TaskRowError`."""
    if is_world_row(row):
        check_row(ENV_ID, row, TOOL_WORLD_ROW_FORMAT)
        return "tool_world"
    check_row(ENV_ID, row, BFCL_ROW_FORMAT)
    category = category_of(row["id"])
    if category in UNSUPPORTED_CATEGORIES:
        raise TaskRowError(
            ENV_ID, "id", f"is in category {category!r}, which needs Java/JavaScript type converters (not implemented)"
        )
    if not is_relevance_category(category) and not row.get("ground_truth"):
        raise TaskRowError(
            ENV_ID, "ground_truth", f"is missing or empty: category {category!r} needs the possible answer", "BFCL"
        )
    return "bfcl"
