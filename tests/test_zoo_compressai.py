"""The zoo spec of compressai's FactorizedPrior, and the training scripts' rate term.

For each setting of N and M, compressai's model and specgen's generated PyTorch model must have
the same parameter counts (the counts the spec predicts, too); with compressai's weights loaded
through the spec's name map, both must give the same reconstruction and likelihoods, in inference
and (with the same noise) in training. The generated PyTorch and Keras models must agree
(``specgen verify``), and the generated training scripts' loss with the spec's training section
must be compressai's ``RateDistortionLoss``; one real training step in each framework logs the
rate and trains the entropy bottleneck's quantiles with its auxiliary loss.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")

from specgen.api import build_graph  # noqa: E402
from specgen.cli import main  # noqa: E402
from specgen.codegen.compiled import compile_module  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "zoo" / "compressai_factorized_prior.yaml"
TOLERANCE = 1e-5

# (spec overrides, compressai's N and M)
SETTINGS = [
    ({}, 128, 192),
    ({"N": 8, "M": 12, "input_shape": [32, 32, 3]}, 8, 12),
    ({"N": 16, "M": 6, "input_shape": [48, 32, 3]}, 16, 6),
    ({"N": 1, "M": 1, "input_shape": [16, 48, 3]}, 1, 1),
]
SMALL = SETTINGS[1][0]


def spec_name(module_path: str) -> str:
    """compressai's module path -> the spec's node name (the map in the spec's comments)."""
    if module_path == "entropy_bottleneck":
        return "bottleneck.entropy_bottleneck"
    transform, index = module_path.split(".")
    index = int(index)
    if transform == "g_a":
        return f"encoder.{'conv' if index % 2 == 0 else 'gdn'}{index}"
    return f"decoder.{'deconv' if index % 2 == 0 else 'igdn'}{index}"


def renamed(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        prefix = 1 if parts[0] == "entropy_bottleneck" else 2
        out[".".join([spec_name(".".join(parts[:prefix])), *parts[prefix:]])] = value
    return out


def trained_looking(model, seed: int) -> None:
    """Weights around compressai's initial ones, and quantiles off their initial values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            # the spread of all of p's values (a 1-value tensor's spread is 0, so scale 1)
            spread = float(p.std(correction=0) or 1)
            p.add_(noise * (0.5 if name.endswith("quantiles") else 0.02 * spread))


def models(compressai, overrides: dict, n: int, m: int, seed: int = 0):
    graph = build_graph(SPEC, overrides)
    torch.manual_seed(seed)
    theirs = compressai.models.FactorizedPrior(n, m)
    trained_looking(theirs, seed + 1)
    ours = compile_module(graph, "torch").build_model()
    ours.load_state_dict(renamed(theirs.state_dict()), strict=True)
    return graph, theirs, ours


@pytest.mark.parametrize(
    "overrides,n,m", SETTINGS, ids=["defaults", "small", "narrow_latent", "one_channel_wide"]
)
def test_counts_and_outputs_match_compressai(compressai, overrides, n, m):
    graph, theirs, ours = models(compressai, overrides, n, m)
    total = sum(p.numel() for p in theirs.parameters())
    assert graph.counts()[:2] == (total, 0)
    assert sum(p.numel() for p in ours.parameters()) == total
    if not overrides:
        assert total == 2_998_147
    assert [name for name, _ in graph.outputs] == ["reconstruction", "likelihoods"]
    assert graph.output_roles == ("reconstruction", "likelihoods")

    h, w, c = graph.input_shape
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(2, c, h, w, generator=generator)
    for training in (False, True):
        theirs.train(training)
        ours.train(training)
        if training:
            # the same uniform noise in both: compressai draws it on (C, 1, N*H*W)
            y = theirs.g_a(x)
            noise = torch.rand(y.shape, generator=generator) - 0.5
            flat = noise.transpose(0, 1).reshape(m, 1, -1)

            def quantize(values, mode, means=None, flat=flat):
                return values + flat

            theirs.entropy_bottleneck.quantize = quantize
            ours.bottleneck.entropy_bottleneck.noise = noise
        with torch.no_grad():
            expected = theirs(x)
            reconstruction, likelihoods = ours(x)
        x_hat, y_likelihoods = expected["x_hat"], expected["likelihoods"]["y"]
        assert float((reconstruction - x_hat).abs().max()) <= TOLERANCE, training
        assert float((likelihoods - y_likelihoods).abs().max()) <= TOLERANCE, training


def test_the_auxiliary_loss_is_compressais(compressai):
    _, theirs, ours = models(compressai, SMALL, 8, 12)
    with torch.no_grad():
        expected = theirs.aux_loss()
        got = ours.bottleneck.entropy_bottleneck.aux_loss()
    assert float((got - expected).abs()) <= 1e-4 * max(1.0, float(expected))


def test_verify_passes_at_a_small_setting():
    from specgen.verify import verify

    report = verify(build_graph(SPEC, SMALL))
    assert report.ok, report.table()
    assert {r.output for r in report.rows} >= {"reconstruction", "likelihoods"}


# -- the rate term ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rate_distortion_loss(compressai):
    """compressai's RateDistortionLoss, from its file. That file imports pytorch_msssim for its
    ms-ssim metric, which the test environment lacks; the mse metric used here never reaches it,
    so a module without it stands in for the import."""
    root = Path(compressai.__path__[0])
    stand_in = types.ModuleType("pytorch_msssim")
    stand_in.ms_ssim = None
    saved = sys.modules.get("pytorch_msssim")
    sys.modules["pytorch_msssim"] = stand_in
    try:
        spec = importlib.util.spec_from_file_location(
            "compressai_rate_distortion", root / "losses" / "rate_distortion.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("pytorch_msssim")
        else:
            sys.modules["pytorch_msssim"] = saved
    return module.RateDistortionLoss


def generate(out: Path, overrides: dict, targets=("torch", "train")) -> Path:
    sets = [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]
    args = ["generate", str(SPEC), *sets, "-o", str(out)]
    for target in targets:
        args += ["--target", target]
    assert main(args) == 0
    return out / "compressai_factorized_prior"


def load_script(path: Path, name: str):
    sys.modules.pop("torch_model", None)  # another test's model of the same module name
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop("torch_model", None)
    return module


@pytest.mark.parametrize("lmbda", [0.01, 0.0483])
def test_the_training_loss_is_compressais_rate_distortion_loss(
    compressai, rate_distortion_loss, tmp_path, lmbda
):
    folder = generate(tmp_path, {**SMALL, "lmbda": lmbda})
    script = load_script(folder / "train_torch.py", f"train_factorized_{int(lmbda * 1e4)}")
    args = script.parse_args([])
    assert args.distortion_weight == pytest.approx(lmbda * 255**2)
    assert args.loss == "mse"
    _, theirs, _ = models(compressai, SMALL, 8, 12)
    torch.manual_seed(0)
    ours = script.build_model(torch.device("cpu"))
    ours.load_state_dict(renamed(theirs.state_dict()), strict=True)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    theirs.eval()
    ours.eval()
    with torch.no_grad():
        expected = rate_distortion_loss(lmbda=lmbda)(theirs(x), x)
        loss, _, terms = script.compute_loss(ours, x, args)
        aux = theirs.aux_loss()
    assert float(terms["bpp"]) == pytest.approx(float(expected["bpp_loss"]), rel=1e-5)
    assert float(loss) == pytest.approx(float(expected["loss"]), rel=1e-5)
    assert float(terms["aux"]) == pytest.approx(float(aux), rel=1e-4)


def run(script: Path, out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            *("--epochs", "1", "--batch-size", "8", "--log-every", "1"),
            *("--lr", "0.01", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=script.parent,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def logged(proc, name: str) -> list[float]:
    lines = [line for line in proc.stdout.splitlines() if " step " in line]
    assert lines, proc.stdout[-2000:]
    return [float(line.split(f" {name} ")[1].split()[0].rstrip(",")) for line in lines]


def test_one_training_step_in_pytorch_logs_the_rate_and_moves_the_quantiles(tmp_path):
    from safetensors.torch import load_file

    folder = generate(tmp_path, SMALL)
    out = tmp_path / "run"
    proc = run(folder / "train_torch.py", out)
    bpp = logged(proc, "bpp")
    assert all(math.isfinite(b) and b > 0 for b in bpp)
    assert all(a > 0 for a in logged(proc, "aux"))
    weights = load_file(out / "model.safetensors")
    quantiles = weights["bottleneck.entropy_bottleneck.quantiles"]
    initial = torch.tensor([-10.0, 0.0, 10.0]).expand_as(quantiles)
    assert float((quantiles - initial).abs().max()) > 0  # trained by the auxiliary loss


def test_one_training_step_in_keras_logs_the_rate_and_moves_the_quantiles(tmp_path):
    from specgen.convert import keras_layer

    folder = generate(tmp_path, SMALL, targets=("keras", "train"))
    out = tmp_path / "run"
    proc = run(folder / "train_keras.py", out)
    bpp = logged(proc, "bpp")
    assert all(math.isfinite(b) and b > 0 for b in bpp)
    assert all(a > 0 for a in logged(proc, "aux"))
    spec = importlib.util.spec_from_file_location("factorized_keras", folder / "keras_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model()
    model.load_weights(str(out / "model.weights.h5"))
    quantiles = np.asarray(keras_layer(model, "bottleneck.entropy_bottleneck").quantiles)
    initial = np.broadcast_to(np.array([-10.0, 0.0, 10.0]), quantiles.shape)
    assert float(np.abs(quantiles - initial).max()) > 0  # trained by the auxiliary loss
