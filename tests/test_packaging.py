"""Both install modes import the card folders as sub-packages of `toolgym`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARD_FOLDERS = {
    "toolgym": "toolgym",
    "envs": "toolgym.envs",
    "agents": "toolgym.agents",
    "retrievers": "toolgym.retrievers",
    "trainers": "toolgym.trainers",
    "evals": "toolgym.evals",
}


def source_packages() -> set[str]:
    """Every folder with an __init__.py under the card folders, as its import name."""
    names = set()
    for folder, package in CARD_FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            names.add(".".join((package, *relative)))
    return names


def test_every_source_package_is_importable_from_the_install():
    import importlib

    for name in sorted(source_packages()):
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(REPO), name


def test_no_top_level_names_that_collide_with_other_distributions():
    for name in ("envs", "agents", "evals"):
        result = subprocess.run([sys.executable, "-c", f"import {name}"], cwd="/", capture_output=True)
        assert result.returncode != 0, f"a top-level package {name!r} is importable; it must live under toolgym"


@pytest.mark.timeout(300)
def test_regular_wheel_contains_and_imports_every_package(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("toolgym-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        packaged = {str(Path(n).parent).replace("/", ".") for n in archive.namelist() if n.endswith("__init__.py")}
    assert source_packages() <= packaged

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Borrow the dependencies of the running environment (a plain path entry, so its .pth files,
    # including the editable install's finder, are not processed), then install the wheel itself.
    site = subprocess.run(
        [python, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    (Path(site.stdout.strip()) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    probe = (
        "import toolgym, gymnasium as gym, toolgym.envs.pool, toolgym.agents.scripted, toolgym.evals.quickstart;"
        "print(toolgym.__file__)"
    )
    result = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(venv) in result.stdout, "the wheel's copy, not the editable checkout, must be imported"
