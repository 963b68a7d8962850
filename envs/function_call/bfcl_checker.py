"""BFCL's AST checker, re-implemented: is a list of parsed calls an acceptable answer?

The rules follow `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (ShishirPatil/gorilla) for
Python categories, with BFCL's error-type names so reports are comparable:

- dispatch: a category containing "parallel" is matched order-free, "multiple" needs exactly one
  call checked against the expected function, anything else ("simple") exactly one call;
- a call must use the expected name exactly, give every `required` parameter, and no parameter
  that is outside the schema or absent from the possible answer;
- types follow BFCL's Python mapping (`float` accepts an int, `tuple` is a list and a Python tuple
  given for it becomes one, `any` is a str, arrays are type-checked one level deep); a value of the possible answer's type instead of the
  schema's counts as a "variable" and is compared as is;
- strings are compared after `standardize_string` (drop ` ,./-_*^`, lowercase, `'` -> `"`),
  lists element-wise, dicts key by key; a possible-answer list holding "" makes the parameter
  optional;
- (ir)relevance: irrelevance passes iff the turn decodes to no call, relevance iff it decodes to
  at least one.

Java / JavaScript categories are not supported (their values need BFCL's type converters).
Deviation: a schema type outside BFCL's Python mapping is not type-checked (BFCL would crash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Call = tuple[str, dict[str, Any]]

PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NESTED_TYPES = ("array", "tuple")
_STANDARDIZE_RE = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: `valid`, BFCL's `error_type` ("" when valid) and a readable `error`."""

    valid: bool
    error_type: str = ""
    error: str = ""


_VALID = CheckResult(True)


def standardize_string(text: str) -> str:
    """BFCL's string normalization: "April 1, 2024" and "april 1 2024" compare equal."""
    return _STANDARDIZE_RE.sub("", text).lower().replace("'", '"')


def check_bfcl(
    category: str,
    functions: list[dict[str, Any]],
    ground_truth: list[dict[str, Any]] | None,
    calls: list[Call] | None,
    decode_errors: list[str] | tuple[str, ...] = (),
    refused_calls: bool = False,
) -> CheckResult:
    """Score one single-turn answer, as BFCL's eval runner does after decoding.

    `calls` are the decoded (name, arguments) pairs, `[]` for an answer that decoded to an empty
    call list (BFCL then reports `*:wrong_count`), or None when the turn did not decode; any
    decode error also means it did not (BFCL's decoder fails on the whole output).
    `refused_calls` marks a turn BFCL decodes but ToolGym refused (`ParsedTurn.refused_calls`):
    it fails the AST categories, and counts as a call in the (ir)relevance ones, as in BFCL.
    """
    decoded = calls is not None and not decode_errors
    has_calls = (decoded and bool(calls)) or refused_calls
    if "irrelevance" in category:
        if has_calls:
            return CheckResult(False, "irrelevance_error:decoder_success", "made a call where none was expected")
        return _VALID
    if "relevance" in category:
        if not has_calls:
            return CheckResult(False, "relevance_error:decoder_failed", "made no call where one was expected")
        return _VALID
    if ground_truth is None:
        raise ValueError(f"category {category!r} needs a ground truth to check against")
    if not decoded or calls is None:
        reason = "; ".join(decode_errors) if decode_errors else "the turn holds no function call"
        return CheckResult(False, "ast_decoder:decoder_failed", reason[:500])
    return ast_check(category, functions, ground_truth, calls)


def ast_check(
    category: str, functions: list[dict[str, Any]], ground_truth: list[dict[str, Any]], calls: list[Call]
) -> CheckResult:
    """BFCL's `ast_checker` dispatch on the category name."""
    if "parallel" in category:
        return _parallel_no_order(functions, calls, ground_truth)
    if "multiple" in category:
        if len(calls) != len(ground_truth):
            return CheckResult(False, "multiple_function_checker:wrong_count", "Wrong number of functions.")
        return _simple(_find_doc(functions, _expected_name(ground_truth[0])), calls[0], ground_truth[0])
    if len(calls) != 1:
        return CheckResult(False, "simple_function_checker:wrong_count", "Wrong number of functions.")
    return _simple(functions[0] if functions else None, calls[0], ground_truth[0])


def _expected_name(answer: dict[str, Any]) -> str:
    return next(iter(answer))


def _find_doc(functions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((doc for doc in functions if doc.get("name") == name), None)


def _parallel_no_order(
    functions: list[dict[str, Any]], calls: list[Call], ground_truth: list[dict[str, Any]]
) -> CheckResult:
    if len(calls) != len(ground_truth):
        return CheckResult(False, "parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
    matched: set[int] = set()
    for answer_index, answer in enumerate(ground_truth):
        doc = _find_doc(functions, _expected_name(answer))
        sub_errors = []
        for call_index, call in enumerate(calls):
            if call_index in matched:
                continue
            result = _simple(doc, call, answer)
            if result.valid:
                matched.add(call_index)
                break
            sub_errors.append(f"call {call_index}: {result.error_type}")
        else:
            return CheckResult(
                False,
                "parallel_function_checker_no_order:cannot_find_match",
                f"no call matches expected call {answer_index} ({_expected_name(answer)}): " + "; ".join(sub_errors),
            )
    return _VALID


def _simple(doc: dict[str, Any] | None, call: Call, answer: dict[str, Any]) -> CheckResult:
    """BFCL's `simple_function_checker` for one call against one expected call."""
    answer_name, allowed = next(iter(answer.items()))
    name, arguments = call
    if doc is None:
        return CheckResult(False, "simple_function_checker:wrong_func_name", f"no function doc named {answer_name!r}")
    expected_name = doc.get("name")  # BFCL checks the doc's name; a few answers spell it differently
    if name != expected_name:
        return CheckResult(
            False,
            "simple_function_checker:wrong_func_name",
            f"Function name {expected_name!r} not found in model output.",
        )
    parameters = doc.get("parameters") or {}
    properties = parameters.get("properties") or {}
    for param in parameters.get("required") or []:
        if param not in arguments:
            return CheckResult(
                False, "simple_function_checker:missing_required", f"Missing required parameter: {param!r}."
            )
    for param, value in arguments.items():
        if param not in properties or param not in allowed:
            return CheckResult(False, "simple_function_checker:unexpected_param", f"Unexpected parameter: {param!r}.")
        result = _check_param(param, value, properties[param], allowed[param])
        if not result.valid:
            return result
    for param, options in allowed.items():
        if param not in arguments and "" not in options:
            return CheckResult(
                False,
                "simple_function_checker:missing_optional",
                f"Optional parameter {param!r} not provided and not marked as optional.",
            )
    return _VALID


def _check_param(param: str, value: Any, detail: dict[str, Any], options: list[Any]) -> CheckResult:
    type_name = detail.get("type")
    expected_type = PYTHON_TYPES.get(type_name) if isinstance(type_name, str) else None
    nested_type = None
    if type_name in _NESTED_TYPES:
        items = detail.get("items")
        item_type = items.get("type") if isinstance(items, dict) else None
        nested_type = PYTHON_TYPES.get(item_type) if isinstance(item_type, str) else None
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)  # BFCL's own conversion; a tuple for an `array` parameter stays a type error
    if type_name == "float" and type(value) is int:
        value = float(value)  # Python's own int -> float promotion
    is_variable = False
    if expected_type is not None:
        type_result, is_variable = _type_check(param, value, options, str(type_name), expected_type, nested_type)
        if not type_result.valid:
            return type_result
    if not is_variable and expected_type is not None:
        if expected_type is dict:
            return _dict_check(param, value, options)
        if expected_type is list and nested_type is dict:
            return _list_of_dicts_check(param, value, options)
        if expected_type is str:
            return _string_check(param, value, options)
        if expected_type is list:
            return _list_check(param, value, options)
    if value not in options:
        return CheckResult(
            False,
            "value_error:others",
            f"Invalid value for parameter {param!r}: {value!r:.200}. Expected one of {options!r:.200}.",
        )
    return _VALID


def _answer_type(options: list[Any]) -> type | None:
    return next((type(option) for option in options if option != ""), None)


def _type_check(
    param: str, value: Any, options: list[Any], type_name: str, expected_type: type, nested_type: type | None
) -> tuple[CheckResult, bool]:
    """BFCL's `type_checker`: (verdict, is_variable). Nested checks go one level deep, as in BFCL."""
    answer_type = _answer_type(options)
    is_variable = answer_type is not None and answer_type is not expected_type
    nested_failed = False
    if type(value) is expected_type:
        if nested_type is None:
            return _VALID, is_variable
        for option in options:
            fits = True
            if type(option) is list:
                fits = all(
                    _type_check(param, item, option, nested_type.__name__, nested_type, None)[0].valid for item in value
                )
            if fits:
                return _VALID, is_variable
        nested_failed = True
    if answer_type is not None and type(value) is answer_type:
        if nested_failed:
            return CheckResult(
                False, "type_error:nested", f"Nested type checking failed for parameter {param!r}."
            ), True
        return _VALID, True
    return (
        CheckResult(
            False,
            "type_error:simple",
            f"Incorrect type for parameter {param!r}. Expected type {type_name}, got {type(value).__name__}.",
        ),
        False,
    )


def _standardized(value: Any) -> Any:
    return standardize_string(value) if isinstance(value, str) else value


def _string_check(param: str, value: str, options: list[Any]) -> CheckResult:
    if standardize_string(value) not in [standardize_string(o) for o in options if isinstance(o, str)]:
        return CheckResult(
            False,
            "value_error:string",
            f"Invalid value for parameter {param!r}: {value!r:.200}. Expected one of {options!r:.200}. Case insensitive.",
        )
    return _VALID


def _list_check(param: str, value: list[Any], options: list[Any]) -> CheckResult:
    candidates = [[_standardized(item) for item in option] for option in options if isinstance(option, (list, str))]
    if [_standardized(item) for item in value] not in candidates:
        return CheckResult(
            False,
            "value_error:list/tuple",
            f"Invalid value for parameter {param!r}: {value!r:.200}. Expected one of {options!r:.200}.",
        )
    return _VALID


def _dict_check(param: str, value: dict[str, Any], options: list[Any]) -> CheckResult:
    """Key by key against each candidate dict (whose values are lists of allowed values)."""
    result = CheckResult(False, "dict_checker:unclear", f"no candidate for {param!r} matched")
    for option in options:
        if option == "" or not isinstance(option, dict):
            continue
        result = _dict_against(value, option)
        if result.valid:
            return _VALID
    return result


def _dict_against(value: dict[str, Any], candidate: dict[str, Any]) -> CheckResult:
    for key, item in value.items():
        if key not in candidate:
            return CheckResult(False, "value_error:dict_key", f"Unexpected dict key parameter: {key!r}.")
        allowed = candidate[key] if isinstance(candidate[key], list) else [candidate[key]]
        if _standardized(item) not in [_standardized(a) for a in allowed]:
            return CheckResult(False, "value_error:dict_value", f"Invalid value for parameter {key!r}: {item!r:.200}.")
    for key, allowed in candidate.items():
        if key not in value and "" not in (allowed if isinstance(allowed, list) else [allowed]):
            return CheckResult(False, "value_error:dict_key", f"Missing dict key parameter: {key!r}.")
    return _VALID


def _list_of_dicts_check(param: str, value: list[Any], options: list[Any]) -> CheckResult:
    """Each dict in order against the candidate list's dicts (BFCL's `list_dict_checker`)."""
    result = CheckResult(False, "list_dict_checker:unclear", f"no candidate for {param!r} matched")
    for option in options:
        if not isinstance(option, list):
            continue
        if len(value) != len(option):
            result = CheckResult(False, "value_error:list_dict_count", "Wrong number of dictionaries in the list.")
            continue
        for item, candidate in zip(value, option):
            result = (
                _dict_check(param, item, [candidate])
                if isinstance(item, dict)
                else CheckResult(False, "value_error:dict_value", f"{param!r} must be a list of dicts")
            )
            if not result.valid:
                break
        else:
            return _VALID
    return result
