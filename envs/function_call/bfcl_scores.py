"""BFCL score aggregation: per-category accuracy and the leaderboard's summary numbers.

Pure functions over per-episode results, so the eval harness and any report compute the same
numbers. The summaries follow `bfcl_eval/eval_checker/eval_runner_helper.py`:

- non-live AST summary = unweighted mean of simple, multiple, parallel, parallel_multiple, where
  simple is itself the unweighted mean of the Python, Java and JavaScript simple categories;
- non-live overall adds irrelevance to that unweighted mean;
- live AST summary = count-weighted mean of the four live AST categories (overall adds
  live_irrelevance and live_relevance).

One deliberate difference: BFCL counts a category that was not run as 0 (and shows "N/A"); here a
missing category is left out of the mean and listed under `missing`, unless `missing_as_zero`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# BFCL v4 renamed the simple categories; scores treat both spellings as one category.
CATEGORY_ALIASES = {"simple_python": "simple", "simple_java": "java", "simple_javascript": "javascript"}
_PASS_KEYS = ("ast_match", "valid", "correct", "goal_met")


def canonical_category(category: str) -> str:
    """The v3 name of a category (`simple_python` -> `simple`)."""
    return CATEGORY_ALIASES.get(category, category)


def _passed(result: Mapping[str, Any]) -> bool:
    metrics = result.get("metrics") if isinstance(result.get("metrics"), Mapping) else {}
    for source in (result, metrics):
        for key in _PASS_KEYS:
            if key in source:
                return bool(source[key])
    if "reward" in result:
        return float(result["reward"]) >= 1.0
    raise KeyError(f"result has none of {_PASS_KEYS} or 'reward' (top level or under 'metrics'): keys {sorted(result)}")


def _category(result: Mapping[str, Any]) -> str:
    metrics = result.get("metrics") if isinstance(result.get("metrics"), Mapping) else {}
    category = result.get("category", metrics.get("category"))
    if not isinstance(category, str):
        raise KeyError(f"result has no 'category' (top level or under 'metrics'): keys {sorted(result)}")
    return canonical_category(category)


def per_category_accuracy(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """{category: {"accuracy", "correct", "total"}} from results carrying a category and a pass flag
    (`ast_match` / `valid` / `correct`, at top level or under `metrics`, else `reward` == 1)."""
    counts: dict[str, list[int]] = {}
    for result in results:
        tally = counts.setdefault(_category(result), [0, 0])
        tally[0] += int(_passed(result))
        tally[1] += 1
    return {
        category: {"accuracy": correct / total, "correct": correct, "total": total}
        for category, (correct, total) in sorted(counts.items())
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _unweighted(
    scores: Mapping[str, Mapping[str, float]], names: Iterable[str], missing: list[str], missing_as_zero: bool
) -> float | None:
    values = []
    for name in names:
        if name in scores:
            values.append(float(scores[name]["accuracy"]))
        else:
            missing.append(name)
            if missing_as_zero:
                values.append(0.0)
    return _mean(values)


def non_live_summary(
    per_category: Mapping[str, Mapping[str, float]], *, missing_as_zero: bool = False
) -> dict[str, Any]:
    """BFCL's non-live numbers from `per_category_accuracy` output (v3 or v4 category names)."""
    scores = {canonical_category(k): v for k, v in per_category.items()}
    missing: list[str] = []
    simple = _unweighted(scores, ("simple", "java", "javascript"), missing, missing_as_zero)
    parts = {"simple": simple}
    for name in ("multiple", "parallel", "parallel_multiple"):
        parts[name] = _unweighted(scores, (name,), missing, missing_as_zero)
    present = [v for v in parts.values() if v is not None]
    summary_ast = _mean(present) if not missing_as_zero else _mean([v or 0.0 for v in parts.values()])
    irrelevance = _unweighted(scores, ("irrelevance",), missing, missing_as_zero)
    overall_parts = [*parts.values(), irrelevance]
    overall = (
        _mean([v for v in overall_parts if v is not None])
        if not missing_as_zero
        else _mean([v or 0.0 for v in overall_parts])
    )
    return {**parts, "irrelevance": irrelevance, "summary_ast": summary_ast, "overall": overall, "missing": missing}


def live_summary(per_category: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """BFCL's live numbers: count-weighted means over the live categories that are present."""
    ast_names = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
    all_names = (*ast_names, "live_irrelevance", "live_relevance")

    def weighted(names: Iterable[str]) -> float | None:
        present = [per_category[n] for n in names if n in per_category]
        total = sum(s["total"] for s in present)
        return sum(s["accuracy"] * s["total"] for s in present) / total if total else None

    return {
        "summary_ast": weighted(ast_names),
        "overall": weighted(all_names),
        "missing": [n for n in all_names if n not in per_category],
    }
