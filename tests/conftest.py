"""Shared pytest configuration: hypothesis profiles and path fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# "ci": reproducible runs (same examples every time), no timing flakiness, and
# a reproduction blob printed for every failure. "dev": random exploration.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, database=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    "ci" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no") else "dev"
)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the source checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def specs_dir(repo_root: Path) -> Path:
    """The folder of built-in specs."""
    return repo_root / "specs"
