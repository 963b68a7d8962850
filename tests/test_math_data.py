"""Math datasets: spec resolution, row formats, task ids, and the procedural world."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from toolgym.envs.math.calculator import evaluate_expression
from toolgym.envs.math.readers import gsm8k_final_answer, load_rows, task_from_row
from toolgym.envs.math.world import KINDS, decimal_number, generate_problem, latex_number, procedural_tasks

MATH_ROW = {
    "problem": "What is $1+1$?",
    "solution": "We get $\\boxed{\\frac{4}{2}}$, which is $\\boxed{2}$.",
    "unique_id": "test/algebra/1.json",
    "level": "Level 1",
    "type": "Algebra",
}
GSM8K_ROW = {"question": "How many?", "answer": "2 + 2 = <<2+2=4>>4\n#### 1,234"}


def test_math_row_answer_is_the_last_box_of_the_solution() -> None:
    task = task_from_row(MATH_ROW)
    assert (task.answer, task.id, task.source) == ("2", "test/algebra/1.json", "math")


def test_math500_row_uses_its_answer_field() -> None:
    task = task_from_row({"problem": "p", "answer": "\\frac{3}{4}", "unique_id": "test/x/1.json"})
    assert task.answer == "\\frac{3}{4}"


def test_gsm8k_row_answer_follows_the_marker_without_commas() -> None:
    task = task_from_row(GSM8K_ROW, index=7)
    assert (task.answer, task.problem, task.id) == ("1234", "How many?", "gsm8k-7")


def test_rows_without_ids_get_a_stable_hash_id() -> None:
    row = {"problem": "p", "answer": "1"}
    assert task_from_row(row).id == task_from_row(dict(row)).id
    assert task_from_row(row).id.startswith("math-")


@pytest.mark.parametrize(
    "row",
    [
        {"text": "neither format"},
        {"problem": "p", "solution": "no box here"},
        {"problem": "p", "answer": "  "},
        {"question": "q", "answer": "no marker and no number?"} | {"answer": None},
    ],
)
def test_malformed_rows_raise_value_errors(row: dict) -> None:
    with pytest.raises(ValueError):
        task_from_row(row)


def test_gsm8k_final_answer_needs_the_marker() -> None:
    with pytest.raises(ValueError, match="####"):
        gsm8k_final_answer("just 5")


def test_jsonl_file_spec_drops_unusable_rows(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [MATH_ROW, {"problem": "p", "solution": "$\\boxed{}$"}, GSM8K_ROW]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded, source = load_rows(str(path))
    assert (len(loaded), source) == (2, "mine")


def test_unknown_spec_names_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="procedural"):
        load_rows("not-a-dataset")


def test_hf_spec_offline_gives_a_clear_error() -> None:
    pytest.importorskip("datasets")
    with pytest.raises(RuntimeError, match="Offline"):
        load_rows("hf:toolgym-tests/does-not-exist:test")


@pytest.mark.parametrize(("spec", "count"), [("math500", 500), ("math", 5000), ("gsm8k", 1319), ("gsm8k:train", 7473)])
def test_shared_datasets_load(shared_data: Path, spec: str, count: int) -> None:
    rows, _ = load_rows(spec)
    assert len(rows) == count


def test_math_train_drops_its_two_empty_boxed_answers(shared_data: Path) -> None:
    rows, _ = load_rows("math:train")
    assert len(rows) == 7498  # 7,500 in the file; train/number_theory/7115 and 7117 have \boxed{}


def test_math500_answers_are_the_last_box_of_their_solutions(shared_data: Path) -> None:
    """Checks boxed extraction on real solutions: MATH-500's `answer` is their last box."""
    rows, _ = load_rows("math500")
    from_solutions = [task_from_row({k: v for k, v in r.items() if k != "answer"}).answer for r in rows]
    assert from_solutions == [r["answer"] for r in rows]


# --- the procedural world ---------------------------------------------------------------------


def test_same_seed_same_problem() -> None:
    assert generate_problem(123, 3) == generate_problem(123, 3)
    assert generate_problem(123, 3) != generate_problem(124, 3)


def test_every_kind_and_difficulty_generates_a_math_format_row() -> None:
    for difficulty in range(1, 6):
        for kind in KINDS:
            row = generate_problem(7, difficulty, kinds=(kind,))
            assert row["kind"] == kind and row["level"] == difficulty
            assert row["problem"] and row["answer"] and row["unique_id"].startswith(f"procedural/{kind}/")


def _latex_to_calculator(latex: str) -> str:
    """Just enough LaTeX for the generated expressions: \\frac, \\times, \\left( \\right), 5x."""
    text = re.sub(r"\\frac\{(\d+)\}\{(\d+)\}", r"(\1/\2)", latex)
    text = text.replace("\\times", "*").replace("\\left(", "(").replace("\\right)", ")")
    return re.sub(r"(\d)x", r"\1*x", text)


@pytest.mark.parametrize("difficulty", [1, 3, 5])
def test_linear_answers_solve_their_equation(difficulty: int) -> None:
    for seed in range(50):
        row = generate_problem(seed, difficulty, kinds=("linear",))
        left, right = re.fullmatch(r"Solve for \$x\$: \$(.*) = (.*)\$\.", row["problem"]).groups()
        x = f"({_latex_to_calculator(row['answer'])})"
        left_value = evaluate_expression(_latex_to_calculator(left).replace("x", x))
        right_value = evaluate_expression(_latex_to_calculator(right).replace("x", x))
        assert left_value == right_value, row


@pytest.mark.parametrize("difficulty", [1, 3, 5])
def test_fraction_answers_equal_their_expression(difficulty: int) -> None:
    for seed in range(50):
        row = generate_problem(seed, difficulty, kinds=("fractions",))
        expression = re.fullmatch(r"Compute \$(.*)\$\. Express.*", row["problem"]).group(1)
        expected = evaluate_expression(_latex_to_calculator(row["answer"]))
        assert evaluate_expression(_latex_to_calculator(expression)) == expected, row


def test_difficulty_is_validated() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        procedural_tasks(difficulty=9)


def test_number_formatting() -> None:
    assert latex_number(Fraction(-3, 4)) == "-\\frac{3}{4}"
    assert latex_number(Fraction(6, 3)) == "2"
    assert decimal_number(Fraction(3638, 10)) == "363.8"
    assert decimal_number(Fraction(-1, 8)) == "-0.125"
