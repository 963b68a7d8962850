"""Final-answer extraction: boxed (nested braces, bare, fbox) and <answer> tags."""

from __future__ import annotations

import time

import pytest

from toolgym.envs.math.answers import extract_answer, last_boxed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is $\\boxed{5}$.", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("nested \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("bare form \\boxed 5$", "5"),
        ("\\fbox{42}", "42"),
        ("a set \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not groups
        ("\\boxed{7} but cut off \\boxed{\\frac{1", "7"),  # an unclosed last box falls back
        ("\\boxed{}", ""),
    ],
)
def test_last_boxed_golden_cases(text: str, expected: str) -> None:
    assert last_boxed(text) == expected


def test_boxed_needs_the_whole_command_name() -> None:
    assert last_boxed("\\boxedx{3}") is None


def test_answer_tag_is_used_and_unwrapped() -> None:
    assert extract_answer("think... <answer>\\boxed{12}</answer>").text == "12"
    assert extract_answer("<answer> 0.5 </answer>").text == "0.5"
    assert extract_answer("<answer>3</answer>").source == "answer_tag"


def test_no_answer_is_reported_as_not_found() -> None:
    result = extract_answer("I think it is 5 but I will not commit.")
    assert (result.found, result.text) == (False, None)


def test_empty_box_counts_as_found() -> None:
    assert extract_answer("\\boxed{}").found


def test_megabyte_of_unclosed_boxes_is_fast() -> None:
    text = "\\boxed{" * 150_000
    started = time.monotonic()
    result = extract_answer(text)
    assert not result.found
    assert time.monotonic() - started < 2.0
