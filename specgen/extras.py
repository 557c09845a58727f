"""Optional dependencies: which extra of the package installs each module.

The core of specgen (validate, summary, expand, schema, generate, diagram) imports no
deep-learning framework. The notebook APIs, ``verify``, ``convert-weights`` and the generated
training scripts do; ``pip install 'specgen[EXTRA]'`` brings what they import. A module that is
not installed is a user error (:class:`MissingExtra`, a one-line message naming the extra), not a
bug; a module that is installed but fails to import is reported with its own error.

:data:`EXTRAS` mirrors ``[project.optional-dependencies]`` of pyproject.toml (a test compares the
two through the built wheel's metadata).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterable

#: Every optional module (top-level import name) and the name people know it by.
MODULES: dict[str, str] = {
    "torch": "PyTorch",
    "keras": "Keras",
    "tensorflow": "TensorFlow",
    "numpy": "NumPy",
    "safetensors": "safetensors",
    "h5py": "h5py",
    "PIL": "Pillow",
    "sklearn": "scikit-learn",
}

#: Each extra and the modules it installs. ``keras`` brings a CPU-only TensorFlow, ``keras-gpu``
#: TensorFlow with CUDA; ``all`` is what ``verify`` and ``convert-weights`` need (both
#: frameworks). When a feature's extra lacks a module, the first extra here that has it is named.
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "numpy", "safetensors", "PIL", "sklearn"),
    "keras": ("keras", "tensorflow", "numpy", "h5py", "PIL", "sklearn"),
    "keras-gpu": ("keras", "tensorflow", "numpy", "h5py", "PIL", "sklearn"),
    "all": ("torch", "keras", "tensorflow", "numpy", "safetensors", "h5py", "PIL", "sklearn"),
}

#: What each generated training script imports before its first checkpoint is written (Pillow
#: only for folders of images, scikit-learn only for the demo's digits, and the script says so).
TRAINING: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "numpy", "safetensors"),
    "keras": ("keras", "tensorflow", "numpy", "h5py"),
}

#: The extra each command of the CLI needs (``train``: the one named by ``--framework``).
COMMANDS: dict[str, str] = {"verify": "all", "convert-weights": "all"}


def extra_for(module: str, extra: str | None = None) -> str:
    """``extra`` if it installs ``module``, else the first extra that does."""
    if extra in EXTRAS and module in EXTRAS[extra]:
        return extra
    return next(name for name, modules in EXTRAS.items() if module in modules)


class MissingExtra(ImportError):
    """An optional module that a feature needs is not installed: a user error, not a bug.

    ``module`` is the top-level import name, ``feature`` what needed it (``specgen.torch.build``,
    ``specgen verify``), ``extra`` the extra of specgen that installs it.
    """

    def __init__(self, module: str, feature: str, extra: str | None = None) -> None:
        self.module = module
        self.feature = feature
        self.extra = extra_for(module, extra)
        super().__init__(
            f"{feature} needs {MODULES[module]} (module {module!r}), which is not installed; "
            f"install it with: pip install 'specgen[{self.extra}]'",
            name=module,
        )


def _top(name: str | None) -> str:
    return (name or "").partition(".")[0]


def missing_module(exc: BaseException) -> str | None:
    """The optional module whose absence raised ``exc``, or None."""
    if isinstance(exc, MissingExtra):
        return exc.module
    if isinstance(exc, ModuleNotFoundError) and exc.name in MODULES:
        return exc.name
    return None


def broken_module(exc: BaseException) -> str | None:
    """The installed optional module that ``exc`` failed to import (a submodule or a dependency
    of its own missing, a name it lacks), or None when ``exc`` is not about one."""
    if not isinstance(exc, ImportError) or missing_module(exc) is not None:
        return None
    if _top(exc.name) in MODULES:
        return _top(exc.name)
    tb = exc.__traceback__
    while tb is not None:  # outermost first: the optional package that was being imported
        top = _top(tb.tb_frame.f_globals.get("__name__"))
        if top in MODULES:
            return top
        tb = tb.tb_next
    return None


def require(modules: Iterable[str], feature: str, extra: str | None = None) -> None:
    """Raise :class:`MissingExtra` for the first of ``modules`` that is not installed (nothing
    is imported)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(module, feature, extra)


class needs_extra(contextlib.ContextDecorator):
    """Turn a missing optional module into :class:`MissingExtra` for ``feature``; usable as a
    decorator and as ``with needs_extra("all", "specgen.verify"): import numpy``. The modules in
    ``check`` are looked for on entry, before anything slow is imported."""

    def __init__(self, extra: str, feature: str, check: Iterable[str] = ()) -> None:
        self.extra = extra
        self.feature = feature
        self.check = tuple(check)

    def __enter__(self) -> needs_extra:
        require(self.check, self.feature, self.extra)
        return self

    def __exit__(self, typ, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, MissingExtra):
            module = missing_module(exc)
            if module is not None:
                raise MissingExtra(module, self.feature, self.extra) from None
        return False


def explain(exc: BaseException, command: str, framework: str | None = None) -> str | None:
    """The message for ``specgen COMMAND`` failing with ``exc`` when an optional module is
    missing or broken; None when ``exc`` is about something else."""
    extra = framework if command == "train" else COMMANDS.get(command)
    feature = f"`specgen {command}" + (f" --framework {framework}`" if framework else "`")
    module = missing_module(exc)
    if module is not None:
        return str(MissingExtra(module, feature, extra))
    module = broken_module(exc)
    if module is not None:
        return (
            f"{feature} could not import {MODULES[module]} (module {module!r}), which is "
            f"installed but broken or too old: {type(exc).__name__}: {exc}; reinstall it with: "
            f"pip install --upgrade --force-reinstall 'specgen[{extra_for(module, extra)}]'"
        )
    return None
