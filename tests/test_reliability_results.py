"""A results row that no JSON encoder accepts is written in a safe form and flagged; the run goes on."""

from __future__ import annotations

import json
import os

import pytest

from toolgym.evals.harness import run_eval
from toolgym.evals.results import ENCODING_PROBLEMS_FIELD, RESULTS_FILE, ResultsWriter, encode_row, read_rows


def _deep(depth: int) -> list:
    root = current = []
    for _ in range(depth):
        child: list = []
        current.append(child)
        current = child
    return root


class Unprintable:
    """An in-process agent's object whose str() raises: not even the fallback `str(value)` works."""

    def __str__(self) -> str:
        raise RuntimeError("no text form")


def _cycle() -> dict:
    loop: dict = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (1 << 20_000, "an integer of 20001 bits"),  # past Python's 4,300-digit str(int) limit
        ({(1, 2): "value"}, "a tuple dict key"),
        (_deep(100_000), "nested more than"),  # RecursionError in every encoder
        (_cycle(), "nested more than"),
        (Unprintable(), "a Unprintable value"),
    ],
    ids=["huge-int", "tuple-key", "deep", "cycle", "object"],
)
def test_an_unencodable_row_is_written_in_a_safe_form_and_flagged(tmp_path, payload, problem) -> None:
    row = {"task_index": 3, "sample_index": 1, "reward": 1.0, "actions": [{"role": "assistant", "meta": payload}]}
    with ResultsWriter(tmp_path / RESULTS_FILE, fsync=False) as writer:
        writer.write(row)
        writer.write({"task_index": 4, "sample_index": 0, "reward": 0.0})
    rows = read_rows(tmp_path / RESULTS_FILE)
    assert [(r["task_index"], r["sample_index"]) for r in rows] == [(3, 1), (4, 0)]
    assert rows[0]["reward"] == 1.0  # everything that could be encoded is kept
    assert any(problem in line for line in rows[0][ENCODING_PROBLEMS_FIELD])
    assert ENCODING_PROBLEMS_FIELD not in rows[1]


def test_ordinary_odd_values_keep_their_lossless_encoding() -> None:
    row = {"task_index": 0, "sample_index": 0, "x": float("nan"), "s": "lone \ud800", 1: "int key", "big": 1 << 70}
    decoded = json.loads(encode_row(row))
    assert decoded == {
        "task_index": 0,
        "sample_index": 0,
        "x": None,
        "s": "lone \ud800",
        "1": "int key",
        "big": 1 << 70,
    }
    assert ENCODING_PROBLEMS_FIELD not in decoded


AGENT_MODULE = '''
from toolgym.agents.scripted import ScriptedAgent

_ORACLE = ScriptedAgent("oracle")


def odd_oracle(requests):
    """The oracle's turns, each carrying a value no JSON encoder takes (a tuple key, a 20,000-bit int)."""
    turns = []
    for action in _ORACLE.act(requests):
        message = action if isinstance(action, dict) else {"role": "assistant", "content": action}
        turns.append({**message, "debug": {(1, 2): 1 << 20_000}})
    return turns
'''


def test_an_eval_whose_rows_cannot_be_encoded_completes_and_resumes(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "agents_pkg"
    folder.mkdir()
    (folder / "odd_agents.py").write_text(AGENT_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    options = {"env": "Search-v0", "dataset": "procedural", "agent": "py:odd_agents:odd_oracle", "limit": 5}

    first = run_eval(tmp_path / "run", options, show_progress=False)
    again = run_eval(tmp_path / "run", {}, resume=True, show_progress=False)

    rows = read_rows(tmp_path / "run" / RESULTS_FILE)
    assert sorted((r["task_index"], r["sample_index"]) for r in rows) == [(t, 0) for t in range(5)]
    assert all(r[ENCODING_PROBLEMS_FIELD] for r in rows)
    assert first.summary["accuracy"]["mean"] == 1.0  # the oracle's scores survive the safe form
    assert (first.played, again.played, again.skipped) == (5, 0, 5)


RAISING_AGENTS = """
class UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no text form")


def raises_huge_int(requests):
    raise ValueError(1 << 20_000)  # str() of this exception raises: past the 4,300-digit limit


def raises_unprintable(requests):
    raise UnprintableError()
"""


@pytest.mark.parametrize("agent", ["raises_huge_int", "raises_unprintable"])
def test_an_agent_exception_whose_message_cannot_be_shown_is_an_error_row(tmp_path, monkeypatch, agent) -> None:
    folder = tmp_path / "agents_pkg"
    folder.mkdir()
    (folder / "raising_agents.py").write_text(RAISING_AGENTS)
    monkeypatch.syspath_prepend(str(folder))
    options = {"env": "Math-v0", "dataset": "procedural", "agent": f"py:raising_agents:{agent}", "limit": 2}

    outcome = run_eval(tmp_path / "run", options, show_progress=False, concurrency=1)

    rows = read_rows(tmp_path / "run" / RESULTS_FILE)
    assert outcome.played == 2 and len(rows) == 2
    assert all(row["error"]["stage"] == "agent" and "cannot be shown" in row["error"]["message"] for row in rows)
