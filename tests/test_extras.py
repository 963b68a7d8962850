"""Optional dependencies: one `require` helper names the extra, and no module hand-writes its own hint."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from toolgym.extras import EXTRAS, MissingExtraError, install_hint, require

ROOT = Path(__file__).resolve().parents[1]


def test_extras_are_those_of_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(EXTRAS) == set(pyproject["project"]["optional-dependencies"]) - {"dev"}


def test_require_returns_the_module():
    assert require("json", "serve") is sys.modules["json"]


def test_missing_module_names_who_needs_it_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mteb", None)  # what `import mteb` sees when it is not installed
    with pytest.raises(MissingExtraError, match=r'MTEB scoring needs mteb: pip install "toolgym\[retrieval\]"'):
        require("mteb", "retrieval", "MTEB scoring")


def test_the_mteb_adapter_names_the_retrieval_extra_which_does_install_mteb(monkeypatch):
    """The old hint said the `retrieval` extra lacks mteb; pyproject lists it there."""
    from toolgym.retrievers.mteb_protocol import _require_mteb

    monkeypatch.setitem(sys.modules, "mteb", None)
    with pytest.raises(ImportError, match=r"toolgym\[retrieval\]"):
        _require_mteb()


def test_an_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown extra 'gpus'"):
        install_hint("gpus")


def test_the_hf_hint_says_to_install_cpu_torch_first():
    assert "torch==2.13.0" in install_hint("hf")


def _hand_written_import_errors() -> list[str]:
    found = []
    for folder in ("toolgym", "envs", "retrievers", "agents", "trainers", "evals"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "extras.py" and folder == "toolgym":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    name = getattr(node.exc.func, "id", None)
                    if name == "ImportError":
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_hand_writes_an_import_error():
    assert _hand_written_import_errors() == [], "use toolgym.extras.require(module, extra, purpose)"
