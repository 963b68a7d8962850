"""The files of an evaluation run directory, written so that a kill at any moment loses nothing.

    run.json       the configuration that determines results, and one entry per invocation
                   (command line, package versions, start and end times)
    results.jsonl  one JSON line per finished episode, append-only, flushed at once and fsynced
                   by a background thread (`ResultsWriter`)
    summary.json   aggregate metrics (`toolgym.evals.metrics.summarize`), rewritten at the end
    report.md      the same, for people
    run.lock       the writer's lock and, while held, who holds it (`toolgym.evals.run_lock`)
    merge.pending  present only while `toolgym eval merge` commits (`toolgym.evals.merge`)

Episodes are keyed by (task index, sample index). A row that supersedes an earlier one for the
same key (a `--retry-errors` rerun) is appended, never written in place; readers keep the last row
per key (`latest_rows`). A process killed mid-write leaves at most one torn last line, which
`read_rows(repair=True)` truncates away before the run continues. A row no JSON encoder accepts
is written in a safe form, flagged in `encoding_problems` (`encode_row`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from toolgym.json_values import json_safe

try:
    import orjson
except ImportError:  # optional speed-up; the standard library encodes the same JSON
    orjson = None

RUN_FILE, RESULTS_FILE, SUMMARY_FILE, REPORT_FILE = "run.json", "results.jsonl", "summary.json", "report.md"
MERGE_PENDING_FILE = "merge.pending"  # present only while `toolgym eval merge` writes (see merge.py)
Key = tuple[int, int]
logger = logging.getLogger(__name__)


class RunDirError(RuntimeError):
    """A run directory that cannot be used as asked (corrupt, mismatched, or already holding a run)."""


def row_key(row: Mapping[str, Any]) -> Key:
    """(task_index, sample_index) of a results row."""
    return int(row["task_index"]), int(row["sample_index"])


def json_default(value: Any) -> Any:
    """Make numpy scalars, sets, paths and other odd values JSON-safe instead of failing a row."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: replace them by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


ENCODING_PROBLEMS_FIELD = "encoding_problems"


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One JSONL line; never raises. NaN/inf become null; lone surrogates are escaped.

    orjson, when installed, encodes rows several times faster than the standard library, which is
    most of the harness's own cost per episode; it refuses lone surrogates, non-string keys and
    integers past 64 bits, and those rare rows take the standard-library path. A row that no
    encoder accepts (an integer past 4,300 digits, a tuple dict key or a cycle from an in-process
    agent, nesting deep enough to exhaust the stack) is written in a safe form instead
    (`toolgym.json_values.json_safe`): each offending value becomes an ``<unencodable: …>``
    marker and the row's `encoding_problems` field lists them, so the episode is never lost and
    the run never stops on it.
    """
    if orjson is not None:
        try:
            return orjson.dumps(row, default=json_default, option=orjson.OPT_APPEND_NEWLINE)
        except Exception:  # non-string keys, ints past 64 bits, lone surrogates, a raising default: slow path
            pass
    try:
        try:
            text = json.dumps(row, ensure_ascii=False, default=json_default, allow_nan=False)
        except ValueError:  # a NaN or infinity somewhere: rare, so only then pay for the recursive pass
            text = json.dumps(_finite(dict(row)), ensure_ascii=False, default=json_default, allow_nan=False)
        try:
            return (text + "\n").encode("utf-8")
        except UnicodeEncodeError:
            return (json.dumps(json.loads(text), ensure_ascii=True) + "\n").encode("ascii")
    except Exception:  # whatever an in-process agent's objects raise: the row is still written
        return _encode_safe_form(row)


def _encode_safe_form(row: Mapping[str, Any]) -> bytes:
    """The row with unencodable values replaced by markers and listed in `encoding_problems`."""
    safe, problems = json_safe(dict(row))
    safe[ENCODING_PROBLEMS_FIELD] = problems or ["the row could not be encoded as JSON"]
    logger.warning(
        "episode (task %s, sample %s): row written in a safe form: %s",
        safe.get("task_index"),
        safe.get("sample_index"),
        "; ".join(safe[ENCODING_PROBLEMS_FIELD])[:300],
    )
    try:
        return (json.dumps(safe, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    except Exception as exc:  # not expected: json_safe's output is plain JSON
        minimal = {key: safe.get(key) for key in ("task_index", "sample_index", "seed", "task_id")}
        minimal["error"] = {"type": type(exc).__name__, "stage": "encode", "message": str(exc)[:300]}
        minimal[ENCODING_PROBLEMS_FIELD] = ["the whole row was replaced by this error row"]
        return (json.dumps(json_safe(minimal)[0], ensure_ascii=True) + "\n").encode("ascii")


class ResultsWriter:
    """Appends rows to results.jsonl: one `write` + flush per row, fsync by a background thread.

    After `write` returns the row is in the operating system's page cache, which survives any kill
    of this process (SIGKILL included). A background thread fsyncs pending rows at most every
    `fsync_interval_s` (and `close` fsyncs the rest), so a power loss costs at most that much, while
    the episode loop never waits on the disk: a synchronous fsync per row costs milliseconds, and
    appending to a page under writeback stalls, either of which is more than a Search-v0 step.
    """

    def __init__(self, path: str | Path, fsync: bool = True, fsync_interval_s: float = 1.0):
        self.path = Path(path)
        self.fsync_interval_s = fsync_interval_s
        self._handle = open(self.path, "ab")  # noqa: SIM115 - held open for the whole run
        self._pending = threading.Event()
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync:
            self._syncer = threading.Thread(target=self._sync_loop, name="results-fsync", daemon=True)
            self._syncer.start()

    def write(self, row: Mapping[str, Any]) -> None:
        self._handle.write(encode_row(row))
        self._handle.flush()
        self._pending.set()

    def _sync_loop(self) -> None:
        while not self._closing.is_set():
            self._pending.wait()
            self._pending.clear()
            if self._closing.is_set():
                return
            os.fsync(self._handle.fileno())
            self._closing.wait(self.fsync_interval_s)

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        if self._syncer is not None:
            self._closing.set()
            self._pending.set()
            self._syncer.join()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """All rows of a results file in file order.

    A torn last line (no newline, or not valid JSON) is what a kill mid-write leaves: with
    `repair=True` the file is truncated to its last complete line, else the line is ignored. Any
    other unreadable line is corruption and raises, naming the line.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    position = good_end = 0
    number = 0
    while position < len(data):
        number += 1
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline + 1
        line = data[position:end]
        if line.strip():
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "task_index" not in row or "sample_index" not in row:
                    raise ValueError("not an episode row")
            except (ValueError, UnicodeDecodeError) as exc:
                if not data[end:].strip():
                    break  # the torn tail of an interrupted write
                raise RunDirError(f"{path}:{number} is not a valid results row ({exc}); the file is corrupt") from exc
            rows.append(row)  # a JSON object only parses when complete, even if its newline was cut
        position = good_end = end
    if repair and good_end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
            handle.flush()
            os.fsync(handle.fileno())
    elif repair and data and not data.endswith(b"\n"):
        with open(path, "ab") as handle:
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    return rows


def latest_rows(rows: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The last row per key (later rows supersede earlier ones), in key order."""
    latest: dict[Key, dict[str, Any]] = {}
    for row in rows:
        latest[row_key(row)] = dict(row)
    return dict(sorted(latest.items()))


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write JSON via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    text = json.dumps(_finite(payload), indent=2, ensure_ascii=False, default=json_default)
    write_text_atomic(path, text + "\n")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace a text file (run.json, summary.json, report.md) in one rename."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_rows_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace a results file with `rows` in one rename (rescore and merge, never a live run)."""
    write_bytes_atomic(path, b"".join(encode_row(row) for row in rows))


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """run.json of a run directory, with a clear error when it is missing or unreadable."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an evaluation run directory: it has no {RUN_FILE}")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict):
        raise RunDirError(f"{path} has no 'config' object")
    return run


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable lines `field: saved X, now Y` for every field whose value differs."""
    ignored = set(ignore)
    lines = []
    for name in sorted((set(saved) | set(current)) - ignored):
        before, after = saved.get(name), current.get(name)
        if json.dumps(before, sort_keys=True, default=str) != json.dumps(after, sort_keys=True, default=str):
            lines.append(f"{name}: saved {json.dumps(before, default=str)}, now {json.dumps(after, default=str)}")
    return lines


def package_versions(names: Iterable[str] = ("toolgym", "torch", "transformers", "gymnasium", "numpy")) -> dict:
    """Installed versions of the packages that can change results (None when not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
