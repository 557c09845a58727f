"""train_keras.py: Keras's own fit() on the TensorFlow and PyTorch backends, every part of the
loss, metrics files and exact resume."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from specgen.cli import main

pytestmark = pytest.mark.frameworks

h5py = pytest.importorskip("h5py")
pytest.importorskip("keras")
pytest.importorskip("tensorflow")

#: A 16x16 grey VAE: its loss has a KL term and its training draws noise.
VAE = """\
specgen: 1
name: tiny_vae
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same}
  - {kind: relu}
bottleneck: {kind: diagonal_gaussian, latent_channels: 4}
decoder:
  - {kind: conv2d_transpose, filters: 8, kernel_size: 3, strides: 2, padding: same}
  - {kind: relu}
  - {kind: conv2d, filters: 1, kernel_size: 3, padding: same}
output: {activation: sigmoid}
"""

#: Each spec's file (relative to specs/, or None for VAE) and its settings.
SPECS = {
    "conv_autoencoder": ("conv_autoencoder.yaml", ["layers=[8,16]", "input_shape=[16,16,1]"]),
    "tiny_vae": (None, []),
    "resnet_vqvae": (
        "resnet_vqvae.yaml",
        [
            "input_shape=[16,16,1]",
            "n_levels=1",
            "n_residual_blocks=1",
            "z_dim=8",
            "bottleneck_dim=4",
            "num_embeddings=16",
        ],
    ),
    "compressai_factorized_prior": (
        "zoo/compressai_factorized_prior.yaml",
        ["input_shape=[16,16,3]", "N=8", "M=8"],
    ),
}


@pytest.fixture(scope="module")
def gen(tmp_path_factory, repo_root):
    """{name: the folder of its keras_model.py and train_keras.py}, and .npy data for them."""
    out = tmp_path_factory.mktemp("train_keras")
    (out / "tiny_vae.yaml").write_text(VAE)
    for file, settings in SPECS.values():
        spec = out / "tiny_vae.yaml" if file is None else repo_root / "specs" / file
        sets = [arg for s in settings for arg in ("--set", s)]
        targets = ["--target", "keras", "--target", "train"]
        assert main(["generate", str(spec), *sets, "-o", str(out / "gen"), *targets]) == 0
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        pixels = rng.integers(0, 256, (40, 16, 16, channels), dtype=np.uint8)
        np.save(out / f"data{channels}.npy", pixels)
    return out


def run(gen, name, backend, *args, check=True):
    folder = gen / "gen" / name
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, str(folder / "train_keras.py"), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=folder,
        env=env,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def tensorboard_scalars(folder) -> dict:
    """{tag: [(step, value), ...]} of the scalars in a folder of TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(folder))
    board.Reload()
    return {tag: [(e.step, e.value) for e in board.Scalars(tag)] for tag in board.Tags()["scalars"]}


def data_for(gen, name):
    return gen / f"data{3 if name == 'compressai_factorized_prior' else 1}.npy"


def weights(path) -> dict:
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda key, item: (
                found.__setitem__(key, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return found


def same_arrays(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a
    )


@pytest.mark.parametrize("name", ["conv_autoencoder", "tiny_vae"])
def test_one_epoch_on_the_tensorflow_and_pytorch_backends(gen, name, tmp_path):
    """The same script trains on both backends through fit(): metrics, CSV, preview and a
    checkpoint that loads into the generated model."""
    common = ("--epochs", "1", "--batch-size", "8", "--log-every", "2")
    jobs = {
        backend: (gen, name, backend, *common, "--data", data_for(gen, name))
        + ("--out", tmp_path / backend)
        for backend in ("tensorflow", "torch")
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(jobs, pool.map(lambda job: run(*job), jobs.values()), strict=True))
    for backend, proc in procs.items():
        out = tmp_path / backend
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["backend"] == backend and metrics["strategy"] == "default"
        assert metrics["replicas"] == 1
        final = metrics["final"]
        assert final["epoch"] == 1 and 0 < final["train_loss"] < 10, final
        assert np.isfinite(final["val_loss"]) and final["val_psnr"] > 0, final
        # 36 training images in batches of 8: 4 steps, a line every 2 with its total
        assert "epoch 1/1 step 2/4: loss " in proc.stdout, proc.stdout
        assert "epoch 1/1 step 4/4: loss " in proc.stdout and "images/s, ETA 0:" in proc.stdout
        rows = list(csv.DictReader((out / "metrics.csv").open()))
        assert len(rows) == 1 and float(rows[0]["val_loss"]) == final["val_loss"]
        if name == "tiny_vae":
            assert " kl " in proc.stdout and metrics["terms"][0]["kl"] > 0
            assert float(rows[0]["kl"]) == metrics["terms"][0]["kl"]
        assert (out / "reconstructions_epoch001.png").read_bytes()[:4] == b"\x89PNG"
        saved = json.loads((out / "checkpoint.json").read_text())
        assert saved["epoch"] == 1 and saved["step"] == 4
        # TensorBoard: the progress lines' numbers by step, the epoch's record at its end
        board = tensorboard_scalars(out / "tensorboard")
        assert [step for step, _ in board["train/loss"]] == [2, 4]
        assert board["epoch/val_psnr"] == [(4, pytest.approx(final["val_psnr"], rel=1e-6))]
        assert board["epoch/train_loss"][0][1] == pytest.approx(final["train_loss"], rel=1e-6)
        if name == "tiny_vae":
            assert [step for step, _ in board["train/kl"]] == [2, 4]
    # both backends' weights load into the generated model (checked on TensorFlow here)
    load = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "from keras_model import build_model; m = build_model(); "
        "[m.load_weights(p) for p in sys.argv[2:]]; "
        "y = m(np.zeros((2, 16, 16, 1), 'float32')); "
        "print((y[0] if isinstance(y, tuple) else y).shape)"
    )
    files = [str(tmp_path / b / "model.weights.h5") for b in ("tensorflow", "torch")]
    proc = subprocess.run(
        [sys.executable, "-c", load, str(gen / "gen" / name), *files],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"},
    )
    assert proc.returncode == 0 and "(2, 16, 16, 1)" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_two_epochs_equal_one_and_a_resume_bit_for_bit(gen, backend, tmp_path):
    """The VAE draws noise every step and the schedule decays every step: weights, optimizer
    state and random generators after 2 straight epochs equal those after 1 + --resume."""
    args = ("--batch-size", "8", "--log-every", "1000", "--data", data_for(gen, "tiny_vae"))
    args += ("--schedule", "exponential", "--decay-steps", "3", "--decay-rate", "0.5")
    args += ("--clip", "0.5")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def first(out, epochs):
        return run(gen, "tiny_vae", backend, "--epochs", epochs, "--out", out, *args)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(first, (straight, resumed), (2, 1)))
    proc = run(gen, "tiny_vae", backend, "--epochs", 2, "--resume", "--out", resumed, *args)
    assert "resuming after epoch 1 (step 4)" in proc.stdout, proc.stdout
    a, b = weights(straight / "model.weights.h5"), weights(resumed / "model.weights.h5")
    assert same_arrays(a, b)
    with np.load(straight / "optimizer.npz") as x, np.load(resumed / "optimizer.npz") as y:
        assert same_arrays(dict(x), dict(y))
    history = [json.loads((out / "metrics.json").read_text()) for out in (straight, resumed)]
    for key in ("train_loss", "val_loss", "val_psnr"):
        assert [r[key] for r in history[0]["history"]] == [r[key] for r in history[1]["history"]]
    assert history[0]["terms"] == history[1]["terms"]
    assert len(list(csv.DictReader((resumed / "metrics.csv").open()))) == 2


@pytest.mark.parametrize(
    ("name", "terms"),
    [("resnet_vqvae", {"vq"}), ("compressai_factorized_prior", {"bpp", "aux"})],
)
def test_one_step_with_a_quantizer_or_an_entropy_bottleneck(gen, name, terms, tmp_path):
    """The quantizer's loss, the rate and the auxiliary loss are part of the step and logged."""
    args = ("--epochs", "1", "--batch-size", "32", "--log-every", "1", "--clip", "1.0")
    proc = run(gen, name, "tensorflow", *args, "--data", data_for(gen, name), "--out", tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["terms"][0]) == terms, metrics
    assert all(np.isfinite(v) for v in metrics["terms"][0].values())
    assert np.isfinite(metrics["final"]["train_loss"]), metrics
    for term in terms:
        assert f" {term} " in proc.stdout, proc.stdout
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 1


def test_a_hostile_resume_state_is_refused_in_one_line(gen, tmp_path):
    out = tmp_path / "run"
    data = ("--data", data_for(gen, "conv_autoencoder"), "--log-every", "1000")
    run(gen, "conv_autoencoder", "tensorflow", "--epochs", "1", "--out", out, *data)
    meta = json.loads((out / "checkpoint.json").read_text())
    meta["terms"] = [{"kl\x1b[2J": "x"}]
    (out / "checkpoint.json").write_text(json.dumps(meta))
    args = ("--epochs", "2", "--resume", "--out", out, *data)
    proc = run(gen, "conv_autoencoder", "tensorflow", *args, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "'terms' must be a list of 1 records" in lines[-1] and "\x1b" not in lines[-1]
    meta["terms"] = [{}]
    (out / "checkpoint.json").write_text(json.dumps(meta))
    with np.load(out / "optimizer.npz") as saved:
        values = dict(saved)
    values["python_random"] = values["python_random"][:3]
    np.savez(out / "optimizer.npz", **values)
    proc = run(gen, "conv_autoencoder", "tensorflow", *args, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "not a random generator state this script reads" in proc.stderr


def test_the_tensorflow_pipeline_reads_every_batch_in_order_across_epochs(gen, monkeypatch):
    """feed() runs Batches' reads in parallel threads, and fit() must still get batch i as
    the i-th: the order of each epoch, epoch after epoch, and the validation set's last
    partial batch."""
    import importlib.util

    folder = gen / "gen" / "conv_autoencoder"
    monkeypatch.delitem(sys.modules, "keras_model", raising=False)
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location("feed_train_keras", folder / "train_keras.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    if script.BACKEND != "tensorflow":
        pytest.skip("the tf.data pipeline is the TensorFlow backend's")
    samples = script.open_data(str(gen / "data1.npy"), 0)
    train_idx, val_idx = script.split_indices(len(samples), 0.1, 0)
    train = script.Batches(samples, train_idx, 8, seed=3, first_epoch=1, workers=3)
    assert train.steps == 4
    got = [x.numpy() for x in script.feed(train).take(3 * train.steps)]
    want = [train[i] for i in range(3 * train.steps)]
    assert len(got) == len(want) == 12
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert not np.array_equal(got[0], got[4])  # each epoch draws its own order
    val = script.Batches(samples, val_idx, 3, workers=2)
    shapes = [tuple(x.shape) for x in script.feed(val)]
    assert shapes == [(3, 16, 16, 1), (1, 16, 16, 1)]
