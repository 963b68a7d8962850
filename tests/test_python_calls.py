"""The python dialect's two readings, one test per class of difference from BFCL.

Expected values under "official" are what BFCL's own decoder returns (bfcl-eval 2026.3.23,
`default_decode_ast_prompting`), checked by running it; `test_bfcl_official.py` compares whole
verdicts on thousands of generated outputs.
"""

from __future__ import annotations

import time

import pytest

from toolgym.dialects import PythonDialect
from toolgym.python_calls import bfcl_source, fold_literal_arithmetic, parse_python_calls
from toolgym.tool_calls import ToolCall


def official(text: str):
    return parse_python_calls(text, "official")


def lenient(text: str):
    return parse_python_calls(text, "lenient")


def test_official_reads_a_bare_identifier_as_its_string():
    assert official("[f(unit=units)]").tool_calls == [ToolCall("f", {"unit": "units"})]


@pytest.mark.parametrize(
    ("source", "value"),
    [("9+1", 10), ("10/4", 2.5), ("2**10", 1024), ("'ab'+'c'", "abc"), ("[1]*3", [1, 1, 1]), ("-(2*3)+1", -5)],
)
def test_literal_arithmetic_is_folded_in_both_readings(source, value):
    assert official(f"[f(x={source})]").tool_calls[0].arguments["x"] == value
    assert lenient(f"[f(x={source})]").tool_calls[0].arguments["x"] == value


@pytest.mark.parametrize("source", ["2**10**10", "'a'*10**9", "[0]*10**9", "1<<10**9", "10**5000"])
def test_folding_refuses_huge_results_before_computing_them(source):
    started = time.perf_counter()
    assert official(f"[f(x={source})]").errors and lenient(f"[f(x={source})]").errors
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("source", ["1/0", "n+1", "len('ab')+1", "'%s %s' % 1", "'%d' % 'a'"])
def test_arithmetic_that_fails_or_needs_names_or_calls_is_not_decoded(source):
    parsed = official(f"[f(x={source})]")
    assert parsed.errors and not parsed.refused_calls  # BFCL's eval fails on these too


@pytest.mark.parametrize(
    ("source", "value"),
    [("'%d' % 5", "5"), ("'%s-%s' % ('a', 2)", "a-2"), ("'%(k)s' % {'k': 'v'}", "v"), ("'%5.1f' % 2.25", "  2.2")],
)
def test_percent_formatting_is_folded_as_bfcl_computes_it(source, value):
    assert official(f"[f(x={source})]").tool_calls[0].arguments["x"] == value


@pytest.mark.parametrize(
    "source",
    ["'%999999999d' % 1", "'%*d' % (10**8, 1)", "'%s' % ([1] * 99999,)", "'%s%s' % ('x' * 99999, 'y' * 99999)"],
)
def test_percent_formatting_with_a_huge_result_is_refused_before_computing_it(source):
    started = time.perf_counter()
    parsed = official(f"[f(x={source})]")
    assert parsed.errors and parsed.refused_calls
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "source",
    [
        "[f(x=1j)]",
        "[f(x=b'raw')]",
        "[f(x={(1, 2): 3})]",
        "[f(x={1} | {2})]",
        "[f(x='a' * 10**6)]",
        "[f(x=" + "1" * 1001 + ")]",
        "[f(x=" + "[" * 120 + "]" * 120 + ")]",
        "[" + ", ".join(["f(x=1)"] * 65) + "]",
    ],
    ids=["complex", "bytes", "tuple-key", "set-arithmetic", "huge-repetition", "1001-digits", "depth-120", "65-calls"],
)
def test_a_turn_bfcl_decodes_but_toolgym_refuses_is_a_call_for_relevance(source):
    """BFCL's decoder reads these turns (its checker then fails them); ToolGym runs no call, but an
    irrelevance row must still see a call (BFCL: irrelevance_error:decoder_success) and a relevance row pass."""
    from toolgym.envs.function_call.bfcl_checker import check_bfcl

    parsed = PythonDialect("official").parse(source)
    assert parsed.errors and parsed.tool_calls == [] and parsed.refused_calls
    function = [{"name": "f", "parameters": {"type": "dict", "properties": {}}}]
    irrelevance = check_bfcl("irrelevance", function, None, None, parsed.errors, parsed.refused_calls)
    relevance = check_bfcl("live_relevance", function, None, None, parsed.errors, parsed.refused_calls)
    assert (irrelevance.valid, irrelevance.error_type) == (False, "irrelevance_error:decoder_success")
    assert relevance.valid


def test_official_drops_positional_arguments_and_lenient_refuses_them():
    assert official("[f(1, b=2)]").tool_calls == [ToolCall("f", {"b": 2})]
    assert "keyword arguments only" in lenient("[f(1, b=2)]").errors[0]


def test_a_fence_with_a_language_tag_fails_officially_and_a_bare_fence_decodes():
    assert official("```python\n[f(a=1)]\n```").errors
    assert official("```\n[f(a=1)]\n```").tool_calls == [ToolCall("f", {"a": 1})]
    assert lenient("```python\n[f(a=1)]\n```").tool_calls == [ToolCall("f", {"a": 1})]


def test_official_keeps_a_tuple_and_lenient_makes_it_a_list():
    assert official("[f(x=(1, 2))]").tool_calls[0].arguments["x"] == (1, 2)
    assert lenient("[f(x=(1, 2))]").tool_calls[0].arguments["x"] == [1, 2]


def test_an_empty_list_decodes_to_no_calls_in_both_readings():
    for parsed in (official("[]"), lenient("[]"), official(" [ ] ")):
        assert parsed.tool_calls == [] and parsed.errors == [] and parsed.empty_call_list


def test_prose_fails_officially_and_is_no_call_leniently():
    assert official("No function fits.").errors
    parsed = lenient("No function fits.")
    assert parsed.tool_calls == [] and parsed.errors == [] and not parsed.empty_call_list


def test_official_wraps_a_bare_call_and_reads_its_unusual_values_as_bfcl_does():
    parsed = official("f(a=+5, b=g(1), c=g(k=2), d=x[0], e=..., h=-True)")
    # BFCL negates any unary operand (so +5 is -5), keeps a keyword-less call and a subscript as
    # source text, and decodes a call with keywords as {name: {param: value}}.
    assert parsed.tool_calls == [
        ToolCall("f", {"a": -5, "b": "g(1)", "c": {"g": {"k": 2}}, "d": "x[0]", "e": "...", "h": -1})
    ]
    assert bfcl_source("f(a=1)") == "[f(a=1)]" and bfcl_source("```\n[f(a=1)]\n```") == "[f(a=1)]"


@pytest.mark.parametrize("value", ["{1, 2}", "lambda: 1", "math.pi", "f'x'", "1 if a else 2", "b'x'", "1j"])
def test_official_fails_on_value_syntax_bfcl_cannot_read_or_json_cannot_carry(value):
    assert official(f"[f(x={value})]").errors
    # BFCL reads bytes and complex literals (its checker then fails them), not the other forms.
    assert official(f"[f(x={value})]").refused_calls == (value in ("b'x'", "1j"))


@pytest.mark.parametrize(
    "source", ["[__import__('os').system('echo pwned')]", "[f(x=open('/etc/passwd').read())]", "[(lambda: 1)()]"]
)
def test_no_reading_executes_code(source, tmp_path):
    # Calls inside values are never run: official reads them as text or nested-call dicts.
    for parsed in (official(source), lenient(source)):
        assert all(isinstance(call, ToolCall) for call in parsed.tool_calls)
    assert lenient(source).tool_calls == []


def test_the_fold_reads_only_literals():
    import ast

    with pytest.raises(Exception, match="not a literal"):
        fold_literal_arithmetic(ast.parse("x + 1", mode="eval").body)


def test_python_dialect_refuses_an_unknown_decoding():
    with pytest.raises(ValueError, match="official"):
        PythonDialect("loose")


def test_official_decoding_of_megabyte_inputs_is_quick_and_never_raises():
    inputs = ["[f(" * 100_000, "(" * 1_000_000, "\x00\xff" * 500_000, "[" + "[" * 40_000 + "]" * 40_000 + "]"]
    started = time.perf_counter()
    for text in inputs:
        assert official(text).errors
    assert time.perf_counter() - started < 5.0
