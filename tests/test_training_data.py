"""The PyTorch training script's data, progress, metrics, previews and exact resume."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

from specgen.cli import main

pytestmark = pytest.mark.frameworks

SMALL = ["--set", "layers=[8,16]", "--set", "input_shape=[16,16,1]"]

#: A small VAE whose encoder drops activations: sampling noise and dropout both draw from the
#: random state that a checkpoint must carry for resuming to be exact.
DROPOUT_VAE = """\
specgen: 1
name: dropout_vae
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv, filters: 8, kernel_size: 3, strides: 2}
  - {kind: relu}
  - {kind: dropout, rate: 0.25}
bottleneck: {kind: diagonal_gaussian, latent_channels: 4}
decoder:
  - {kind: conv_transpose, filters: 8, kernel_size: 4, strides: 2, padding: 1}
  - {kind: relu}
  - {kind: conv, filters: 1, kernel_size: 3}
output: {activation: sigmoid}
"""


#: A small 3-D autoencoder, for folders of volumes.
VOLUME_AE = """\
specgen: 1
name: volume_ae
input: {shape: [8, 8, 8, 1]}
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2}
  - {kind: relu}
decoder:
  - {kind: conv_transpose, filters: 4, kernel_size: 4, strides: 2, padding: 1}
  - {kind: relu}
  - {kind: conv, filters: 1, kernel_size: 3}
output: {activation: sigmoid}
"""


def generate(spec, out, *args):
    targets = ["--target", "torch", "--target", "train"]
    assert main(["generate", str(spec), *args, "-o", str(out), *targets]) == 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("data_gen")
    generate(repo_root / "specs" / "conv_autoencoder.yaml", out, *SMALL)
    return out / "conv_autoencoder"


@pytest.fixture(scope="module")
def script(folder):
    """The generated train_torch.py, imported."""
    spec = importlib.util.spec_from_file_location("data_train_torch", folder / "train_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(folder, *args, check=True):
    cmd = [sys.executable, str(folder / "train_torch.py"), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def refused(script, source) -> str:
    with pytest.raises(SystemExit) as caught:
        samples = script.open_data(str(source), 0)
        samples.read_many(range(len(samples)))
    message = str(caught.value.code)
    assert "\n" not in message and "\x1b" not in message, message
    return message


# ---------------------------------------------------------------- streaming ----


def test_an_image_folder_tree_of_mixed_formats_is_read_a_sample_at_a_time(script, tmp_path):
    image = pytest.importorskip("PIL.Image")
    root = tmp_path / "tree"
    (root / "a" / "deeper").mkdir(parents=True)
    (root / "b").mkdir()
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image.fromarray(grey).save(root / "grey.png")
    image.fromarray(grey.astype(np.uint16) * 257).save(root / "a" / "sixteen.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 1], rgba[..., 3] = 255, 255
    image.fromarray(rgba, "RGBA").save(root / "a" / "deeper" / "rgba.png")
    image.fromarray(grey).save(root / "b" / "photo.jpg", quality=95)
    image.fromarray(grey).save(root / "b" / "bitmap.bmp")
    image.fromarray(grey).save(root / "b" / "scan.tiff")
    (root / "b" / "notes.txt").write_text("not an image\n")
    samples = script.open_data(str(root), 0)
    assert isinstance(samples, script.FileSamples)
    assert samples.files == [
        "a/deeper/rgba.png",
        "a/sixteen.png",
        "b/bitmap.bmp",
        "b/photo.jpg",
        "b/scan.tiff",
        "grey.png",
    ]
    pixels = {name: samples.read(i) for i, name in enumerate(samples.files)}
    for values in pixels.values():
        assert values.shape == (16, 16, 1) and values.dtype == np.float32
        assert 0.0 <= values.min() and values.max() <= 1.0
    exact = grey[..., None] / np.float32(255)
    for name in ("grey.png", "a/sixteen.png", "b/bitmap.bmp", "b/scan.tiff"):
        np.testing.assert_allclose(pixels[name], exact, atol=1e-6)
    np.testing.assert_allclose(pixels["b/photo.jpg"], exact, atol=0.05)
    green = round(0.587 * 255) / 255  # Pillow's luma of pure green
    np.testing.assert_allclose(pixels["a/deeper/rgba.png"], green, atol=1 / 255)


def test_a_memory_mapped_npy_larger_than_a_batch_stays_on_disk(script, tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (200, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "big.npy", data)
    samples = script.open_data(str(tmp_path / "big.npy"), 0)
    assert isinstance(samples.array, np.memmap) and len(samples) == 200
    assert samples.array.shape == (200, 16, 16, 1)
    np.testing.assert_array_equal(samples.read(123)[..., 0], data[123] / np.float32(255))
    # batches are read whole, in any order, by loader processes
    indices = np.arange(200)[::-1].copy()
    order = list(np.random.default_rng(2).permutation(200))
    loader = script.batch_loader(samples, indices, order, 32, num_workers=2)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(32, 1, 16, 16)] * 6 + [(8, 1, 16, 16)]
    expected = data[indices[order]] / np.float32(255)
    np.testing.assert_array_equal(script.torch.cat(batches)[:, 0].numpy(), expected)
    np.testing.assert_array_equal(
        samples.read_many(indices[order[:40]]),
        np.stack([samples.read(int(i)) for i in indices[order[:40]]]),
    )
    # a copy for another process holds where the data is, never the data
    state = loader.dataset.samples.__getstate__()
    assert state["_array"] is None and state["where"][0] == str(tmp_path / "big.npy")


def test_a_folder_tree_of_npy_volumes_streams_into_a_3d_model(tmp_path, monkeypatch):
    (tmp_path / "volume_ae.yaml").write_text(VOLUME_AE)
    generate(tmp_path / "volume_ae.yaml", tmp_path / "gen")
    folder = tmp_path / "gen" / "volume_ae"
    monkeypatch.delitem(sys.modules, "torch_model", raising=False)  # this script's own
    spec = importlib.util.spec_from_file_location("volume_train_torch", folder / "train_torch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data = tmp_path / "volumes"
    (data / "scans" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(4)
    expected = {}
    for i in range(6):
        volume = rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)
        name = f"scans/deeper/v{i}.npy" if i % 2 else f"v{i}.NPY"
        saved = volume
        if i == 3:  # one channel: the channel axis may be left out
            saved = volume[..., 0]
        if i == 4:  # floats in [0, 1], in Fortran order
            saved = np.asfortranarray(volume / np.float32(255))
        if i == 5:  # 16 bits
            saved = volume.astype(np.uint16) * 257
        with open(data / name, "wb") as fh:  # np.save would add ".npy" to "v0.NPY"
            np.save(fh, saved)
        expected[name] = volume / np.float32(255)
    (data / "notes.txt").write_text("not a sample")
    samples = script.open_data(str(data), 0)
    assert isinstance(samples, script.FileSamples)
    assert sorted(samples.files) == sorted(expected)
    for index, name in enumerate(samples.files):
        np.testing.assert_allclose(samples.read(index), expected[name], atol=1e-7)
    batch = samples.read_many([5, 0, 2], channels_first=True)
    assert batch.shape == (3, 1, 8, 8, 8)
    np.testing.assert_allclose(batch[0, 0], expected[samples.files[5]][..., 0], atol=1e-7)
    # every file's header is checked before training starts
    np.save(data / "scans" / "wrong.npy", np.zeros((8, 8, 4, 1), np.uint8))
    message = refused(script, data)
    assert (
        "wrong.npy: an array of shape (8, 8, 4, 1), but each file of a folder is one "
        "volume of shape (8, 8, 8, 1)" in message
    ), message
    (data / "scans" / "wrong.npy").unlink()
    whole = (data / "v0.NPY").read_bytes()
    (data / "scans" / "cut.npy").write_bytes(whole[:-100])
    assert "cut.npy: its header declares 8x8x8x1 uint8 values" in refused(script, data)
    (data / "scans" / "cut.npy").unlink()
    proc = run(
        folder, "--epochs", "1", "--batch-size", "2", "--data", data, "--out", tmp_path / "run"
    )
    assert "epoch 1/1" in proc.stdout
    assert (tmp_path / "run" / "reconstructions_epoch001.png").is_file()


def test_reading_ahead_keeps_the_order_hands_on_errors_and_stops_when_dropped(script):
    import threading
    import time

    assert list(script.read_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise script.DataError("bad.png: a damaged image")

    with pytest.raises(script.DataError, match="bad.png"):
        list(script.read_ahead(failing()))

    def endless():
        n = 0
        while True:
            n += 1
            yield n

    reader = script.read_ahead(endless())
    assert [next(reader) for _ in range(3)] == [1, 2, 3]
    reader.close()
    deadline = time.monotonic() + 5
    while any(t.name == "read-ahead" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the reading thread did not stop"
        time.sleep(0.05)


def test_loader_processes_by_default_only_for_files_that_take_decoding(script, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 16, 16, 1), np.uint8))
    assert script.loader_processes(script.open_data(str(tmp_path / "a.npy"), 0), 1) == 0
    assert script.loader_processes(script.open_data("demo", 0), 1) == 0
    image = pytest.importorskip("PIL.Image")
    (tmp_path / "images").mkdir()
    for i in range(2):
        image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "images" / f"{i}.png")
    samples = script.open_data(str(tmp_path / "images"), 0)
    assert 1 <= script.loader_processes(samples, 1) <= 4
    assert script.loader_processes(samples, 64) == 1


def test_an_npz_array_is_chosen_by_name_and_memory_mapped(script, tmp_path):
    data = np.random.default_rng(1).random((12, 16, 16, 1)).astype(np.float32)
    np.savez(tmp_path / "two.npz", images=data, labels=np.arange(12))
    samples = script.open_data(f"{tmp_path / 'two.npz'}:images", 0)
    assert isinstance(samples.array, np.memmap)
    np.testing.assert_array_equal(samples.read(7), data[7])
    message = refused(script, tmp_path / "two.npz")
    assert "holds 2 arrays (images, labels); choose one with --data" in message
    np.savez_compressed(tmp_path / "packed.npz", images=data)
    packed = script.open_data(str(tmp_path / "packed.npz"), 0)
    np.testing.assert_array_equal(packed.read(3), data[3])


def bad_cases(tmp_path):
    image = pytest.importorskip("PIL.Image")
    cases = {}
    empty = tmp_path / "empty"
    empty.mkdir()
    cases["empty"] = (empty, "holds 0 sample file(s); training needs at least 2 images")
    broken = tmp_path / "broken"
    (broken / "inner").mkdir(parents=True)
    image.fromarray(np.zeros((16, 16), np.uint8)).save(broken / "fine.png")
    (broken / "inner" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish")
    cases["unreadable"] = (broken, "bad.png: not an image file Pillow can read")
    np.save(tmp_path / "shape.npy", np.zeros((4, 8, 8, 1), np.uint8))
    cases["shape"] = (
        tmp_path / "shape.npy",
        "an array of shape (4, 8, 8, 1), but the model takes (N, 16, 16, 1) images",
    )
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        values = np.full((4, 16, 16, 1), 0.5, np.float32)
        values[2, 3, 4, 0] = value
        np.save(tmp_path / f"{name}.npy", values)
        cases[name] = (tmp_path / f"{name}.npy", "holds NaN or infinite values")
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    image.fromarray(np.zeros((16, 16), np.uint8)).save(hostile / "fine.png")
    (hostile / "\x1b[31mred\x07.png").write_text("text\n")
    cases["terminal escapes"] = (hostile, "\\x1b[31mred\\x07.png': not an image file")
    return cases


def test_bad_data_is_refused_in_one_inert_line_naming_the_file(script, tmp_path):
    for name, (source, expected) in bad_cases(tmp_path).items():
        message = refused(script, source)
        assert expected in message, (name, message)
        assert str(tmp_path) in message, (name, message)


def test_bad_data_met_while_training_stops_with_its_message(folder, tmp_path):
    image = pytest.importorskip("PIL.Image")
    data = tmp_path / "pngs"
    data.mkdir()
    for i in range(6):
        image.fromarray(np.full((16, 16), 30 * i, np.uint8)).save(data / f"{i}.png")
    # a valid header with cut-short pixels: found only when the image is decoded
    whole = (data / "5.png").read_bytes()
    (data / "5.png").write_bytes(whole[: len(whole) - 30])
    proc = run(folder, "--epochs", "1", "--data", data, "--out", tmp_path / "run", check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-3000:]
    assert f"{data / '5.png'}: a damaged image" in lines[0]


# ------------------------------------------------------ progress and metrics ----


def test_progress_lines_and_metrics_csv(folder, tmp_path):
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(2).integers(0, 256, (40, 16, 16), dtype=np.uint8))
    out = tmp_path / "run"
    args = ("--data", data, "--batch-size", "4", "--val-fraction", "0.1", "--out", out)
    proc = run(folder, "--epochs", "2", "--log-every", "3", *args)
    steps = [line for line in proc.stdout.splitlines() if " step " in line]
    # 36 training images in batches of 4: 9 steps, a line at steps 3, 6 and 9 of each epoch
    assert len(steps) == 6, proc.stdout
    pattern = (
        r"epoch [12]/2 step [369]/9: loss \S+ recon \S+ psnr \S+ lr \S+ "
        r"[\d,]+ img/s ETA \d+:\d\d:\d\d"
    )
    for line in steps:
        assert re.fullmatch(pattern, line), line
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], r["epoch"], r["step"]) for r in rows] == [
        ("step", "1", "3"),
        ("step", "1", "6"),
        ("step", "1", "9"),
        ("epoch", "1", "9"),
        ("step", "2", "12"),
        ("step", "2", "15"),
        ("step", "2", "18"),
        ("epoch", "2", "18"),
    ]
    for row in rows:
        numbers = ("loss", "recon", "psnr") if row["kind"] == "step" else ("val_loss",)
        assert all(float(row[k]) > 0 for k in (*numbers, "images_per_s")), row
    # TensorBoard holds the same numbers
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(out / "tensorboard"))
    board.Reload()
    assert [e.step for e in board.Scalars("train/loss")] == [3, 6, 9, 12, 15, 18]
    epochs = [(e.step, e.value) for e in board.Scalars("epoch/val_loss")]
    assert epochs == [
        (int(r["step"]), pytest.approx(float(r["val_loss"]), rel=1e-6))
        for r in rows
        if r["kind"] == "epoch"
    ]
    # resuming appends to the same file
    run(folder, "--epochs", "3", "--log-every", "3", "--resume", *args)
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == ["1", "2", "3"]


# ----------------------------------------------------------------- resume ----


def test_one_epoch_and_resume_equals_two_epochs_bit_for_bit(tmp_path):
    spec = tmp_path / "vae.yaml"
    spec.write_text(DROPOUT_VAE)
    generate(spec, tmp_path / "gen")
    folder = tmp_path / "gen" / "dropout_vae"
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(3).integers(0, 256, (40, 16, 16), dtype=np.uint8))
    common = ("--data", data, "--batch-size", "8", "--workers", "2", "--log-every", "100")
    run(folder, "--epochs", "2", "--out", tmp_path / "straight", *common)
    run(folder, "--epochs", "1", "--out", tmp_path / "resumed", *common)
    proc = run(folder, "--epochs", "2", "--resume", "--out", tmp_path / "resumed", *common)
    assert "resuming after epoch 1" in proc.stdout
    for name in ("model.safetensors", "optimizer.safetensors"):
        straight = (tmp_path / "straight" / name).read_bytes()
        assert (tmp_path / "resumed" / name).read_bytes() == straight, name
    # without the random states the second epoch draws other noise and other dropout masks
    run(folder, "--epochs", "1", "--out", tmp_path / "inexact", *common)
    checkpoint = tmp_path / "inexact" / "checkpoint.json"
    meta = __import__("json").loads(checkpoint.read_text())
    del meta["random_states"]
    checkpoint.write_text(__import__("json").dumps(meta))
    proc = run(folder, "--epochs", "2", "--resume", "--out", tmp_path / "inexact", *common)
    assert "resuming is not exact" in proc.stdout
    weights = (tmp_path / "inexact" / "model.safetensors").read_bytes()
    assert weights != (tmp_path / "straight" / "model.safetensors").read_bytes()


# ------------------------------------------------------------------ preview ----


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_demo_preview_is_a_labelled_grid_of_two_rows(folder, script, tmp_path):
    out = tmp_path / "demo"
    run(folder, "--epochs", "1", "--log-every", "1000", "--out", out)
    width, height = png_size(out / "reconstructions_epoch001.png")
    assert width > 272 and height > 70
    # the same layout, drawn in process: title band, then the input and output rows of tiles
    inputs = np.full((8, 16, 16, 1), 0.5, np.float32)
    grid = script.image_grid(inputs, inputs * 0.5, "epoch 1   val PSNR 20.00 dB")
    assert grid.shape == (height, width, 1)
    tiles_in = np.isclose(grid[..., 0], 0.5).any(axis=1)
    tiles_out = np.isclose(grid[..., 0], 0.25).any(axis=1)
    assert tiles_in.sum() == 64 and tiles_out.sum() == 64  # 16 pixels drawn 4 times as large
    assert np.flatnonzero(tiles_in).max() < np.flatnonzero(tiles_out).min()
    ink = grid[: np.flatnonzero(tiles_in).min(), :, 0] == 0.0
    assert ink.any()  # the title
    left = grid[:, : 84 - 12, 0] == 0.0
    assert left[tiles_in].any() and left[tiles_out].any()  # the row labels


def test_the_demo_trains_on_bundled_digits(script):
    pytest.importorskip("sklearn")
    data = script.demo_data(64, 0)
    # all 1,797 digits: they fit in far less memory than the demo's limit
    assert data.shape == (1797, 16, 16, 1) and 0.0 <= data.min() and data.max() <= 1.0
    # handwritten strokes on a dark ground: mostly dark pixels, some bright ones
    assert (data < 0.1).mean() > 0.3 and (data > 0.7).mean() > 0.05
