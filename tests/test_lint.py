"""The package and the tests pass the pinned linter and formatter."""

from __future__ import annotations

import subprocess
import sys


def ruff(*args: str, cwd) -> subprocess.CompletedProcess:
    """The pinned ruff of the test environment (the one beside this interpreter)."""
    cmd = [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_ruff_check(repo_root):
    proc = ruff("check", "specgen", "tests", "bench", cwd=repo_root)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format(repo_root):
    proc = ruff("format", "--check", "specgen", "tests", "bench", cwd=repo_root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
