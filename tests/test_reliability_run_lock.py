"""One writer per run folder, tested with real processes; a merge killed mid-commit is finished by rerunning it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolgym.evals import merge as merge_module
from toolgym.evals.harness import run_eval
from toolgym.evals.merge import merge_runs
from toolgym.evals.rescore import rescore_run
from toolgym.evals.results import RESULTS_FILE, RUN_FILE, RunDirError, read_rows
from toolgym.evals.run_lock import LOCK_FILE, RunLockedError, run_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX flock and signals")

SLOW_AGENT = """
import os
import time
from toolgym.agents.scripted import ScriptedAgent

_ORACLE = ScriptedAgent("oracle")
_CALLS = [0]


def held_oracle(requests):
    # The oracle; after two batches it waits while the file $HOLD_FILE exists (the run stays live).
    _CALLS[0] += 1
    while _CALLS[0] > 2 and os.path.exists(os.environ["HOLD_FILE"]):
        time.sleep(0.02)
    return _ORACLE.act(requests)
"""

HOLDER = """
import sys, time
from toolgym.evals.run_lock import run_lock
with run_lock(sys.argv[1], "a lock-holding test process", ["holder", "--for", "test"]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def slow_agent(tmp_path, monkeypatch) -> str:
    folder = tmp_path / "agents_pkg"
    folder.mkdir()
    (folder / "lock_test_agents.py").write_text(SLOW_AGENT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("HOLD_FILE", str(hold))
    return "py:lock_test_agents:held_oracle"


def _eval_command(out: Path, agent: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "toolgym.evals.cli", "eval", "--env", "Search-v0", "--dataset", "procedural",
        "--agent", agent, "--limit", "40", "--concurrency", "1", "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


def _start_holder(directory: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_eval_and_a_rescore_are_refused_while_a_run_writes(tmp_path, slow_agent):
    out = tmp_path / "run"
    first = subprocess.Popen(_eval_command(out, slow_agent), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / RESULTS_FILE).exists() or not (out / RESULTS_FILE).read_bytes().count(b"\n") >= 2:
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()[-2000:]
            time.sleep(0.02)

        second = subprocess.run(_eval_command(out, slow_agent, "--resume"), capture_output=True, text=True, timeout=120)
        rescore = subprocess.run(
            [sys.executable, "-m", "toolgym.evals.cli", "eval", "rescore", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.poll() is None, "the first run must still be writing for this test to mean anything"
        (tmp_path / "hold").unlink()
        assert first.wait(timeout=120) == 0, first.stderr.read().decode()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    for refused in (second, rescore):
        assert refused.returncode != 0
        assert f"pid {first.pid}" in refused.stderr and "toolgym eval" in refused.stderr
        assert "--limit 40" in refused.stderr  # the holder's command line is named
    keys = [(row["task_index"], row["sample_index"]) for row in read_rows(out / RESULTS_FILE)]
    assert sorted(keys) == [(t, 0) for t in range(40)]  # every episode once: nothing lost, nothing doubled


def test_the_lock_error_names_the_holder_and_a_killed_holder_is_taken_over(tmp_path, caplog):
    directory = tmp_path / "run"
    holder = _start_holder(directory)
    try:
        with pytest.raises(RunLockedError) as refused, run_lock(directory, "test"):
            pass
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and "a lock-holding test process" in message
        assert "holder --for test" in message and "started 20" in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    with run_lock(directory, "the next writer") as record:  # the OS released the dead holder's lock
        assert json.loads((directory / LOCK_FILE).read_text())["pid"] == record["pid"] == os.getpid()
    assert any("took over the lock" in r.getMessage() and f"pid {holder.pid}" in r.getMessage() for r in caplog.records)
    assert (directory / LOCK_FILE).read_text() == ""  # released cleanly: no holder left to report


def test_merge_refuses_a_shard_that_is_being_written(tmp_path):
    options = {"env": "Search-v0", "dataset": "procedural", "agent": "scripted:oracle", "limit": 4}
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        run_eval(shard, {**options, "shard": f"{i}/2"}, show_progress=False)
    holder = _start_holder(shards[1])
    try:
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            merge_runs(shards, tmp_path / "merged")
    finally:
        holder.kill()
        holder.wait()
    assert merge_runs(shards, tmp_path / "merged").episodes == 4


def test_every_writer_is_refused_while_another_process_holds_a_finished_run(tmp_path):
    """Siblings of eval-vs-rescore: a second rescore, a resume and a merge reading the folder, and a
    merge writing into it, each refused while another process (here a rescore stand-in) holds it."""
    run = tmp_path / "run"
    run_eval(
        run, {"env": "Math-v0", "dataset": "procedural", "agent": "scripted:oracle", "limit": 2}, show_progress=False
    )
    before = (run / RESULTS_FILE).read_bytes()
    holder = _start_holder(run)
    try:
        attempts = {
            "rescore": lambda: rescore_run(run),
            "resume": lambda: run_eval(run, {}, resume=True, show_progress=False),
            "merge reading it": lambda: merge_runs([run], tmp_path / "merged"),
            "merge into it": lambda: merge_runs([tmp_path / "elsewhere"], run),
        }
        for name, attempt in attempts.items():
            with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
                attempt()
            assert (run / RESULTS_FILE).read_bytes() == before, name
    finally:
        holder.kill()
        holder.wait()
    assert rescore_run(run).episodes == 2


def test_rescoring_a_missing_folder_is_a_clear_error_and_creates_nothing(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        rescore_run(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_a_merge_killed_between_results_and_run_json_is_finished_by_rerunning_it(tmp_path, monkeypatch):
    options = {"env": "Search-v0", "dataset": "procedural", "agent": "scripted:oracle", "limit": 6}
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        run_eval(shard, {**options, "shard": f"{i}/2"}, show_progress=False)
    out = tmp_path / "merged"
    real_write = merge_module.write_json_atomic

    def die_before_run_json(path, payload):
        if Path(path).name == RUN_FILE:
            raise SystemExit("killed")  # what a kill at this point leaves: results.jsonl, no run.json
        real_write(path, payload)

    monkeypatch.setattr(merge_module, "write_json_atomic", die_before_run_json)
    with pytest.raises(SystemExit):
        merge_runs(shards, out)
    monkeypatch.setattr(merge_module, "write_json_atomic", real_write)
    assert (out / RESULTS_FILE).exists() and not (out / RUN_FILE).exists()

    with pytest.raises(RunDirError, match="interrupted `toolgym eval merge`"):
        run_eval(out, {}, resume=True, show_progress=False)
    with pytest.raises(RunDirError, match="interrupted merge of other shards"):
        merge_runs(shards[:1], out)
    outcome = merge_runs(shards, out)  # the same command again finishes the job

    assert outcome.episodes == 6 and outcome.summary["complete"]
    assert sorted((r["task_index"], r["sample_index"]) for r in read_rows(out / RESULTS_FILE)) == [
        (t, 0) for t in range(6)
    ]
    assert not (out / merge_module.MERGE_PENDING_FILE).exists()
    with pytest.raises(RunDirError, match="already holds a run"):
        merge_runs(shards, out)
