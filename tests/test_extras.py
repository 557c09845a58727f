"""A missing optional module is a user error naming the extra to install; a broken one says which
module failed. (test_packaging installs each extra into a fresh venv and runs the commands.)"""

from __future__ import annotations

import sys

import pytest

from specgen.cli import main
from specgen.extras import (
    EXTRAS,
    TRAINING,
    MissingExtra,
    broken_module,
    explain,
    missing_module,
    needs_extra,
)

SPEC_ARGS = ["--set", "layers=[4,8]"]


def _raised(code: str, module_name: str) -> ImportError:
    """The ImportError that ``code`` raises when run as the module ``module_name``."""
    try:
        exec(compile(code, f"<{module_name}>", "exec"), {"__name__": module_name})
    except ImportError as exc:
        return exc
    raise AssertionError("no ImportError")


def test_all_is_both_frameworks_and_the_training_scripts_fit_their_extras():
    assert set(EXTRAS["all"]) == set(EXTRAS["torch"]) | set(EXTRAS["keras"])
    assert EXTRAS["keras-gpu"] == EXTRAS["keras"]
    for framework, modules in TRAINING.items():
        assert set(modules) <= set(EXTRAS[framework])


@pytest.mark.parametrize(
    ("command", "framework", "module", "expected"),
    [
        (
            "verify",
            None,
            "torch",
            "`specgen verify` needs PyTorch (module 'torch'), which is not installed; "
            "install it with: pip install 'specgen[all]'",
        ),
        (
            "convert-weights",
            None,
            "h5py",
            "`specgen convert-weights` needs h5py (module 'h5py'), which is not installed; "
            "install it with: pip install 'specgen[all]'",
        ),
        (
            "train",
            "keras",
            "numpy",
            "`specgen train --framework keras` needs NumPy (module 'numpy'), which is not "
            "installed; install it with: pip install 'specgen[keras]'",
        ),
        (
            "train",
            "torch",
            "PIL",
            "`specgen train --framework torch` needs Pillow (module 'PIL'), which is not "
            "installed; install it with: pip install 'specgen[torch]'",
        ),
        (  # a command without an extra of its own: the smallest extra that has the module
            "generate",
            None,
            "h5py",
            "`specgen generate` needs h5py (module 'h5py'), which is not installed; "
            "install it with: pip install 'specgen[keras]'",
        ),
    ],
)
def test_a_missing_module_names_the_extra(command, framework, module, expected):
    exc = ModuleNotFoundError(f"No module named {module!r}", name=module)
    assert missing_module(exc) == module and broken_module(exc) is None
    assert explain(exc, command, framework) == expected


def test_an_installed_but_broken_module_is_named_with_its_error():
    # a shared library missing while tensorflow imports itself
    exc = _raised(
        "raise ImportError('libcudart.so.12: cannot open shared object file')",
        "tensorflow.python.pywrap_tensorflow",
    )
    assert missing_module(exc) is None and broken_module(exc) == "tensorflow"
    assert explain(exc, "verify") == (
        "`specgen verify` could not import TensorFlow (module 'tensorflow'), which is installed "
        "but broken or too old: ImportError: libcudart.so.12: cannot open shared object file; "
        "reinstall it with: pip install --upgrade --force-reinstall 'specgen[all]'"
    )
    # a dependency of an optional package missing: the package is named, not the dependency
    exc = _raised("import specgen_no_such_dependency", "keras.src.backend")
    assert broken_module(exc) == "keras"
    # a name that an installed package lacks (too old)
    exc = ImportError("cannot import name 'load_file' from 'safetensors'", name="safetensors")
    assert broken_module(exc) == "safetensors"
    assert "could not import safetensors (module 'safetensors')" in explain(exc, "train", "torch")


def test_other_import_errors_are_bugs():
    assert explain(ImportError("cannot import name 'x' from 'specgen.graph'"), "verify") is None
    assert explain(_raised("import specgen_no_such_module", "specgen.verify"), "verify") is None
    assert explain(RuntimeError("boom"), "verify") is None


def test_needs_extra_turns_a_missing_module_into_a_user_error():
    @needs_extra("torch", "specgen.torch.build")
    def build():
        import specgen_no_such_module  # noqa: F401

    with pytest.raises(ModuleNotFoundError, match="specgen_no_such_module"):
        build()  # not an optional module: untouched

    @needs_extra("torch", "specgen.torch.build")
    def build_without_torch():
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    with pytest.raises(MissingExtra) as info:
        build_without_torch()
    assert isinstance(info.value, ImportError) and info.value.name == "torch"
    assert (info.value.module, info.value.extra) == ("torch", "torch")
    assert str(info.value) == (
        "specgen.torch.build needs PyTorch (module 'torch'), which is not installed; "
        "install it with: pip install 'specgen[torch]'"
    )


def test_notebook_api_without_the_framework(monkeypatch, specs_dir):
    import specgen.keras

    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` fails as if not installed
    with pytest.raises(MissingExtra, match=r"pip install 'specgen\[keras\]'"):
        specgen.keras.build(specs_dir / "conv_autoencoder.yaml", layers=[4, 8])


def test_cli_verify_without_numpy(monkeypatch, capsys, specs_dir):
    monkeypatch.setitem(sys.modules, "numpy", None)
    for name in ("specgen.verify", "specgen.convert"):  # imported afresh, without numpy
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert main(["verify", str(specs_dir / "conv_autoencoder.yaml"), *SPEC_ARGS]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: `specgen verify` needs NumPy (module 'numpy'), which is not installed; "
        "install it with: pip install 'specgen[all]'\n"
    )


@pytest.mark.parametrize(("framework", "module"), [("torch", "safetensors"), ("keras", "h5py")])
def test_cli_train_checks_before_writing_anything(
    monkeypatch, capsys, specs_dir, tmp_path, framework, module
):
    # the training scripts import these only when they write the first checkpoint
    monkeypatch.setitem(sys.modules, module, None)
    spec = str(specs_dir / "conv_autoencoder.yaml")
    out = tmp_path / "out"
    args = ["train", spec, *SPEC_ARGS, "--framework", framework, "-o", str(out)]
    assert main(args) == 1
    assert f"pip install 'specgen[{framework}]'" in capsys.readouterr().err
    assert not out.exists()
