"""train_keras.py against a minimal model.fit loop over the same model, data and optimizer.

    python bench/bench_train_keras.py --pairs 3

Both run one thread (TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS = 1) in their own
process, in interleaved pairs; each reports the images per second of its second epoch (the
first pays for tracing). The minimal loop is what one writes by hand: Adam with a constant
learning rate, model.fit over the training array in batches, the mean squared error, no
callbacks, validation on the held-out array. The ratio is minimal / script of the median
throughputs (above 1: the script is slower).
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
SETTINGS = ["--set", "layers=[16,32]", "--set", "input_shape=[32,32,1]"]
COUNT, BATCH = 2048, 32

MINIMAL = """
import json, sys, time
import keras, numpy as np
sys.path.insert(0, sys.argv[1])
from keras_model import build_model

keras.utils.set_random_seed(0)
data = np.load(sys.argv[2]).astype("float32") / 255.0
batch = int(sys.argv[3])
order = np.random.default_rng(0).permutation(len(data))
n_val = round(len(data) * 0.1)
train, val = data[order[n_val:]], data[order[:n_val]]
model = build_model()
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)


class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started


clock = Clock()
for epoch in range(2):
    model.fit(train, train, batch_size=batch, epochs=1, shuffle=True, verbose=0,
              validation_data=(val, val), callbacks=[clock])
print(json.dumps({"images_per_s": len(train) // batch * batch / clock.seconds}))
"""


def env() -> dict:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "KERAS_BACKEND": "tensorflow",
    }


def script_run(folder: Path, data: Path, out: Path) -> float:
    args = ["--epochs", "2", "--batch-size", str(BATCH), "--lr", "1e-3", "--optimizer", "adam"]
    args += ["--schedule", "constant", "--loss", "mse", "--data", str(data), "--out", str(out)]
    args += ["--log-every", "1000000"]
    subprocess.run(
        [sys.executable, str(folder / "train_keras.py"), *args],
        check=True,
        capture_output=True,
        env=env(),
        cwd=folder,
    )
    record = json.loads((out / "metrics.json").read_text())["history"][1]
    train = COUNT - round(COUNT * 0.1)
    return train // BATCH * BATCH / record["seconds"]


def minimal_run(folder: Path, data: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", MINIMAL, str(folder), str(data), str(BATCH)],
        check=True,
        capture_output=True,
        text=True,
        env=env(),
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = ROOT / "specs" / "conv_autoencoder.yaml"
        cmd = [sys.executable, "-m", "specgen.cli", "generate", str(spec), *SETTINGS]
        cmd += ["-o", str(tmp), "--target", "keras", "--target", "train"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        folder = tmp / "conv_autoencoder"
        data = tmp / "data.npy"
        rng = np.random.default_rng(0)
        np.save(data, rng.integers(0, 256, (COUNT, 32, 32, 1), dtype=np.uint8))
        script, minimal = [], []
        for i in range(args.pairs):
            script.append(script_run(folder, data, tmp / f"run{i}"))
            minimal.append(minimal_run(folder, data))
            print(f"pair {i + 1}: script {script[-1]:.0f} img/s, minimal {minimal[-1]:.0f}")
    ratio = statistics.median(minimal) / statistics.median(script)
    result = {"script": script, "minimal": minimal, "ratio": ratio}
    print(f"minimal / script = {ratio:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
