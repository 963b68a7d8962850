"""Aggregate metrics of an evaluation run: pure functions over saved episode rows.

Per-episode scores are never computed here: they come from the env that played the episode
(Search-v0's HotpotQA EM/F1 via `toolgym.envs.search.scoring`, Math-v0's `math-verify` result,
FunctionCall-v0's BFCL AST checker), so a training reward and an evaluation score cannot disagree.
This module only aggregates them:

- **Means with a 95 % interval.** With k samples per task the episodes of one task are not
  independent, so each metric is first averaged over a task's samples and the interval is taken
  over tasks. When every per-task value is 0 or 1 (a pass rate with k = 1) the interval is the
  **Wilson score interval** (z = 1.96), which stays inside [0, 1] and behaves at p = 0 or 1;
  otherwise it is the **Student-t interval** mean ± t(0.975, n-1) · s / √n.
- **Errors.** An episode that crashed (agent or env) scores 0 on the score metrics
  (`SCORE_METRICS` and the primary metric), so a crash can never raise a result; it is left out of
  behaviour counters such as the number of searches, and counted under `errors`.
- **pass@k** (Chen et al. 2021, arXiv:2107.03374): the unbiased estimator 1 - C(n-c, k) / C(n, k)
  per task, in its numerically stable product form, averaged over tasks.
- **BFCL**: per-category AST accuracy and the leaderboard's non-live / live summaries from
  `toolgym.envs.function_call.bfcl_scores`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from toolgym.envs.function_call.bfcl_scores import live_summary, non_live_summary, per_category_accuracy

Z_95 = 1.959963984540054  # the standard normal's 0.975 quantile
# Student t 0.975 quantiles for 1..30 degrees of freedom (any statistics table; scipy.stats.t.ppf).
_T_975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
# Metrics in which an errored episode counts as a failure (0) rather than being left out.
SCORE_METRICS = ("em", "f1", "subem", "correct", "ast_match", "goal_met", "supporting_recall")
# The headline metric of an env's rows: the first of these the rows carry (else the reward).
PRIMARY_METRICS = ("em", "correct", "ast_match", "goal_met")
# Per-episode values that are positions or flags with a sentinel, not quantities to average.
NOT_AVERAGED = frozenset({"first_gold_turn"})


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % confidence interval and how the interval was computed."""

    mean: float
    low: float
    high: float
    n: int
    method: str  # "wilson", "t" or "none" (n < 2 for t)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_quantile_975(df: int) -> float:
    """Student t 0.975 quantile: exact table up to 30 df, Cornish–Fisher expansion beyond (error < 2e-6)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def wilson_interval(successes: float, n: int, z: float = Z_95) -> Interval:
    """Wilson score interval for a proportion successes / n."""
    if n < 1:
        raise ValueError("a proportion needs at least one observation")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, max(0.0, center - half), min(1.0, center + half), n, "wilson")


def t_interval(values: Sequence[float]) -> Interval:
    """Student-t interval of a mean: mean ± t(0.975, n-1) · s / √n with the n-1 sample deviation."""
    n = len(values)
    if n == 0:
        raise ValueError("a mean needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, mean, mean, 1, "none")
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half, n, "t")


def mean_interval(values: Sequence[float]) -> Interval:
    """Wilson when every value is 0 or 1 (a pass rate), else Student t."""
    if values and all(v in (0.0, 1.0) for v in values):
        return wilson_interval(math.fsum(values), len(values))
    return t_interval(values)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k)/C(n, k) = 1 - Π_{i=n-c+1}^{n} (1 - k/i)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_at_k_values(samples: int) -> list[int]:
    """The k reported for `samples` samples per task: powers of two below it, and `samples` itself."""
    ks, k = [], 1
    while k < samples:
        ks.append(k)
        k *= 2
    return [*ks, samples]


# --- from rows to a summary ------------------------------------------------------------------


def numeric(value: Any) -> float | None:
    """A metric value as a float (bools count 0/1), or None for strings, lists and NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def primary_metric(rows: Iterable[Mapping[str, Any]]) -> str:
    """The headline metric the rows carry: em, correct, ast_match or goal_met, else `reward`."""
    present: set[str] = set()
    for row in rows:
        present.update((row.get("metrics") or {}).keys())
    return next((name for name in PRIMARY_METRICS if name in present), "reward")


def episode_values(row: Mapping[str, Any], primary: str) -> dict[str, float]:
    """One row's numeric metrics plus the behaviour counters; an error row scores 0 on scores only."""
    if row.get("error"):
        return dict.fromkeys(_score_names(primary), 0.0)
    values = {name: v for name, raw in (row.get("metrics") or {}).items() if (v := numeric(raw)) is not None}
    values = {name: v for name, v in values.items() if name not in NOT_AVERAGED}
    values["reward"] = float(row.get("reward") or 0.0)
    for counter in ("turns", "tool_calls", "invalid_actions"):
        if numeric(row.get(counter)) is not None:
            values[counter] = float(row[counter])
    return values


def _score_names(primary: str) -> set[str]:
    return {*SCORE_METRICS, primary, "reward"}


def per_task_means(rows: Iterable[Mapping[str, Any]], primary: str) -> dict[str, dict[int, float]]:
    """{metric: {task_index: mean over that task's samples}}; error rows count per `episode_values`."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    score_names = _score_names(primary)
    rows = list(rows)
    seen_scores: set[str] = set()
    for row in rows:
        if not row.get("error"):
            seen_scores.update(name for name in episode_values(row, primary) if name in score_names)
    for row in rows:
        values = episode_values(row, primary)
        if row.get("error"):  # only the score metrics the successful rows actually report
            values = {name: v for name, v in values.items() if name in seen_scores or name == primary}
        for name, value in values.items():
            sums[name][int(row["task_index"])].append(value)
    return {name: {task: math.fsum(v) / len(v) for task, v in by_task.items()} for name, by_task in sums.items()}


def pass_at_k_summary(rows: Iterable[Mapping[str, Any]], primary: str, samples: int) -> dict[str, Interval]:
    """pass@k for each reported k, over tasks that have at least k samples; correct means primary ≥ 1."""
    outcomes: dict[int, list[bool]] = defaultdict(list)
    for row in rows:
        value = episode_values(row, primary).get(primary, 0.0)
        outcomes[int(row["task_index"])].append(value >= 1.0)
    result = {}
    for k in pass_at_k_values(samples):
        per_task = [pass_at_k(len(o), sum(o), k) for o in outcomes.values() if len(o) >= k]
        if per_task:
            result[f"pass@{k}"] = mean_interval(per_task)
    return result


def bfcl_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Per-category AST accuracy and BFCL's non-live and live summaries; None for non-BFCL rows.

    An errored episode of a known category counts as a failure of that category.
    """
    results = []
    for row in rows:
        metrics = row.get("metrics") or {}
        category = metrics.get("category") or row.get("category")
        if not isinstance(category, str) or category == "tool_world":
            continue
        passed = bool(metrics.get("ast_match")) and not row.get("error")
        results.append({"category": category, "ast_match": passed})
    if not results:
        return None
    categories = per_category_accuracy(results)
    return {"per_category": categories, "non_live": non_live_summary(categories), "live": live_summary(categories)}


def count_metrics(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Metrics that are counts (integer-valued, like n_searches or turns), never proportions.

    Their interval is always Student t: a count that happened to be 0 or 1 in every episode is not
    a Bernoulli variable, so the Wilson interval would not apply.
    """
    counts = {"turns", "tool_calls", "invalid_actions"}
    for row in rows:
        for name, value in (row.get("metrics") or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                counts.add(name)
    return counts


def summarize(rows: Sequence[Mapping[str, Any]], samples: int = 1) -> dict[str, Any]:
    """The summary of a run's rows (one per episode key): metrics with intervals, errors, pass@k, BFCL."""
    if not rows:
        return {"episodes": 0, "tasks": 0, "errors": 0, "primary_metric": None, "accuracy": None, "metrics": {}}
    primary = primary_metric(rows)
    by_metric = per_task_means(rows, primary)
    counts = count_metrics(rows)
    metrics = {
        name: (t_interval if name in counts else mean_interval)(list(by_task.values())).as_dict()
        for name, by_task in sorted(by_metric.items())
    }
    errors = [row for row in rows if row.get("error")]
    summary: dict[str, Any] = {
        "episodes": len(rows),
        "tasks": len({int(row["task_index"]) for row in rows}),
        "samples": samples,
        "errors": len(errors),
        "error_stages": dict(sorted(_count(str(row["error"].get("stage", "?")) for row in errors).items())),
        "primary_metric": primary,
        "accuracy": metrics.get(primary),
        "metrics": metrics,
    }
    if samples > 1:
        summary["pass_at_k"] = {k: v.as_dict() for k, v in pass_at_k_summary(rows, primary, samples).items()}
    bfcl = bfcl_summary(rows)
    if bfcl is not None:
        summary["bfcl"] = bfcl
    failures = failure_summary(rows)
    if failures:
        summary["failures"] = failures
    return summary


def failure_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Rates of the ways an answer can fail to be scored, kept apart from accuracy.

    `parse_failure`: an answer was found but could not be parsed (Math-v0); `no_answer`: the
    episode ended without a final answer; `invalid_action_rate`: share of turns the env rejected.
    """
    scored = [row for row in rows if not row.get("error")]
    if not scored:
        return {}
    result: dict[str, float] = {}
    metrics = [row.get("metrics") or {} for row in scored]
    if any("parse_failure" in m for m in metrics):
        result["parse_failure"] = sum(bool(m.get("parse_failure")) for m in metrics) / len(scored)
    if any("answer_found" in m or "answered" in m for m in metrics):
        found = [m.get("answer_found", m.get("answered", True)) for m in metrics]
        result["no_answer"] = sum(not f for f in found) / len(scored)
    if any("timeout" in m for m in metrics):
        result["verifier_timeout"] = sum(bool(m.get("timeout")) for m in metrics) / len(scored)
    turns = sum(int(row.get("turns") or 0) for row in scored)
    if turns:
        result["invalid_action_rate"] = sum(int(row.get("invalid_actions") or 0) for row in scored) / turns
    return result


def _count(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return dict(counts)
