"""Dialect objects: one per tool-call format, found by name or from an env / its reset info."""

from __future__ import annotations

import gymnasium as gym
import pytest

import toolgym  # noqa: F401  (registers the envs)
from toolgym.dialects import DIALECTS, TOOL_FORMATS, PythonDialect, dialect_of, get_dialect
from toolgym.tool_calls import ToolCall


def test_every_env_tool_format_names_a_dialect():
    assert set(TOOL_FORMATS) < set(DIALECTS) and all(DIALECTS[name].name == name for name in DIALECTS)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("toolgym:Search-v0", {}, "search_r1"),
        ("toolgym:Math-v0", {"tools": True, "tool_format": "openai"}, "openai"),
        ("toolgym:FunctionCall-v0", {}, "hermes"),
        ("toolgym:FunctionCall-v0", {"tool_format": "python"}, "python"),
    ],
)
def test_a_wrapped_env_and_its_reset_info_name_the_same_dialect(env_id, kwargs, name):
    env = gym.make(env_id, **kwargs)
    _, info = env.reset(seed=0)
    assert dialect_of(env).name == dialect_of(info).name == name


def test_bfcl_tasks_read_python_with_the_official_decoder_unless_asked_otherwise():
    from toolgym.envs.function_call.env import FunctionCallEnv

    row = {
        "id": "simple_0",
        "question": [[{"role": "user", "content": "area?"}]],
        "function": [{"name": "area", "parameters": {"type": "dict", "properties": {}, "required": []}}],
        "ground_truth": [{"area": {}}],
    }
    assert FunctionCallEnv([row]).bfcl_dialect == PythonDialect("official")
    assert FunctionCallEnv([row], bfcl_decoding="lenient").bfcl_dialect == PythonDialect("lenient")
    with pytest.raises(ValueError, match="bfcl_decoding"):
        FunctionCallEnv([row], bfcl_decoding="loose")


def test_info_without_a_tool_format_uses_the_default():
    assert dialect_of({}).name == "text" and dialect_of({}, default="openai").native


def test_unknown_names_and_non_envs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown tool_format 'xml'"):
        get_dialect("xml")
    with pytest.raises(TypeError, match="cannot tell the dialect"):
        dialect_of(object())


def test_the_text_dialect_refuses_to_render_calls():
    with pytest.raises(ValueError, match="cannot carry tool calls"):
        get_dialect("text").render([ToolCall("f", {})])


@pytest.mark.parametrize("name", TOOL_FORMATS)
def test_each_dialect_writes_a_final_answer_its_own_parser_reads(name):
    dialect = get_dialect(name)
    assert dialect.parse(dialect.render_answer("Paris")).answer == "Paris"


def test_only_search_r1_returns_results_as_a_user_turn():
    call = ToolCall("search", {"query": "q"}, id="call_0")
    roles = {name: get_dialect(name).tool_result_message(call, "r")["role"] for name in TOOL_FORMATS}
    assert roles == {"search_r1": "user", "hermes": "tool", "python": "tool", "openai": "tool"}


def test_the_dialect_objects_are_the_only_way_to_work_by_dialect_name():
    # toolgym.tool_calls keeps the types and the scanners the dialects call; a second by-name
    # implementation (parse_turn(action, "hermes"), ...) could drift from the objects.
    import inspect

    import toolgym.tool_calls as tool_calls

    by_name = [
        name
        for name, function in inspect.getmembers(tool_calls, inspect.isfunction)
        if function.__module__ == tool_calls.__name__ and "tool_format" in inspect.signature(function).parameters
    ]
    assert by_name == []
    assert not hasattr(tool_calls, "TOOL_FORMATS")
    assert TOOL_FORMATS == ("search_r1", "hermes", "python", "openai")
