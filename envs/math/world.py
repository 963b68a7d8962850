"""A procedural world of arithmetic and algebra word problems with exact answers.

Every problem is a pure function of `(seed, difficulty)`: `random.Random(seed)` drives all
choices and the answer is computed with `fractions.Fraction`, so there is no rounding anywhere.
Rows are in the MATH format (`problem`, `answer` in LaTeX such as ``\\frac{3}{4}``, `unique_id`,
`level`), so the env, the oracle and the verifier treat them exactly like MATH-500 rows.

`difficulty` (1–5) sets the number of operations and the size of the numbers. Kinds:
``arithmetic`` (multi-step word problems), ``linear`` (solve ax+b=c, fractional solutions from
difficulty 3), ``fractions`` (sums and products of fractions) and ``percent`` (chained changes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from typing import Any

from toolgym.envs.tasks import ProceduralTasks

KINDS: tuple[str, ...] = ("arithmetic", "linear", "fractions", "percent")
MIN_DIFFICULTY, MAX_DIFFICULTY = 1, 5

_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena")
_ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells", "coins", "cards")


def latex_number(value: Fraction) -> str:
    """Exact LaTeX for a rational: ``12``, ``-\\frac{3}{4}``."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def decimal_number(value: Fraction) -> str:
    """A terminating decimal without trailing zeros (callers ensure the denominator is 2^a 5^b)."""
    if value.denominator == 1:
        return str(value.numerator)
    digits = 0
    scaled = value
    while scaled.denominator != 1:
        scaled *= 10
        digits += 1
    sign = "-" if scaled < 0 else ""
    text = str(abs(scaled.numerator)).rjust(digits + 1, "0")
    return f"{sign}{text[:-digits]}.{text[-digits:]}"


def _fraction_latex_term(value: Fraction) -> str:
    return latex_number(value) if value >= 0 else f"\\left({latex_number(value)}\\right)"


def _count(k: int, items: str) -> str:
    """`1 apple`, `3 apples` (every item name is a regular -s plural)."""
    return f"{k} {items[:-1] if k == 1 else items}"


def _arithmetic(rng: random.Random, difficulty: int) -> tuple[str, Fraction]:
    """A story of `difficulty + 1` integer steps (gain, lose, multiply, share) on a count of items."""
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    scale = 10 * difficulty
    count = rng.randint(2, scale)
    sentences = [f"{name} has {_count(count, item)}."]
    for _ in range(difficulty + 1):
        move = rng.choice(("gain", "lose", "times", "share"))
        if move == "lose" and count > 1:
            k = rng.randint(1, count - 1)
            count -= k
            sentences.append(f"{name} gives away {_count(k, item)}.")
        elif move == "times" and count <= 1000:
            k = rng.randint(2, 2 + difficulty)
            count *= k
            sentences.append(f"Then the number of {item} {name} has becomes {k} times as large.")
        elif move == "share" and count >= 4:
            divisors = [d for d in range(2, min(count, 12) + 1) if count % d == 0]
            if divisors:
                d = rng.choice(divisors)
                count //= d
                sentences.append(
                    f"{name} splits the {item} equally into {d} boxes and keeps only one box, giving the other boxes away."
                )
                continue
            k = rng.randint(1, scale)
            count += k
            sentences.append(f"{name} finds {k} more {item if k > 1 else item[:-1]}.")
        else:
            k = rng.randint(1, scale)
            count += k
            sentences.append(f"{name} buys {k} more {item if k > 1 else item[:-1]}.")
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), Fraction(count)


def _linear(rng: random.Random, difficulty: int) -> tuple[str, Fraction]:
    """Solve for x; integer solutions up to difficulty 2, fractions after, x on both sides from 4."""
    bound = 5 * difficulty
    x = Fraction(rng.randint(-bound, bound))
    if difficulty >= 3:
        x = Fraction(rng.randint(-bound, bound), rng.randint(2, 2 + difficulty))
    a = rng.choice([k for k in range(-bound, bound + 1) if k not in (0, 1)])
    b = rng.randint(-bound * 2, bound * 2)
    if difficulty >= 4:
        c = rng.choice([k for k in range(-bound, bound + 1) if k != a and k != 0])
        d = (a - c) * x + b  # a x + b = c x + d holds at x
        left, right = _linear_side(a, Fraction(b)), _linear_side(c, d)
    else:
        left, right = _linear_side(a, Fraction(b)), latex_number(a * x + b)
    return f"Solve for $x$: ${left} = {right}$.", x


def _linear_side(coefficient: int, constant: Fraction) -> str:
    term = {1: "x", -1: "-x"}.get(coefficient, f"{coefficient}x")
    if constant == 0:
        return term
    sign = "+" if constant > 0 else "-"
    return f"{term} {sign} {latex_number(abs(constant))}"


def _fractions(rng: random.Random, difficulty: int) -> tuple[str, Fraction]:
    """Evaluate a chain of `difficulty + 1` fractions joined by + - and (from difficulty 3) times."""
    max_denominator = 3 + 2 * difficulty
    operators = ["+", "-"] + (["\\times"] if difficulty >= 3 else [])
    terms = [Fraction(rng.randint(1, max_denominator), rng.randint(2, max_denominator)) for _ in range(difficulty + 1)]
    ops = [rng.choice(operators) for _ in range(difficulty)]
    # Precedence: multiply first, like the reader would.
    values, pending = [terms[0]], []
    for op, term in zip(ops, terms[1:]):
        if op == "\\times":
            values[-1] *= term
        else:
            pending.append(op)
            values.append(term)
    result = values[0]
    for op, value in zip(pending, values[1:]):
        result = result + value if op == "+" else result - value
    expression = latex_number(terms[0]) + "".join(f" {op} {_fraction_latex_term(t)}" for op, t in zip(ops, terms[1:]))
    return f"Compute ${expression}$. Express your answer as a fraction in lowest terms.", result


def _percent(rng: random.Random, difficulty: int) -> tuple[str, Fraction]:
    """A price changed by `difficulty` successive percentage increases and decreases."""
    item = rng.choice(("jacket", "bicycle", "lamp", "backpack", "phone", "guitar", "tent"))
    price = Fraction(rng.randint(2, 20 * difficulty) * 10)
    sentences = [f"A {item} costs {price.numerator} dollars."]
    steps = ("first", "then", "after that", "next", "finally")
    for step in range(difficulty):
        percent = rng.choice((5, 10, 15, 20, 25, 30, 40, 50)) if difficulty > 1 else rng.choice((10, 20, 25, 50))
        raise_price = rng.random() < 0.5
        price = price * (100 + percent if raise_price else 100 - percent) / 100
        verb = "increases" if raise_price else "decreases"
        sentences.append(f"{steps[step].capitalize()} the price {verb} by {percent}%.")
    sentences.append("What is the final price in dollars?")
    return " ".join(sentences), price


_GENERATORS: dict[str, Callable[[random.Random, int], tuple[str, Fraction]]] = {
    "arithmetic": _arithmetic,
    "linear": _linear,
    "fractions": _fractions,
    "percent": _percent,
}


def generate_problem(seed: int, difficulty: int = 2, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """One MATH-format row, a pure function of its arguments."""
    check_difficulty(difficulty)
    unknown = [k for k in kinds if k not in _GENERATORS]
    if unknown or not kinds:
        raise ValueError(f"unknown problem kinds {unknown or kinds!r}; choose from {KINDS}")
    rng = random.Random(seed)
    kind = kinds[rng.randrange(len(kinds))]
    problem, value = _GENERATORS[kind](rng, difficulty)
    answer = decimal_number(value) if kind == "percent" else latex_number(value)
    return {
        "problem": problem,
        "answer": answer,
        "unique_id": f"procedural/{kind}/d{difficulty}/{seed}",
        "level": difficulty,
        "kind": kind,
    }


def check_difficulty(difficulty: int) -> None:
    """Refuse difficulties outside 1–5 with the accepted range in the message."""
    if not isinstance(difficulty, int) or not MIN_DIFFICULTY <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be an int in [{MIN_DIFFICULTY}, {MAX_DIFFICULTY}], got {difficulty!r}")


def procedural_tasks(difficulty: int = 2, kinds: tuple[str, ...] = KINDS, base_seed: int = 0) -> ProceduralTasks:
    """An endless task source: row i is `generate_problem(base_seed + i, difficulty, kinds)`."""
    check_difficulty(difficulty)
    return ProceduralTasks(partial(generate_problem, difficulty=difficulty, kinds=kinds), base_seed=base_seed)
