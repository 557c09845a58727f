"""The PyTorch target: every generated model imports, runs, trains a step and matches the graph."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import specgen.torch as sgt
import torch
from specgen.api import build_graph
from specgen.codegen.program import INLINE_OPS

pytestmark = pytest.mark.frameworks

SPECS = [
    "conv_autoencoder",
    "res_ae_mnist",
    "resnet_ae",
    "resnet_ae_preact",
    "resnet_vae",
    "resnet_vqvae",
    "unet_ae",
]

# other settings of every seed spec's knobs, so that nothing is special-cased
VARIANTS = [
    ("resnet_ae", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [32, 48, 1]}),
    (
        "resnet_ae",
        {
            "n_levels": 3,
            "n_residual_blocks": 0,
            "multires_skips": False,
            "z_dim": 16,
            "bottleneck_dim": 8,
            "input_shape": [64, 64, 3],
        },
    ),
    ("resnet_ae", {"n_levels": 1, "n_residual_blocks": 2, "input_shape": [16, 16, 2]}),
    ("resnet_vae", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [32, 32, 3]}),
    (
        "resnet_vqvae",
        {
            "n_levels": 3,
            "n_residual_blocks": 1,
            "input_shape": [64, 32, 1],
            "num_embeddings": 16,
            "bottleneck_dim": 8,
        },
    ),
    ("resnet_ae_preact", {"n_levels": 2, "n_residual_blocks": 2, "input_shape": [32, 32, 3]}),
    ("res_ae_mnist", {"batch_norm": True, "dropout_rate": 0.2, "units_per_block": 2}),
    ("res_ae_mnist", {"decoder_blocks": [[32, 16, 2], [1, 8, 2]], "units_per_block": 2}),
    (
        "res_ae_mnist",
        {
            "input_shape": [32, 32, 3],
            "encoder_blocks": [[16, 8, 2], [16, 16, 1]],
            "decoder_blocks": [[16, 16, 1], [3, 8, 2]],
            "code_dim": 32,
        },
    ),
    ("conv_autoencoder", {"layers": [16, 32, 64, 128], "input_shape": [64, 64, 1]}),
    ("conv_autoencoder", {"layers": [8], "input_shape": [8, 12, 2]}),
    ("unet_ae", {"n_levels": 2, "base_filters": 8, "input_shape": [32, 32, 1]}),
    ("unet_ae", {"skip_connections": False, "n_levels": 1, "input_shape": [16, 16, 3]}),
]


def load_generated(path):
    spec = importlib.util.spec_from_file_location(f"gen_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nchw(shape):
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def forward_names(graph):
    kind = graph.bottleneck.kind
    if kind == "variational":
        return ["reconstruction", "mu", "logvar"]
    if kind == "vector_quantized":
        return ["vq_loss", "reconstruction", "perplexity", "indices"]
    return ["reconstruction"]


def check_model(module, graph):
    torch.manual_seed(0)
    model = module.build_model()
    # every node is reachable at its graph name, and nothing else holds weights
    for node in graph.nodes:
        if node.kind not in INLINE_OPS:
            model.get_submodule(node.name)
    owners = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    # (a transposed conv with a constant kernel and no bias has none)
    weighted = {
        n.name for n in graph.nodes if n.layer.has_weights and n.trainable + n.non_trainable
    }
    assert {o.removesuffix(".embedding") for o in owners} == weighted
    # parameter and buffer counts are the graph's
    trainable, non_trainable, _ = graph.counts()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable
    stats = sum(b.numel() for n, b in model.named_buffers() if "num_batches_tracked" not in n)
    assert stats == non_trainable
    assert (module.TRAINABLE_PARAMETERS, module.NON_TRAINABLE_PARAMETERS) == (
        trainable,
        non_trainable,
    )
    h, w, c = graph.input_shape
    x = torch.rand(2, c, h, w)
    names = forward_names(graph)
    refs = dict(graph.outputs)

    def check(outputs):
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        assert len(outputs) == len(names)
        for name, out in zip(names, outputs, strict=True):
            shape = graph.shape(refs[name])
            want = nchw(shape) if shape else ()
            assert tuple(out.shape) == ((2, *want) if shape else ()), name
            if out.is_floating_point():
                assert torch.isfinite(out).all(), name
        return outputs

    model.train()
    outputs = check(model(x))
    loss = sum(o.float().mean() for o in outputs if o.is_floating_point())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # batch norm's running statistics as a trained model has them (this batch's, instead of the
    # initial 0 and 1), so that inference runs at the scale the layers were built for: an
    # untrained deep network in inference can grow the log-variance until a sample overflows
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, that batch's statistics
    with torch.no_grad():
        model(x)
    # a VAE whose latent is a sample in inference too draws it from the seeded generator
    sampled = any(n.kind == "vae_sampling" and n.layer.inference == "sample" for n in graph.nodes)
    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        first = check(model(x))
        torch.manual_seed(0)
        second = check(model(x))
        torch.manual_seed(1)
        other = check(model(x))
    for name, a, b, c in zip(names, first, second, other, strict=True):
        assert torch.equal(a, b), name  # inference is deterministic for one seed
        # only a sampled latent makes another seed give another reconstruction
        assert torch.equal(a, c) == (not sampled or name != "reconstruction"), name
    # encode/decode compose to forward in eval mode
    with torch.no_grad():
        torch.manual_seed(0)
        code = model.encode(x)
        if graph.bottleneck.kind == "variational":
            recon = model.decode(model.bottleneck.reparameterize(*code))
        elif graph.bottleneck.kind == "vector_quantized":
            recon = model.decode(code[0])
        elif isinstance(code, tuple):
            recon = model.decode(*code)
        else:
            recon = model.decode(code)
    assert torch.allclose(recon, first[names.index("reconstruction")], atol=1e-6)


@pytest.mark.parametrize("name", SPECS)
def test_generated_model_runs_and_matches_the_graph(repo_root, name):
    graph = build_graph(repo_root / "specs" / f"{name}.yaml")
    module = load_generated(repo_root / "generated" / name / "torch_model.py")
    check_model(module, graph)


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=lambda v: str(v))
def test_variants_run_and_match_the_graph(repo_root, name, overrides):
    spec = repo_root / "specs" / f"{name}.yaml"
    check_model(sgt.load_module(spec, **overrides), build_graph(spec, overrides))


def test_build_api_returns_the_initialized_module(repo_root):
    model = sgt.build(repo_root / "specs" / "conv_autoencoder.yaml", layers=[8, 8])
    assert isinstance(model, torch.nn.Module)
    assert model.encoder.level0.pool.conv1.weight.shape == (8, 3, 3, 3)


def test_api_source_is_the_generated_file(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    text = sgt.source("specs/unet_ae.yaml")
    assert text == (repo_root / "generated" / "unet_ae" / "torch_model.py").read_text()


def test_initializers_follow_the_spec(repo_root):
    model = sgt.build(repo_root / "specs" / "conv_autoencoder.yaml", layers=[64, 64, 64])
    weight = model.encoder.level1.pool.conv1.weight  # he_normal, fan_in = 3 * 3 * 64
    std = (2.0 / (9 * 64)) ** 0.5
    assert weight.abs().max() <= 2 * std / 0.87962566103423978 + 1e-6  # truncated at 2 sigma
    assert abs(weight.std().item() - std) / std < 0.05
    dense = sgt.build(repo_root / "specs" / "res_ae_mnist.yaml").bottleneck.code
    limit = (6.0 / (1568 + 128)) ** 0.5  # glorot_uniform
    assert dense.weight.abs().max() <= limit
    assert dense.weight.abs().max() > 0.9 * limit
    assert torch.count_nonzero(dense.bias) == 0


def test_same_padding_matches_tensorflow_convention():
    """Odd total padding puts the extra row and column after, as 'same' is defined."""
    spec_text = (
        "specgen: 1\nname: pad\ninput: {shape: [6, 6, 1]}\n"
        "encoder:\n  - {kind: conv2d, filters: 1, kernel_size: 3, strides: 2, use_bias: false}\n"
        "decoder:\n  - {kind: conv2d_transpose, filters: 1, kernel_size: 3, strides: 2,"
        " use_bias: false}\n"
    )
    from specgen.api import load_spec

    module = sgt.load_module(load_spec(text=spec_text, filename="pad.yaml"))
    model = module.build_model()
    conv = model.encoder.conv1
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
        x = torch.arange(36.0).reshape(1, 1, 6, 6)
        y = model.encoder(x)
    # no padding before: window (0, 0) starts at input (0, 0)
    assert y[0, 0, 0, 0].item() == 0.0 and y[0, 0, 1, 1].item() == x[0, 0, 2, 2].item()
    deconv = model.decoder.deconv1
    with torch.no_grad():
        deconv.weight.zero_()
        deconv.weight[0, 0, 0, 0] = 1.0
        z = model.decoder(torch.ones(1, 1, 3, 3))
    # the full 7x7 output is cut to 6x6 by dropping the last row and column
    assert z.shape == (1, 1, 6, 6)
    assert z[0, 0, 0, 0].item() == 1.0 and z[0, 0, 1, 1].item() == 0.0


@pytest.mark.parametrize("name", ["conv_autoencoder", "resnet_vqvae"])
def test_generated_file_runs_as_a_script(repo_root, name):
    proc = subprocess.run(
        [sys.executable, str(repo_root / "generated" / name / "torch_model.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reconstruction:" in proc.stdout and "trainable parameters on cpu" in proc.stdout


@pytest.mark.slow
def test_benchmark_script_runs(repo_root, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(repo_root / "bench" / "bench_torch.py"),
            "--setting",
            "small",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    result = json.loads(out.read_text())["results"][0]
    assert result["parameters"]["generated"] == result["parameters"]["hand-written"]
    assert result["saved_bytes"]["generated"] == result["saved_bytes"]["hand-written"]
    assert result["time_ratio"] > 0 and result["peak_ratio"] > 0


@pytest.mark.parametrize(
    "spec", ["resnet_ae.yaml", "resnet_ae_preact.yaml", "resnet_vae.yaml", "resnet_vqvae.yaml"]
)
def test_resnet_batch_norm_settings_give_either_originals_batch_norm(spec, specs_dir):
    """By default the ResNet specs build the TF original's batch norm (Keras' eps 1e-3, decay
    0.99); bn_epsilon/bn_momentum give the PyTorch original's nn.BatchNorm2d defaults."""
    import specgen.torch as st
    import torch

    small = {"input_shape": [32, 32, 3], "n_levels": 2, "n_residual_blocks": 1}
    for overrides, eps, momentum in (
        ({}, 1e-3, 0.01),
        ({"bn_epsilon": 1e-5, "bn_momentum": 0.9}, 1e-5, 0.1),
    ):
        model = st.build(specs_dir / spec, **small, **overrides)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms
        for m in norms:
            assert m.eps == pytest.approx(eps) and m.momentum == pytest.approx(momentum)
