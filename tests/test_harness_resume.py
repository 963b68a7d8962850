"""`toolgym eval` resume: a real SIGKILL mid-run, a torn last line, config refusal, error rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolgym.evals.cli import main
from toolgym.evals.harness import run_eval
from toolgym.evals.results import RunDirError, read_rows

AGENT_MODULE = '''
import os
import time

from toolgym.agents.scripted import ScriptedAgent

_ORACLE = ScriptedAgent("oracle")


def slow_oracle(requests):
    """The oracle, 30 ms per batch: slow enough for a kill to land mid-run."""
    time.sleep(0.03)
    return _ORACLE.act(requests)


def flaky_oracle(requests):
    """The oracle, except that it raises on the task indices listed in $FLAKY_TASKS."""
    failing = {int(i) for i in os.environ.get("FLAKY_TASKS", "").split(",") if i}
    for request in requests:
        index = int(request.env_info["task"]["question_index"])
        if index in failing:
            raise RuntimeError(f"model endpoint failed on task {index}")
    return _ORACLE.act(requests)
'''


@pytest.fixture
def agent_module(tmp_path, monkeypatch):
    """A `py:` agent module on sys.path (and on PYTHONPATH for subprocesses)."""
    folder = tmp_path / "agents_pkg"
    folder.mkdir()
    (folder / "eval_test_agents.py").write_text(AGENT_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    return "eval_test_agents"


def _keys(path: Path) -> list[tuple[int, int]]:
    return [(r["task_index"], r["sample_index"]) for r in read_rows(path)]


def _options(agent: str, limit: int = 6, samples: int = 1) -> dict:
    return {"env": "Search-v0", "dataset": "procedural", "agent": agent, "limit": limit, "samples": samples}


def test_resume_after_sigkill_loses_and_duplicates_no_episode(tmp_path, agent_module):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "toolgym.evals.cli", "eval", "--env", "Search-v0", "--dataset", "procedural",
        "--agent", f"py:{agent_module}:slow_oracle", "--limit", "30", "--samples", "2",
        "--concurrency", "2", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before the kill: {process.stderr.read().decode()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    done_before = len(read_rows(results))
    assert 8 <= done_before < 60, "the kill must land mid-run"

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    keys = _keys(results)
    assert sorted(keys) == [(t, s) for t in range(30) for s in range(2)]  # every key exactly once
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 60 and summary["complete"] and summary["accuracy"]["mean"] == 1.0
    run = json.loads((out / "run.json").read_text())
    assert [inv["resume"] for inv in run["invocations"]] == [False, True]
    assert run["invocations"][1]["played"] == 60 - done_before


def test_a_torn_last_line_is_truncated_and_that_episode_replayed(tmp_path):
    out = tmp_path / "run"
    run_eval(out, _options("scripted:oracle"), show_progress=False)
    results = out / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a write cut by a kill
    torn_key = tuple(json.loads(lines[-1])[k] for k in ("task_index", "sample_index"))

    outcome = run_eval(out, {}, resume=True, show_progress=False)

    assert outcome.played == 1
    assert _keys(results)[-1] == torn_key
    assert sorted(_keys(results)) == [(t, 0) for t in range(6)]


def test_resume_refuses_a_different_configuration_and_lists_the_differences(tmp_path, capsys):
    out = tmp_path / "run"
    new_run = ["eval", "--env", "Search-v0", "--agent", "scripted:oracle", "--limit", "3", "--out", str(out)]
    assert main([*new_run, "--no-progress"]) == 0

    code = main(["eval", "--out", str(out), "--resume", "--samples", "2", "--agent", "scripted:baseline"])

    error = capsys.readouterr().err
    assert code == 2
    assert "refusing to resume" in error
    assert "samples: saved 1, now 2" in error and 'agent: saved "scripted:oracle", now "scripted:baseline"' in error
    assert main(new_run) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_agent_failures_become_error_rows_and_retry_errors_supersedes_them(tmp_path, agent_module, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv("FLAKY_TASKS", "1,4")
    options = _options(f"py:{agent_module}:flaky_oracle", limit=6)

    first = run_eval(out, options, concurrency=3, show_progress=False)

    rows = read_rows(out / "results.jsonl")
    errors = {r["task_index"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {1, 4}
    assert errors[1]["stage"] == "agent" and "model endpoint failed on task 1" in errors[1]["message"]
    assert first.summary["errors"] == 2 and first.summary["accuracy"]["mean"] == pytest.approx(4 / 6)

    monkeypatch.setenv("FLAKY_TASKS", "")
    again = run_eval(out, {}, resume=True, retry_errors=True, show_progress=False)

    rows = read_rows(out / "results.jsonl")
    assert len(rows) == 8  # append-only: two superseding rows after the six originals
    assert [(r["task_index"], r["attempt"]) for r in rows[-2:]] == [(1, 2), (4, 2)]
    assert again.played == 2 and again.summary["errors"] == 0 and again.summary["accuracy"]["mean"] == 1.0


def test_an_env_failure_on_one_task_is_an_error_row_and_the_run_goes_on(tmp_path):
    good = {"question": "Who wrote it?", "answer": "Ada", "context": [["Ada", ["Ada wrote it."]]]}
    broken = {**good, "answer": None}  # no gold answer: Search-v0 refuses the row at reset
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in (good, broken, good)) + "\n")

    outcome = run_eval(
        tmp_path / "run",
        {"env": "Search-v0", "dataset": str(data), "agent": "scripted:oracle"},
        show_progress=False,
    )

    rows = {r["task_index"]: r for r in read_rows(tmp_path / "run" / "results.jsonl")}
    assert rows[1]["error"]["stage"] == "reset" and "field 'answer'" in rows[1]["error"]["message"]
    assert rows[0]["metrics"]["em"] == 1.0 and rows[2]["metrics"]["em"] == 1.0
    assert outcome.summary["errors"] == 1


def test_a_results_file_without_run_json_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text("")
    with pytest.raises(RunDirError, match=r"no run\.json"):
        run_eval(out, _options("scripted:oracle"), resume=True, show_progress=False)
