"""Task-row validation: a malformed row fails at `reset` with one error naming the env and the field.

Envs take rows in their datasets' own formats (`reset(options={"task": row})`, or a dataset
file). Each env package describes its formats as small JSON Schemas (`RowFormat`), and its row
reader calls `check_row` before touching a field, so a bad row is a `TaskRowError` at reset,
never a `KeyError` in the middle of an episode. Numbers that size a generated world carry upper
bounds in the schemas, so a row cannot ask for a world that exhausts memory or time.

`check_row` first walks the row without recursion: it must be JSON-like (dicts with string
keys, lists, strings, numbers, booleans, None), at most `MAX_ROW_DEPTH` levels deep, and hold no
integer over `MAX_INT_DIGITS` digits, so the schema check (and any later `deepcopy`, `repr` or
JSON encoding) can neither recurse too deep nor hit Python's integer-string limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

MAX_ROW_DEPTH = 64
MAX_INT_DIGITS = 1000
_JSON_SCALARS = (str, int, float, bool, type(None))


class TaskRowError(ValueError, TypeError):
    """A task row (or the reset options that carry it) is malformed.

    It is both a `ValueError` and a `TypeError`, so callers that catch either keep working;
    `env_id`, `field` (a path such as ``contexts[2].title``) and `row_format` say what was wrong.
    """

    def __init__(
        self, env_id: str, field: str, problem: str, row_format: str | None = None, row_index: int | None = None
    ):
        where = f"{env_id} task row" + (f" {row_index}" if row_index is not None else "")
        where += f" ({row_format})" if row_format else ""
        super().__init__(f"{where}: field {field!r} {problem}")
        self.env_id = env_id
        self.field = field
        self.problem = problem
        self.row_format = row_format
        self.row_index = row_index

    def at_row(self, row_index: int) -> TaskRowError:
        """The same error, saying which row of the env's dataset it is."""
        return TaskRowError(self.env_id, self.field, self.problem, self.row_format, row_index)


@dataclass(frozen=True)
class RowFormat:
    """One row format of an env's datasets: a JSON Schema, plus checks a schema cannot express.

    `semantic` receives a row that passed the schema and returns `(field, problem)` for the first
    violated rule (e.g. "every order names an item in stock"), or None.
    """

    name: str
    schema: dict[str, Any]
    semantic: Callable[[dict[str, Any]], tuple[str, str] | None] | None = field(default=None, compare=False)

    @cached_property
    def validator(self) -> Any:
        from jsonschema import Draft202012Validator, validators

        # Rows built in Python may hold tuples where a JSON file holds lists; both are arrays.
        type_checker = Draft202012Validator.TYPE_CHECKER.redefine(
            "array", lambda _checker, instance: isinstance(instance, (list, tuple))
        )
        Draft202012Validator.check_schema(self.schema)
        return validators.extend(Draft202012Validator, type_checker=type_checker)(self.schema)


def check_row(env_id: str, row: Any, row_format: RowFormat) -> None:
    """Raise `TaskRowError` naming the first problem of `row` as a `row_format` row."""
    if not isinstance(row, dict):
        raise TaskRowError(env_id, "options['task']", f"must be a task row (a dict), got {type(row).__name__}")
    problem = _shape_problem(row)
    if problem is not None:
        raise TaskRowError(env_id, problem[0], problem[1], row_format.name)
    # The shallowest problem first (a missing field before a bad value inside it); ties keep the
    # schema's order, which lists fields as the format's documentation does.
    errors = sorted(row_format.validator.iter_errors(row), key=lambda e: len(e.absolute_path))
    if errors:
        raise TaskRowError(env_id, *_describe(errors[0]), row_format.name)
    if row_format.semantic is not None:
        problem = row_format.semantic(row)
        if problem is not None:
            raise TaskRowError(env_id, problem[0], problem[1], row_format.name)


def field_path(parts: Any) -> str:
    """`["contexts", 2, "title"]` -> ``contexts[2].title``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<row>"


def _shape_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    """The first non-JSON value, over-deep nesting or giant integer, iteratively (no recursion)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(row, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_ROW_DEPTH:
            return field_path(path), f"is nested deeper than {MAX_ROW_DEPTH} levels"
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    return field_path(
                        path
                    ), f"has a non-string key of type {type(key).__name__} (rows are JSON objects)"
                stack.append((child, (*path, key)))
        elif isinstance(value, (list, tuple)):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))
        elif not isinstance(value, _JSON_SCALARS):
            return field_path(
                path
            ), f"must be a JSON value (str, number, bool, None, list, dict), got {type(value).__name__}"
        elif isinstance(value, int) and value.bit_length() > MAX_INT_DIGITS * math.log2(10):
            return field_path(path), f"holds an integer of more than {MAX_INT_DIGITS} digits"
    return None


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "object": "a dict",
    "null": "null",
}


def _type_words(schema_type: Any) -> str:
    """JSON Schema `type` ("string", ["string", "integer"], absent for a $ref) in words."""
    if schema_type is None:
        return "a nested dict"
    names = [schema_type] if isinstance(schema_type, str) else list(schema_type)
    return " or ".join(_TYPE_NAMES.get(name, name) for name in names)


def _type_name(value: Any) -> str:
    return {type(None): "None"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: Any) -> tuple[str, str]:
    """(field, problem) in words, without jsonschema's repr of the whole instance."""
    path = list(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next((name for name in expected if name not in value), expected[0])
        return field_path([*path, missing]), "is missing (required)"
    if kind == "type":
        return field_path(path), f"must be {_type_words(expected)}, got {_type_name(value)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return field_path(path), f"must be {relation} {expected}, got {_short(value)}"
    if kind == "minLength":
        return field_path(path), "must not be empty"
    if kind in ("minItems", "minProperties"):
        unit = "item" if kind == "minItems" else "key"
        return field_path(path), f"must have at least {expected} {unit}{'s' if expected != 1 else ''}, got {len(value)}"
    if kind in ("maxLength", "maxItems", "maxProperties"):
        return field_path(path), f"is too long: at most {expected} allowed, got {len(value)}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)
        return field_path([*path, extra[0]] if extra else path), f"is not allowed here (allowed keys: {allowed})"
    if "propertyNames" in error.schema_path:
        pattern = error.schema.get("pattern", "?")
        return field_path(path), f"has a key {_short(value)} that is not a valid name (must match {pattern!r})"
    if kind in ("anyOf", "oneOf"):
        # A branch whose type fits the value and that failed inside it says more than "wrong type".
        inside = [e for e in error.context if not (e.validator == "type" and len(e.absolute_path) == len(path))]
        if inside:
            return _describe(max(inside, key=lambda e: len(e.absolute_path)))
        forms = [_type_words(sub.get("type")) for sub in expected if isinstance(sub, dict)]
        return field_path(path), f"must be {' or '.join(dict.fromkeys(forms))}, got {_type_name(value)}"
    if kind == "pattern":
        return field_path(path), f"must match {expected!r}, got {_short(value)}"
    if kind == "enum":
        return field_path(path), f"must be one of {expected}, got {_short(value)}"
    return field_path(path), error.message[:200]
