"""The built wheel installs into a clean virtual environment and works there.

Builds the wheel from the source tree, installs it (with its runtime
dependencies, held to the versions of requirements/test.txt) into a fresh
venv, and checks the console script, the bundled templates and the wheel's
contents. Then fresh venvs with the extras (core only; torch; keras, to which
all is added) show that each extra brings what its commands and generated
scripts import, and that a command whose extra is missing says, in one line,
which extra to install.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from specgen.extras import EXTRAS

pytestmark = pytest.mark.slow

IGNORED_NAMES = {"__pycache__", ".DS_Store"}


def _run(
    cmd: list[str], cwd: Path, *, check: bool = True, **kwargs
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
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


def _pip_install(venv_dir: Path, wheel: Path, repo_root: Path, extras: str = "") -> None:
    """Install the wheel with ``extras`` at the pinned versions (the pins name CPU builds of the
    frameworks, which pip finds on this machine's disk)."""
    _run(
        [
            str(venv_dir / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            # byte-compiling the frameworks would take longer than the tests that use them
            "--no-compile",
            "-c",
            str(repo_root / "requirements" / "test.txt"),
            f"{wheel}[{extras}]" if extras else str(wheel),
        ],
        cwd=venv_dir.parent,
    )


def _make_venv(wheel: Path, repo_root: Path, root: Path, extras: str = "") -> Path:
    """A fresh venv under ``root`` holding the wheel with ``extras``."""
    venv_dir = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv_dir)], cwd=root)
    _pip_install(venv_dir, wheel, repo_root, extras)
    return venv_dir


@pytest.fixture(scope="module")
def venv(wheel: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel alone, with its core dependencies."""
    return _make_venv(wheel, repo_root, tmp_path_factory.mktemp("venv"))


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


def test_the_library_of_blocks_is_installed_inside_the_package(venv: Path) -> None:
    code = (
        "from specgen.library import library; from specgen.api import build_graph, load_spec; "
        "print(sorted(library().blocks)); "
        "g = build_graph(load_spec(text='specgen: 1\\nname: t\\ninput: {shape: [8, 8, 1]}\\n"
        "bottleneck: {kind: variational, units: 2}\\n"
        "decoder: [{kind: conv2d, filters: 1, kernel_size: 1}]\\n')); "
        "print([n for n, _ in g.outputs])"
    )
    proc = _run([str(venv / "bin" / "python"), "-c", code], cwd=venv.parent)
    blocks, outputs = proc.stdout.strip().splitlines()[-2:]
    assert "'variational_bottleneck'" in blocks
    assert outputs == "['reconstruction', 'mu', 'logvar']"


def test_wheel_ships_only_the_package(wheel: Path, project_version: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"specgen", f"specgen-{project_version}.dist-info"}, top_level
    assert not [n for n in names if n.startswith(("tests/", "generated/"))]
    assert "specgen/templates/README.md" in names
    assert "specgen/library/bottlenecks.yaml" in names  # the blocks behind {kind: ...}
    entry_points = f"specgen-{project_version}.dist-info/entry_points.txt"
    assert entry_points in names


# ------------------------------------------------------ metadata, licence ----


def _metadata(wheel: Path, project_version: str) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"specgen-{project_version}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def test_wheel_carries_the_licence_and_the_readme(
    wheel: Path, project_version: str, repo_root: Path
) -> None:
    meta = _metadata(wheel, project_version)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheel) as zf:
        licence = zf.read(f"specgen-{project_version}.dist-info/licenses/LICENSE").decode()
    assert licence == (repo_root / "LICENSE").read_text()
    assert "MIT License" in licence and "the specgen authors" in licence
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (repo_root / "README.md").read_text().strip()


# Distributions that provide each optional module (tensorflow: the CPU or the CUDA build).
DISTRIBUTIONS = {
    "torch": {"torch"},
    "keras": {"keras"},
    "tensorflow": {"tensorflow", "tensorflow-cpu"},
    "numpy": {"numpy"},
    "safetensors": {"safetensors"},
    "h5py": {"h5py"},
    "PIL": {"pillow"},
    "sklearn": {"scikit-learn"},
}
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_machine": "arm64"},
    "windows-amd64": {"sys_platform": "win32", "platform_machine": "AMD64"},
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_extra_installs_exactly_the_modules_of_specgen_extras(
    wheel: Path, project_version: str, platform: str
) -> None:
    meta = _metadata(wheel, project_version)
    assert set(meta.get_all("Provides-Extra")) == {*EXTRAS, "dev"}
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    optional = [r for r in requirements if r.marker is not None]

    def names(extra: str) -> list[str]:
        environment = {**PLATFORMS[platform], "extra": extra}
        return sorted(r.name.lower() for r in optional if r.marker.evaluate(environment))

    for extra, modules in EXTRAS.items():
        found = names(extra)
        assert found == sorted(next(iter(DISTRIBUTIONS[m] & set(found)), m) for m in modules), extra
    # CUDA only where asked for: on Linux x86-64 the keras extra brings tensorflow-cpu
    if platform == "linux-x86_64":
        assert "tensorflow-cpu" in names("keras") and "tensorflow" not in names("keras")
        assert "tensorflow" in names("keras-gpu")


# ------------------------------------------------- fresh venvs, by extra ----
#
# The wheel is installed with an extra into a fresh venv (all is added to the keras venv, so that
# TensorFlow is installed once); the commands run there from a folder outside the checkout. A
# small spec keeps the frameworks' work short.

SPEC = ["--set", "layers=[4,8]"]


def _missing(command: str, name: str, module: str, extra: str) -> str:
    return (
        f"error: `specgen {command}` needs {name} (module {module!r}), which is not installed; "
        f"install it with: pip install 'specgen[{extra}]'\n"
    )


@pytest.fixture(scope="module")
def spec(repo_root: Path) -> str:
    return str(repo_root / "specs" / "conv_autoencoder.yaml")


# A framework venv is a gigabyte or two of small files. Where /dev/shm (memory) has room they go
# there: writing and removing them takes seconds, against a minute or more on a disk that
# discards freed blocks online.
SCRATCH = Path("/dev/shm")
SCRATCH_ROOM = 8 * 2**30


def _scratch(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    try:
        if shutil.disk_usage(SCRATCH).free > SCRATCH_ROOM:
            return Path(tempfile.mkdtemp(prefix=f"specgen-test-{name}-", dir=SCRATCH))
    except OSError:
        pass
    return tmp_path_factory.mktemp(name)


@pytest.fixture
def fresh_venv(wheel: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """Makes fresh venvs holding the wheel with the extras asked for; removes them after the
    test."""
    roots: list[Path] = []

    def make(extras: str) -> Path:
        roots.append(_scratch(tmp_path_factory, f"venv-{extras}"))
        return _make_venv(wheel, repo_root, roots[-1], extras)

    yield make
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def _specgen(venv: Path, cwd: Path, *args: str, check: bool = True):
    return _run([str(venv / "bin" / "specgen"), *args], cwd=cwd, check=check)


# What TensorFlow's C++ side logs when it is imported (absl: "I0000 00:00:... port.cc:153] ...").
TF_LOG_LINE = re.compile(r"[IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog")


def _fails_with(venv: Path, cwd: Path, args: list[str], message: str) -> None:
    """``specgen ARGS`` exits with 1, and ``message`` is its one line of output (after any lines
    that TensorFlow logs as it is imported)."""
    proc = _specgen(venv, cwd, *args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    *before, last = proc.stderr.splitlines(keepends=True)
    assert last == message, proc.stderr
    assert all(TF_LOG_LINE.match(line) for line in before), proc.stderr
    assert proc.stdout == ""


def _train(venv: Path, cwd: Path, spec: str, framework: str) -> Path:
    """One short epoch on a folder of images (read with Pillow); returns the run folder."""
    images = cwd / "images"
    code = (
        "import sys, numpy as np; from PIL import Image\n"
        "rng = np.random.default_rng(0)\n"
        "for i in range(16):\n"
        "    a = (rng.random((32, 32, 3)) * 255).astype(np.uint8)\n"
        "    Image.fromarray(a).save(f'{sys.argv[1]}/{i:02d}.png')\n"
    )
    images.mkdir()
    _run([str(venv / "bin" / "python"), "-c", code, str(images)], cwd=cwd)
    _specgen(
        venv,
        cwd,
        "train",
        spec,
        *SPEC,
        "--framework",
        framework,
        "-o",
        "out",
        "--",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--data",
        str(images),
    )
    run = cwd / "out" / "conv_autoencoder" / "run"
    assert (run / "metrics.json").is_file(), sorted(p.name for p in run.iterdir())
    return run


def test_core_install_generates_and_names_the_missing_extras(
    venv: Path, spec: str, tmp_path: Path
) -> None:
    proc = _specgen(venv, tmp_path, "validate", spec, *SPEC)
    assert "ok" in proc.stdout
    _specgen(venv, tmp_path, "generate", spec, *SPEC, "-o", "generated")
    folder = tmp_path / "generated" / "conv_autoencoder"
    assert {"torch_model.py", "keras_model.py", "train_torch.py"} <= {
        p.name for p in folder.iterdir()
    }
    numpy = ("NumPy", "numpy", "all")
    _fails_with(venv, tmp_path, ["verify", spec, *SPEC], _missing("verify", *numpy))
    _fails_with(
        venv,
        tmp_path,
        ["convert-weights", spec, *SPEC, "w.safetensors", "w.weights.h5"],
        _missing("convert-weights", *numpy),
    )
    for framework, name in (("torch", "PyTorch"), ("keras", "Keras")):
        _fails_with(
            venv,
            tmp_path,
            ["train", spec, *SPEC, "--framework", framework, "-o", "out"],
            _missing(f"train --framework {framework}", name, framework, framework),
        )
    assert not (tmp_path / "out").exists()  # nothing written before the check

    # the Python API raises the same user error
    code = (
        "import sys, specgen.torch\n"
        "from specgen.extras import MissingExtra\n"
        "try:\n"
        "    specgen.torch.build(sys.argv[1], layers=[4, 8])\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    proc = _run([str(venv / "bin" / "python"), "-c", code, spec], cwd=tmp_path)
    assert proc.stdout == (
        "specgen.torch.build needs PyTorch (module 'torch'), which is not installed; "
        "install it with: pip install 'specgen[torch]'\n"
    )


def test_torch_extra_trains_and_verify_names_the_all_extra(
    fresh_venv, spec: str, tmp_path: Path
) -> None:
    venv = fresh_venv("torch")
    run = _train(venv, tmp_path, spec, "torch")
    assert (run / "model.safetensors").is_file()
    _fails_with(
        venv, tmp_path, ["verify", spec, *SPEC], _missing("verify", "Keras", "keras", "all")
    )


def test_keras_extra_trains_then_the_all_extra_verifies_and_converts_weights(
    fresh_venv, wheel: Path, repo_root: Path, spec: str, tmp_path: Path
) -> None:
    # one venv for both steps, so TensorFlow is installed once: the keras extra alone first ...
    venv = fresh_venv("keras")
    python = str(venv / "bin" / "python")
    run = _train(venv, tmp_path, spec, "keras")
    assert (run / "model.weights.h5").is_file()
    code = (
        "from importlib.metadata import distribution, PackageNotFoundError\n"
        "for name in ('tensorflow-cpu', 'tensorflow', 'torch'):\n"
        "    try:\n"
        "        distribution(name)\n"
        "        print(name)\n"
        "    except PackageNotFoundError:\n"
        "        pass\n"
    )
    assert _run([python, "-c", code], cwd=tmp_path).stdout.split() == ["tensorflow-cpu"]
    _fails_with(
        venv, tmp_path, ["verify", spec, *SPEC], _missing("verify", "PyTorch", "torch", "all")
    )

    # ... then the all extra (test_each_extra_installs_... shows it is torch + keras)
    _pip_install(venv, wheel, repo_root, "all")
    proc = _specgen(venv, tmp_path, "verify", spec, *SPEC)
    assert "PASS" in proc.stdout, proc.stdout
    save = (
        "import sys, specgen.torch\n"
        "from safetensors.torch import save_file\n"
        "model = specgen.torch.build(sys.argv[1], layers=[4, 8])\n"
        "save_file(model.state_dict(), 'torch.safetensors')\n"
    )
    _run([python, "-c", save, spec], cwd=tmp_path)
    for source, target in (
        ("torch.safetensors", "k.weights.h5"),
        ("k.weights.h5", "back.safetensors"),
    ):
        proc = _specgen(venv, tmp_path, "convert-weights", spec, *SPEC, source, target)
        assert proc.stdout.startswith(f"wrote {target}"), proc.stdout
    compare = (
        "import numpy as np\n"
        "from safetensors.numpy import load_file\n"
        "a, b = load_file('torch.safetensors'), load_file('back.safetensors')\n"
        "assert a.keys() == b.keys(), (sorted(a), sorted(b))\n"
        "for k in a:\n"
        "    if not k.endswith('num_batches_tracked'):\n"
        "        np.testing.assert_array_equal(a[k], b[k], err_msg=k)\n"
        "print(len(a))\n"
    )
    assert int(_run([python, "-c", compare], cwd=tmp_path).stdout) > 0
