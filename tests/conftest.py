"""Shared pytest configuration: hypothesis profiles and path fixtures."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
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


@pytest.fixture(scope="session")
def compressai():
    """compressai, loaded without its top-level package.

    ``import compressai`` imports torchvision (for its registry of data transforms) and its
    datasets, losses and point-cloud transforms, which the test environment leaves out (see
    requirements/test-nodeps.txt). This loads only what reproducing its image models needs:
    ``compressai.models``, ``compressai.entropy_models``, ``compressai.layers`` and ``.ops``. The
    package object stands in for ``compressai/__init__.py`` (with the default entropy coder that
    file would select), and ``compressai.registry`` is filled from ``compressai.registry.torch``
    alone, leaving out ``compressai.registry.transforms``.
    """
    if "compressai.models" not in sys.modules:
        spec = importlib.util.find_spec("compressai")
        if spec is None or spec.submodule_search_locations is None:
            pytest.skip("compressai is not installed")
        root = Path(next(iter(spec.submodule_search_locations)))

        package = types.ModuleType("compressai")
        package.__file__ = spec.origin
        package.__path__ = [str(root)]
        package.get_entropy_coder = lambda: "ans"
        package.available_entropy_coders = lambda: ["ans"]
        sys.modules["compressai"] = package

        registry = types.ModuleType("compressai.registry")
        registry.__path__ = [str(root / "registry")]
        sys.modules["compressai.registry"] = registry
        package.registry = registry
        torch_registry = importlib.import_module("compressai.registry.torch")
        for name, value in vars(torch_registry).items():
            if name.startswith("register_") or name.isupper():
                setattr(registry, name, value)

        for name in ("ops", "layers", "entropy_models", "models"):
            setattr(package, name, importlib.import_module(f"compressai.{name}"))
    return sys.modules["compressai"]
