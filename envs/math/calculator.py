"""The `calculator` tool: exact arithmetic over a whitelisted Python-expression AST, never `eval`.

The expression is parsed with ``ast.parse(mode="eval")`` and walked node by node. Only numbers,
``+ - * / // % **`` (``^`` also means power, as in math notation), unary signs, parentheses, the
constants ``pi`` and ``e`` and a few functions are allowed. Rationals stay exact
(`fractions.Fraction`): ``1/3 + 1/6`` is ``1/2``, not ``0.5000000000000001``. Size limits on the
input, the node count, exponents and results keep every call in the millisecond range, so
``9**9**9`` is refused instead of computed.
"""

from __future__ import annotations

import ast
import decimal
import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_RESULT_DIGITS = 1000  # integers (and fraction parts) beyond 10^1000 are refused
MAX_FACTORIAL = 500

Number = Fraction | float | complex

CALCULATOR_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": (
            "Evaluate an arithmetic expression exactly. Supports + - * / // % ** (or ^), parentheses, "
            "pi, e and the functions sqrt, abs, round, min, max, floor, ceil, factorial, gcd, log (natural, "
            "or log(x, base)), log10, exp, sin, cos, tan. Fractions stay exact: 1/3 + 1/6 gives 1/2."
        ),
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression, e.g. '(3/4) * 120 - 2^5'"}},
            "required": ["expression"],
        },
    },
}


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be evaluated; the message is shown to the model."""


def _as_float(value: Number) -> float:
    if isinstance(value, complex):
        raise CalculatorError("complex numbers are not supported")
    try:
        return float(value)
    except OverflowError:
        raise CalculatorError(f"{format_number(value)[:40]}... is too large for this operation") from None


def _as_integer(value: Number, what: str) -> int:
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise CalculatorError(f"{what} needs an integer, got {format_number(value)}")


def _sqrt(x: Number) -> Number:
    if isinstance(x, Fraction) and x >= 0:
        num, den = math.isqrt(x.numerator), math.isqrt(x.denominator)
        if num * num == x.numerator and den * den == x.denominator:
            return Fraction(num, den)
    value = _as_float(x)
    if value < 0:
        raise CalculatorError(f"sqrt of a negative number ({format_number(x)})")
    return math.sqrt(value)


def _log(x: Number, base: Number | None = None) -> float:
    value = _as_float(x)
    if value <= 0:
        raise CalculatorError(f"log needs a positive argument, got {format_number(x)}")
    if base is None:
        return math.log(value)
    base_value = _as_float(base)
    if base_value <= 0 or base_value == 1:
        raise CalculatorError(f"log base must be positive and not 1, got {format_number(base)}")
    return math.log(value) / math.log(base_value)


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return Fraction(round(x if isinstance(x, Fraction) else _as_float(x)))
    places = _as_integer(digits, "round's digits")
    if abs(places) > 100:
        raise CalculatorError("round's digits must be between -100 and 100")
    return round(x, places) if isinstance(x, Fraction) else round(_as_float(x), places)


def _factorial(x: Number) -> Fraction:
    n = _as_integer(x, "factorial")
    if not 0 <= n <= MAX_FACTORIAL:
        raise CalculatorError(f"factorial is limited to 0..{MAX_FACTORIAL}, got {n}")
    return Fraction(math.factorial(n))


def _float_function(function: Callable[[float], float]) -> Callable[[Number], float]:
    return lambda x: function(_as_float(x))


FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {  # name -> (function, min args, max args)
    "sqrt": (_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, 20),
    "max": (max, 1, 20),
    "floor": (lambda x: Fraction(math.floor(x if isinstance(x, Fraction) else _as_float(x))), 1, 1),
    "ceil": (lambda x: Fraction(math.ceil(x if isinstance(x, Fraction) else _as_float(x))), 1, 1),
    "factorial": (_factorial, 1, 1),
    "gcd": (lambda a, b: Fraction(math.gcd(_as_integer(a, "gcd"), _as_integer(b, "gcd"))), 2, 2),
    "log": (_log, 1, 2),
    "ln": (_log, 1, 1),
    "log10": (lambda x: _log(x, Fraction(10)), 1, 1),
    "exp": (_float_function(math.exp), 1, 1),
    "sin": (_float_function(math.sin), 1, 1),
    "cos": (_float_function(math.cos), 1, 1),
    "tan": (_float_function(math.tan), 1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def _power(base: Number, exponent: Number) -> Number:
    """`base ** exponent`, refused before computing when the result would be astronomically large."""
    if isinstance(exponent, Fraction) and exponent.denominator == 1 and isinstance(base, Fraction):
        n = exponent.numerator
        if base == 0 and n < 0:
            raise CalculatorError("0 cannot be raised to a negative power")
        size = max(abs(base.numerator), base.denominator)
        if size > 1 and abs(n) * math.log10(size) > MAX_RESULT_DIGITS:
            raise CalculatorError(f"result too large: the power would have over {MAX_RESULT_DIGITS} digits")
        return base**n
    base_value, exponent_value = _as_float(base), _as_float(exponent)
    if base_value < 0 and not exponent_value.is_integer():
        raise CalculatorError("a negative number to a fractional power is not real")
    try:
        return base_value**exponent_value
    except (OverflowError, ZeroDivisionError) as exc:
        raise CalculatorError(f"power failed: {exc}") from exc


class _Evaluator:
    def __init__(self) -> None:
        self.nodes = 0

    def evaluate(self, node: ast.AST) -> Number:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise CalculatorError(f"expression too complex (over {MAX_NODES} syntax nodes)")
        if isinstance(node, ast.Expression):
            return self.evaluate(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise CalculatorError(f"only numbers are allowed, got {node.value!r:.40}")
            return Fraction(node.value) if isinstance(node.value, int) else _float_or_fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = self.evaluate(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if isinstance(node.op, (ast.Pow, ast.BitXor)):
                return _checked(_power(left, right))
            operation = _BINARY.get(type(node.op))
            if operation is None:
                raise CalculatorError(f"operator {type(node.op).__name__} is not allowed")
            try:
                return _checked(operation(left, right))
            except ZeroDivisionError as exc:
                raise CalculatorError("division by zero") from exc
            except OverflowError as exc:
                raise CalculatorError(f"result too large: {exc}") from exc
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise CalculatorError(f"unknown name {node.id!r:.40}; allowed constants: pi, e")
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculatorError(f"{type(node).__name__} is not allowed in a calculator expression")

    def _call(self, node: ast.Call) -> Number:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = repr(node.func.id)[:40] if isinstance(node.func, ast.Name) else "of this form"
            raise CalculatorError(f"unknown function {shown}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise CalculatorError(f"{node.func.id}() takes positional arguments only")
        function, min_args, max_args = FUNCTIONS[node.func.id]
        if not min_args <= len(node.args) <= max_args:
            raise CalculatorError(f"{node.func.id}() takes {min_args}..{max_args} arguments, got {len(node.args)}")
        arguments = [self.evaluate(argument) for argument in node.args]
        try:
            return _checked(function(*arguments))
        except (ValueError, OverflowError, TypeError) as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(f"{node.func.id}() failed: {exc}") from exc


def _float_or_fraction(value: float) -> Number:
    """Decimal literals are exact (0.1 is 1/10), as a person typing them means."""
    if not math.isfinite(value):
        raise CalculatorError("the number is too large")
    return Fraction(repr(value))


def _checked(value: Number) -> Number:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalculatorError("the result is too large or undefined")
        return value
    if isinstance(value, int):
        value = Fraction(value)
    for part in (value.numerator, value.denominator):
        if part.bit_length() > MAX_RESULT_DIGITS * 3.33:
            raise CalculatorError(f"result too large (over {MAX_RESULT_DIGITS} digits)")
    return value


def format_number(value: Number) -> str:
    """Integers as integers, exact fractions as ``p/q``, floats with 12 significant digits."""
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def evaluate_expression(expression: str) -> Number:
    """Evaluate a calculator expression; raises `CalculatorError` with a message for the model."""
    if not isinstance(expression, str):
        raise CalculatorError(f"'expression' must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_CHARS}")
    source = expression.replace("×", "*").replace("÷", "/").replace("−", "-").strip()
    if not source:
        raise CalculatorError("the expression is empty")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CalculatorError(f"not a valid expression: {type(exc).__name__}: {exc}"[:200]) from None
    try:
        return _Evaluator().evaluate(tree)
    except CalculatorError:
        raise
    except RecursionError:
        raise CalculatorError("expression nested too deeply") from None
    except (ArithmeticError, ValueError, TypeError) as exc:  # a last guard: the tool must never crash the env
        raise CalculatorError(f"could not evaluate: {type(exc).__name__}: {exc}"[:200]) from None


def calculator(expression: str) -> str:
    """The tool: the formatted result, or raises `CalculatorError` (the env turns it into tool error text)."""
    value = evaluate_expression(expression)
    try:
        text = format_number(value)
        if isinstance(value, Fraction) and value.denominator != 1:
            text += f" (≈ {approximate(value)})"
    except (ArithmeticError, ValueError, TypeError) as exc:  # formatting is inside the guard too
        raise CalculatorError(f"the result cannot be shown: {type(exc).__name__}: {exc}"[:200]) from None
    return text


def approximate(value: Fraction) -> str:
    """12 significant digits of an exact fraction, however large (a float overflows past 1e308)."""
    with decimal.localcontext() as context:
        context.prec = 14
        quotient = decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)
    if abs(quotient.adjusted()) < 300:  # the common case reads exactly as before: float formatting
        return f"{float(quotient):.12g}"
    return f"{quotient:.11e}".replace("E", "e")
