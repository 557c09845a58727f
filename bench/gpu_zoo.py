"""The zoo on a GPU: specgen's generated models against the libraries' own, at full size.

For each case, the library's model (diffusers, MONAI) is built at random initialisation, its
weights are copied into specgen's generated PyTorch model through the same name maps the tests
use, and both run on the device in eval mode:

- ``max_diff``: the largest |difference| of the outputs in float32 with TF32 off;
- ``time_ratio_fp32`` / ``time_ratio_bf16``: specgen's forward time over the library's, the median
  of interleaved pairs (bf16 under autocast), so that both see the same clocks and caches;
- with Keras installed (any backend; JAX is the one that reaches a GPU without TensorFlow), the
  generated Keras model gets the same weights through ``specgen.convert`` and its output is
  compared with the PyTorch one (``keras_max_diff``).

Run from the repository root: ``python bench/gpu_zoo.py --json results.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _load(path: Path, name: str):
    """A test module by path (it holds the name maps and the library arguments)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(size: int, volume: int):
    """(label, spec file, overrides, library model factory, weight copier, batch)."""
    import diffusers
    import monai.networks.nets as monai_nets

    dz = _load(ROOT / "tests" / "test_zoo_diffusers.py", "zoo_diffusers")
    mz = _load(ROOT / "tests" / "test_zoo.py", "zoo_monai")
    zoo = ROOT / "specs" / "zoo"
    image = {"input_shape": [size, size, 3]}
    unet3d = {"input_shape": [volume, volume, volume, 1]}
    vae3d = {**unet3d, "latent_size": 16, "strides": [2, 2, 2]}
    return [
        (
            f"SD VAE (AutoencoderKL) {size}x{size}",
            zoo / dz.KL_SPEC,
            image,
            lambda: diffusers.AutoencoderKL(**dz.diffusers_arguments(dz.SD_VAE, image)),
            dz.copy_weights,
            4,
        ),
        (
            f"VQ-f4 (VQModel) {size}x{size}",
            zoo / dz.VQ_SPEC,
            image,
            lambda: spread_codebook(diffusers.VQModel(**dz.diffusers_arguments(dz.VQ_F4, image))),
            dz.copy_weights,
            4,
        ),
        (
            f"MONAI UNet 3-D {volume}^3",
            zoo / "monai_unet.yaml",
            unet3d,
            lambda: monai_nets.UNet(**mz.monai_arguments(mz.UNET_DEFAULTS, unet3d)),
            mz.copy_weights,
            2,
        ),
        (
            f"MONAI VarAutoEncoder 3-D {volume}^3",
            zoo / "monai_varautoencoder.yaml",
            vae3d,
            lambda: monai_nets.VarAutoEncoder(**mz.vae_arguments(vae3d)),
            lambda theirs, ours: mz.copy_weights(
                theirs, ours, reorder=mz.bottleneck_before_decoder
            ),
            2,
        ),
    ]


def spread_codebook(model):
    """``model`` with its codebook drawn like the latents (as the tests do): diffusers starts it
    within +-1/n of 0, where which code is nearest is decided by rounding."""
    import torch

    with torch.no_grad():
        model.quantize.embedding.weight.normal_(generator=torch.Generator().manual_seed(2))
    return model


def first(output):
    """The reconstruction of either model's output."""
    if hasattr(output, "sample"):
        return output.sample
    if isinstance(output, (tuple, list)):
        for item in output:
            if getattr(item, "ndim", 0) >= 3:
                return item
    return output


def timed_pairs(run_a, run_b, repeats: int, sync) -> float:
    """Median of time(a) / time(b) over interleaved pairs, after a warm-up of each."""
    for run in (run_a, run_b, run_a, run_b):
        run()
    sync()
    ratios = []
    for i in range(repeats):
        order = (run_a, run_b) if i % 2 == 0 else (run_b, run_a)
        times = {}
        for run in order:
            sync()
            start = time.perf_counter()
            run()
            sync()
            times[run] = time.perf_counter() - start
        ratios.append(times[run_a] / times[run_b])
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--volume", type=int, default=64, help="3-D volume side (default 64)")
    parser.add_argument("--repeats", type=int, default=10, help="timed pairs (default 10)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras comparison")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    results = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "cases": [],
    }
    for case in cases(args.size, args.volume):
        row = measure(case, device, args.repeats, sync, keras=not args.no_keras)
        results["cases"].append(row)
        print(json.dumps(row), flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def measure(case, device: str, repeats: int, sync, keras: bool) -> dict:
    """One case's row: counts, output difference, time ratios and the Keras comparison."""
    import torch
    from specgen.api import build_graph
    from specgen.codegen.compiled import compile_module

    label, spec, overrides, library, copy, batch = case
    graph = build_graph(spec, overrides)
    torch.manual_seed(0)
    ours = compile_module(graph, "torch").build_model()
    theirs = library()
    copy(theirs, ours)
    ours, theirs = ours.to(device).eval(), theirs.to(device).eval()
    *spatial, channels = graph.input_shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, channels, *spatial, generator=gen).to(device)
    with torch.no_grad():
        mine, want = first(ours(x)), first(theirs(x))
        row = {
            "case": label,
            "parameters": sum(p.numel() for p in ours.parameters()),
            "batch": batch,
            "max_diff": (mine - want).abs().max().item(),
            "max_abs": want.abs().max().item(),
        }
        row["time_ratio_fp32"] = timed_pairs(lambda: ours(x), lambda: theirs(x), repeats, sync)
        with torch.autocast(device, dtype=torch.bfloat16):
            row["time_ratio_bf16"] = timed_pairs(lambda: ours(x), lambda: theirs(x), repeats, sync)
    if keras:
        try:
            row.update(keras_check(graph, ours, mine, x))
        except Exception as exc:  # reported in the row; the other cases still run
            row["keras_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return row


def keras_check(graph, tmodel, reference, x) -> dict:
    """The generated Keras model with the PyTorch model's weights, on the same input."""
    import numpy as np

    import keras
    from specgen.codegen.compiled import compile_module
    from specgen.convert import torch_state_to_keras

    if keras.backend.backend() == "jax":
        import jax

        # JAX's default float32 matmul and convolution on a GPU is TF32; compare in float32
        jax.config.update("jax_default_matmul_precision", "highest")
    kmodel = compile_module(graph, "keras").build_model()
    torch_state_to_keras(graph, tmodel.state_dict(), kmodel)
    spatial = x.ndim - 2
    xk = np.moveaxis(x.cpu().numpy(), 1, -1)
    out = first(kmodel.predict_on_batch(xk))
    out = np.moveaxis(np.asarray(out), -1, 1)
    want = reference.cpu().numpy()
    start = time.perf_counter()
    for _ in range(3):
        kmodel.predict_on_batch(xk)
    seconds = (time.perf_counter() - start) / 3
    return {
        "keras_backend": keras.backend.backend(),
        "keras_device": _keras_device(keras.backend.backend()),
        "keras_max_diff": float(np.abs(out - want).max()),
        "keras_forward_s": seconds,
        "spatial_rank": spatial,
    }


def _keras_device(backend: str) -> str:
    """Where the Keras backend runs its computations."""
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    if backend == "torch":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


if __name__ == "__main__":
    raise SystemExit(main())
