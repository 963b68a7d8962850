"""The parts import each other in one direction only (DESIGN.md, docs/architecture.md).

Every module of the package is parsed (never imported) and each `import` / `from … import`, at the
top or inside a function (lazy imports count: they run too), plus `importlib.import_module("…")`
with a literal name, is checked against ALLOWED. A violation names the file, the line and the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder in the checkout -> the part it is (pyproject maps each folder to toolgym.<part>)
PARTS: dict[str, str] = {
    "toolgym": "core",
    "envs": "envs",
    "retrievers": "retrievers",
    "agents": "agents",
    "trainers": "trainers",
    "evals": "evals",
}

# part -> the parts it may import (besides itself). core <- envs, retrievers <- agents <- trainers; evals uses all.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "retrievers": frozenset({"core"}),
    "envs": frozenset({"core", "retrievers"}),
    "agents": frozenset({"core", "envs", "retrievers"}),
    "trainers": frozenset({"core", "envs", "retrievers", "agents"}),
    "evals": frozenset({"core", "envs", "retrievers", "agents", "trainers"}),
}

# The one core module that may reach into the parts: the `toolgym` command wires each part's
# sub-commands (lazily, inside a function). Env registration names its entry points as strings
# ("toolgym.envs.math.env:MathEnv"), which Gymnasium imports on `make`; that is not an import here.
CORE_EXCEPTIONS: frozenset[str] = frozenset({"toolgym/cli.py"})


def _module_name(path: Path, root: Path) -> str:
    """The dotted import name of a source file (`envs/math/env.py` -> `toolgym.envs.math.env`)."""
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[0] != "toolgym":
        parts = ["toolgym", *parts]
    return ".".join(parts)


def _part_of(module: str) -> str | None:
    """The part a `toolgym…` module belongs to, or None for a module outside the package."""
    names = module.split(".")
    if names[0] != "toolgym":
        return None
    return names[1] if len(names) > 1 and names[1] in ALLOWED and names[1] != "core" else "core"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from toolgym import envs` imports the sub-package itself
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _source_files() -> list[Path]:
    return sorted(path for folder in PARTS for path in (ROOT / folder).rglob("*.py"))


def _violations(path: Path, root: Path = ROOT) -> list[str]:
    part = PARTS[path.relative_to(root).parts[0]]
    where = path.relative_to(root).as_posix()
    if where in CORE_EXCEPTIONS:
        return []
    problems = []
    for line, module in sorted(_imports(path, root)):
        target = _part_of(module)
        if target is None or target == part:
            continue
        if target not in ALLOWED[part]:
            problems.append(f"{where}:{line} imports {module}: {part} must not import {target}")
    return problems


def test_every_part_has_sources():
    assert {PARTS[p.relative_to(ROOT).parts[0]] for p in _source_files()} == set(ALLOWED)


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_point_one_way(path):
    assert _violations(path) == []


def test_the_scan_sees_lazy_relative_and_dynamic_imports(tmp_path):
    """The checker itself: a forbidden import hidden in a function, a relative one and an
    import_module call are all reported, an allowed one is not (so a passing suite means something)."""
    (tmp_path / "retrievers").mkdir()
    (tmp_path / "retrievers" / "bad.py").write_text(
        "import importlib\n"
        "def f():\n    from toolgym.envs.search import loaders\n"
        "from ..envs import base\n"
        "importlib.import_module('toolgym.agents.base')\n"
        "from toolgym.retriever_contract import Hit\n"
    )
    problems = _violations(tmp_path / "retrievers" / "bad.py", root=tmp_path)
    assert [p.split(" imports ")[1].split(":")[0] for p in problems] == [
        "toolgym.envs.search.loaders",
        "toolgym.envs.base",
        "toolgym.agents.base",
    ]
