"""Reading BFCL single-turn data: question files joined with their possible answers.

BFCL's `.json` files are JSON Lines. A question row has `id`, `question` (a list of turns, each
a list of chat messages) and `function` (BFCL function docs whose parameter types are Python-ish:
`dict`, `float`, `tuple`, `any`). Its ground truth lives in `possible_answer/<same file name>`
beside it and is joined onto the row as `ground_truth`, which is the row format
`FunctionCall-v0` accepts in `options={"task": row}`.

The docs stay untouched for the AST checker (BFCL's type rules need the original names);
`to_openai_tool` converts a copy to valid JSON Schema for tool-calling APIs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.data import read_records, require_shared_data

# Spec prefix -> (folder under the shared data dir, file prefix).
BFCL_VERSIONS: dict[str, tuple[str, str]] = {
    "bfcl": ("bfcl_v3", "BFCL_v3_"),
    "bfcl_v3": ("bfcl_v3", "BFCL_v3_"),
    "bfcl_v4": ("bfcl_v4", "BFCL_v4_"),
}

# What a bare "bfcl" / "bfcl_v4" spec loads: every Python category of the copied data.
DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "bfcl_v3": (
        "simple",
        "multiple",
        "parallel",
        "parallel_multiple",
        "irrelevance",
        "live_simple",
        "live_multiple",
        "live_parallel",
        "live_parallel_multiple",
        "live_irrelevance",
        "live_relevance",
    ),
    "bfcl_v4": ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"),
}

# Java / JavaScript answers are strings in those languages' syntax, checked through BFCL's type
# converters, which ToolGym does not implement; scoring them with Python rules would be wrong.
UNSUPPORTED_CATEGORIES = frozenset({"java", "javascript", "simple_java", "simple_javascript"})

_ID_SUFFIX_RE = re.compile(r"_\d+(?:-\d+)*$")

# BFCL parameter type (any language) -> JSON Schema type; None means "any JSON value".
_JSON_SCHEMA_TYPES: dict[str, str | None] = {
    "dict": "object",
    "object": "object",
    "hashmap": "object",
    "hashtable": "object",
    "float": "number",
    "double": "number",
    "number": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigint": "integer",
    "string": "string",
    "char": "string",
    "str": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "tuple": "array",
    "list": "array",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "any": None,
    "": None,
}
# Keys BFCL docs carry that are not JSON Schema keywords (they would be ignored or rejected).
_DROPPED_KEYS = frozenset({"optional"})
_OPENAI_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]")


def category_of(task_id: str) -> str:
    """BFCL category from an id: `simple_12` -> simple, `live_multiple_3-1-0` -> live_multiple."""
    return _ID_SUFFIX_RE.sub("", task_id)


def category_of_file(path: str | Path) -> str:
    """BFCL category from a file name: `BFCL_v3_parallel_multiple.json` -> parallel_multiple."""
    stem = Path(path).stem
    return re.sub(r"^BFCL_v\d+_", "", stem)


def is_relevance_category(category: str) -> bool:
    """(Ir)relevance categories are scored on whether a call was made, not by the AST checker."""
    return "relevance" in category


def resolve_spec(spec: str, categories: Sequence[str] | None = None) -> list[Path]:
    """Question files named by a dataset spec: `bfcl:simple`, `bfcl_v4:simple_python,multiple`,
    a bare `bfcl` / `bfcl_v4` (with `categories` or the default list), or a path to a question file.
    """
    prefix, _, rest = spec.partition(":")
    if prefix not in BFCL_VERSIONS:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(
                f"dataset {spec!r} is neither a BFCL spec ({', '.join(f'{p}:<category>' for p in BFCL_VERSIONS)}) "
                "nor an existing question file"
            )
        _refuse_unsupported(category_of_file(path))
        return [path]
    folder, file_prefix = BFCL_VERSIONS[prefix]
    wanted = (
        [c.strip() for c in rest.split(",") if c.strip()] if rest else list(categories or DEFAULT_CATEGORIES[folder])
    )
    paths = []
    for category in wanted:
        _refuse_unsupported(category)
        paths.append(require_shared_data(f"{folder}/{file_prefix}{category}.json"))
    return paths


def _refuse_unsupported(category: str) -> None:
    if category in UNSUPPORTED_CATEGORIES:
        raise ValueError(
            f"BFCL category {category!r} needs BFCL's Java/JavaScript type converters, which ToolGym does not "
            "implement; use the Python categories (simple / simple_python, multiple, parallel, parallel_multiple, "
            "irrelevance, live_*)"
        )


def load_bfcl(spec: str, categories: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Question rows of a spec, each joined with its `ground_truth` when a possible-answer file exists."""
    rows: list[dict[str, Any]] = []
    for path in resolve_spec(spec, categories):
        rows.extend(load_question_file(path))
    return rows


def load_question_file(path: str | Path) -> list[dict[str, Any]]:
    """One question file joined with `possible_answer/<same name>` (absent for (ir)relevance files)."""
    path = Path(path)
    questions = read_records(path)
    answer_path = path.parent / "possible_answer" / path.name
    if not answer_path.is_file():
        if questions and not is_relevance_category(category_of(str(questions[0].get("id", "")))):
            raise FileNotFoundError(f"{path} has no possible answers: expected {answer_path}")
        return questions
    answers = {row["id"]: row["ground_truth"] for row in read_records(answer_path)}
    joined = []
    for row in questions:
        if row["id"] not in answers:
            raise ValueError(f"{path}: question {row['id']!r} has no entry in {answer_path}")
        joined.append({**row, "ground_truth": answers[row["id"]]})
    return joined


def openai_function_name(name: str) -> str:
    """A name OpenAI-style APIs accept (`^[a-zA-Z0-9_-]{1,64}$`): BFCL's `math.factorial` -> `math_factorial`."""
    return _OPENAI_NAME_RE.sub("_", name)[:64] or "_"


def to_json_schema(bfcl_schema: Any) -> Any:
    """A copy of a BFCL parameter schema with every `type` mapped to JSON Schema (`dict` -> object, …)."""
    if isinstance(bfcl_schema, list):
        return [to_json_schema(item) for item in bfcl_schema]
    if not isinstance(bfcl_schema, dict):
        return copy.deepcopy(bfcl_schema)
    converted: dict[str, Any] = {}
    for key, value in bfcl_schema.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "type" and isinstance(value, str):
            json_type = _JSON_SCHEMA_TYPES.get(value.lower(), "string")
            if json_type is not None:
                converted["type"] = json_type
        elif key == "properties" and isinstance(value, dict):
            converted[key] = {name: to_json_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = to_json_schema(value)
        else:
            converted[key] = copy.deepcopy(value)
    if converted.get("type") == "array" and "items" not in converted:
        converted["items"] = {}
    return converted


def to_openai_tool(function_doc: dict[str, Any], *, sanitize_name: bool = False) -> dict[str, Any]:
    """An OpenAI tool schema `{"type": "function", "function": {...}}` from a BFCL function doc."""
    name = function_doc["name"]
    parameters = to_json_schema(function_doc.get("parameters") or {"type": "dict", "properties": {}})
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    return {
        "type": "function",
        "function": {
            "name": openai_function_name(name) if sanitize_name else name,
            "description": function_doc.get("description", ""),
            "parameters": parameters,
        },
    }
