"""The ``python`` dialect's decoder: BFCL call syntax, ``[f(a=1), pkg.g(b="x")]``, read from the AST.

Two readings, both built on :func:`ast.parse` and never on ``eval``:

- ``"official"``: exactly BFCL's prompting decoder (bfcl-eval 2026.3.23,
  ``model_handler/utils.py``: ``default_decode_ast_prompting`` -> ``ast_parse`` ->
  ``resolve_ast_by_type``), so a score is comparable with the leaderboard. The whole turn is one
  call list or nothing: backticks, newlines and spaces are stripped from both ends, the text is
  wrapped in ``[`` ``]`` when it lacks them, and any failure fails the whole turn. Values read
  as BFCL reads them: a bare name is its own string (``unit=units`` -> ``"units"``), arithmetic
  is computed (``base=9+1`` -> 10; here by folding literal arithmetic on the tree, with size
  bounds), positional arguments are dropped, a tuple stays a tuple (the checker turns it into a
  list only for a ``tuple`` parameter), ``-x`` negates any constant (also ``+5`` -> -5, as BFCL
  does), a call without keywords is its source text, and ``a[i]`` is its source text.
- ``"lenient"``: ToolGym's reading for tool worlds and for users who want it on BFCL: the call
  list may sit in a code fence or beside ``<answer>`` tags, text without call syntax is no call
  (not an error), each call is read on its own, values must be literals (a bare name or a
  positional argument is an error the model is told about, since a tool world runs the call),
  arithmetic is folded as above, and tuples and sets become lists.

Deliberate deviations from BFCL in ``"official"`` (rare, each documented in the README): BFCL
``eval``s arithmetic, so arithmetic that calls functions or reads names succeeds there and fails
here (``%``-formatting of literals is folded, with its result size bounded first). A turn BFCL
decodes but ToolGym refuses (values JSON cannot carry: bytes, complex numbers, tuple dict keys,
sets made by arithmetic; values past the fold or argument bounds; more than `MAX_CALLS_PER_TURN`
calls) is still decoded to its end and marked `ParsedTurn.refused_calls`: no call runs, the AST
categories fail it (BFCL's type or count check does too), and (ir)relevance rows count it as a
call, as BFCL does. Sources over ``MAX_CALL_CHARS`` are not decoded at all.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any, Literal

from .tool_calls import ANSWER_TAG_RE, MAX_CALL_CHARS, MAX_CALLS_PER_TURN, MAX_PARSE_CHARS, ParsedTurn, ToolCall

PythonDecoding = Literal["official", "lenient"]
PYTHON_DECODINGS: tuple[str, ...] = ("official", "lenient")

MAX_FOLDED_INT_BITS = 10_000  # ~3,000 digits: below CPython's 4,300-digit int <-> str limit
MAX_FOLDED_LENGTH = 100_000  # elements or characters of a folded string, list or tuple

_FENCE_RE = re.compile(r"```(?:python|py)?\s*(.*?)```", re.DOTALL)
_CALL_START_RE = re.compile(r"^\[?\s*[A-Za-z_][\w.]*\s*\(")
_EMPTY_LIST_RE = re.compile(r"^\[\s*\]$")


class _Undecodable(Exception):
    """A value (or a whole turn) the decoder cannot read; the message says why."""


class _Refused(_Undecodable):
    """A value BFCL's decoder reads but ToolGym refuses: past a size bound, or with no JSON form."""


def parse_python_calls(text: str, decoding: str = "lenient") -> ParsedTurn:
    """Decode BFCL call syntax in `text` under one of `PYTHON_DECODINGS`. Never raises on model text."""
    if decoding == "official":
        return _parse_official(text)
    if decoding == "lenient":
        return _parse_lenient(text)
    raise ValueError(f"unknown python decoding {decoding!r}; expected one of {PYTHON_DECODINGS}")


# --- official (BFCL's default_decode_ast_prompting) -----------------------------------------------


def bfcl_source(text: str) -> str:
    """The string BFCL hands to `ast.parse`: ends stripped of backticks/newlines/spaces, bracketed."""
    source = text.strip("`\n ")
    if not source.startswith("["):
        source = "[" + source
    if not source.endswith("]"):
        source = source + "]"
    return source.strip().strip("'")


def _parse_official(text: str) -> ParsedTurn:
    parsed = ParsedTurn(text=text)
    source = bfcl_source(text)
    if len(source) > MAX_CALL_CHARS:
        parsed.errors.append(f"call source is {len(source)} characters; the limit is {MAX_CALL_CHARS}")
        return parsed
    try:
        body = ast.parse(source, mode="eval").body
        if isinstance(body, ast.Call):
            nodes: list[ast.expr] = [body]
        elif isinstance(body, (ast.List, ast.Tuple, ast.Set)):
            nodes = list(body.elts)
        else:
            raise _Undecodable(f"expected a list of calls, got {type(body).__name__}")
        refusals: list[str] = []  # BFCL decodes past these; the turn is still decoded to the end
        calls = []
        for node in nodes:
            if not isinstance(node, ast.Call):
                raise _Undecodable(f"expected a function call, got {type(node).__name__}")
            calls.append(_official_call(node, refusals))
        if len(nodes) > MAX_CALLS_PER_TURN:
            refusals.append(f"{len(nodes)} calls; the limit is {MAX_CALLS_PER_TURN}")
    except (_Undecodable, SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError, MemoryError) as exc:
        parsed.errors.append(f"BFCL cannot decode the turn: {type(exc).__name__}: {exc}"[:300])
        return parsed
    if refusals:  # decoded, but no call runs; BFCL's relevance checks still see a call
        parsed.errors.append(f"BFCL decodes the turn, but ToolGym refuses it: {refusals[0]}"[:300])
        parsed.refused_calls = True
        return parsed
    parsed.tool_calls = calls
    parsed.empty_call_list = not calls
    return parsed


def _official_name(func: ast.expr) -> str:
    """BFCL's `resolve_ast_call` name: the dotted attribute chain, its base only if a plain name."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _official_call(node: ast.Call, refusals: list[str]) -> ToolCall:
    """BFCL's `resolve_ast_call`; a value BFCL reads but ToolGym refuses is listed in `refusals`
    (and stands as None) so the rest of the turn is still decoded as BFCL would."""
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:  # positional arguments are dropped, as in BFCL
        # BFCL keys a `**mapping` argument by None; "**" keeps it a string and still not a parameter.
        try:
            value = checked_value(_official_value(keyword.value, refusals))
        except _Refused as exc:
            refusals.append(f"argument {keyword.arg!r}: {exc}")
            value = None
        arguments[keyword.arg if keyword.arg is not None else "**"] = value
    return ToolCall(name=_official_name(node.func), arguments=arguments)


def _official_value(node: ast.expr, refusals: list[str]) -> Any:
    """BFCL's `resolve_ast_by_type`, case by case, with arithmetic folded instead of `eval`ed."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):  # BFCL negates `operand.value` whatever the operator is
        if not isinstance(node.operand, ast.Constant):
            raise _Undecodable(f"unary {type(node.op).__name__} of a {type(node.operand).__name__}")
        return -node.operand.value
    if isinstance(node, ast.List):
        return [_official_value(item, refusals) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_official_value(item, refusals) for item in node.elts)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _Undecodable("a ** entry in a dict")
        return {
            _official_value(k, refusals): _official_value(v, refusals)  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, ast.BinOp):
        return fold_literal_arithmetic(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return ast.unparse(node) if not node.keywords else _official_call(node, refusals).as_bfcl_dict()
    if isinstance(node, ast.Subscript):
        return f"{ast.unparse(node.value)}[{ast.unparse(node.slice)}]"
    raise _Undecodable(f"unsupported value syntax {type(node).__name__}")


# --- lenient (ToolGym's reading) ------------------------------------------------------------------


def _lenient_source(text: str) -> str | None:
    fenced = _FENCE_RE.search(text[:MAX_PARSE_CHARS])
    source = (fenced.group(1) if fenced else text[:MAX_PARSE_CHARS]).strip()
    source = ANSWER_TAG_RE.sub("", source).strip()
    # Only text that looks like a call, a list of calls or an empty list is an attempt to call.
    if not source or not (_CALL_START_RE.match(source) or _EMPTY_LIST_RE.match(source)):
        return None
    return source


def _parse_lenient(text: str) -> ParsedTurn:
    """Text with no call-shaped source yields no calls and no error."""
    parsed = ParsedTurn(text=text)
    source = _lenient_source(text)
    if source is None:
        return parsed
    if len(source) > MAX_CALL_CHARS:
        parsed.errors.append(f"call source is {len(source)} characters; the limit is {MAX_CALL_CHARS}")
        return parsed
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        parsed.errors.append(f"not valid call syntax: {type(exc).__name__}: {exc}"[:300])
        return parsed
    body = tree.body
    nodes = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    for node in nodes[:MAX_CALLS_PER_TURN]:
        call, error = _lenient_call(node)
        if call is not None:
            parsed.tool_calls.append(call)
        else:
            parsed.errors.append(error)
    parsed.empty_call_list = not nodes
    return parsed


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = _dotted_name(node.value)
        return None if prefix is None else f"{prefix}.{node.attr}"
    return None


def _lenient_call(node: ast.expr) -> tuple[ToolCall | None, str]:
    if not isinstance(node, ast.Call):
        return None, f"expected a function call, got {type(node).__name__}"
    name = _dotted_name(node.func)
    if name is None:
        return None, "a call's function must be a plain or dotted name"
    if node.args:
        return None, f"{name}: use keyword arguments only (name=value)"
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None, f"{name}: **kwargs are not allowed"
        try:
            arguments[keyword.arg] = checked_value(_as_json_shapes(_lenient_value(keyword.value)))
        except _NotJson as exc:
            return None, (
                f"{name}: argument {keyword.arg!r} holds {exc}, which JSON cannot carry; "
                "use str, number, bool, None, list or dict"
            )
        except (_Undecodable, ValueError, TypeError, ArithmeticError, RecursionError, MemoryError) as exc:
            return None, f"{name}: argument {keyword.arg!r} is not a literal value ({exc})"[:300]
    return ToolCall(name=name, arguments=arguments), ""


def _lenient_value(node: ast.expr) -> Any:
    """Python literals (as `ast.literal_eval` reads them) plus folded literal arithmetic."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_lenient_value(item) for item in node.elts]
    if isinstance(node, ast.Tuple):  # a tuple stays hashable until the JSON step (a dict key must)
        return tuple(_lenient_value(item) for item in node.elts)
    if isinstance(node, ast.Set):
        return {_lenient_value(item) for item in node.elts}
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _Undecodable("a ** entry in a dict")
        return {_lenient_value(k): _lenient_value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return fold_literal_arithmetic(node)
    if isinstance(node, ast.Name):
        raise _Undecodable(f"bare name {node.id!r}; quote strings")
    raise _Undecodable(f"{type(node).__name__} is not a literal")


# --- literal arithmetic, folded on the tree ------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}


def fold_literal_arithmetic(node: ast.expr) -> Any:
    """Compute arithmetic over literals as Python would (``9+1`` -> 10, ``"a"*2`` -> "aa"), within bounds.

    Only constants, list/tuple/dict displays and operators are read; a name, a call or any other
    syntax is refused, and so is a result past `MAX_FOLDED_INT_BITS` or `MAX_FOLDED_LENGTH`
    (checked before computing it), so ``2**10**10`` costs nothing.
    """
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int) and node.value.bit_length() > MAX_FOLDED_INT_BITS:
            raise _Refused(f"an integer over {MAX_FOLDED_INT_BITS} bits")
        return node.value
    if isinstance(node, ast.List):
        return [fold_literal_arithmetic(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(fold_literal_arithmetic(item) for item in node.elts)
    if isinstance(node, ast.Set):
        return {fold_literal_arithmetic(item) for item in node.elts}
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {fold_literal_arithmetic(k): fold_literal_arithmetic(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _bounded(_UNARY[type(node.op)](fold_literal_arithmetic(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = fold_literal_arithmetic(node.left), fold_literal_arithmetic(node.right)
        _refuse_huge(type(node.op), left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    raise _Undecodable(f"arithmetic over {type(node).__name__}, which is not a literal")


def _int_bits(value: Any) -> int:
    return abs(int(value)).bit_length() if isinstance(value, int) else 0


def _refuse_huge(op: type[ast.operator], left: Any, right: Any) -> None:
    """Estimate a result's size before computing it (big powers, shifts and repetitions)."""
    big_power = isinstance(right, int) and (
        right > MAX_FOLDED_INT_BITS or _int_bits(left) * right > MAX_FOLDED_INT_BITS + 64
    )
    if op is ast.Pow and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and big_power:
        raise _Refused(f"a power over {MAX_FOLDED_INT_BITS} bits")
    if op is ast.LShift and isinstance(left, int) and isinstance(right, int) and left and right > MAX_FOLDED_INT_BITS:
        raise _Refused(f"a shift over {MAX_FOLDED_INT_BITS} bits")
    if op is ast.Mult:
        for sequence, count in ((left, right), (right, left)):
            sized = isinstance(sequence, (str, bytes, list, tuple)) and isinstance(count, int)
            if sized and len(sequence) * max(count, 0) > MAX_FOLDED_LENGTH:
                raise _Refused(f"a repetition over {MAX_FOLDED_LENGTH} items")
    if op is ast.Mod and isinstance(left, (str, bytes)):
        _refuse_huge_format(left, right)


_FORMAT_FIELD_RE = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _refuse_huge_format(template: str | bytes, arguments: Any) -> None:
    """%-formatting (``'%d' % 5``, which BFCL computes) is folded only when its result stays small:
    widths and precisions are read from the template, and every argument must be a scalar whose
    text size is known without formatting it (a container's repr could be any size)."""
    raw = template.encode("utf-8", "surrogatepass") if isinstance(template, str) else template
    size = len(raw)
    for width, precision in _FORMAT_FIELD_RE.findall(raw):
        for number in (width, precision):
            if number == b"*":
                raise _Refused("a %-format width taken from the arguments")
            size += int(number) if number and len(number) < 9 else 0 if not number else MAX_FOLDED_LENGTH + 1
    values = (
        arguments.values()
        if isinstance(arguments, dict)
        else arguments
        if isinstance(arguments, tuple)
        else [arguments]
    )
    for value in values:
        if isinstance(value, (str, bytes)):
            size += len(value)
        elif isinstance(value, (int, float)) or value is None:  # ints are fold-bounded; floats < 1e309
            size += 320 + _int_bits(value) // 3
        else:
            raise _Refused(f"%-formatting of a {type(value).__name__}")
    if size > MAX_FOLDED_LENGTH:
        raise _Refused(f"a %-formatted result over {MAX_FOLDED_LENGTH} characters")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_FOLDED_INT_BITS:
        raise _Refused(f"a result over {MAX_FOLDED_INT_BITS} bits")
    if isinstance(value, (str, bytes, list, tuple, set, dict)) and len(value) > MAX_FOLDED_LENGTH:
        raise _Refused(f"a result over {MAX_FOLDED_LENGTH} items")
    return value


# --- values JSON can carry ------------------------------------------------------------------------


class _NotJson(_Refused):
    """A Python value with no JSON counterpart (bytes, complex, Ellipsis, a set, a tuple dict key)."""


_JSON_SCALARS = (str, int, float, bool, type(None))


def _as_json_shapes(value: Any) -> Any:
    """The lenient reading: tuples and sets become lists, so values match JSON-decoded ones."""
    if isinstance(value, (tuple, list)):
        return [_as_json_shapes(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_as_json_shapes(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: _as_json_shapes(v) for k, v in value.items()}
    return value


def checked_value(value: Any) -> Any:
    """The last step for every decoded argument value: refuse what JSON cannot carry.

    Tuples pass (JSON writes them as lists; BFCL's checker needs to see them as tuples).
    """
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            checked_value(item)
        return value
    if isinstance(value, dict):
        bad_key = next((k for k in value if not isinstance(k, _JSON_SCALARS)), None)
        if bad_key is not None:
            raise _NotJson(f"a {type(bad_key).__name__} dict key")
        for item in value.values():
            checked_value(item)
        return value
    raise _NotJson(f"a {type(value).__name__} value")
