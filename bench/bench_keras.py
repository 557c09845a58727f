"""Generated Keras ResNetAE vs a hand-written one: time and memory, as ratios from one run.

    python bench/bench_keras.py                  # CPU, both settings
    python bench/bench_keras.py --jit-compile    # XLA, e.g. on a GPU

Both models are built with identical architectures (parameter counts are checked). One training
step (forward + gradients, compiled with ``tf.function``) is timed for each model in alternation;
the ratio is generated / hand-written of the median times. Memory is the peak resident-set growth
of one eager training step, each model in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_common import SETTINGS, reset_peak, status_kb  # noqa: E402
from resnet_ae_keras_reference import ResNetAE  # noqa: E402

import specgen.keras as sgk  # noqa: E402


def build(which: str, setting: str):
    ov = SETTINGS[setting]["overrides"]
    shape = tuple(ov.get("input_shape", (256, 256, 3)))
    if which == "generated":
        return sgk.build(ROOT / "specs" / "resnet_ae.yaml", **ov)
    model = ResNetAE(shape, ov.get("n_residual_blocks", 8), ov.get("n_levels", 4))
    model(np.zeros((1, *shape), np.float32))
    return model


def make_step(model, jit: bool):
    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x, training=True))
        return tape.gradient(loss, model.trainable_weights)

    return step


def batch_for(setting: str):
    shape = SETTINGS[setting]["overrides"].get("input_shape", [256, 256, 3])
    return tf.random.uniform((SETTINGS[setting]["batch"], *shape), seed=0)


def peak_growth(which: str, setting: str) -> int:
    """Peak resident-set growth (bytes) of one eager training step, in this process.

    Eager, so that the step's tensors are allocated as it runs (a compiled step's memory is
    already held by the allocator after its first run, which hides the difference).
    """
    model = build(which, setting)
    x = batch_for(setting)
    base = status_kb("VmRSS")
    reset_peak()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x, training=True))
    tape.gradient(loss, model.trainable_weights)
    return (status_kb("VmHWM") - base) * 1024


def rss_child(which: str, setting: str) -> int:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_keras as b; "
        f"print(b.peak_growth({which!r}, {setting!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def run_setting(setting: str, args) -> dict:
    keras.utils.set_random_seed(0)
    models = {w: build(w, setting) for w in ("generated", "hand-written")}
    counts = {w: int(sum(np.prod(v.shape) for v in m.weights)) for w, m in models.items()}
    assert counts["generated"] == counts["hand-written"], counts
    steps = {w: make_step(m, args.jit_compile) for w, m in models.items()}
    x = batch_for(setting)
    for s in steps.values():
        for _ in range(args.warmup):
            s(x)
    times: dict[str, list[float]] = {w: [] for w in steps}
    for _ in range(args.iters):
        for w, s in steps.items():
            t0 = time.perf_counter()
            grads = s(x)
            _ = float(grads[0][(0,) * len(grads[0].shape)])  # wait for the step to finish
            times[w].append(time.perf_counter() - t0)
    med = {w: statistics.median(t) for w, t in times.items()}
    result = {
        "setting": setting,
        "batch": SETTINGS[setting]["batch"],
        "parameters": counts,
        "median_seconds": med,
        "time_ratio": med["generated"] / med["hand-written"],
    }
    if not args.jit_compile:
        peaks = {w: rss_child(w, setting) for w in models}
        result["peak_bytes"] = peaks
        result["peak_ratio"] = peaks["generated"] / max(peaks["hand-written"], 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=[*SETTINGS, "all"], default="all")
    ap.add_argument("--jit-compile", action="store_true")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    settings = list(SETTINGS) if args.setting == "all" else [args.setting]
    report = {
        "machine": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
        },
        "options": {"jit_compile": args.jit_compile, "iters": args.iters},
        "results": [run_setting(s, args) for s in settings],
    }
    print(json.dumps(report, indent=2))
    for r in report["results"]:
        line = (
            f"{r['setting']}: time ratio {r['time_ratio']:.3f} (generated "
            f"{r['median_seconds']['generated']:.4f}s, hand-written "
            f"{r['median_seconds']['hand-written']:.4f}s)"
        )
        if "peak_ratio" in r:
            line += f", peak memory ratio {r['peak_ratio']:.3f}"
        print(line, file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
