"""The generated training scripts never write outside their run folder or through a symbolic
link, and answer bad data, hostile checkpoints and missing modules with one line and exit 1."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from specgen.cli import main

pytestmark = pytest.mark.frameworks

SPEC = """\
specgen: 1
name: tiny
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same}
decoder:
  - {kind: conv2d_transpose, filters: 1, kernel_size: 3, strides: 2, padding: same}
"""

#: Runs a script with some modules made unimportable: python -c BOOT MODULES SCRIPT ARGS...
BOOT = (
    "import runpy, sys; "
    "[sys.modules.__setitem__(m, None) for m in sys.argv[1].split(',') if m]; "
    "script = sys.argv[2]; sys.argv = sys.argv[2:]; "
    "runpy.run_path(script, run_name='__main__')"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train_torch.py and train_keras.py for a 16x16 grey autoencoder, shared by all tests."""
    out = tmp_path_factory.mktemp("safety")
    spec = out / "tiny.yaml"
    spec.write_text(SPEC)
    targets = ["--target", "torch", "--target", "keras", "--target", "train"]
    assert main(["generate", str(spec), "-o", str(out / "gen"), *targets]) == 0
    return out / "gen" / "tiny"


def run(folder, framework, *args, block=()):
    cmd = [sys.executable]
    if block:
        cmd += ["-c", BOOT, ",".join(block)]
    cmd += [str(folder / f"train_{framework}.py"), "--epochs", "1", "--batch-size", "4"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [*cmd, "--log-every", "1000", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=folder,
        env=env,
    )


def trains(folder, framework, *args, block=()):
    proc = run(folder, framework, *args, block=block)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def run_all(jobs: dict) -> dict:
    """Several runs at once (most only import a framework and refuse): {key: (args, kwargs)}."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, *args, **kw) for key, (args, kw) in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def refused(folder, framework, *args, block=()) -> str:
    return refusal(run(folder, framework, *args, block=block), framework)


def refusal(proc, framework) -> str:
    """The one line the script printed when it refused to run."""
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if framework == "torch":
        assert len(lines) == 1, proc.stderr
    return lines[-1]


def images(n: int, dtype=np.uint8, shape=(16, 16, 1)) -> np.ndarray:
    rng = np.random.default_rng(n)
    high = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1.0
    return (rng.uniform(0, 1, (n, *shape)) * high).astype(dtype)


def npy(tmp_path, array, name="data.npy"):
    path = tmp_path / name
    np.save(path, array, allow_pickle=True)
    return path


def forged_npy(path, shape, size=None):
    """A .npy file whose header declares ``shape`` float32 values; the file holds ``size``
    bytes of data after the header (none, unless given: a sparse file then)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 16, 16, 1), np.float32))
    header["shape"] = shape
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        if size:
            fh.truncate(fh.tell() + size)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels (Pillow reads only the header first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    head = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b"")


def png_folder(tmp_path, arrays, name="pngs"):
    image = pytest.importorskip("PIL.Image")
    folder = tmp_path / name
    folder.mkdir()
    for i, array in enumerate(arrays):
        image.fromarray(array).save(folder / f"{i:02d}.png")
    return folder


# ---------------------------------------------------------------- safe writes ----

CHECKPOINT_FILES = {
    "torch": ("model.safetensors", "optimizer.safetensors", "checkpoint.json"),
    "keras": ("model.weights.h5", "optimizer.npz", "checkpoint.json", "metrics.csv"),
}


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_links_in_the_run_folder_are_replaced_and_nothing_outside_changes(
    folder, tmp_path, framework
):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    names = (
        "metrics.json",
        "reconstructions_epoch001.png",
        ".checkpoint.json.tmp",
        *CHECKPOINT_FILES[framework],
        *(("metrics.csv",) if framework == "torch" else ()),
    )
    for name in names:
        (outside / name).write_text(f"precious {name}\n")
        os.symlink(outside / name, out / name)
    trains(folder, framework, "--data", npy(tmp_path, images(12)), "--out", out)
    for name in names:
        assert (outside / name).read_text() == f"precious {name}\n"
    for name in set(names) - {".checkpoint.json.tmp"}:
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert json.loads((out / "metrics.json").read_text())["final"]["epoch"] == 1
    assert (out / "reconstructions_epoch001.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / ".checkpoint.json.tmp").is_symlink()  # not ours: left alone
    leftovers = {p.name for p in out.iterdir()} - set(names)
    assert leftovers == {"tensorboard"}, leftovers
    (events,) = (out / "tensorboard").iterdir()
    assert events.name.startswith("events.out.tfevents.") and events.is_file()


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_tensorboard_folder_that_is_a_link_is_refused(folder, tmp_path, framework):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    os.symlink(outside, out / "tensorboard")
    data = npy(tmp_path, images(12))
    line = refused(folder, framework, "--data", data, "--out", out)
    assert f"{out / 'tensorboard'}: not a folder (or a symbolic link)" in line, line
    assert "--no-tensorboard" in line
    assert list(outside.iterdir()) == []
    trains(folder, framework, "--data", data, "--out", out, "--no-tensorboard")
    assert list(outside.iterdir()) == []


def test_the_write_helper_replaces_links_and_leaves_no_temporary_file_on_failure(
    folder, tmp_path, monkeypatch
):
    spec = importlib.util.spec_from_file_location("tiny_train_torch", folder / "train_torch.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "path", sys.path[:])
    before = sys.modules.get("torch_model")
    spec.loader.exec_module(script)  # imports this folder's torch_model: forget it again
    if before is None:
        del sys.modules["torch_model"]
    else:
        sys.modules["torch_model"] = before
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    os.symlink(outside, tmp_path / "a.json")
    script.write_file(tmp_path, "a.json", b"new")
    assert outside.read_text() == "precious" and not (tmp_path / "a.json").is_symlink()
    assert (tmp_path / "a.json").read_bytes() == b"new"
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644

    def fails(path):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        script.write_file(tmp_path, "a.json", fails)
    assert (tmp_path / "a.json").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "outside.json"]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_out_folder_reached_through_a_link_is_refused(folder, tmp_path, framework):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    data = npy(tmp_path, images(8))
    for out in (tmp_path / "link", tmp_path / "link" / "run"):
        line = refused(folder, framework, "--data", data, "--out", out)
        assert "symbolic link" in line and f"--out {real}" in line, line
    assert list(real.iterdir()) == []


# ---------------------------------------------------------------- training data ----


def empty_npz(tmp_path):
    np.savez(tmp_path / "empty.npz")
    return tmp_path / "empty.npz", "holds no arrays"


def several_arrays(tmp_path):
    np.savez(tmp_path / "two.npz", train=images(8), labels=np.arange(8))
    return tmp_path / "two.npz", "holds 2 arrays (labels, train); choose one with --data"


def missing_name(tmp_path):
    np.savez(tmp_path / "two.npz", train=images(8), labels=np.arange(8))
    return f"{tmp_path / 'two.npz'}:test", "no array 'test'; it holds labels, train"


def strings(tmp_path):
    return npy(tmp_path, np.full((8, 16, 16, 1), "px")), "values of type <U2"


def objects(tmp_path):
    array = np.empty((8, 16, 16, 1), object)
    array[...] = 0.5
    np.savez(tmp_path / "objects.npz", images=array)
    return tmp_path / "objects.npz", "values of type object"


def complex_values(tmp_path):
    return npy(tmp_path, images(8, np.float32).astype(np.complex64)), "values of type complex64"


def huge_header(tmp_path):
    path = forged_npy(tmp_path / "huge.npy", (116_000_000, 16, 16, 1))
    return path, "(110.6 GiB), but the file holds only 0 bytes"


def more_than_memory(tmp_path):
    count = 2**33  # 8 TiB of float32 images, in a sparse file: their indices alone need 256 GiB
    path = forged_npy(tmp_path / "sparse.npy", (count, 16, 16, 1), size=count * 1024)
    return path, f"{count:,} images need about 256.0 GiB of memory for their indices, but only"


def no_images(tmp_path):
    return npy(tmp_path, images(8)[:0]), "holds 0 image(s); training needs at least 2"


def one_image(tmp_path):
    return npy(tmp_path, images(1)), "holds 1 image(s); training needs at least 2"


def floats_of_bytes(tmp_path):
    return npy(tmp_path, images(8).astype(np.float32)), "float images must lie in [0, 1]"


def wide_integers(tmp_path):
    return npy(tmp_path, images(8).astype(np.int64)), "int64 images; integer images must be"


def wrong_shape(tmp_path):
    return (
        npy(tmp_path, images(8, shape=(32, 32, 3))),
        "an array of shape (8, 32, 32, 3), but the model takes (N, 16, 16, 1) images",
    )


def text_named_png(tmp_path):
    folder = png_folder(tmp_path, [images(1)[0, ..., 0]])
    (folder / "notes.png").write_text("not a picture\n")
    return folder, "notes.png: not an image file Pillow can read"


def huge_png(tmp_path):
    folder = png_folder(tmp_path, [images(1)[0, ..., 0]])
    (folder / "poster.png").write_bytes(png_header(12_000, 12_000))
    return folder, "above the limit of 64,000,000 pixels per image"


def big_png(tmp_path):
    folder = png_folder(tmp_path, [images(1)[0, ..., 0]])
    (folder / "poster.png").write_bytes(png_header(9_000, 9_000))
    return folder, "poster.png: Image size (81000000 pixels), above the limit"


def mixed_sizes(tmp_path):
    folder = png_folder(tmp_path, [images(1)[0, ..., 0], images(1, shape=(16, 20, 1))[0, ..., 0]])
    return folder, "01.png: a 20x16 image (W x H), but the model takes 16x16 images"


def only_a_fifo(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    os.mkfifo(folder / "pipe.png")
    return folder, "holds 0 sample file(s) (skipping pipe.png: not a regular file)"


def no_validation(tmp_path):
    return npy(tmp_path, images(8)), "--val-fraction 0.0: must lie between 0 and 1"


TORCH_DATA = [
    empty_npz,
    several_arrays,
    missing_name,
    strings,
    objects,
    complex_values,
    huge_header,
    more_than_memory,
    no_images,
    one_image,
    floats_of_bytes,
    wide_integers,
    wrong_shape,
    text_named_png,
    huge_png,
    big_png,
    mixed_sizes,
    only_a_fifo,
    no_validation,
]


KERAS_DATA = [several_arrays, strings, one_image, text_named_png]


@pytest.fixture(scope="module")
def data_runs(folder, tmp_path_factory):
    """Every bad-data case, for torch and some for keras, run at once: {(framework, case):
    (process, expected message, case folder)}."""
    jobs, expected = {}, {}
    cases = [("torch", case) for case in TORCH_DATA] + [("keras", case) for case in KERAS_DATA]
    for framework, case in cases:
        base = tmp_path_factory.mktemp(case.__name__)
        data, message = case(base)
        more = ["--val-fraction", "0"] if case is no_validation else []
        args = (folder, framework, "--data", data, *more, "--out", base / "run")
        jobs[framework, case] = (args, {})
        expected[framework, case] = (message, base)
    return {key: (proc, *expected[key]) for key, proc in run_all(jobs).items()}


@pytest.mark.parametrize(
    ("framework", "case"),
    [("torch", case) for case in TORCH_DATA] + [("keras", case) for case in KERAS_DATA],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_bad_training_data_gets_one_line(data_runs, framework, case):
    proc, message, base = data_runs[framework, case]
    line = refusal(proc, framework)
    assert message in line, line
    assert str(base) in line or case is no_validation, line
    assert not (base / "run" / "metrics.json").exists()


def test_sixteen_bit_images_are_scaled_and_pillow_is_not_needed_for_arrays(folder, tmp_path):
    pixels = images(12, np.uint16)
    np.savez(tmp_path / "two.npz", train=pixels, labels=np.arange(12))
    out = tmp_path / "run"
    data = f"{tmp_path / 'two.npz'}:train"
    trains(folder, "torch", "--data", data, "--out", out, block=["PIL"])
    final = json.loads((out / "metrics.json").read_text())["final"]
    assert 0 < final["train_loss"] < 1 and 0 < final["val_loss"] < 1, final


def test_a_folder_of_sixteen_bit_pngs_trains_and_a_fifo_is_skipped(folder, tmp_path):
    data = png_folder(tmp_path, list(images(6, np.uint16)[..., 0]))
    os.mkfifo(data / "pipe.png")
    out = tmp_path / "run"
    proc = trains(folder, "torch", "--data", data, "--out", out)
    assert "skipping pipe.png: not a regular file" in proc.stderr
    final = json.loads((out / "metrics.json").read_text())["final"]
    assert 0 < final["train_loss"] < 1, final


def test_keras_trains_on_uint16_arrays_at_unit_scale(folder, tmp_path):
    out = tmp_path / "run"
    trains(folder, "keras", "--data", npy(tmp_path, images(12, np.uint16)), "--out", out)
    final = json.loads((out / "metrics.json").read_text())["final"]
    assert 0 < final["train_loss"] < 1, final


# ---------------------------------------------------------------- missing modules ----


@pytest.mark.parametrize(
    ("framework", "module", "data"),
    [
        ("torch", "numpy", "demo"),
        ("torch", "safetensors", "demo"),
        ("torch", "PIL", "folder"),
        ("keras", "h5py", "demo"),
        ("keras", "PIL", "folder"),
    ],
)
def test_a_missing_module_is_named_with_its_extra(folder, tmp_path, framework, module, data):
    if data == "folder":  # image files: Pillow is needed for their headers
        data = tmp_path / "pngs"
        data.mkdir()
        for i in range(2):
            (data / f"{i}.png").write_bytes(png_header(16, 16))
    line = refused(folder, framework, "--data", data, "--out", tmp_path / "run", block=[module])
    assert repr(module) in line and f"pip install 'specgen[{framework}]'" in line, line


# ---------------------------------------------------------------- hostile checkpoints ----


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """A torch run folder after one epoch, to be copied and damaged."""
    base = tmp_path_factory.mktemp("trained")
    out = base / "run"
    trains(folder, "torch", "--data", npy(base, images(12)), "--out", out)
    return out


def set_key(key, value):
    def change(meta):
        meta[key] = value

    return change


def set_group(key, value):
    def change(meta):
        meta["param_groups"][0][key] = value

    return change


def set_record(key, value):
    def change(meta):
        meta["history"][0][key] = value

    return change


HOSTILE = {
    "epoch as text": (set_key("epoch", "1"), "'epoch' must be a whole number"),
    "negative epoch": (set_key("epoch", -1), "'epoch' must be a whole number"),
    "epoch as flag": (set_key("epoch", True), "'epoch' must be a whole number"),
    "huge step": (set_key("step", 10**400), "'step' must be a whole number"),
    "history too short": (set_key("history", []), "'history' must be a list of 1"),
    "record of text": (set_record("val_loss", "low"), "history[0] must hold epoch 1"),
    "state of no parameter": (
        set_key("optimizer_scalars", {"999.step": 1}),
        "optimizer state '999.step' fits no parameter",
    ),
    "state of a name": (
        set_key("optimizer_scalars", {"x.step": 1}),
        "optimizer state 'x.step' fits no parameter",
    ),
    "state of text": (
        set_key("optimizer_scalars", {"0.extra": "x"}),
        "optimizer state '0.extra' = 'x' does not fit",
    ),
    "no groups": (set_key("param_groups", []), "'param_groups' must be a list of 1"),
    "learning rate as text": (set_group("lr", "fast"), "has 'lr': 'fast'"),
    "parameters of its own": (set_group("params", [0, 1, 2]), "has 'params': [0, 1, 2]"),
    "one beta": (set_group("betas", [0.9]), "has 'betas': [0.9]"),
    "unknown setting": (set_group("exec", "rm -rf /"), "has 'exec'"),
}


DAMAGED = {
    "not json": ("checkpoint.json", b"{not json", "checkpoint.json: not valid JSON"),
    "deep json": ("checkpoint.json", b"[" * 100_000, "checkpoint.json: not valid JSON"),
    "a list": ("checkpoint.json", b"[1, 2]", "checkpoint.json: not a JSON object"),
    "zeros": ("model.safetensors", b"\x00" * 64, "model.safetensors: not a safetensors file"),
    "linked json": ("checkpoint.json", None, "checkpoint.json: a symbolic link"),
    "linked model": ("model.safetensors", None, "model.safetensors: a symbolic link"),
    "linked state": ("optimizer.safetensors", None, "optimizer.safetensors: a symbolic link"),
}


def snapshot(out) -> dict:
    """{path in the run folder: content} of every file in it, its tensorboard/ included."""
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if not p.is_dir()}


@pytest.fixture(scope="module")
def checkpoint_runs(folder, trained, tmp_path_factory):
    """--resume from each damaged copy of ``trained``, all at once: {name: (process, expected
    message, the run folder's files before)}."""
    jobs, expected = {}, {}
    for name in [*HOSTILE, *DAMAGED]:
        base = tmp_path_factory.mktemp("hostile")
        out = base / "run"
        shutil.copytree(trained, out)
        if name in HOSTILE:
            change, message = HOSTILE[name]
            meta = json.loads((out / "checkpoint.json").read_text())
            change(meta)
            (out / "checkpoint.json").write_text(json.dumps(meta))
        else:
            file, content, message = DAMAGED[name]
            if content is None:  # a link to a copy of the file, outside the run folder
                shutil.copy(out / file, base / file)
                (out / file).unlink()
                os.symlink(base / file, out / file)
            else:
                (out / file).write_bytes(content)
        files = snapshot(out)
        data = npy(base, images(8))
        args = (folder, "torch", "--epochs", "2", "--resume", "--out", out, "--data", data)
        jobs[name] = (args, {})
        expected[name] = (message, out, files)
    return {name: (proc, *expected[name]) for name, proc in run_all(jobs).items()}


@pytest.mark.parametrize("name", [*HOSTILE, *DAMAGED])
def test_a_hostile_or_damaged_checkpoint_is_refused_and_left_as_it_is(checkpoint_runs, name):
    proc, message, out, files = checkpoint_runs[name]
    line = refusal(proc, "torch")
    assert message in line, line
    assert snapshot(out) == files


def test_a_keras_checkpoint_with_a_linked_weights_file_is_refused(folder, tmp_path):
    out = tmp_path / "run"
    data = npy(tmp_path, images(12))
    trains(folder, "keras", "--data", data, "--out", out)
    (tmp_path / "outside.weights.h5").write_bytes((out / "model.weights.h5").read_bytes())
    (out / "model.weights.h5").unlink()
    os.symlink(tmp_path / "outside.weights.h5", out / "model.weights.h5")
    line = refused(folder, "keras", "--epochs", "2", "--resume", "--out", out, "--data", data)
    assert "model.weights.h5: a symbolic link" in line, line
    (out / "model.weights.h5").unlink()
    (out / "model.weights.h5").write_bytes(b"\x00" * 64)
    line = refused(folder, "keras", "--epochs", "2", "--resume", "--out", out, "--data", data)
    assert "model.weights.h5: does not fit this model (not an HDF5 file)" in line, line
