"""Generated PyTorch ResNetAE vs a hand-written one: time and memory, as ratios from one run.

    python bench/bench_torch.py                      # CPU, both settings
    python bench/bench_torch.py --device cuda --channels-last --bf16 --compile   # GPU variant

For each setting both models are built with identical architectures (parameter counts are
checked), warmed up, then timed alternately (forward + backward of one batch) so that machine
noise hits both alike; the ratio is generated / hand-written of the median times. Memory is the
bytes autograd saves for the backward pass (exact, deterministic) and, on CUDA, the peak
allocated memory; on the CPU the peak resident-set growth of a fresh process per model.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_common import SETTINGS, reset_peak, status_kb  # noqa: E402
from resnet_ae_torch_reference import ResNetAE  # noqa: E402

import specgen.torch as sgt  # noqa: E402


def build(which: str, setting: str):
    ov = SETTINGS[setting]["overrides"]
    if which == "generated":
        return sgt.build(ROOT / "specs" / "resnet_ae.yaml", **ov)
    shape = tuple(ov.get("input_shape", (256, 256, 3)))
    return ResNetAE(shape, ov.get("n_residual_blocks", 8), ov.get("n_levels", 4))


def batch_for(setting: str, device, channels_last: bool):
    shape = SETTINGS[setting]["overrides"].get("input_shape", [256, 256, 3])
    h, w, c = shape
    x = torch.rand(SETTINGS[setting]["batch"], c, h, w, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def step(model, x, dtype):
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        out = model(x)
    out.float().mean().backward()


def saved_bytes(model, x, dtype) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(model, x, dtype)
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def prepare(model, device, args):
    model = model.to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    return model


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_growth(which: str, setting: str) -> int:
    """Peak resident-set growth (bytes) of one forward+backward, measured in this process."""
    torch.manual_seed(0)
    model = build(which, setting).train()
    x = batch_for(setting, torch.device("cpu"), False)
    base = status_kb("VmRSS")
    reset_peak()
    step(model, x, None)
    return (status_kb("VmHWM") - base) * 1024


def rss_child(which: str, setting: str) -> int:
    """:func:`peak_growth` in a fresh process, so that one model's memory does not hide the
    other's."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_torch as b; "
        f"print(b.peak_growth({which!r}, {setting!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def run_setting(setting: str, args) -> dict:
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    torch.manual_seed(0)
    models = {w: build(w, setting) for w in ("generated", "hand-written")}
    counts = {w: sum(p.numel() for p in m.parameters()) for w, m in models.items()}
    assert counts["generated"] == counts["hand-written"], counts
    models = {w: prepare(m, device, args) for w, m in models.items()}
    x = batch_for(setting, device, args.channels_last)
    result = {"setting": setting, "batch": SETTINGS[setting]["batch"], "parameters": counts}
    result["saved_bytes"] = {w: saved_bytes(m, x, dtype) for w, m in models.items()}
    for m in models.values():
        for _ in range(args.warmup):
            step(m, x, dtype)
            m.zero_grad(set_to_none=True)
    times: dict[str, list[float]] = {w: [] for w in models}
    for _ in range(args.iters):
        for w, m in models.items():
            sync(device)
            t0 = time.perf_counter()
            step(m, x, dtype)
            sync(device)
            times[w].append(time.perf_counter() - t0)
            m.zero_grad(set_to_none=True)
    med = {w: statistics.median(t) for w, t in times.items()}
    result["median_seconds"] = med
    result["time_ratio"] = med["generated"] / med["hand-written"]
    result["saved_bytes_ratio"] = (
        result["saved_bytes"]["generated"] / result["saved_bytes"]["hand-written"]
    )
    if device.type == "cuda":
        peaks = {}
        for w, m in models.items():
            torch.cuda.reset_peak_memory_stats()
            step(m, x, dtype)
            m.zero_grad(set_to_none=True)
            peaks[w] = torch.cuda.max_memory_allocated()
        result["peak_bytes"] = peaks
    elif not args.compile:
        result["peak_bytes"] = {w: rss_child(w, setting) for w in models}
    if "peak_bytes" in result:
        p = result["peak_bytes"]
        result["peak_ratio"] = p["generated"] / max(p["hand-written"], 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=[*SETTINGS, "all"], default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--bf16", dest="precision", action="store_const", const="bf16")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    settings = list(SETTINGS) if args.setting == "all" else [args.setting]
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": args.device,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "options": {
            "channels_last": args.channels_last,
            "precision": args.precision,
            "compile": args.compile,
            "iters": args.iters,
        },
        "results": [run_setting(s, args) for s in settings],
    }
    print(json.dumps(report, indent=2))
    for r in report["results"]:
        line = (
            f"{r['setting']}: time ratio {r['time_ratio']:.3f} "
            f"(generated {r['median_seconds']['generated']:.4f}s, hand-written "
            f"{r['median_seconds']['hand-written']:.4f}s), saved-for-backward ratio "
            f"{r['saved_bytes_ratio']:.3f}"
        )
        if "peak_ratio" in r:
            line += f", peak memory ratio {r['peak_ratio']:.3f}"
        print(line, file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
