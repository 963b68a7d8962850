"""FunctionCall-v0 against BFCL's own verdicts (bfcl-eval 2026.3.23) on generated model outputs.

`tests/fixtures/bfcl_official/verdicts.jsonl.gz` holds BFCL's verdict and error type for 7,556
outputs over the shared BFCL v3 data (how it was produced: the docstring of `generate.py` beside
it). With the default `bfcl_decoding="official"` the env must agree on every one; the lenient
reading differs by design, and only on the classes it documents.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from toolgym.envs.function_call.bfcl_data import load_bfcl
from toolgym.envs.function_call.env import FunctionCallEnv

VERDICTS = Path(__file__).parent / "fixtures" / "bfcl_official" / "verdicts.jsonl.gz"
# Output classes where ToolGym's lenient reading disagrees with BFCL on purpose.
LENIENT_DIFFERENCES = {
    "fence_python",
    "fence_py",
    "answer_tag",
    "positional",
    "bare_identifier",
    "nested_call",
    "nested_call_kw",
    "subscript",
    "unary_plus",
    "tuple_for_list",
    "set_for_list",
}


def _verdicts() -> list[dict]:
    with gzip.open(VERDICTS, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _disagreements(decoding: str) -> list[tuple[str, str, tuple, tuple]]:
    rows = {row["id"]: row for row in load_bfcl("bfcl")}
    env = FunctionCallEnv([next(iter(rows.values()))], bfcl_decoding=decoding)
    found = []
    for record in _verdicts():
        env.reset(options={"task": rows[record["id"]]})
        _, reward, _, _, info = env.step(record["text"])
        ours = (reward == 1.0, "" if reward == 1.0 else info["metrics"]["error_type"])
        if ours != (record["valid"], record["error_type"]):
            found.append((record["id"], record["kind"], (record["valid"], record["error_type"]), ours))
    return found


@pytest.mark.shared_data
def test_official_decoding_agrees_with_bfcl_on_every_generated_output(shared_data):
    assert _disagreements("official") == []


@pytest.mark.shared_data
def test_lenient_decoding_differs_only_on_the_documented_classes(shared_data):
    kinds = {kind for _, kind, _, _ in _disagreements("lenient")}
    assert kinds and kinds <= LENIENT_DIFFERENCES


def test_the_fixture_covers_every_class_the_issue_names():
    kinds = {record["kind"] for record in _verdicts()}
    assert {"bare_identifier", "arithmetic_int", "positional", "fence_python", "tuple_for_list", "empty_list"} <= kinds
