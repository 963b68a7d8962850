"""Task rows are validated at reset: one `TaskRowError` naming the env and the field, never a
KeyError / AttributeError at reset or, worse, at a later step; world sizes in rows are bounded.

Each row format of each env gets its missing-field and wrong-type cases, built from a valid row
of that format by deleting or replacing one field.
"""

from __future__ import annotations

import copy
import re

import pytest

from toolgym.envs.function_call.env import FunctionCallEnv
from toolgym.envs.function_call.world import generate_world_task
from toolgym.envs.math.env import MathEnv
from toolgym.envs.rows import MAX_ROW_DEPTH, TaskRowError
from toolgym.envs.search.env import SearchEnv
from toolgym.envs.search.world import MAX_ENTITIES, WorldConfig, get_world

MATH_ROW = {"problem": "What is 2+2?", "answer": "4", "unique_id": "t/1"}
GSM8K_ROW = {"question": "Ann has 2 apples and buys 2. How many?", "answer": "2 + 2 = 4\n#### 4"}
HOTPOTQA_ROW = {
    "_id": "h1",
    "question": "Who wrote it?",
    "answer": "Ada",
    "context": [["Ada", ["Ada wrote it."]], ["Bob", ["Bob read it."]]],
    "supporting_facts": [["Ada", 0]],
}
IRCOT_ROW = {
    "question_id": "i1",
    "question_text": "Who wrote it?",
    "answers_objects": [{"spans": ["Ada"]}],
    "contexts": [{"title": "Ada", "paragraph_text": "Ada wrote it.", "is_supporting": True}],
}
NQ_ROW = {"question": "who wrote it", "answer": ["Ada"]}
BFCL_ROW = {
    "id": "simple_7",
    "question": [[{"role": "user", "content": "Area of a 3 by 4 rectangle?"}]],
    "function": [
        {
            "name": "area",
            "description": "Rectangle area.",
            "parameters": {
                "type": "dict",
                "properties": {"w": {"type": "integer"}, "h": {"type": "integer"}},
                "required": ["w", "h"],
            },
        }
    ],
    "ground_truth": [{"area": {"w": [3], "h": [4]}}],
}
WORLD_ROW = generate_world_task(seed=4, difficulty=3)  # fs, bank and shop


def _world_row() -> dict:
    return copy.deepcopy(WORLD_ROW)


def _search_world_row() -> dict:
    return get_world(WorldConfig()).question_row(0)


def _without(row: dict, *path) -> dict:
    row = copy.deepcopy(row)
    target = row
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return row


def _with(row: dict, value, *path) -> dict:
    row = copy.deepcopy(row)
    target = row
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return row


def _envs():
    return {
        "Math-v0": MathEnv(),
        "Search-v0": SearchEnv(),
        "FunctionCall-v0": FunctionCallEnv(),
    }


ENVS = _envs()


def _refused(env_id: str, row, field: str) -> TaskRowError:
    with pytest.raises(TaskRowError) as caught:
        ENVS[env_id].reset(seed=0, options={"task": row})
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, TypeError)
    assert error.env_id == env_id and error.field == field, str(error)
    assert env_id in str(error) and repr(field) in str(error)
    return error


def test_valid_rows_of_every_format_reset():
    for env_id, row in [
        ("Math-v0", MATH_ROW),
        ("Math-v0", GSM8K_ROW),
        ("Search-v0", HOTPOTQA_ROW),
        ("Search-v0", IRCOT_ROW),
        ("Search-v0", _search_world_row()),
        ("FunctionCall-v0", BFCL_ROW),
        ("FunctionCall-v0", WORLD_ROW),
    ]:
        ENVS[env_id].reset(seed=0, options={"task": row})


CASES = [
    # Math-v0: MATH and GSM8K
    ("Math-v0", {"answer": "4"}, "problem"),
    ("Math-v0", _with(MATH_ROW, 4, "problem"), "problem"),
    ("Math-v0", _with(MATH_ROW, ["4"], "answer"), "answer"),
    ("Math-v0", _with(MATH_ROW, True, "answer"), "answer"),
    ("Math-v0", _without(MATH_ROW, "answer"), "answer"),  # and no \boxed{} solution to read it from
    ("Math-v0", _with(MATH_ROW, "   ", "answer"), "answer"),
    ("Math-v0", _with(MATH_ROW, {"a": 1}, "unique_id"), "unique_id"),
    ("Math-v0", _without(GSM8K_ROW, "answer"), "answer"),
    ("Math-v0", _with(GSM8K_ROW, None, "question"), "question"),
    # Search-v0: HotpotQA, IRCoT, answer-only and world rows
    ("Search-v0", {"title": "no question here"}, "question"),
    ("Search-v0", _without(HOTPOTQA_ROW, "answer"), "answer"),
    ("Search-v0", _without(HOTPOTQA_ROW, "context"), "context"),  # no paragraphs and the env has no corpus
    ("Search-v0", _with(HOTPOTQA_ROW, None, "answer"), "answer"),
    ("Search-v0", _with(HOTPOTQA_ROW, "Ada wrote it", "context"), "context"),
    ("Search-v0", _with(HOTPOTQA_ROW, [["Ada"]], "context"), "context[0]"),
    ("Search-v0", _with(HOTPOTQA_ROW, [[7, ["x"]]], "context"), "context[0][0]"),
    ("Search-v0", _with(HOTPOTQA_ROW, [["Ada", "not a list"]], "context"), "context[0][1]"),
    ("Search-v0", _with(HOTPOTQA_ROW, {"title": ["Ada"]}, "context"), "context.sentences"),
    ("Search-v0", _with(HOTPOTQA_ROW, [[]], "supporting_facts"), "supporting_facts[0]"),
    ("Search-v0", _with(HOTPOTQA_ROW, 3, "question"), "question"),
    ("Search-v0", _without(IRCOT_ROW, "question_text"), "question_text"),
    ("Search-v0", _without(IRCOT_ROW, "contexts", 0, "title"), "contexts[0].title"),
    ("Search-v0", _with(IRCOT_ROW, ["Ada"], "answers_objects"), "answers_objects[0]"),
    ("Search-v0", _with(IRCOT_ROW, "yes", "contexts", 0, "is_supporting"), "contexts[0].is_supporting"),
    ("Search-v0", _with(NQ_ROW, {"text": "Ada"}, "answer"), "answer"),
    ("Search-v0", _with(NQ_ROW, [], "answer"), "answer"),  # no gold answer at all
    ("Search-v0", _with(NQ_ROW, None, "question"), "question"),
    ("Search-v0", _with(_search_world_row(), "big", "world"), "world"),
    ("Search-v0", _with(_search_world_row(), "0", "world", "seed"), "world.seed"),
    ("Search-v0", _with(_search_world_row(), 3, "world", "colour"), "world.colour"),
    # FunctionCall-v0: BFCL rows
    ("FunctionCall-v0", _without(BFCL_ROW, "id"), "id"),
    ("FunctionCall-v0", _with(BFCL_ROW, 7, "id"), "id"),
    ("FunctionCall-v0", _without(BFCL_ROW, "function", 0, "name"), "function[0].name"),
    ("FunctionCall-v0", _with(BFCL_ROW, "area(w, h)", "function"), "function"),
    ("FunctionCall-v0", _with(BFCL_ROW, [], "question"), "question"),
    ("FunctionCall-v0", _with(BFCL_ROW, [[{"role": "user"}]], "question"), "question[0][0].content"),
    ("FunctionCall-v0", _with(BFCL_ROW, [], "ground_truth"), "ground_truth"),
    ("FunctionCall-v0", _with(BFCL_ROW, [{}], "ground_truth"), "ground_truth[0]"),
    ("FunctionCall-v0", _with(BFCL_ROW, [{"area": {"w": 3}}], "ground_truth"), "ground_truth[0].area.w"),
    ("FunctionCall-v0", _with(BFCL_ROW, "simple_java_3", "id"), "id"),
    # FunctionCall-v0: tool-world rows (each of these used to pass reset and fail at step)
    ("FunctionCall-v0", _without(WORLD_ROW, "id"), "id"),
    ("FunctionCall-v0", _without(WORLD_ROW, "goal_state"), "goal_state"),
    ("FunctionCall-v0", _without(WORLD_ROW, "initial_state", "fs", "tree"), "initial_state.fs.tree"),
    ("FunctionCall-v0", _with(_world_row(), {"fs": {}}, "initial_state"), "initial_state.fs.cwd"),
    ("FunctionCall-v0", _with(_world_row(), "/nowhere", "initial_state", "fs", "cwd"), "initial_state.fs.cwd"),
    (
        "FunctionCall-v0",
        _with(_world_row(), {"a.txt": 3}, "initial_state", "fs", "tree"),
        "initial_state.fs.tree.a.txt",
    ),
    (
        "FunctionCall-v0",
        _with(_world_row(), {"Alice": {"owner": "Alice"}}, "initial_state", "bank", "accounts"),
        "initial_state.bank.accounts.Alice.balance",
    ),
    (
        "FunctionCall-v0",
        _with(_world_row(), "12", "goal_state", "shop", "next_order_id"),
        "goal_state.shop.next_order_id",
    ),
    (
        "FunctionCall-v0",
        _with(_world_row(), {"qty": 1}, "initial_state", "shop", "stock"),
        "initial_state.shop.orders.1001.item",
    ),
    ("FunctionCall-v0", _with(_world_row(), {}, "initial_state"), "initial_state"),
    ("FunctionCall-v0", _with(_world_row(), "x", "initial_state", "fs", "tree", ".."), "initial_state.fs.tree"),
    ("FunctionCall-v0", _with(_world_row(), {"x": 1}, "initial_state", "cloud"), "initial_state.cloud"),
    ("FunctionCall-v0", _without(WORLD_ROW, "goal_state", "bank"), "goal_state"),  # domains differ from the start
]


@pytest.mark.parametrize(("env_id", "row", "field"), CASES, ids=[f"{e}:{f}" for e, _, f in CASES])
def test_a_malformed_row_is_refused_at_reset_naming_the_field(env_id, row, field):
    _refused(env_id, row, field)


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_reset_options_must_be_a_dict_with_index_or_task(env_id):
    env = ENVS[env_id]
    for options, field in [
        ("task", "options"),
        (["index", 0], "options"),
        ({"idx": 3}, "options"),
        ({"task": MATH_ROW, "index": 0}, "options"),
        ({"task": "a row as a string"}, "options['task']"),
        ({"task": None}, "options['task']"),
        ({"index": "3"}, "options['index']"),
        ({"index": True}, "options['index']"),
    ]:
        with pytest.raises(TaskRowError) as caught:
            env.reset(seed=0, options=options)
        assert caught.value.field == field and caught.value.env_id == env_id, (options, str(caught.value))


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_rows_must_be_json_like_shallow_and_hold_no_giant_integers(env_id):
    deep: dict = {}
    node = deep
    for _ in range(MAX_ROW_DEPTH + 5):
        node["x"] = {}
        node = node["x"]
    for bad, problem in [
        ({"question": "q", "problem": "q", "extra": deep}, "deeper than"),
        ({"question": "q", "problem": "q", "extra": {1: "a"}}, "non-string key"),
        ({"question": "q", "problem": "q", "extra": {"a", "b"}}, "JSON value"),
        ({"question": "q", "problem": "q", "extra": int("9" * 1500)}, "digits"),
    ]:
        with pytest.raises(TaskRowError, match=problem):
            ENVS[env_id].reset(seed=0, options={"task": bad})


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("paragraphs_per_entity", 100_000),
        ("paragraphs_per_entity", 0),
        ("n_entities", 10**9),
        ("n_entities", 5),
        ("n_distractors", 10**7),
        ("n_distractors", -1),
        ("seed", 2**80),
    ],
)
def test_world_sizes_in_a_row_are_bounded_before_anything_is_built(parameter, value):
    row = _search_world_row()
    row["world"][parameter] = value
    error = _refused("Search-v0", row, f"world.{parameter}")
    assert "must be" in str(error)


def test_world_sizes_given_to_the_constructor_are_bounded_too():
    with pytest.raises(ValueError, match="paragraphs_per_entity"):
        SearchEnv(paragraphs_per_entity=100_000)
    with pytest.raises(ValueError, match=rf"n_entities must be an integer in \[20, {MAX_ENTITIES}\]"):
        SearchEnv(n_entities=10**9)
    with pytest.raises(ValueError, match="difficulty"):
        FunctionCallEnv(difficulty=10**6)
    with pytest.raises(ValueError, match="difficulty"):
        FunctionCallEnv(difficulty=True)


def test_a_world_row_with_a_bounded_difficulty_field_still_loads():
    row = _world_row()
    ENVS["FunctionCall-v0"].reset(options={"task": _with(row, 20, "difficulty")})
    _refused("FunctionCall-v0", _with(row, 10**6, "difficulty"), "difficulty")


def test_valid_world_rows_step_through_every_tool_without_errors_from_the_row():
    """The schema is what the tools read: a valid row's world never raises inside a tool."""
    env = ENVS["FunctionCall-v0"]
    for seed in range(20):
        env.reset(options={"task": generate_world_task(seed, difficulty=3)})
        calls = [
            '{"name": "ls", "arguments": {}}',
            '{"name": "list_accounts", "arguments": {}}',
            '{"name": "list_orders", "arguments": {}}',
            '{"name": "cancel_order", "arguments": {"order_id": "1001"}}',
            '{"name": "cd", "arguments": {"folder": ".."}}',
        ]
        _, _, _, _, info = env.step("".join(f"<tool_call>{c}</tool_call>" for c in calls))
        assert not info["invalid_action"], info["tool_error"]


@pytest.mark.shared_data
def test_every_row_of_the_shared_datasets_passes_its_schema(shared_data):
    from toolgym.envs.function_call.bfcl_data import load_bfcl
    from toolgym.envs.function_call.rows import check_function_call_row
    from toolgym.envs.math.data import load_rows as math_rows
    from toolgym.envs.search.loaders import load_rows as search_rows
    from toolgym.envs.search.rows import search_row_format

    for spec in ("bfcl", "bfcl_v4"):
        for row in load_bfcl(spec):
            check_function_call_row(row)
    for spec in ("hotpotqa", "hotpotqa:train_sample", "hotpotqa:question_only", "nq_open", "nq_open:efficientqa"):
        for row in search_rows(spec):
            search_row_format(row)
    for spec in ("math500", "math:test", "gsm8k:test"):
        rows, _ = math_rows(spec)  # load_rows drops (and logs) rows that fail: none may
        assert len(rows) == {"math500": 500, "math:test": 5000, "gsm8k:test": 1319}[spec]


def test_a_malformed_dataset_row_is_reported_with_its_index():
    env = FunctionCallEnv(dataset=[BFCL_ROW, _without(BFCL_ROW, "question")])
    env.reset(options={"index": 0})
    with pytest.raises(TaskRowError, match=r"FunctionCall-v0 task row 1 \(BFCL.*field 'question' is missing") as caught:
        env.reset(options={"index": 1})
    assert caught.value.row_index == 1 and caught.value.field == "question"


def test_after_a_refused_row_the_previous_episode_cannot_be_stepped():
    from toolgym.envs.base import EpisodeError

    env = MathEnv()
    env.reset(seed=0)
    with pytest.raises(TaskRowError):
        env.reset(options={"task": {"problem": 3}})
    with pytest.raises(EpisodeError, match="before reset"):
        env.step("\\boxed{1}")


# --- mutation sweep: a row is either refused at reset or plays without raising -----------------

_MUTANTS = [None, 0, -5, 1.5, "x", "", [], {}, {"a": 1}, ["a"], True, "/", "..", [["t", ["s"]]], [[]], 10**7]


def _paths(value, prefix=()):
    if prefix:
        yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _mutant(row: dict, rng) -> dict:
    row = copy.deepcopy(row)
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(row))
        if not paths:
            break
        *parents, last = rng.choice(paths)
        target = row
        for key in parents:
            target = target[key]
        if isinstance(target, dict) and rng.random() < 0.4:
            del target[last]
        else:
            target[last] = copy.deepcopy(rng.choice(_MUTANTS))
    return row


SCRIPTS = {
    "Math-v0": ["\\boxed{4}"],
    "Search-v0": ["<search>Ada wrote</search>", "<answer>Ada</answer>"],
    "FunctionCall-v0": [
        '<tool_call>{"name": "ls", "arguments": {}}</tool_call><tool_call>{"name": "list_orders", "arguments": {}}</tool_call>'
        '<tool_call>{"name": "cancel_order", "arguments": {"order_id": "1001"}}</tool_call>'
        '<tool_call>{"name": "transfer", "arguments": {"from_account": "A", "to_account": "B", "amount": 5}}</tool_call>',
        "area(w=3, h=4)",
        "done",
    ],
}


@pytest.mark.parametrize(
    ("env_id", "base"),
    [
        ("Math-v0", MATH_ROW),
        ("Math-v0", GSM8K_ROW),
        ("Search-v0", HOTPOTQA_ROW),
        ("Search-v0", IRCOT_ROW),
        ("Search-v0", _search_world_row()),
        ("FunctionCall-v0", BFCL_ROW),
        ("FunctionCall-v0", WORLD_ROW),
    ],
    ids=["math", "gsm8k", "hotpotqa", "ircot", "search-world", "bfcl", "tool-world"],
)
def test_mutated_rows_are_refused_at_reset_or_play_without_raising(env_id, base):
    import random

    from toolgym.envs.base import EpisodeError

    rng, env, played = random.Random(f"mutants-{env_id}-{sorted(base)}"), ENVS[env_id], 0
    for _ in range(150):
        try:
            env.reset(seed=0, options={"task": _mutant(base, rng)})
        except TaskRowError:
            continue
        played += 1
        for action in SCRIPTS[env_id]:
            try:
                env.step(action)
            except EpisodeError:  # the episode ended before the script did
                break
    assert played > 0  # the sweep also reached steps, not only refusals


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SearchEnv(n_entities=20, max_turns=float("inf")), "max_turns must be an integer, got float inf"),
        (lambda: SearchEnv(n_entities=20, top_k=2.5), "top_k must be an integer"),
        (lambda: SearchEnv(n_entities=20, max_obs_chars=[1]), "max_obs_chars must be an integer, got a list"),
        (lambda: SearchEnv(n_entities=20, retriever="nope"), "unknown retriever backend 'nope'"),
        (lambda: MathEnv(max_turns=10**5000), None),  # a huge int is a valid (if odd) count
        (lambda: MathEnv(max_turns="3"), "max_turns must be an integer, got str '3'"),
        (lambda: MathEnv(verify_timeout_s=float("nan")), "verify_timeout_s must be positive and finite"),
        (lambda: MathEnv(verify_timeout_s="5"), "verify_timeout_s must be a number"),
        (lambda: FunctionCallEnv(max_turns=True), "max_turns must be an integer"),
    ],
    ids=[
        "inf-turns",
        "float-k",
        "list-chars",
        "unknown-backend",
        "huge-turns",
        "str-turns",
        "nan-timeout",
        "str-timeout",
        "bool-turns",
    ],
)
def test_constructor_counts_of_the_wrong_type_are_one_clear_error(make, message) -> None:
    """Range checks alone let `max_turns=1e999` (infinity, from a command line) run forever and a
    list fail with a bare comparison error; an unknown backend used to fail once per episode."""
    if message is None:
        make().close()
        return
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        make()
