"""Each generated training script against a minimal training loop over the same model, data
and optimizer, for PyTorch (train_torch.py) and Keras (train_keras.py).

    python bench/bench_train.py --pairs 5 --json bench/results-train-cpu.json

The model is specs/conv_autoencoder.yaml (its defaults: 32x32x3 images, levels of 64, 32 and
32 filters, batch 32, Adam at 1e-3, mean squared error), the data a .npy file of random uint8
images. Every run is its own process with one compute thread, and trains 3 epochs; its
throughput is that of epochs 2 and 3 (the first pays for start-up and tracing): training
images over the seconds of the epoch, validation included. Runs alternate script, minimal,
script, minimal... (one pair per framework and setting in turn), and the ratio is minimal /
script of the median throughputs: above 1, the script is slower.

The minimal loops are what one writes by hand: the whole array in memory as float32, a new
random order each epoch, Adam with a constant learning rate and the mean squared error, the
mean loss of the validation images after each epoch; no checkpoints, logs or previews. The
PyTorch one slices batches out of one tensor; the Keras one is model.fit on the arrays. The
scripts run as a user runs them: the data memory-mapped from the file and read a batch at a
time, a progress line every 10 steps, metrics, a preview and a checkpoint after each epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCHS, BATCH, LR = 3, 32, 1e-3
#: Samples in the data file: 10% (384) validate, and the 3,456 that train are 108 batches.
COUNT = 3840

MINIMAL_TORCH = """
import json, sys, time
import numpy as np, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from torch_model import build_model

torch.manual_seed(0)
data = torch.from_numpy(np.load(sys.argv[2])).float().div(255).movedim(-1, 1).contiguous()
epochs, batch = int(sys.argv[3]), int(sys.argv[4])
order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
n_val = round(len(data) * 0.1)
train, val = data[order[n_val:]], data[order[:n_val]]
model = build_model()
optimizer = torch.optim.Adam(model.parameters(), lr=float(sys.argv[5]))
seconds = []
for epoch in range(epochs):
    started = time.perf_counter()
    model.train()
    for idx in torch.randperm(len(train)).split(batch):
        x = train[idx]
        loss = F.mse_loss(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = sum(F.mse_loss(model(x), x, reduction="sum").item() for x in val.split(batch))
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds, "trained": len(train)}))
"""

MINIMAL_KERAS = """
import json, sys, time
import keras, numpy as np
sys.path.insert(0, sys.argv[1])
from keras_model import build_model

keras.utils.set_random_seed(0)
data = np.load(sys.argv[2]).astype("float32") / 255.0
epochs, batch = int(sys.argv[3]), int(sys.argv[4])
order = np.random.default_rng(0).permutation(len(data))
n_val = round(len(data) * 0.1)
train, val = data[order[n_val:]], data[order[:n_val]]
model = build_model()
model.compile(optimizer=keras.optimizers.Adam(float(sys.argv[5])), loss="mse")


class Clock(keras.callbacks.Callback):
    seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


model.fit(train, train, batch_size=batch, epochs=epochs, shuffle=True, verbose=0,
          validation_data=(val, val), callbacks=[Clock()])
print(json.dumps({"seconds": Clock.seconds, "trained": len(train)}))
"""


def env() -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "KERAS_BACKEND": "tensorflow",
    }


def throughput(seconds: list[float], trained: int) -> float:
    """Training images per second over the epochs after the first."""
    return trained * (len(seconds) - 1) / sum(seconds[1:])


def script_run(folder: Path, framework: str, data: Path, out: Path, extra: list[str]):
    args = ["--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", str(LR)]
    args += ["--optimizer", "adam", "--schedule", "constant", "--loss", "mse"]
    args += ["--data", str(data), "--out", str(out), *extra]
    subprocess.run(
        [sys.executable, str(folder / f"train_{framework}.py"), *args],
        check=True,
        capture_output=True,
        env=env(),
        cwd=folder,
    )
    history = json.loads((out / "metrics.json").read_text())["history"]
    trained = COUNT - round(COUNT * 0.1)
    return throughput([r["seconds"] for r in history], trained)


def minimal_run(folder: Path, framework: str, data: Path) -> float:
    code = MINIMAL_TORCH if framework == "torch" else MINIMAL_KERAS
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(data), str(EPOCHS), str(BATCH), str(LR)],
        check=True,
        capture_output=True,
        text=True,
        env=env(),
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return throughput(result["seconds"], result["trained"])


#: (framework, the script's own options, what the row is called)
SETTINGS = [
    ("torch", [], "train_torch.py (defaults: a thread reads ahead)"),
    ("torch", ["--workers", "2"], "train_torch.py --workers 2 (loader processes)"),
    ("keras", [], "train_keras.py, TensorFlow backend (defaults: tf.data, 2 threads)"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--only", choices=("torch", "keras"), help="measure one framework's script")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import numpy as np

    settings = [s for s in SETTINGS if args.only in (None, s[0])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = ROOT / "specs" / "conv_autoencoder.yaml"
        cmd = [sys.executable, "-m", "specgen.cli", "generate", str(spec), "-o", str(tmp)]
        cmd += ["--target", "torch", "--target", "keras", "--target", "train"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        folder = tmp / "conv_autoencoder"
        data = tmp / "data.npy"
        rng = np.random.default_rng(0)
        np.save(data, rng.integers(0, 256, (COUNT, 32, 32, 3), dtype=np.uint8))
        runs = {label: {"script": [], "minimal": []} for _, _, label in settings}
        for i in range(args.pairs):
            for framework, extra, label in settings:
                out = tmp / f"run-{framework}-{len(extra)}-{i}"
                script = script_run(folder, framework, data, out, extra)
                minimal = minimal_run(folder, framework, data)
                runs[label]["script"].append(script)
                runs[label]["minimal"].append(minimal)
                print(
                    f"pair {i + 1}, {label}: script {script:.0f} img/s, minimal "
                    f"{minimal:.0f} img/s",
                    flush=True,
                )
    results = []
    for _, _, label in settings:
        script = statistics.median(runs[label]["script"])
        minimal = statistics.median(runs[label]["minimal"])
        results.append(
            {
                "setting": label,
                "script_images_per_s": runs[label]["script"],
                "minimal_images_per_s": runs[label]["minimal"],
                "script_median": script,
                "minimal_median": minimal,
                "ratio": minimal / script,
            }
        )
        print(f"{label}: minimal / script = {minimal / script:.3f}")
    if args.json:
        report = {"pairs": args.pairs, "epochs": EPOCHS, "batch": BATCH, "count": COUNT}
        args.json.write_text(json.dumps({**report, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
