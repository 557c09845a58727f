"""Generated training scripts: loss falls, resume continues exactly, torchrun runs two processes."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
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


def test_keras_training_falls_under_the_default_strategy_and_resumes(keras_workdir):
    straight = keras_workdir / "straight"
    run_keras(keras_workdir, "--epochs", "3", "--out", str(straight))
    m = metrics(straight)
    assert m["strategy"] == "default" and m["replicas"] == 1
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


# ----------------------------------------------------------------------------------------------
# Sequences and volumes: the scripts of 1-D and 3-D specs

#: Tiny specs of spatial rank 1 and 3 whose bottleneck samples its latent (so the loss has a KL
#: term), each with the shape of an .npy file it trains on: (N, *spatial, C), or (N, *spatial)
#: for one channel.
RANKED = {
    1: (
        """\
specgen: 1
name: seq_vae
input: {shape: [32, 2]}
encoder:
  - {kind: conv, filters: 8, kernel_size: 3, strides: 2}
  - {kind: relu}
bottleneck: {kind: diagonal_gaussian, latent_channels: 4}
decoder:
  - {kind: conv_transpose, filters: 8, kernel_size: 4, strides: 2, padding: 1}
  - {kind: relu}
  - {kind: conv, filters: 2, kernel_size: 3}
output: {activation: sigmoid}
""",
        (24, 32, 2),
    ),
    3: (
        """\
specgen: 1
name: volume_vae
input: {shape: [4, 8, 8, 1]}
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: [1, 2, 2]}
  - {kind: relu}
bottleneck: {kind: diagonal_gaussian, latent_channels: 2}
decoder:
  - {kind: conv_transpose, filters: 4, kernel_size: 3, strides: [1, 2, 2]}
  - {kind: relu}
  - {kind: conv, filters: 1, kernel_size: 3}
output: {activation: sigmoid}
""",
        (24, 4, 8, 8),
    ),
}


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    """{rank: the folder of the rank's generated models and training scripts}."""
    out = tmp_path_factory.mktemp("ranked")
    folders = {}
    for rank, (text, _) in RANKED.items():
        spec = out / f"rank{rank}.yaml"
        spec.write_text(text)
        targets = ["--target", "torch", "--target", "keras", "--target", "train"]
        assert main(["generate", str(spec), "-o", str(out / "gen"), *targets]) == 0
        folders[rank] = out / "gen" / text.split("name: ")[1].split("\n")[0]
    return folders


def run_any(folder, framework, *args, check=True):
    cmd = [sys.executable, str(folder / f"train_{framework}.py"), *map(str, args)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=600, cwd=folder, env=env
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def png_pixels(path) -> np.ndarray:
    """The RGB or grey pixels of a PNG the scripts write (8-bit, no filters), as (H, W, C)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8 : at + 8 + size]
        at += 12 + size
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8
    channels = {0: 1, 2: 3}[colour]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    rows = rows.reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # no filters
    return rows[:, 1:].reshape(height, width, channels)


def module_of(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rank", sorted(RANKED))
def test_one_epoch_of_a_sequence_or_volume_model_in_both_frameworks(rank, ranked, tmp_path):
    """One epoch on the demo data and on an .npy file, in PyTorch and in Keras: the loss has
    its KL term, the preview is the rank's (line plots, or middle slices), and the
    checkpoints load into the generated models."""
    folder, (_, shape) = ranked[rank], RANKED[rank]
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(rank).integers(0, 256, shape, dtype=np.uint8))
    # 6 validation samples in batches of 4: the preview gathers its samples from two batches
    file_args = ("--batch-size", "4", "--val-fraction", "0.25", "--log-every", "1")
    sources = {Path("demo"): ("--log-every", "5"), data: file_args}
    jobs = {
        (framework, source): (folder, framework, "--epochs", "1", *args)
        + ("--data", source, "--out", tmp_path / f"{framework}_{source.stem}")
        for framework in ("torch", "keras")
        for source, args in sources.items()
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(jobs, pool.map(lambda job: run_any(*job), jobs.values()), strict=True))
    for (framework, source), proc in procs.items():
        out = tmp_path / f"{framework}_{source.stem}"
        assert " kl " in proc.stdout, proc.stdout
        final = metrics(out)["final"]
        assert final["epoch"] == 1 and np.isfinite(final["val_loss"]), final
        pixels = png_pixels(out / "reconstructions_epoch001.png")
        shown = 8 if source.name == "demo" else 6  # the first 8 validation samples, or all
        if rank == 1:  # line plots: input (black) and reconstruction (red) over grey strips
            assert pixels.shape == (shown * (2 * 50 + 6), 260, 3)
            colours = {tuple(p) for p in pixels.reshape(-1, 3)}
            assert (0, 0, 0) in colours and (217, 26, 26) in colours
        else:  # the middle D-slices of inputs above reconstructions, as the 2-D grid has them
            # 8x8 slices drawn 8 times as large (64 + 4 pixels apart) right of their labels
            # (84 pixels), under the epoch and PSNR (26 pixels)
            assert pixels.shape == (26 + 2 * 68, 84 + shown * 68, 1)
    from safetensors.torch import load_file

    import keras
    import torch

    channels_first = module_of(folder / "torch_model.py", f"rank{rank}_torch_model")
    channels_last = module_of(folder / "keras_model.py", f"rank{rank}_keras_model")
    x = np.load(data).reshape(shape[0], *channels_last.INPUT_SHAPE) / np.float32(255)
    for source in ("demo", "data"):
        model = channels_first.build_model()
        model.load_state_dict(load_file(tmp_path / f"torch_{source}" / "model.safetensors"))
        with torch.no_grad():
            recon = model(torch.from_numpy(np.moveaxis(x, -1, 1)))[0]
        assert tuple(recon.shape) == (shape[0], *channels_first.INPUT_SHAPE)
        model = channels_last.build_model()
        model.load_weights(str(tmp_path / f"keras_{source}" / "model.weights.h5"))
        recon = model(keras.ops.convert_to_tensor(x))[0]
        assert tuple(recon.shape) == (shape[0], *channels_last.INPUT_SHAPE)


def test_a_volume_model_given_an_image_folder_says_which_data_it_takes(ranked, tmp_path):
    image = pytest.importorskip("PIL.Image")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):  # 8x8 grey images: the size of the volumes' slices
        image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(images / f"{i}.png")
    proc = run_any(ranked[3], "torch", "--data", images, "--out", tmp_path / "run", check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0] == (
        f"--data {images}: a folder of images, but this model takes volumes (D x H x W x C = "
        "4x8x8x1): save each as a .npy file of that shape, or all of them as one .npy array of "
        "shape (N, 4, 8, 8, 1); image files are for 2-D models"
    )
    assert not (tmp_path / "run" / "checkpoint.json").exists()


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_training_scripts_are_lint_clean_at_every_rank(rank, tmp_path, repo_root):
    """The scripts of every rank pass the pinned linter and formatter with their defaults."""
    if rank == 2:
        path = repo_root / "specs" / "conv_autoencoder.yaml"
    else:
        path = tmp_path / "spec.yaml"
        path.write_text(RANKED[rank][0])
    assert main(["generate", str(path), "-o", str(tmp_path / "gen"), "--target", "train"]) == 0
    scripts = sorted(str(p) for p in (tmp_path / "gen").glob("*/train_*.py"))
    assert len(scripts) == 2
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *scripts],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
