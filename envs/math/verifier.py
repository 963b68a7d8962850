"""Answer verification with math-verify, isolated in a worker process with a hard wall-clock timeout.

Why a process: math-verify's own timeouts are SIGALRM-based, so they raise when called off the
main thread (env pools step envs from threads), and they cannot interrupt C-level big-integer
arithmetic: ``parse('\\boxed{\\dfrac{5^{\\left(5^{...}\\right)}}{16}}')`` hangs forever
(huggingface/Math-Verify#65). Here each comparison runs in a persistent worker subprocess
(`_verify_worker.py`, started lazily); the parent waits for each result with a deadline and, when
it passes, kills the worker, reports ``timeout=True`` and starts a fresh worker on the next call.

Cheap checks run first, in the parent: a pure fast path accepts a prediction that is the same
plain number or fraction as the gold (a pair math-verify always accepts) without the worker, and
over-long answers or exponent towers are refused before they can hang anything.
`MathVerifier` is thread-safe: callers share a small pool of workers, one caller per worker.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import matching_braces

logger = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_verify_worker.py")
MAX_ANSWER_CHARS = 2000
MAX_POWER_DEPTH = 2  # e^{x^2} is a fine answer; 10^{10^{10}} is a denial of service
MAX_EXPONENT_DIGITS = 6


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of comparing one prediction with its gold answer.

    `parsed` is False when the prediction is not a parseable expression (a format failure, not a
    wrong answer); `gold_parsed` False means the dataset's answer is unusable (a data error).
    """

    correct: bool
    parsed: bool
    gold_parsed: bool
    timeout: bool = False
    error: str | None = None


class VerifierUnavailable(RuntimeError):
    """The math-verify worker cannot start (for example math-verify is not installed)."""


# --- cheap checks in the parent -------------------------------------------------------------------

# Plain numbers and digit fractions: math-verify reads an identical pair of these as equal.
_FAST_PATH_RE = re.compile(r"-?\d{1,50}(?:\.\d{1,50})?|-?\\frac\{\d{1,50}\}\{[1-9]\d{0,49}\}", re.ASCII)
_HUGE_EXPONENT_RE = re.compile(rf"\^\s*\{{?\s*[-+]?\d{{{MAX_EXPONENT_DIGITS + 1},}}")
_EXPONENT_TOKEN_RE = re.compile(r"\\?[A-Za-z0-9.]+|.", re.DOTALL)


def fast_path_form(text: str) -> str | None:
    """The answer as a plain number or digit fraction (``\\dfrac``/``\\tfrac`` read as ``\\frac``), or None.

    Two answers with the same form are equal for math-verify too, so the verifier may accept them
    without asking it; anything else (spacing, ``\\!``, commas, symbols) goes to math-verify,
    which alone decides. An earlier, looser string match accepted
    ``11 , \\! 111 , \\! 111 , \\! 100`` for ``11,\\! 111,\\! 111,\\! 100``, which math-verify rejects.
    """
    text = text.strip().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return text if _FAST_PATH_RE.fullmatch(text) else None


def power_depth(text: str, limit: int = MAX_POWER_DEPTH + 1) -> int:
    """How deeply exponents nest (``x^2`` is 1, ``2^{2^{x}}`` and ``2^2^2`` are 2), counted up to `limit`."""
    text = text.replace("**", "^")
    return _power_depth(text, 0, len(text), matching_braces(text), limit)


def _power_depth(text: str, start: int, end: int, closing: dict[int, int], limit: int) -> int:
    best, chain, chain_end, position = 0, 0, -1, start
    while best < limit:
        caret = text.find("^", position, end)
        if caret < 0:
            break
        exponent = caret + 1
        while exponent < end and text[exponent].isspace():
            exponent += 1
        close = closing.get(exponent, end) if exponent < end and text[exponent] == "{" else end
        if close < end:  # a braced exponent: recurse into it
            depth = 1 + _power_depth(text, exponent + 1, close, closing, limit - 1)
            position = close + 1
        else:  # one token; `a^b^c` chains right-associatively
            token = _EXPONENT_TOKEN_RE.match(text, exponent, end)
            position = token.end() if token else exponent + 1
            depth = 1
        chain = chain + depth if text[chain_end:caret].strip() == "" and chain_end >= 0 else depth
        chain_end = position
        best = max(best, chain)
    return min(best, limit)


def precheck(gold: str, prediction: str, *, string_match: bool = True) -> VerifyResult | None:
    """A result decided without math-verify, or None when the worker must decide."""
    if not isinstance(gold, str) or not gold.strip():
        return VerifyResult(False, parsed=False, gold_parsed=False, error="the gold answer is empty")
    if not isinstance(prediction, str) or not prediction.strip():
        return VerifyResult(False, parsed=False, gold_parsed=True, error="the predicted answer is empty")
    if string_match and fast_path_form(gold) is not None and fast_path_form(gold) == fast_path_form(prediction):
        return VerifyResult(True, parsed=True, gold_parsed=True)
    for role, text in (("gold", gold), ("prediction", prediction)):
        problem = None
        if len(text) > MAX_ANSWER_CHARS:
            problem = f"the {role} answer is {len(text)} characters; the limit is {MAX_ANSWER_CHARS}"
        elif _HUGE_EXPONENT_RE.search(text.replace("**", "^")):
            problem = f"the {role} answer has an exponent with more than {MAX_EXPONENT_DIGITS} digits"
        elif power_depth(text) > MAX_POWER_DEPTH:
            problem = f"the {role} answer nests exponents more than {MAX_POWER_DEPTH} deep"
        if problem is not None:
            return VerifyResult(False, parsed=False, gold_parsed=role != "gold", error=problem)
    return None


# --- the worker process ---------------------------------------------------------------------------


class _Worker:
    """One math-verify subprocess speaking JSON lines over pipes; killed and restarted on a hang."""

    def __init__(self, start_timeout_s: float, memory_limit_mb: int | None):
        self.start_timeout_s = start_timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.process: subprocess.Popen | None = None
        self.owner_pid = os.getpid()
        self.buffer = b""
        self.start_seconds: float | None = None

    def ensure_started(self) -> None:
        if self.owner_pid != os.getpid():  # inherited through fork: the pipes belong to the parent
            self.process, self.buffer, self.owner_pid = None, b"", os.getpid()
        if self.process is not None and self.process.poll() is None:
            return
        started = time.monotonic()
        command = [sys.executable, str(WORKER_SCRIPT)]
        if self.memory_limit_mb:
            command.append(f"--memory-limit-mb={self.memory_limit_mb}")
        # One BLAS thread: should sympy pull in numpy, per-thread arenas must not eat the memory cap.
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command.append(f"--parent-pid={os.getpid()}")
        self.process = _spawn(command, environment)
        self.buffer = b""
        line = self.read_line(started + self.start_timeout_s)
        if line is None or not line.get("ready"):
            self.kill()
            raise VerifierUnavailable(
                f"the math-verify worker did not start within {self.start_timeout_s:.0f}s "
                f"({'no answer' if line is None else line}); is math-verify installed? pip install math-verify"
            )
        self.start_seconds = time.monotonic() - started
        logger.debug("math-verify worker %d started in %.2fs", self.process.pid, self.start_seconds)

    def read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, or None on deadline or end of stream (the worker died)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            logger.warning("math-verify worker wrote a non-protocol line: %r", line[:200])
            return None
        return message if isinstance(message, dict) else None

    def run(self, items: list[tuple[str, str]], timeout_s: float) -> list[VerifyResult]:
        """Verify items in order; a hang costs that item `timeout=True` and a worker restart."""
        try:
            return self._run(items, timeout_s)
        except BaseException:
            self.kill()  # e.g. KeyboardInterrupt mid-batch: unread results must not reach the next caller
            raise

    def _run(self, items: list[tuple[str, str]], timeout_s: float) -> list[VerifyResult]:
        results: list[VerifyResult] = []
        inner_timeout = max(1, int(timeout_s // 3))  # math-verify's own (soft) per-stage timeout
        while len(results) < len(items):
            self.ensure_started()
            todo = items[len(results) :]
            request = {"items": [{"gold": g, "pred": p} for g, p in todo], "timeout": inner_timeout}
            try:
                assert self.process is not None and self.process.stdin is not None
                self.process.stdin.write((json.dumps(request) + "\n").encode("ascii"))  # json escapes non-ASCII
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                self.kill()
                continue
            for _ in todo:
                line = self.read_line(time.monotonic() + timeout_s)
                if line is None:
                    died = self.process.poll() is not None
                    self.kill()
                    message = "the math-verify worker died" if died else f"math-verify took over {timeout_s:g}s; killed"
                    results.append(VerifyResult(False, parsed=False, gold_parsed=True, timeout=not died, error=message))
                    break
                results.append(_result_from_message(line))
        return results

    def kill(self) -> None:
        process, self.process, self.buffer = self.process, None, b""
        if process is None or self.owner_pid != os.getpid():
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """Ask the worker to exit (end of input), killing it if it does not within a second."""
        process = self.process
        if process is None or self.owner_pid != os.getpid():
            self.process = None
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _result_from_message(message: dict[str, Any]) -> VerifyResult:
    return VerifyResult(
        correct=bool(message.get("correct")),
        parsed=bool(message.get("parsed")),
        gold_parsed=bool(message.get("gold_parsed")),
        timeout=bool(message.get("timeout")),
        error=message.get("error") if isinstance(message.get("error"), str) else None,
    )


_LIVE_VERIFIERS: weakref.WeakSet[MathVerifier] = weakref.WeakSet()


# --- starting workers from one long-lived thread ----------------------------------------------------
#
# The worker asks Linux to SIGKILL it when its parent dies (PR_SET_PDEATHSIG), so a SIGKILLed eval
# leaves no worker spinning in big-integer arithmetic, where a thread polling getppid() never gets
# the GIL. That signal follows the *thread* that forked the worker, not the process: a worker
# started from an env-pool thread would die when that thread ends. So every worker is started
# from this one daemon thread, which lives as long as the process.

_spawn_queue: queue.SimpleQueue[tuple[list[str], dict[str, str], Future]] = queue.SimpleQueue()
_spawner_pid: int | None = None
_spawner_lock = threading.Lock()


def _spawn(command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    """Start a worker process from the spawner thread (started on first use, again after a fork)."""
    global _spawner_pid, _spawn_queue
    with _spawner_lock:
        if _spawner_pid != os.getpid():
            _spawn_queue = queue.SimpleQueue()  # a forked child must not share the parent's requests
            threading.Thread(
                target=_spawner_loop, args=(_spawn_queue,), name="math-verify-spawner", daemon=True
            ).start()
            _spawner_pid = os.getpid()
        requests = _spawn_queue
    done: Future = Future()
    requests.put((command, environment, done))
    return done.result()


def _spawner_loop(requests: queue.SimpleQueue) -> None:
    while True:
        command, environment, done = requests.get()
        try:
            done.set_result(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=environment)
            )
        except BaseException as exc:  # handed to the caller, which raises it
            done.set_exception(exc)


class MathVerifier:
    """Compare predicted answers with gold answers using math-verify in killable worker processes.

    `timeout_s` is the hard wall-clock limit per comparison; `workers` the number of worker
    processes that concurrent callers share (each serves one caller at a time). `string_match`
    accepts a prediction with the gold's plain-number or fraction form (`fast_path_form`) without
    asking math-verify: a pure fast path, it only accepts pairs math-verify accepts (turn it off to
    test math-verify itself). `memory_limit_mb` caps each worker's address space.
    """

    def __init__(
        self,
        timeout_s: float = 5.0,
        *,
        workers: int = 1,
        start_timeout_s: float = 60.0,
        memory_limit_mb: int | None = 4096,
        string_match: bool = True,
    ):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.timeout_s = timeout_s
        self.string_match = string_match
        self._settings = {
            "timeout_s": timeout_s,
            "workers": workers,
            "start_timeout_s": start_timeout_s,
            "memory_limit_mb": memory_limit_mb,
            "string_match": string_match,
        }
        self._all_workers = [_Worker(start_timeout_s, memory_limit_mb) for _ in range(workers)]
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in self._all_workers:
            self._idle.put(worker)
        _LIVE_VERIFIERS.add(self)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle as the settings: worker processes and pipes cannot travel, so the copy starts its
        own workers on first use (an env holding a verifier pickles for vector envs and Ray)."""
        return (_verifier_from_settings, (self._settings,))

    def __deepcopy__(self, memo: dict[int, Any]) -> MathVerifier:
        """A verifier is a stateless, thread-safe service: copies of an env share it."""
        return self

    def verify(self, gold: str, prediction: str, *, timeout_s: float | None = None) -> VerifyResult:
        """Is `prediction` mathematically equal to `gold`? Never raises on model text."""
        return self.verify_many([(gold, prediction)], timeout_s=timeout_s)[0]

    def verify_many(self, pairs: Sequence[tuple[str, str]], *, timeout_s: float | None = None) -> list[VerifyResult]:
        """Verify `(gold, prediction)` pairs in one round trip to a worker (the fast way to score a dataset)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        results: list[VerifyResult | None] = [
            precheck(gold, prediction, string_match=self.string_match) for gold, prediction in pairs
        ]
        pending = [i for i, result in enumerate(results) if result is None]
        if pending:
            worker = self._idle.get()
            try:
                checked = worker.run([(pairs[i][0], pairs[i][1]) for i in pending], timeout)
            finally:
                self._idle.put(worker)
            for i, result in zip(pending, checked):
                results[i] = result
        return [result for result in results if result is not None]

    def start(self) -> float:
        """Start every worker now rather than on first use; returns the slowest start in seconds.

        All workers are taken from the idle pool first (waiting for busy ones), then started side
        by side: taking and returning them one at a time would hand back the same worker each time.
        """
        workers = [self._idle.get() for _ in self._all_workers]
        errors: list[BaseException] = []

        def start_one(worker: _Worker) -> None:
            try:
                worker.ensure_started()
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)

        try:
            threads = [threading.Thread(target=start_one, args=(w,), name="math-verify-start") for w in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            for worker in workers:
                self._idle.put(worker)
        if errors:
            raise errors[0]
        return max(worker.start_seconds or 0.0 for worker in workers)

    def close(self) -> None:
        """Stop the worker processes (a later call starts them again)."""
        for worker in self._all_workers:
            worker.close()


def _verifier_from_settings(settings: dict[str, Any]) -> MathVerifier:
    return MathVerifier(**settings)


_shared: MathVerifier | None = None
_shared_lock = threading.Lock()


def shared_verifier() -> MathVerifier:
    """The process-wide verifier that envs use unless given their own.

    Up to four workers; the idle pool hands out the most recently used worker first, so extra
    processes start only when several threads verify at the same moment.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MathVerifier(workers=min(4, os.cpu_count() or 1))
        return _shared


@atexit.register
def _close_all() -> None:
    for verifier in list(_LIVE_VERIFIERS):
        verifier.close()
