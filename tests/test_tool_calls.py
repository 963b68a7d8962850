"""Tool-call dialects: each parses the same calls, and none raises or executes model text."""

from __future__ import annotations

import json
import time

import pytest

from toolgym.tool_calls import ToolCall, last_answer_tag, parse_turn, render_calls

CALLS = [
    ToolCall("math.sum", {"numbers": [1, 2.5, -3], "label": 'say "hi" it\'s', "opts": {"a": None, "b": True}}),
    ToolCall("search", {"query": "Ünïcode 日本 😀"}),
]


@pytest.mark.parametrize("tool_format", ["hermes", "python", "openai"])
def test_rendered_calls_parse_back_to_the_same_calls(tool_format):
    action = render_calls(CALLS, tool_format)

    parsed = parse_turn(action, tool_format)

    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [(c.name, c.arguments) for c in CALLS]
    assert parsed.errors == []


def test_search_r1_first_complete_block_wins():
    text = "<think>hmm</think><search> first </search> then <answer> x </answer>"
    parsed = parse_turn(text, "search_r1")
    assert parsed.tool_calls == [ToolCall("search", {"query": "first"})]
    assert parsed.answer is None


def test_search_r1_unclosed_search_falls_through_to_answer():
    parsed = parse_turn("<search> never closed ... <answer> Paris </answer>", "search_r1")
    assert parsed.answer == "Paris" and parsed.tool_calls == []


def test_search_r1_without_tags_is_an_error_not_an_exception():
    parsed = parse_turn("I think the answer is Paris.", "search_r1")
    assert parsed.tool_calls == [] and parsed.answer is None and parsed.errors


def test_hermes_double_encoded_arguments_are_decoded():
    body = json.dumps({"name": "f", "arguments": json.dumps({"x": 1})})
    parsed = parse_turn(f"<tool_call>{body}</tool_call>", "hermes")
    assert parsed.tool_calls == [ToolCall("f", {"x": 1})]


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>{not json}</tool_call>",
        '<tool_call>["f", 1]</tool_call>',
        '<tool_call>{"name": 3}</tool_call>',
        '<tool_call>{"name": "f", "arguments": "[1,2]"}</tool_call>',
        '<tool_call>{"name": "f"',
    ],
)
def test_hermes_malformed_calls_become_errors(text):
    parsed = parse_turn(text, "hermes")
    assert parsed.tool_calls == [] and parsed.errors


@pytest.mark.parametrize(
    "source",
    [
        "[__import__('os').system('echo pwned')]",
        "[f(x=open('/etc/passwd').read())]",
        "[f(x=2**10**10)]",
        "[f(1, 2)]",
        "[f(**{'a': 1})]",
        "[(lambda: 1)()]",
    ],
)
def test_python_format_never_evaluates_code(source):
    parsed = parse_turn(source, "python")
    assert parsed.tool_calls == []


def test_python_format_reads_literals_and_dotted_names():
    parsed = parse_turn("```python\n[a.b.c(x=(1, 2), y={'k': [3]}, z=-1.5, w=None)]\n```", "python")
    assert parsed.tool_calls == [ToolCall("a.b.c", {"x": [1, 2], "y": {"k": [3]}, "z": -1.5, "w": None})]


def test_python_format_treats_prose_as_no_call():
    parsed = parse_turn("None of the functions can be used here.", "python")
    assert parsed.tool_calls == [] and parsed.errors == []


def test_openai_tool_calls_with_bad_shapes_become_errors():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{bad"}},
            {"id": "2", "type": "function"},
            "not a dict",
            {"id": "3", "type": "function", "function": {"name": "g", "arguments": {"y": 2}}},
        ],
    }
    parsed = parse_turn(message, "openai")
    assert parsed.tool_calls == [ToolCall("g", {"y": 2}, id="3")]
    assert len(parsed.errors) == 3


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes", "python", "openai"])
def test_adversarial_megabyte_inputs_parse_quickly(tool_format):
    inputs = ["<search>" * 150_000, "<tool_call>" * 100_000, "[f(" * 100_000, "\x00\xff" * 500_000, "(" * 1_000_000]
    started = time.perf_counter()
    for text in inputs:
        parse_turn(text, tool_format)
        parse_turn({"role": "assistant", "content": text, "tool_calls": text}, tool_format)
    assert time.perf_counter() - started < 5.0


def test_non_text_actions_are_errors():
    assert parse_turn(12345, "hermes").errors
    assert parse_turn(None, "search_r1").errors


def test_last_answer_tag_takes_the_last_block():
    assert last_answer_tag("<answer>a</answer> … <answer> b </answer>") == "b"
    assert last_answer_tag("no tags") is None


def test_unknown_format_is_api_misuse():
    with pytest.raises(ValueError, match="unknown tool_format"):
        parse_turn("x", "xml")


HUGE_INTEGER = "1" * 5000  # past CPython's 4300-digit int conversion limit, which json.loads hits


@pytest.mark.parametrize(
    ("action", "tool_format"),
    [
        ('<tool_call>{"name": "f", "arguments": {"x": ' + HUGE_INTEGER + "}}</tool_call>", "hermes"),
        ('<tool_call>{"name": "f", "arguments": "{\\"x\\": ' + HUGE_INTEGER + '}"}</tool_call>', "hermes"),
        (
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "f", "arguments": '{"x": ' + HUGE_INTEGER + "}"}}],
            },
            "openai",
        ),
    ],
)
def test_json_with_an_integer_past_the_digit_limit_is_an_error_not_an_exception(action, tool_format):
    parsed = parse_turn(action, tool_format)

    assert parsed.tool_calls == [] and "not valid JSON" in parsed.errors[0]


@pytest.mark.parametrize("literal", ["b'abc'", "1j", "...", "{(1, 2): 3}", "[1, {b'k': 2}]"])
def test_python_literals_json_cannot_carry_are_errors(literal):
    parsed = parse_turn(f"[f(x={literal})]", "python")

    assert parsed.tool_calls == [] and "JSON cannot carry" in parsed.errors[0]
