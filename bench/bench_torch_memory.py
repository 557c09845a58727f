"""Memory of one training step: the generated PyTorch ResNetAE against the original architecture.

    python bench/bench_torch_memory.py                       # 256x256, batch 2, one thread
    python bench/bench_torch_memory.py --setting small --pairs 3 --json out.json

Two measurements, as ratios generated / original:

- the bytes autograd saves for the backward pass of one forward + backward (every saved
  tensor's storage counted once, through ``torch.autograd.graph.saved_tensors_hooks``): exact
  and deterministic, so measured once per model in this process;
- the peak resident-set growth of one training step (forward, backward, Adam step) after the
  model, optimizer and batch are built, each in a fresh process; the two models' processes run
  alternately, in pairs whose order alternates too, so that machine noise hits both alike, and
  the ratio is of the medians.

The original is bench/resnet_ae_torch_reference.py with its LeakyReLUs in place, as the
original ResNetAE code builds them. For reference the saved bytes are also given for the
generated model with every activation out of place (``render_torch(..., inplace=False)``) and
for the original with out-of-place LeakyReLUs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_common import SETTINGS, reset_peak, status_kb  # noqa: E402
from resnet_ae_torch_reference import ResNetAE  # noqa: E402

from specgen.api import build_graph  # noqa: E402
from specgen.codegen.torch_target import render_torch  # noqa: E402

SPEC = ROOT / "specs" / "resnet_ae.yaml"
#: The models measured: the generated one, the original, and the two out-of-place variants.
MODELS = ("generated", "original", "generated-out-of-place", "original-out-of-place")


def build(which: str, setting: str) -> nn.Module:
    """One of :data:`MODELS` at ``setting`` (bench_common.SETTINGS), in training mode."""
    overrides = SETTINGS[setting]["overrides"]
    if which.startswith("generated"):
        graph = build_graph(SPEC, overrides)
        inplace = which == "generated"
        text = render_torch(graph, "specs/resnet_ae.yaml", "# benchmark", inplace=inplace)
        module = types.ModuleType(f"bench_{which.replace('-', '_')}")
        exec(compile(text, f"<{which} torch_model.py>", "exec"), module.__dict__)
        return module.build_model(channels_last=False, compile=False).train()
    shape = tuple(overrides.get("input_shape", (256, 256, 3)))
    model = ResNetAE(shape, overrides.get("n_residual_blocks", 8), overrides.get("n_levels", 4))
    for m in model.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = which == "original"
    return model.train()


def batch_for(setting: str) -> torch.Tensor:
    h, w, c = SETTINGS[setting]["overrides"].get("input_shape", [256, 256, 3])
    generator = torch.Generator().manual_seed(0)
    return torch.rand(SETTINGS[setting]["batch"], c, h, w, generator=generator)


def saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for one forward + backward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).mean().backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def step_peak(which: str, setting: str, threads: int) -> int:
    """Peak resident-set growth (bytes) of one training step, measured in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(which, setting)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = batch_for(setting)
    base = status_kb("VmRSS")
    reset_peak()
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.mse_loss(model(x), x)
    loss.backward()
    optimizer.step()
    return (status_kb("VmHWM") - base) * 1024


def step_peak_child(which: str, setting: str, threads: int) -> int:
    """:func:`step_peak` in a fresh process."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
        "import bench_torch_memory as b; "
        f"print(b.step_peak({which!r}, {setting!r}, {threads}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def run(setting: str, pairs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    x = batch_for(setting)
    saved = {}
    counts = {}
    for which in MODELS:
        torch.manual_seed(0)
        model = build(which, setting)
        counts[which] = sum(p.numel() for p in model.parameters())
        saved[which] = saved_bytes(model, x)
        del model
    assert len(set(counts.values())) == 1, counts
    peaks: dict[str, list[int]] = {"generated": [], "original": []}
    for i in range(pairs):
        order = ("generated", "original") if i % 2 == 0 else ("original", "generated")
        for which in order:
            peaks[which].append(step_peak_child(which, setting, threads))
    median = {w: statistics.median(v) for w, v in peaks.items()}
    return {
        "setting": setting,
        "batch": SETTINGS[setting]["batch"],
        "input_shape": SETTINGS[setting]["overrides"].get("input_shape", [256, 256, 3]),
        "parameters": counts["generated"],
        "saved_bytes": saved,
        "saved_bytes_ratio": saved["generated"] / saved["original"],
        "step_peak_rss_bytes": peaks,
        "step_peak_rss_median": median,
        "step_peak_rss_ratio": median["generated"] / median["original"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=list(SETTINGS), default="default")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved pairs of processes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    result = run(args.setting, args.pairs, args.threads)
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
        },
        "pairs": args.pairs,
        "result": result,
    }
    print(json.dumps(report, indent=2))
    mb = {w: b / 1e6 for w, b in result["saved_bytes"].items()}
    rss = {w: b / 1e6 for w, b in result["step_peak_rss_median"].items()}
    print(
        f"{args.setting}: saved for backward {mb['generated']:.1f} MB generated vs "
        f"{mb['original']:.1f} MB original, ratio {result['saved_bytes_ratio']:.3f} "
        f"(out of place: {mb['generated-out-of-place']:.1f} vs "
        f"{mb['original-out-of-place']:.1f} MB); step peak RSS growth {rss['generated']:.1f} vs "
        f"{rss['original']:.1f} MB, ratio {result['step_peak_rss_ratio']:.3f}",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
