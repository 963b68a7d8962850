"""The math-verify workers: `start()` starts all of them, and a worker dies with a SIGKILLed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from toolgym.envs.math.verifier import MathVerifier

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and relies on prctl")


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_start_starts_every_worker_as_a_separate_process() -> None:
    verifier = MathVerifier(workers=3, string_match=False)
    try:
        verifier.start()
        pids = {worker.process.pid for worker in verifier._all_workers if worker.process is not None}
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
    finally:
        verifier.close()


def test_a_worker_started_from_a_thread_that_ends_keeps_running() -> None:
    """The parent-death signal follows the forking thread, so workers are forked from a long-lived one."""
    verifier = MathVerifier(string_match=False)
    try:
        thread = threading.Thread(target=verifier.start)
        thread.start()
        thread.join()
        time.sleep(0.3)
        assert verifier.verify("\\frac{1}{2}", "0.5").correct
    finally:
        verifier.close()


PARENT = """
import sys, time
from toolgym.envs.math import verifier as module
module.MAX_POWER_DEPTH = 100  # let the hanging tower reach the worker
v = module.MathVerifier(timeout_s=120.0, workers=2, string_match=False)
v.start()
print(" ".join(str(w.process.pid) for w in v._all_workers), flush=True)
# huggingface/Math-Verify#65: hangs in C-level big-integer arithmetic, where no Python thread runs.
v.verify("1", "\\\\dfrac{5^{\\\\left(5^{\\\\left(5^{\\\\left(5^5\\\\right)}\\\\right)} - 4\\\\right)} - 5}{16}")
"""


def test_workers_die_within_a_second_of_a_sigkilled_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(1.5)  # the hang is under way in one worker; the other is idle
        assert all(_alive(pid) for pid in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 3.0
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [pid for pid in pids if _alive(pid)]
        assert survivors == [], f"workers {survivors} outlived their SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
