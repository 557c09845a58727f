"""Generated training scripts: loss falls, resume continues exactly, torchrun runs two processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from specgen.cli import main

pytestmark = pytest.mark.frameworks

SPEC_ARGS = ["--set", "layers=[8,16]"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("train")
    assert (
        main(
            [
                "generate",
                str(repo_root / "specs" / "conv_autoencoder.yaml"),
                *SPEC_ARGS,
                "-o",
                str(out),
                "--target",
                "torch",
                "--target",
                "train",
            ]
        )
        == 0
    )
    return out / "conv_autoencoder"


def run_script(folder, *args, module_runner=None, timeout=600):
    cmd = [
        sys.executable,
        *(module_runner or []),
        str(folder / "train_torch.py"),
        "--log-every",
        "1000",
        *args,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=timeout, cwd=folder
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_validation_loss_falls_on_the_demo_data(workdir):
    out = workdir / "falls"
    run_script(workdir, "--epochs", "4", "--out", str(out))
    history = metrics(out)["history"]
    assert len(history) == 4
    first, last = history[0]["val_loss"], history[-1]["val_loss"]
    assert last < 0.8 * first, history
    assert history[-1]["val_psnr"] > history[0]["val_psnr"]
    for epoch in range(1, 5):
        png = out / f"reconstructions_epoch{epoch:03d}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model.safetensors").is_file() and (out / "checkpoint.json").is_file()


def test_resume_continues_from_the_same_step(workdir):
    straight = workdir / "straight"
    run_script(workdir, "--epochs", "3", "--out", str(straight))
    resumed = workdir / "resumed"
    run_script(workdir, "--epochs", "2", "--out", str(resumed))
    proc = run_script(workdir, "--epochs", "3", "--resume", "--out", str(resumed))
    assert "resuming after epoch 2" in proc.stdout
    a, b = metrics(straight)["history"], metrics(resumed)["history"]
    assert [r["epoch"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-6)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-6)
    assert (
        json.loads((resumed / "checkpoint.json").read_text())["step"]
        == json.loads((straight / "checkpoint.json").read_text())["step"]
    )


def test_two_process_torchrun_completes_an_epoch_with_equal_weights(workdir):
    out = workdir / "ddp"
    run_script(
        workdir,
        "--epochs",
        "1",
        "--out",
        str(out),
        module_runner=["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    )
    m = metrics(out)
    assert m["processes"] == 2 and m["ranks_agree"] is True
    assert len(m["history"]) == 1


def test_specgen_train_generates_and_runs(repo_root, tmp_path, capsys):
    spec = str(repo_root / "specs" / "conv_autoencoder.yaml")
    code = main(
        [
            "train",
            spec,
            *SPEC_ARGS,
            "-o",
            str(tmp_path),
            "--",
            "--epochs",
            "1",
            "--log-every",
            "1000",
        ]
    )
    assert code == 0
    folder = tmp_path / "conv_autoencoder"
    assert (folder / "torch_model.py").is_file() and (folder / "train_torch.py").is_file()
    assert metrics(folder / "run")["final"]["epoch"] == 1
    assert (folder / "run" / "reconstructions_epoch001.png").is_file()


def run_keras(folder, *args, timeout=900):
    cmd = [sys.executable, str(folder / "train_keras.py"), "--log-every", "1000", *args]
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=timeout, cwd=folder, env=env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def keras_workdir(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("train_keras")
    assert (
        main(
            [
                "generate",
                str(repo_root / "specs" / "conv_autoencoder.yaml"),
                *SPEC_ARGS,
                "-o",
                str(out),
                "--target",
                "keras",
                "--target",
                "train",
            ]
        )
        == 0
    )
    return out / "conv_autoencoder"


def test_keras_training_falls_under_mirrored_strategy_and_resumes(keras_workdir):
    straight = keras_workdir / "straight"
    run_keras(keras_workdir, "--epochs", "3", "--out", str(straight))
    m = metrics(straight)
    assert m["strategy"] == "MirroredStrategy" and m["replicas"] >= 1
    history = m["history"]
    assert history[-1]["val_loss"] < 0.8 * history[0]["val_loss"], history
    assert (straight / "model.weights.h5").is_file()
    assert (straight / "reconstructions_epoch003.png").read_bytes()[:4] == b"\x89PNG"
    resumed = keras_workdir / "resumed"
    run_keras(keras_workdir, "--epochs", "2", "--out", str(resumed))
    proc = run_keras(keras_workdir, "--epochs", "3", "--resume", "--out", str(resumed))
    assert "resuming after epoch 2" in proc.stdout
    again = metrics(resumed)["history"]
    assert [r["epoch"] for r in again] == [1, 2, 3]
    assert again[-1]["val_loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-4)
