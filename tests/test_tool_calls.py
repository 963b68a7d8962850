"""Tool-call dialects: each parses the same calls, and none raises or executes model text."""

from __future__ import annotations

import json
import time

import pytest

from toolgym.dialects import get_dialect
from toolgym.tool_calls import ToolCall, last_answer_tag

CALLS = [
    ToolCall("math.sum", {"numbers": [1, 2.5, -3], "label": 'say "hi" it\'s', "opts": {"a": None, "b": True}}),
    ToolCall("search", {"query": "Ünïcode 日本 😀"}),
]


@pytest.mark.parametrize("tool_format", ["hermes", "python", "openai"])
def test_rendered_calls_parse_back_to_the_same_calls(tool_format):
    action = get_dialect(tool_format).render(CALLS)

    parsed = get_dialect(tool_format).parse(action)

    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [(c.name, c.arguments) for c in CALLS]
    assert parsed.errors == []


def test_search_r1_first_complete_block_wins():
    text = "<think>hmm</think><search> first </search> then <answer> x </answer>"
    parsed = get_dialect("search_r1").parse(text)
    assert parsed.tool_calls == [ToolCall("search", {"query": "first"})]
    assert parsed.answer is None


def test_search_r1_unclosed_search_falls_through_to_answer():
    parsed = get_dialect("search_r1").parse("<search> never closed ... <answer> Paris </answer>")
    assert parsed.answer == "Paris" and parsed.tool_calls == []


def test_search_r1_without_tags_is_an_error_not_an_exception():
    parsed = get_dialect("search_r1").parse("I think the answer is Paris.")
    assert parsed.tool_calls == [] and parsed.answer is None and parsed.errors


def test_hermes_double_encoded_arguments_are_decoded():
    body = json.dumps({"name": "f", "arguments": json.dumps({"x": 1})})
    parsed = get_dialect("hermes").parse(f"<tool_call>{body}</tool_call>")
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
    parsed = get_dialect("hermes").parse(text)
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
    parsed = get_dialect("python").parse(source)
    assert parsed.tool_calls == []


def test_python_format_reads_literals_and_dotted_names():
    parsed = get_dialect("python").parse("```python\n[a.b.c(x=(1, 2), y={'k': [3]}, z=-1.5, w=None)]\n```")
    assert parsed.tool_calls == [ToolCall("a.b.c", {"x": [1, 2], "y": {"k": [3]}, "z": -1.5, "w": None})]


def test_python_format_treats_prose_as_no_call():
    parsed = get_dialect("python").parse("None of the functions can be used here.")
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
    parsed = get_dialect("openai").parse(message)
    assert parsed.tool_calls == [ToolCall("g", {"y": 2}, id="3")]
    assert len(parsed.errors) == 3


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes", "python", "openai"])
def test_adversarial_megabyte_inputs_parse_quickly(tool_format):
    inputs = ["<search>" * 150_000, "<tool_call>" * 100_000, "[f(" * 100_000, "\x00\xff" * 500_000, "(" * 1_000_000]
    started = time.perf_counter()
    for text in inputs:
        get_dialect(tool_format).parse(text)
        get_dialect(tool_format).parse({"role": "assistant", "content": text, "tool_calls": text})
    assert time.perf_counter() - started < 5.0


def test_non_text_actions_are_errors():
    assert get_dialect("hermes").parse(12345).errors
    assert get_dialect("search_r1").parse(None).errors


def test_last_answer_tag_takes_the_last_block():
    assert last_answer_tag("<answer>a</answer> … <answer> b </answer>") == "b"
    assert last_answer_tag("no tags") is None


def test_unknown_format_is_api_misuse():
    with pytest.raises(ValueError, match="unknown tool_format"):
        get_dialect("xml").parse("x")


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
    parsed = get_dialect(tool_format).parse(action)

    assert parsed.tool_calls == [] and "not valid JSON" in parsed.errors[0]


@pytest.mark.parametrize("literal", ["b'abc'", "1j", "...", "{(1, 2): 3}", "[1, {b'k': 2}]"])
def test_python_literals_json_cannot_carry_are_errors(literal):
    parsed = get_dialect("python").parse(f"[f(x={literal})]")

    assert parsed.tool_calls == [] and "JSON cannot carry" in parsed.errors[0]
