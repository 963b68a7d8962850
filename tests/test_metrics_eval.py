"""Aggregate metrics of the evaluation harness against hand-computed golden numbers."""

from __future__ import annotations

import itertools
from math import comb

import pytest

from toolgym.envs.search.scoring import answer_scores
from toolgym.evals.metrics import (
    pass_at_k,
    pass_at_k_values,
    summarize,
    t_interval,
    t_quantile_975,
    wilson_interval,
)


def _row(task: int, sample: int = 0, reward: float = 0.0, error: bool = False, **metrics):
    return {
        "task_index": task,
        "sample_index": sample,
        "reward": reward,
        "metrics": {} if error else metrics,
        "turns": 0 if error else 2,
        "error": {"stage": "agent", "type": "ValueError", "message": "boom"} if error else None,
    }


def test_wilson_interval_matches_the_textbook_value():
    # Wilson (1950) for 8/10 at z = 1.96; the same numbers as scipy.stats.binomtest(8, 10).proportion_ci("wilson").
    interval = wilson_interval(8, 10)
    assert (interval.low, interval.high) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)


def test_t_interval_of_one_two_three_four():
    # mean 2.5, s = 1.290994, se = 0.645497, t(0.975, 3) = 3.182446 -> half-width 2.054260.
    interval = t_interval([1.0, 2.0, 3.0, 4.0])
    assert (interval.mean, interval.low, interval.high) == pytest.approx((2.5, 0.445740, 4.554260), abs=1e-6)


def test_t_quantile_beyond_the_table_is_accurate():
    # scipy.stats.t.ppf(0.975, df) for df = 40, 100: 2.021075, 1.983972.
    assert t_quantile_975(40) == pytest.approx(2.021075, abs=2e-6)
    assert t_quantile_975(100) == pytest.approx(1.983972, abs=2e-6)


def test_pass_at_k_equals_the_closed_form_and_brute_force_enumeration():
    for n in range(1, 8):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                closed = 1 - comb(n - c, k) / comb(n, k)
                subsets = list(itertools.combinations(outcomes, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)
                assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_overflow_floats():
    # C(2000, 1000) overflows a float; the product form gives 1 - (1 - 1/2000)... exactly c/n for k = 1.
    assert pass_at_k(2000, 7, 1) == pytest.approx(7 / 2000)
    assert 0.0 < pass_at_k(2000, 1, 1000) <= 1.0
    assert pass_at_k_values(8) == [1, 2, 4, 8] and pass_at_k_values(5) == [1, 2, 4, 5]


def test_em_and_f1_aggregate_the_official_scores_and_errors_count_zero():
    golden = [("the Eiffel Tower", "Eiffel Tower"), ("Paris France", "Paris"), ("yes", "no"), ("Barack Obama", "Obama")]
    rows = [
        _row(i, reward=s["em"], **s, n_searches=i) for i, (p, g) in enumerate(golden) if (s := answer_scores(p, [g]))
    ]
    rows.append(_row(4, error=True))

    summary = summarize(rows)

    # EM: 1 of 5 (the error row scores 0) -> Wilson(1, 5); F1: (1 + 2/3 + 0 + 2/3 + 0) / 5.
    assert summary["primary_metric"] == "em"
    assert summary["accuracy"]["mean"] == pytest.approx(0.2)
    assert summary["accuracy"]["method"] == "wilson"
    assert summary["metrics"]["f1"]["mean"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 5)
    assert summary["metrics"]["f1"]["method"] == "t"
    # Behaviour counters leave the error row out: searches 0, 1, 2, 3 -> mean 1.5 over 4 tasks.
    assert summary["metrics"]["n_searches"]["mean"] == pytest.approx(1.5)
    assert summary["metrics"]["n_searches"]["n"] == 4
    assert summary["errors"] == 1 and summary["error_stages"] == {"agent": 1}


def test_samples_are_averaged_per_task_before_the_interval_and_pass_at_k_reported():
    # Task 0: 2 of 2 correct, task 1: 1 of 2, task 2: 0 of 2.
    outcomes = {0: [1, 1], 1: [1, 0], 2: [0, 0]}
    rows = [_row(t, s, reward=v, correct=bool(v)) for t, vs in outcomes.items() for s, v in enumerate(vs)]

    summary = summarize(rows, samples=2)

    accuracy = summary["accuracy"]
    assert accuracy["n"] == 3 and accuracy["method"] == "t"  # per-task means 1, 0.5, 0
    assert accuracy["mean"] == pytest.approx(0.5)
    assert accuracy["high"] - accuracy["mean"] == pytest.approx(4.302653 * 0.5 / 3**0.5, abs=1e-5)
    assert summary["pass_at_k"]["pass@1"]["mean"] == pytest.approx(0.5)
    assert summary["pass_at_k"]["pass@2"]["mean"] == pytest.approx((1 + 1 + 0) / 3)


def test_string_metrics_are_not_averaged_and_bfcl_summary_follows_bfcl():
    tallies = {
        "simple": (3, 4),
        "multiple": (1, 2),
        "parallel": (1, 1),
        "parallel_multiple": (0, 1),
        "irrelevance": (1, 2),
    }
    rows, task = [], 0
    for category, (correct, total) in tallies.items():
        for i in range(total):
            rows.append(_row(task, reward=float(i < correct), ast_match=i < correct, category=category, error_type="x"))
            task += 1

    summary = summarize(rows)

    assert "category" not in summary["metrics"] and "error_type" not in summary["metrics"]
    bfcl = summary["bfcl"]
    assert bfcl["per_category"]["simple"] == {"accuracy": 0.75, "correct": 3, "total": 4}
    # Non-live AST summary: unweighted mean of simple, multiple, parallel, parallel_multiple.
    assert bfcl["non_live"]["summary_ast"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0) / 4)
    # Overall adds irrelevance to that unweighted mean.
    assert bfcl["non_live"]["overall"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0 + 0.5) / 5)


def test_math_parse_failures_are_reported_apart_from_accuracy():
    rows = [
        _row(0, reward=1.0, correct=True, answer_found=True, parse_failure=False),
        _row(1, correct=False, answer_found=True, parse_failure=True),
        _row(2, correct=False, answer_found=False, parse_failure=False),
        _row(3, correct=False, answer_found=True, parse_failure=False),
    ]

    summary = summarize(rows)

    assert summary["accuracy"]["mean"] == pytest.approx(0.25)
    assert summary["failures"]["parse_failure"] == pytest.approx(0.25)
    assert summary["failures"]["no_answer"] == pytest.approx(0.25)
