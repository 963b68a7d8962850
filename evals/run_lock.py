"""One writer per run directory: an exclusive OS lock that eval, resume, rescore and merge all hold.

Without it, `toolgym eval rescore DIR` could replace results.jsonl while a live run appended to the
old (now unlinked) file, and two `--resume` of one folder would both play, and both append, the
same episodes. `run_lock(DIR, purpose)` takes an exclusive `flock` on ``DIR/run.lock`` without
waiting; a second writer gets `RunLockedError` naming the holder (pid, host, command, start time),
which the holder wrote into the lock file.

A killed holder needs no cleanup: the operating system drops a `flock` when its last open file
descriptor closes, SIGKILL included, so the next writer simply gets the lock; finding the dead
holder's details still in the file, it logs that it took the lock over. The lock file stays in the
folder (empty while free); deleting it while no writer runs is harmless.

`flock` is advisory and local to one machine's kernel on most network file systems' defaults;
runs shared between machines over NFS should not be written from two hosts at once. Where
`fcntl` does not exist (Windows) the lock file is created exclusively instead, and a holder on
this host whose pid is gone counts as stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .results import RunDirError

try:
    import fcntl
except ImportError:  # Windows: the exclusive-create fallback below
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLockedError(RunDirError):
    """Another live process is writing this run directory."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]):
        self.run_dir, self.holder = run_dir, holder
        super().__init__(f"{run_dir} is in use: {describe_holder(holder)}; wait for it to finish, or stop that process")


def describe_holder(holder: dict[str, Any]) -> str:
    """'a toolgym eval (pid 12, host h, started …): command' from a lock file's record."""
    if not holder:
        return "another process holds its lock (its details are not written yet)"
    command = holder.get("command")
    shown = " ".join(command) if isinstance(command, list) else str(command)
    return (
        f"{holder.get('purpose', 'a toolgym command')} is running there "
        f"(pid {holder.get('pid')}, host {holder.get('host')}, started {holder.get('started_at')}): {shown[:300]}"
    )


@contextlib.contextmanager
def run_lock(
    run_dir: str | Path, purpose: str, command: Sequence[str] | None = None, *, create: bool = True
) -> Iterator[dict[str, Any]]:
    """Hold the run directory's exclusive lock for the block (creating the folder if needed).

    Raises `RunLockedError` at once, naming the holder, when another live process holds it.
    With `create=False` (commands that only rewrite an existing run, such as rescore) a missing
    folder is a `RunDirError` instead of being created. Yields the record written for this holder.
    """
    directory = Path(run_dir)
    if not create and not directory.is_dir():
        raise RunDirError(f"{directory} is not an evaluation run directory: the folder does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "command": list(command) if command is not None else list(sys.argv),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = directory / LOCK_FILE
    if fcntl is None:
        with _exclusive_file_lock(path, record):
            yield record
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(
                    f"cannot lock {path} ({exc.strerror}): its file system does not support locks; "
                    "write the run to a local disk"
                ) from exc
            raise RunLockedError(directory, _read_record(fd)) from None
        previous = _read_record(fd)
        if previous:
            logger.warning(
                "%s: took over the lock left by a process that is gone: %s", directory, describe_holder(previous)
            )
        _write_record(fd, record)
        try:
            yield record
        finally:
            _write_record(fd, None)  # free: a later writer finds no holder to report
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_record(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 64 * 1024, 0)
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(fd: int, record: dict[str, Any] | None) -> None:
    os.ftruncate(fd, 0)
    if record is not None:
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    os.fsync(fd)


@contextlib.contextmanager
def _exclusive_file_lock(path: Path, record: dict[str, Any]) -> Iterator[None]:
    """Fallback without `flock`: the lock is the file's existence; a dead holder on this host is stale."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            try:
                holder = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == record["host"] and not _pid_alive(int(holder.get("pid") or 0)):
                logger.warning("%s: removing the stale lock of %s", path.parent, describe_holder(holder))
                path.unlink(missing_ok=True)
                continue
            raise RunLockedError(path.parent, holder) from None
    else:
        raise RunLockedError(path.parent, {})
    try:
        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
