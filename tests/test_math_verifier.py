"""The math-verify wrapper: golden comparisons, parse failures, hard timeouts, threads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from toolgym.envs.math import verifier as verifier_module
from toolgym.envs.math.verifier import MathVerifier, fast_path_form, power_depth, precheck

# huggingface/Math-Verify#65: sympy never finishes with this (str() or an untimed verify hangs).
HANGING_ANSWER = "\\dfrac{5^{\\left(5^{\\left(5^{\\left(5^5\\right)}\\right)} - 4\\right)} - 5}{16}"


@pytest.fixture(scope="module")
def verifier() -> Iterator[MathVerifier]:
    verifier = MathVerifier(timeout_s=5.0, string_match=False)  # every check below goes to math-verify
    yield verifier
    verifier.close()


@pytest.mark.parametrize(
    ("gold", "prediction", "correct"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{1}{3}", "0.33", False),  # math-verify rounds to 6 places, 0.33 is not 1/3
        ("\\frac{1}{3}", "1/3", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", True),
        ("18", "18.0", True),
        ("18", "17", False),
        ("2\\sqrt{2}", "\\sqrt{8}", True),
        ("x=5", "5", True),
    ],
)
def test_golden_comparisons(verifier: MathVerifier, gold: str, prediction: str, correct: bool) -> None:
    result = verifier.verify(gold, prediction)
    assert (result.correct, result.parsed, result.timeout) == (correct, True, False)


def test_parse_failure_is_distinct_from_a_wrong_answer(verifier: MathVerifier) -> None:
    wrong, unparseable = verifier.verify_many([("5", "6"), ("5", "}{")])
    assert (wrong.correct, wrong.parsed) == (False, True)
    assert (unparseable.correct, unparseable.parsed) == (False, False)


def test_unparseable_gold_is_a_data_error_not_a_reward(verifier: MathVerifier) -> None:
    result = verifier.verify("}{", "5")
    assert (result.correct, result.gold_parsed) == (False, False)


def test_string_match_fast_path_needs_no_worker() -> None:
    fast = MathVerifier(timeout_s=0.001)  # far too short for any worker round trip
    result = fast.verify("\\dfrac{3}{4}", " \\frac{3}{4} ")
    fast.close()
    assert result.correct and not result.timeout


def test_empty_and_oversized_predictions_are_refused_without_the_worker(verifier: MathVerifier) -> None:
    empty, huge = verifier.verify_many([("1", ""), ("1", "1" * 5000)])
    assert not empty.parsed and not huge.parsed
    assert "limit" in (huge.error or "")


def test_exponent_towers_are_refused_cheaply(verifier: MathVerifier) -> None:
    started = time.monotonic()
    result = verifier.verify("1", "10^{10^{10^{10}}}")
    assert (result.correct, result.parsed) == (False, False)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("text", "depth"), [("x^2", 1), ("e^{x^2}", 2), ("2^2^2", 2), ("9**9**9", 2), ("10^{10^{10^{10}}}", 3)]
)
def test_power_depth(text: str, depth: int) -> None:
    assert power_depth(text, limit=5) == depth


def test_hanging_input_hits_the_hard_timeout_and_the_worker_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "MAX_POWER_DEPTH", 100)  # let the tower reach math-verify
    verifier = MathVerifier(timeout_s=5.0, string_match=False)
    verifier.start()
    # 0.5 s is below math-verify's own 1 s alarm, so only the parent's kill can end this call.
    started = time.monotonic()
    hung = verifier.verify("1", HANGING_ANSWER, timeout_s=0.5)
    elapsed = time.monotonic() - started
    recovered = verifier.verify("\\frac{1}{2}", "0.5")
    verifier.close()
    assert hung.timeout and not hung.correct
    assert elapsed < 1.5
    assert recovered.correct and not recovered.timeout


def test_soft_timeout_inside_the_worker_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "MAX_POWER_DEPTH", 100)
    verifier = MathVerifier(timeout_s=3.0, string_match=False)
    started = time.monotonic()
    result = verifier.verify("1", HANGING_ANSWER)
    verifier.close()
    assert result.timeout and not result.correct
    assert time.monotonic() - started < 3.0 + 2.0  # worker start-up + at most the hard limit


def test_a_batch_with_a_hang_in_the_middle_finishes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "MAX_POWER_DEPTH", 100)
    verifier = MathVerifier(timeout_s=0.5, string_match=False)
    verifier.start()
    results = verifier.verify_many([("2", "2.0"), ("1", HANGING_ANSWER), ("\\frac{1}{4}", "0.25")])
    verifier.close()
    assert [r.correct for r in results] == [True, False, True]
    assert results[1].timeout


def test_verify_from_many_threads_at_once() -> None:
    verifier = MathVerifier(timeout_s=5.0, workers=2, string_match=False)
    pairs = [(f"\\frac{{{n}}}{{4}}", str(n / 4)) for n in range(1, 41)] + [(str(n), str(n + 1)) for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: verifier.verify(*pair), pairs))
    verifier.close()
    assert [r.correct for r in results] == [True] * 40 + [False] * 40


def test_close_then_reuse_restarts_the_worker() -> None:
    verifier = MathVerifier(string_match=False)
    assert verifier.verify("3", "3.0").correct
    verifier.close()
    assert verifier.verify("3", "3.0").correct
    verifier.close()


@pytest.mark.parametrize(
    ("text", "form"),
    [("42", "42"), (" -3.50 ", "-3.50"), ("\\dfrac{3}{4}", "\\frac{3}{4}"), ("\\tfrac{1}{2}", "\\frac{1}{2}")],
)
def test_fast_path_reads_plain_numbers_and_digit_fractions(text: str, form: str) -> None:
    assert fast_path_form(text) == form


@pytest.mark.parametrize(
    "text", ["11,\\! 111", "1 2", "x = 5", "\\frac{1}{0}", "\\left(1,2\\right)", "$5$", "\u0663", "9" * 60]
)
def test_fast_path_leaves_everything_else_to_math_verify(text: str) -> None:
    assert fast_path_form(text) is None


def test_spacing_variants_go_to_math_verify_not_the_fast_path() -> None:
    # The looser string match this replaces accepted this pair; math-verify says it is wrong.
    assert precheck("11,\\! 111,\\! 111,\\! 100", "11 , \\! 111 , \\! 111 , \\! 100") is None


def _math500_candidates(gold: str) -> list[str]:
    """The gold and the rewrites a model produces: spacing, dfrac, dollars, thin spaces, commas."""
    return [
        gold,
        f" {gold} ",
        gold.replace("\\frac", "\\dfrac"),
        gold.replace(",", " , "),
        gold.replace("\\!", ""),
        gold.replace(" ", ""),
        f"${gold}$",
        f"{gold}.",
        gold.replace("\\left", "").replace("\\right", ""),
    ]


@pytest.mark.shared_data
def test_the_fast_path_accepts_only_what_math_verify_accepts_on_math500(shared_data) -> None:
    import json

    from math_verify import parse, verify

    golds = [json.loads(line)["answer"] for line in (shared_data / "math500" / "test.jsonl").open()]
    accepted = [
        (gold, prediction)
        for gold in golds
        for prediction in dict.fromkeys(_math500_candidates(gold))
        if (decided := precheck(gold, prediction)) is not None and decided.correct
    ]
    disagreements = [
        pair for pair in accepted if not verify(parse("\\boxed{" + pair[0] + "}"), parse("\\boxed{" + pair[1] + "}"))
    ]
    assert len(accepted) >= 300 and disagreements == []  # 366 of the 500 golds have a fast-path form
