"""Training from another library's checkpoint: ``specgen train --init-from`` ports it (by the
spec's ``weights_from``) into the run folder, and the generated scripts' ``--init-from`` starts
from it. With a learning rate of 0 an epoch changes no weight, so the trained model's weights
are the original's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from safetensors.torch import load_file, save_file  # noqa: E402

from specgen.cli import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "port_fixtures"))

SETTINGS = ["--set", "layers=[8,4]", "--set", "input_shape=[16,16,3]"]
QUIET = ["--epochs", "1", "--lr", "0", "--log-every", "1000", "--batch-size", "16"]


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, dict]:
    """The original Keras AutoEncoder's weights file, and its kernels."""
    import conv_autoencoder_keras

    keras.utils.set_random_seed(1)
    model = conv_autoencoder_keras.autoencoder([8, 4], (16, 16, 3))
    path = tmp_path_factory.mktemp("original") / "autoencoder.weights.h5"
    model.save_weights(str(path))
    # the kernels in the order the model makes its layers (their names carry session counters)
    kernels = [
        keras.ops.convert_to_numpy(layer.kernel)
        for layer in model.layers
        if hasattr(layer, "kernel")
    ]
    return path, kernels


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_specgen_train_starts_from_the_original_keras_autoencoder(
    tmp_path, original, framework, repo_root, capfd
):
    path, kernels = original
    spec = str(repo_root / "specs" / "conv_autoencoder.yaml")
    argv = ["train", spec, *SETTINGS, "-o", str(tmp_path), "--framework", framework]
    assert main([*argv, "--init-from", str(path), "--", *QUIET]) == 0
    printed = capfd.readouterr().out
    run = tmp_path / "conv_autoencoder" / "run"
    init = run / ("init.safetensors" if framework == "torch" else "init.weights.h5")
    assert "matched 20 tensors of the Keras AutoEncoder checkpoint" in printed
    assert f"starting from the weights of {init}" in printed
    # the first encoder conv after an epoch at learning rate 0: the original's kernel
    want = kernels[0]
    if framework == "torch":
        have = load_file(str(run / "model.safetensors"))["encoder.level0.pool.conv1.weight"]
        have = have.permute(2, 3, 1, 0).numpy()
    else:
        import h5py

        with h5py.File(run / "model.weights.h5") as handle:
            have = handle["encoder/level0/pool/conv1/vars/0"][()]
    np.testing.assert_array_equal(have, want)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory, repo_root) -> Path:
    out = tmp_path_factory.mktemp("scripts")
    spec = str(repo_root / "specs" / "conv_autoencoder.yaml")
    targets = ["--target", "torch", "--target", "keras", "--target", "train"]
    assert main(["generate", spec, *SETTINGS, "-o", str(out), *targets]) == 0
    return out / "conv_autoencoder"


def run(folder: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(folder / script), *QUIET, *args]
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=folder, env=env, timeout=600)


def test_the_torch_script_refuses_weights_of_another_model(scripts, tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"features.0.weight\x1b[2J": torch.zeros(2)}, str(other))
    out = tmp_path / "run"
    proc = run(scripts, "train_torch.py", "--out", str(out), "--init-from", str(other))
    assert proc.returncode == 1
    assert "not this model's weights: lacks 'encoder.level0.pool.conv1.weight'" in proc.stderr
    assert "\x1b" not in proc.stderr and "specgen port-weights" in proc.stderr
    assert not (out / "checkpoint.json").exists()
    proc = run(scripts, "train_torch.py", "--out", str(out), "--init-from", str(scripts))
    assert proc.returncode == 1 and "takes a .safetensors file" in proc.stderr


def test_the_keras_script_refuses_links_out_of_the_file(scripts, tmp_path):
    import h5py

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as handle:
        handle["v"] = np.ones(3, np.float32)
    bad = tmp_path / "bad.weights.h5"
    with h5py.File(bad, "w") as handle:
        handle["encoder/level0/pool/conv1/vars/0"] = h5py.ExternalLink(str(secret), "v")
    out = tmp_path / "run"
    proc = run(scripts, "train_keras.py", "--out", str(out), "--init-from", str(bad))
    assert proc.returncode == 1
    assert "is a link; only weights inside the file are read" in proc.stderr
    assert not (out / "checkpoint.json").exists()


def test_resuming_takes_the_runs_checkpoint_over_init_from(scripts, tmp_path):
    out = tmp_path / "run"
    assert run(scripts, "train_torch.py", "--out", str(out)).returncode == 0
    proc = run(
        scripts, "train_torch.py", "--out", str(out), "--resume", "--epochs", "2",
        "--init-from", str(tmp_path / "absent.safetensors"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming: the run's checkpoint is used" in proc.stdout


def test_init_from_twice_and_library_alone_are_refused(tmp_path, repo_root, original, capsys):
    spec = str(repo_root / "specs" / "conv_autoencoder.yaml")
    argv = ["train", spec, *SETTINGS, "-o", str(tmp_path)]
    assert main([*argv, "--init-from", str(original[0]), "--", "--init-from", "x"]) == 1
    assert "given both to specgen train and to the script" in capsys.readouterr().err
    assert main([*argv, "--library", "Keras AutoEncoder", "--", *QUIET]) == 1
    assert "--library is given without --init-from" in capsys.readouterr().err
    assert not (tmp_path / "conv_autoencoder" / "run" / "checkpoint.json").exists()
