"""Limits on the values that model text and agents put into tool calls, rows and responses.

Two jobs share one walk over a JSON-like value:

- `argument_problem` checks a decoded tool call's arguments and names the first value no tool
  should receive: an integer beyond `MAX_INT_DIGITS` digits (a python-dialect ``0x…`` literal
  has no length limit, and Python refuses to print an int past 4,300 digits, so jsonschema's
  error message itself would crash), nesting deeper than `MAX_DEPTH` (jsonschema and json recurse
  and raise `RecursionError`), more than `MAX_NODES` values, or a type JSON cannot carry. The
  parsers turn a problem into a parse error, so the env answers with an invalid action.
- `json_safe` copies a value into one every JSON encoder accepts, replacing what cannot be
  encoded by a visible marker string and listing each replacement, so a results row or a server
  response is written in a safe form instead of failing.

Both are bounded: neither recurses deeper than `MAX_DEPTH` whatever the input holds.
"""

from __future__ import annotations

import math
from typing import Any

MAX_INT_DIGITS = 1000
_INT_LIMIT = 10**MAX_INT_DIGITS  # integers at or past this have more than MAX_INT_DIGITS digits
_INT_LIMIT_BITS = _INT_LIMIT.bit_length()  # anything shorter is below the limit: no big comparison
MAX_DEPTH = 100
MAX_NODES = 100_000
MAX_LISTED_PROBLEMS = 20

_SCALAR_KEYS = (str, int, float, bool, type(None))


def argument_problem(value: Any) -> str | None:
    """What makes decoded tool-call arguments unfit for a tool, or None when they are fine."""
    budget = [MAX_NODES]
    return _problem(value, 0, budget)


def _problem(value: Any, depth: int, budget: list[int]) -> str | None:
    budget[0] -= 1
    if budget[0] < 0:
        return f"hold more than {MAX_NODES} values"
    if depth > MAX_DEPTH:
        return f"are nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return None
    if isinstance(value, int):
        if _too_long(value):
            return f"hold an integer with more than {MAX_INT_DIGITS} digits"
        return None
    if isinstance(value, (list, tuple)):
        items: Any = value
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, _SCALAR_KEYS):
                return f"hold a {type(key).__name__} dict key, which JSON cannot carry"
            if isinstance(key, int) and _too_long(key):
                return f"hold an integer key with more than {MAX_INT_DIGITS} digits"
        items = value.values()
    else:
        return f"hold a {type(value).__name__} value, which JSON cannot carry"
    for item in items:
        problem = _problem(item, depth + 1, budget)
        if problem:
            return problem
    return None


def json_safe(value: Any, *, replace_surrogates: bool = False) -> tuple[Any, list[str]]:
    """A copy of `value` that any JSON encoder accepts, and a list of what was replaced.

    NaN and infinities become None (JSON has no such numbers; this is not listed as a problem).
    Integers past `MAX_INT_DIGITS` digits, values nested deeper than `MAX_DEPTH`, dict keys that
    are not scalars and objects with no JSON form become marker strings ``<unencodable: …>``
    and are listed by their path. Tuples and sets become lists, numpy scalars their Python value.
    With `replace_surrogates`, lone surrogates in strings become U+FFFD (for UTF-8 output).
    """
    problems: list[str] = []
    safe = _safe(value, "$", 0, problems, replace_surrogates)
    if len(problems) > MAX_LISTED_PROBLEMS:
        problems[MAX_LISTED_PROBLEMS:] = [f"... and {len(problems) - MAX_LISTED_PROBLEMS} more"]
    return safe, problems


def _marker(what: str, path: str, problems: list[str]) -> str:
    problems.append(f"{path if len(path) <= 120 else '…' + path[-119:]}: {what}")
    return f"<unencodable: {what}>"


def _safe(value: Any, path: str, depth: int, problems: list[str], replace_surrogates: bool) -> Any:
    if isinstance(value, str):
        return _clean_text(value) if replace_surrogates else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _too_long(value):
            return _marker(f"an integer of {value.bit_length()} bits", path, problems)
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return _marker(f"nested more than {MAX_DEPTH} levels deep", path, problems)
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            name = _key_text(key)
            if name is None:
                name = _marker(f"a {type(key).__name__} dict key", f"{path}.<key>", problems) + f" #{len(copied)}"
            elif replace_surrogates:
                name = _clean_text(name)
            copied[name] = _safe(item, f"{path}.{name[:40]}", depth + 1, problems, replace_surrogates)
        return copied
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        return [_safe(item, f"{path}[{i}]", depth + 1, problems, replace_surrogates) for i, item in enumerate(items)]
    converter = getattr(value, "item", None)  # numpy scalars
    if callable(converter):
        try:
            converted = converter()
        except Exception:  # any failure means "no JSON form", reported below
            converted = value
        if converted is not value and isinstance(converted, (int, float, bool, str)):
            return _safe(converted, path, depth, problems, replace_surrogates)
    return _marker(f"a {type(value).__name__} value", path, problems)


def brief(value: Any, limit: int = 80) -> str:
    """A short description of a model-supplied value for an error message; never raises.

    ``f"{value!r:.80}"`` is not safe on model output: ``repr`` of an integer past 4,300 digits
    raises, a value nested 10^5 deep exhausts the stack, and an object's ``__repr__`` may raise.
    Strings and small scalars read as their (cut) repr, anything else by its type.
    """
    if isinstance(value, str):
        return repr(value[:limit])[: limit + 2]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return f"an integer of {value.bit_length()} bits" if _too_long(value) else repr(int(value))[:limit]
    return f"a {type(value).__name__} value"


def _too_long(value: int) -> bool:
    return value.bit_length() >= _INT_LIMIT_BITS and abs(value) >= _INT_LIMIT


def _key_text(key: Any) -> str | None:
    """A dict key as the standard library's json writes it, or None for keys it refuses."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return None if _too_long(key) else str(key)
    if isinstance(key, float):
        return repr(key) if math.isfinite(key) else None
    return None


def _clean_text(text: str) -> str:
    """`text` with each lone surrogate (unencodable in UTF-8) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # Through UTF-16: a split pair is joined back into its character, a lone half becomes U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
