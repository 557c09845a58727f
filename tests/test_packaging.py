"""The built wheel installs into a clean virtual environment and works there.

Builds the wheel from the source tree, installs it (with its runtime
dependencies, held to the versions of requirements/test.txt) into a fresh
venv, and checks the console script, the bundled templates and the wheel's
contents.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

IGNORED_NAMES = {"__pycache__", ".DS_Store"}


def _run(cmd: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def _tree(root: Path) -> set[str]:
    """Relative paths of all files below root, ignoring caches."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not IGNORED_NAMES.intersection(p.relative_to(root).parts)
    }


@pytest.fixture(scope="module")
def project_version(repo_root: Path) -> str:
    with open(repo_root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    # --no-isolation: the pinned hatchling of the test environment builds it.
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir), "."],
        cwd=repo_root,
    )
    wheels = list(outdir.glob("specgen-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    venv_dir = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv_dir)], cwd=root)
    _run(
        [
            str(venv_dir / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(repo_root / "requirements" / "test.txt"),
            str(wheel),
        ],
        cwd=root,
    )
    return venv_dir


def test_console_script_prints_version(venv: Path, project_version: str) -> None:
    # cwd outside the checkout, so nothing can be imported from the source tree.
    proc = _run([str(venv / "bin" / "specgen"), "--version"], cwd=venv.parent)
    assert project_version in proc.stdout + proc.stderr


def test_templates_are_installed_inside_the_package(venv: Path, repo_root: Path) -> None:
    code = (
        "import specgen, importlib.resources as r; "
        "print(r.files('specgen') / 'templates'); print(specgen.__file__)"
    )
    proc = _run([str(venv / "bin" / "python"), "-c", code], cwd=venv.parent)
    templates_line, init_line = proc.stdout.strip().splitlines()[-2:]
    templates = Path(templates_line).resolve()
    package_dir = Path(init_line).resolve().parent

    assert package_dir.is_relative_to(venv.resolve()), package_dir
    assert templates == package_dir / "templates"
    assert templates.is_dir(), templates
    expected = _tree(repo_root / "templates")
    assert expected, "templates/ of the source tree is empty"
    assert _tree(templates) == expected


def test_wheel_ships_only_the_package(wheel: Path, project_version: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"specgen", f"specgen-{project_version}.dist-info"}, top_level
    assert not [n for n in names if n.startswith(("tests/", "generated/"))]
    assert "specgen/templates/README.md" in names
    entry_points = f"specgen-{project_version}.dist-info/entry_points.txt"
    assert entry_points in names
