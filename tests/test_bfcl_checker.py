"""Golden cases for the BFCL AST checker.

Each case restates a rule of BFCL's `ast_checker.py` (ShishirPatil/gorilla,
bfcl_eval/eval_checker/ast_eval/) and the error type BFCL reports for it.
"""

from __future__ import annotations

import pytest

from toolgym.envs.function_call.bfcl_checker import check_bfcl, standardize_string

# BFCL's simple_0, abbreviated: base and height required, unit optional.
TRIANGLE = {
    "name": "calculate_triangle_area",
    "description": "Area of a triangle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer"},
            "height": {"type": "float"},
            "unit": {"type": "string"},
        },
        "required": ["base", "height"],
    },
}
TRIANGLE_ANSWER = [{"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["units", ""]}}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}},
        "required": ["city"],
    },
}


WEATHER_DAYS = {"type": "array", "items": {"type": "integer"}}


def simple(arguments: dict, name: str = "calculate_triangle_area", category: str = "simple"):
    return check_bfcl(category, [TRIANGLE], TRIANGLE_ANSWER, [(name, arguments)])


def test_exact_answer_passes():
    assert simple({"base": 10, "height": 5.0, "unit": "units"}).valid


def test_wrong_function_name():
    result = simple({"base": 10, "height": 5.0}, name="triangle_area")
    assert result.error_type == "simple_function_checker:wrong_func_name"


def test_missing_required_parameter():
    assert simple({"base": 10}).error_type == "simple_function_checker:missing_required"


def test_parameter_outside_the_schema_is_unexpected():
    assert simple({"base": 10, "height": 5.0, "color": "red"}).error_type == "simple_function_checker:unexpected_param"


def test_int_is_promoted_to_float():
    assert simple({"base": 10, "height": 5}).valid


def test_float_is_not_accepted_for_integer():
    assert simple({"base": 10.0, "height": 5.0}).error_type == "type_error:simple"


def test_bool_is_not_an_integer():
    assert simple({"base": True, "height": 5.0}).error_type == "type_error:simple"


def test_optional_parameter_marked_with_empty_string_may_be_omitted():
    assert simple({"base": 10, "height": 5.0}).valid


def test_answer_parameter_without_empty_string_must_be_given():
    answer = [{"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["units"]}}]
    result = check_bfcl("simple", [TRIANGLE], answer, [("calculate_triangle_area", {"base": 10, "height": 5.0})])
    assert result.error_type == "simple_function_checker:missing_optional"


def test_string_standardization_ignores_case_spaces_and_punctuation():
    assert standardize_string("April 1, 2024") == standardize_string("april 1 2024")
    assert simple({"base": 10, "height": 5.0, "unit": "U-N_I.T*S"}).valid


def test_wrong_string_value():
    assert simple({"base": 10, "height": 5.0, "unit": "meters"}).error_type == "value_error:string"


def test_wrong_number_value():
    assert simple({"base": 11, "height": 5.0}).error_type == "value_error:others"


def test_lists_compare_element_wise_with_standardized_strings():
    answer = [{"get_weather": {"city": ["Paris"], "days": [[1, 2]]}}]
    assert check_bfcl("simple", [WEATHER], answer, [("get_weather", {"city": "paris", "days": [1, 2]})]).valid
    wrong = check_bfcl("simple", [WEATHER], answer, [("get_weather", {"city": "paris", "days": [2, 1]})])
    assert wrong.error_type == "value_error:list/tuple"


def test_nested_array_items_are_type_checked():
    answer = [{"get_weather": {"city": ["Paris"], "days": [[1, 2]]}}]
    result = check_bfcl("simple", [WEATHER], answer, [("get_weather", {"city": "Paris", "days": ["1", "2"]})])
    assert result.error_type == "type_error:nested"


def test_dict_parameters_are_checked_key_by_key():
    doc = {
        "name": "book",
        "parameters": {"type": "dict", "properties": {"guest": {"type": "dict"}}, "required": ["guest"]},
    }
    answer = [{"book": {"guest": [{"name": ["Ann Lee"], "age": [30, ""]}]}}]
    assert check_bfcl("simple", [doc], answer, [("book", {"guest": {"name": "ann lee"}})]).valid
    extra_key = check_bfcl("simple", [doc], answer, [("book", {"guest": {"name": "Ann Lee", "vip": True}})])
    assert extra_key.error_type == "value_error:dict_key"


def test_simple_needs_exactly_one_call():
    # An empty call list decodes (BFCL's `[]`) and fails the count; a turn that did not decode is None.
    assert check_bfcl("simple", [TRIANGLE], TRIANGLE_ANSWER, []).error_type == "simple_function_checker:wrong_count"
    assert check_bfcl("simple", [TRIANGLE], TRIANGLE_ANSWER, None).error_type == "ast_decoder:decoder_failed"
    two = [("calculate_triangle_area", {"base": 10, "height": 5.0})] * 2
    assert check_bfcl("simple", [TRIANGLE], TRIANGLE_ANSWER, two).error_type == "simple_function_checker:wrong_count"


def test_multiple_picks_the_expected_function_and_needs_one_call():
    functions = [WEATHER, TRIANGLE]
    call = ("calculate_triangle_area", {"base": 10, "height": 5.0})
    assert check_bfcl("multiple", functions, TRIANGLE_ANSWER, [call]).valid
    assert (
        check_bfcl("multiple", functions, TRIANGLE_ANSWER, [call, call]).error_type
        == "multiple_function_checker:wrong_count"
    )


def test_parallel_matches_in_any_order():
    answer = [{"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Rome"]}}]
    calls = [("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Paris"})]
    assert check_bfcl("parallel", [WEATHER], answer, calls).valid


def test_parallel_reports_the_unmatched_call():
    answer = [{"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Rome"]}}]
    calls = [("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Oslo"})]
    assert (
        check_bfcl("parallel", [WEATHER], answer, calls).error_type
        == "parallel_function_checker_no_order:cannot_find_match"
    )
    assert (
        check_bfcl("parallel", [WEATHER], answer, calls[:1]).error_type
        == "parallel_function_checker_no_order:wrong_count"
    )


def test_variable_of_the_answers_type_is_compared_as_is():
    """BFCL answers sometimes hold a variable name (a str) for a non-string parameter."""
    answer = [{"calculate_triangle_area": {"base": ["b"], "height": [5.0], "unit": [""]}}]
    calls = [("calculate_triangle_area", {"base": "b", "height": 5.0})]
    assert check_bfcl("simple", [TRIANGLE], answer, calls).valid


@pytest.mark.parametrize(
    ("category", "calls", "errors", "valid"),
    [
        ("irrelevance", [], [], True),
        ("irrelevance", [("get_weather", {"city": "Paris"})], [], False),
        ("irrelevance", [("get_weather", {"city": "Paris"})], ["second call is broken"], True),
        ("live_relevance", [("get_weather", {"city": "Paris"})], [], True),
        ("live_relevance", [], [], False),
    ],
)
def test_relevance_is_about_whether_a_call_decodes(category, calls, errors, valid):
    assert check_bfcl(category, [WEATHER], None, calls, errors).valid is valid


@pytest.mark.parametrize("category", ["multiple", "parallel", "parallel_multiple"])
def test_an_empty_call_list_is_a_wrong_count_in_every_ast_category(category):
    result = check_bfcl(category, [TRIANGLE], TRIANGLE_ANSWER, [])
    assert result.error_type.endswith(":wrong_count")


def test_a_tuple_is_a_list_only_for_a_tuple_parameter():
    doc = {
        "name": "span",
        "parameters": {
            "type": "dict",
            "properties": {"pair": {"type": "tuple", "items": {"type": "integer"}}, "days": WEATHER_DAYS},
            "required": [],
        },
    }
    answer = [{"span": {"pair": [[1, 2], ""], "days": [[1, 2], ""]}}]
    assert check_bfcl("simple", [doc], answer, [("span", {"pair": (1, 2)})]).valid
    assert check_bfcl("simple", [doc], answer, [("span", {"days": (1, 2)})]).error_type == "type_error:simple"


def test_decode_errors_fail_an_ast_category():
    calls = [("calculate_triangle_area", {"base": 10, "height": 5.0})]
    result = check_bfcl("simple", [TRIANGLE], TRIANGLE_ANSWER, calls, ["bad second call"])
    assert result.error_type == "ast_decoder:decoder_failed"
