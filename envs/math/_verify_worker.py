"""The math-verify worker process: JSON lines in on stdin, one JSON result line per item on stdout.

Run as a script by `toolgym.envs.math.verifier` (never imported): it needs its own main thread so
math-verify's SIGALRM timeouts work, and it may be killed at any moment when a comparison hangs
in C-level big-integer arithmetic, which no signal can interrupt.

Protocol: after importing math-verify the worker writes ``{"ready": true}``. Each request line is
``{"items": [{"gold": str, "pred": str}, ...], "timeout": int}``; for each item, in order, it
writes ``{"correct": bool, "parsed": bool, "gold_parsed": bool, "timeout": bool, "error": str|null}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys

# Running a script puts its folder first on sys.path; this folder's module names must not shadow others.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


def _is_parsed(extracted: list) -> bool:
    """math-verify falls back to the raw string when LaTeX parsing fails; only sympy objects count."""
    from sympy import Basic, MatrixBase

    return any(isinstance(item, (Basic, MatrixBase)) for item in extracted)


class _TimeoutWarnings(logging.Handler):
    """math-verify's `verify` only logs its per-comparison timeouts; count them to report them."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Timeout" in record.getMessage():
            self.count += 1


_TIMEOUTS = _TimeoutWarnings()


def check(gold: str, pred: str, timeout: int) -> dict:
    """Compare one prediction with its gold answer, gold first as math-verify requires."""
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    result = {"correct": False, "parsed": False, "gold_parsed": False, "timeout": False, "error": None}
    try:
        gold_parsed = parse("\\boxed{" + gold + "}", parsing_timeout=timeout, raise_on_error=True)
        result["gold_parsed"] = _is_parsed(gold_parsed)
        pred_parsed = parse("\\boxed{" + pred + "}", parsing_timeout=timeout, raise_on_error=True)
        result["parsed"] = _is_parsed(pred_parsed)
        if gold_parsed and pred_parsed:
            # raise_on_error=False: one failing gold/pred pairing must not hide another that matches.
            timeouts_before = _TIMEOUTS.count
            result["correct"] = bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
            result["timeout"] = not result["correct"] and _TIMEOUTS.count > timeouts_before
    except TimeoutException:
        result["timeout"] = True
    except Exception as exc:  # any sympy failure is a failed comparison, reported, never a crash
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return result


def _limit_memory(argv: list[str]) -> None:
    """`--memory-limit-mb=N`: cap the address space so a runaway sympy computation fails, not the host."""
    for argument in argv:
        if argument.startswith("--memory-limit-mb="):
            import resource

            limit = int(argument.split("=", 1)[1]) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent(argv: list[str]) -> None:
    """Ask Linux to SIGKILL this worker the moment its parent dies (PR_SET_PDEATHSIG).

    A signal from the kernel stops the worker even mid-way through C-level big-integer arithmetic,
    where the polling thread of `_exit_when_orphaned` cannot run. `--parent-pid` closes the race
    of a parent that died before the request was made.
    """
    expected = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--parent-pid=")), None)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the polling thread still ends an idle orphan
    if expected is not None and os.getppid() != expected:
        os._exit(1)


def _exit_when_orphaned() -> None:
    """Elsewhere than Linux (or without prctl), exit once the parent is gone, checked every second."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    import signal

    _die_with_parent(sys.argv[1:])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; it closes us
    _limit_memory(sys.argv[1:])
    _exit_when_orphaned()
    logging.basicConfig(level=logging.ERROR)
    math_verify_logger = logging.getLogger("math_verify")
    math_verify_logger.setLevel(logging.WARNING)
    math_verify_logger.propagate = False  # its warnings are counted, not printed
    math_verify_logger.addHandler(_TIMEOUTS)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="ascii")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    import math_verify  # noqa: F401  (imported up front so the parent can time start-up and see failures)

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        timeout = max(1, int(request.get("timeout", 5)))
        for item in request["items"]:
            out.write(json.dumps(check(item["gold"], item["pred"], timeout)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
