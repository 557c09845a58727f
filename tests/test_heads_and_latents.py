"""Heads whose shape the decoder decides, and the latent bottlenecks' semantics: each feature
with a tiny real spec, its counts, PyTorch ≡ Keras, and the library it follows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from specgen.api import build_graph, load_spec
from specgen.errors import SpecErrors
from specgen.to_spec import dump_spec, graph_to_spec

UNET_HEADS = """\
specgen: 1
name: unet_heads
input: {shape: [16, 16, 1]}
encoder:
  - {name: conv0, kind: conv2d, filters: 4, kernel_size: 3}
  - {name: down, kind: conv2d, filters: 8, kernel_size: 3, strides: 2}
decoder:
  - {name: up, kind: conv2d_transpose, filters: 4, kernel_size: 2, strides: 2}
  - {name: head, kind: conv2d, filters: 2, kernel_size: 1}
skips:
  - {name: s0, from: encoder.conv0, to: decoder.up, merge: concat}
output: {reconstructs: %s}
"""


def graph_from(text: str, name: str = "spec.yaml"):
    return build_graph(load_spec(text=text, filename=name))


def verify_both_modes(graph):
    from specgen.verify import verify

    report = verify(graph)
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}
    return report


def generate_scripts(spec, out) -> None:
    """The PyTorch model and training script of ``spec`` under ``out``."""
    from specgen.cli import main

    assert (
        main(["generate", str(spec), "-o", str(out), "--target", "torch", "--target", "train"]) == 0
    )


def max_difference(report) -> float:
    return max(r.max_abs for r in report.rows)


def round_trips(graph) -> None:
    text = dump_spec(graph_to_spec(graph))
    again = graph_from(text, "expanded.yaml")
    assert again.structure() == graph.structure()


# -- heads: the output need not be a copy of the input -----------------------------------------


def test_a_head_with_other_channels_builds_when_it_does_not_reconstruct():
    graph = graph_from(UNET_HEADS % "false")
    assert graph.shape(graph.output("reconstruction")) == (16, 16, 2)
    assert not graph.reconstructs
    # conv0 1->4 (3x3), down 4->8 (3x3), up 8->4 (2x2 transposed), head 8->2 (1x1)
    assert graph.counts()[:2] == (4 * 9 + 4 + 4 * 8 * 9 + 8 + 8 * 4 * 4 + 4 + 8 * 2 + 2, 0)
    round_trips(graph)


def test_a_reconstruction_must_still_have_the_input_shape():
    with pytest.raises(SpecErrors) as caught:
        graph_from(UNET_HEADS % "true")
    (error,) = caught.value.errors
    assert "the reconstruction has shape (16, 16, 2) but the input has shape (16, 16, 1)" in (
        error.message
    )
    assert "reconstructs: false" in error.hint


@pytest.mark.parametrize("reconstructs", ["true", "false"])
def test_the_nearest_valid_sizes_are_named_either_way(reconstructs):
    text = (UNET_HEADS % reconstructs).replace("[16, 16, 1]", "[15, 15, 1]")
    with pytest.raises(SpecErrors) as caught:
        graph_from(text)
    (error,) = caught.value.errors
    assert "15 is not divisible by 2" in error.message
    assert "nearest valid sizes 14 and 16" in error.message


@pytest.mark.frameworks
def test_a_unet_with_one_input_and_two_output_channels_runs_in_both_frameworks(tmp_path):
    from test_primitives import generated_files_lint_clean

    graph = graph_from(UNET_HEADS % "false")
    report = verify_both_modes(graph)
    assert max_difference(report) < 1e-5
    generated_files_lint_clean(graph, tmp_path)


@pytest.mark.frameworks
def test_training_a_head_says_it_needs_targets(tmp_path):

    spec = tmp_path / "unet_heads.yaml"
    spec.write_text(UNET_HEADS % "false")
    generate_scripts(spec, tmp_path)
    script = tmp_path / "unet_heads" / "train_torch.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--epochs", "1", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "training it needs targets" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


# -- the variational bottleneck's latent in inference ------------------------------------------

TINY_VAE = """\
specgen: 1
name: tiny_vae
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
bottleneck: {kind: variational, units: 6, inference: %s}
decoder:
  - {kind: conv2d_transpose, filters: 1, kernel_size: 2, strides: 2}
"""


@pytest.mark.parametrize("inference", ["mean", "sample", "mean_plus_std"])
def test_the_inference_latent_is_a_field_of_the_sampling_node(inference):
    graph = graph_from(TINY_VAE % inference)
    assert graph.node("bottleneck.sample").layer.inference == inference
    # conv 1->4 (3x3), mu and logvar 256->6, expand 6->256, transposed conv 4->1 (2x2)
    assert graph.counts()[:2] == (40 + 2 * (256 * 6 + 6) + (6 * 256 + 256) + 17, 0)
    round_trips(graph)


@pytest.mark.frameworks
@pytest.mark.parametrize("inference", ["mean", "sample", "mean_plus_std"])
def test_the_inference_latent_is_the_same_in_both_frameworks(inference, tmp_path):
    from test_primitives import generated_files_lint_clean

    graph = graph_from(TINY_VAE % inference)
    report = verify_both_modes(graph)
    assert max_difference(report) < 1e-5
    generated_files_lint_clean(graph, tmp_path)


@pytest.mark.frameworks
@pytest.mark.parametrize("inference,use_mean", [("mean_plus_std", False), ("mean", True)])
def test_the_inference_latent_follows_monai(inference, use_mean):
    from monai.networks.nets import VarAutoEncoder

    import torch
    from specgen.codegen.compiled import compile_module

    graph = graph_from(TINY_VAE % inference)
    sampling = compile_module(graph, "torch").build_model().bottleneck.sample
    monai = VarAutoEncoder(
        spatial_dims=2,
        in_shape=(1, 8, 8),
        out_channels=1,
        latent_size=6,
        channels=(2,),
        strides=(2,),
        use_mean_at_inference=use_mean,
    )
    mu, logvar = torch.randn(3, 6), torch.randn(3, 6)
    for training in (False, True):
        sampling.train(training)
        monai.train(training)
        torch.manual_seed(1)
        ours = sampling(mu, logvar)
        torch.manual_seed(1)
        theirs = monai.reparameterize(mu.clone(), logvar.clone())
        assert torch.allclose(ours, theirs, atol=1e-6), (training, (ours - theirs).abs().max())


# -- the spatial (diagonal Gaussian) bottleneck ------------------------------------------------

TINY_KL = """\
specgen: 1
name: tiny_kl
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
bottleneck: {kind: diagonal_gaussian, latent_channels: 3, inference: %s}
decoder:
  - {kind: conv2d_transpose, filters: 1, kernel_size: 2, strides: 2}
"""


def test_the_diagonal_gaussian_bottleneck_nodes_and_counts():
    graph = graph_from(TINY_KL % "mean")
    nodes = {n.local_name: n for n in graph.part_nodes("bottleneck")}
    assert list(nodes) == ["quant_conv", "posterior", "sample", "post_quant_conv"]
    assert nodes["quant_conv"].shape == (8, 8, 6)
    assert nodes["posterior"].output_shapes == ((8, 8, 3), (8, 8, 3))
    assert nodes["post_quant_conv"].shape == (8, 8, 3)
    assert [name for name, _ in graph.outputs] == ["reconstruction", "mu", "logvar"]
    # encoder 1->4 (3x3), quant_conv 4->6, post_quant_conv 3->3, transposed conv 3->1 (2x2)
    assert graph.counts()[:2] == (40 + 30 + 12 + 13, 0)
    round_trips(graph)


def test_the_diagonal_gaussian_needs_an_image():
    text = (TINY_KL % "mean").replace(
        "  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}",
        "  - {kind: flatten}",
    )
    with pytest.raises(SpecErrors) as caught:
        graph_from(text)
    assert (
        "a diagonal Gaussian bottleneck needs an encoder output with spatial axes and channels"
        in str(caught.value)
    )


@pytest.mark.frameworks
@pytest.mark.parametrize("inference", ["mean", "sample", "mean_plus_std"])
def test_the_diagonal_gaussian_is_the_same_in_both_frameworks(inference, tmp_path):
    from test_primitives import generated_files_lint_clean

    graph = graph_from(TINY_KL % inference)
    report = verify_both_modes(graph)
    assert max_difference(report) < 1e-5
    generated_files_lint_clean(graph, tmp_path)


def _load_script(path, name):
    import importlib.util

    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop("torch_model", None)
    return module


@pytest.mark.frameworks
def test_the_diagonal_gaussian_follows_diffusers(tmp_path):
    import argparse

    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    import torch

    spec = tmp_path / "tiny_kl.yaml"
    spec.write_text(TINY_KL % "mean")
    generate_scripts(spec, tmp_path)
    script = _load_script(tmp_path / "tiny_kl" / "train_torch.py", "train_tiny_kl")
    torch.manual_seed(0)
    model = script.build_model(torch.device("cpu"))
    with torch.no_grad():  # a logvar channel past the clamp
        model.bottleneck.quant_conv.bias[4] = 40.0
    bottleneck = model.bottleneck
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        moments = bottleneck.quant_conv(model.encoder(x))
        posterior = DiagonalGaussianDistribution(moments)
        mu, logvar = bottleneck.posterior(moments)
        assert float(logvar.max()) == 20.0
        differences = {
            "mean": (mu - posterior.mean).abs().max(),
            "logvar": (logvar - posterior.logvar).abs().max(),
        }
        bottleneck.sample.train(True)
        torch.manual_seed(5)
        ours = bottleneck.sample(mu, logvar)
        torch.manual_seed(5)
        differences["sample"] = (ours - posterior.sample()).abs().max()
        model.train(False)
        args = argparse.Namespace(loss="mse", beta=1.0, distortion_weight=1.0)
        _, _, terms = script.compute_loss(model, x, args)
        differences["kl"] = (terms["kl"] - posterior.kl().mean()).abs()
    assert all(float(d) < 1e-5 for d in differences.values()), differences


@pytest.mark.frameworks
def test_one_training_step_of_the_spatial_vae_logs_its_kl(tmp_path):

    spec = tmp_path / "tiny_kl.yaml"
    spec.write_text(TINY_KL % "mean")
    generate_scripts(spec, tmp_path)
    folder = tmp_path / "tiny_kl"
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            str(folder / "train_torch.py"),
            *("--epochs", "1", "--batch-size", "200", "--log-every", "1", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("epoch 1/1 step 1/")]
    kl = float(line.split(" kl ")[1].split()[0])
    assert kl > 0.0
    assert (out / "metrics.json").is_file()


# -- the vector quantizer's loss weighting -----------------------------------------------------

TINY_VQ = """\
specgen: 1
name: tiny_vq
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
bottleneck:
  kind: vector_quantized
  embedding_dim: 3
  num_embeddings: 5
  commitment_cost: 0.3
  loss_weighting: %s
decoder:
  - {kind: conv2d_transpose, filters: 1, kernel_size: 2, strides: 2}
"""


@pytest.mark.frameworks
@pytest.mark.parametrize("weighting", ["vqvae", "diffusers_legacy"])
def test_the_vq_loss_weighting_is_the_same_in_both_frameworks(weighting, tmp_path):
    from test_primitives import generated_files_lint_clean

    graph = graph_from(TINY_VQ % weighting)
    assert graph.node("bottleneck.quantizer").layer.loss_weighting == weighting
    # encoder 1->4 (3x3), pre_quant 4->3, codebook 5x3, transposed conv 3->1 (2x2)
    assert graph.counts()[:2] == (40 + 15 + 15 + 13, 0)
    round_trips(graph)
    report = verify_both_modes(graph)
    assert max_difference(report) < 1e-5
    generated_files_lint_clean(graph, tmp_path)


@pytest.mark.frameworks
@pytest.mark.parametrize("weighting,legacy", [("vqvae", False), ("diffusers_legacy", True)])
def test_the_vq_loss_follows_diffusers(weighting, legacy):
    from diffusers.models.autoencoders.vae import VectorQuantizer

    import torch
    from specgen.codegen.compiled import compile_module

    graph = graph_from(TINY_VQ % weighting)
    ours = compile_module(graph, "torch").build_model().bottleneck.quantizer
    theirs = VectorQuantizer(5, 3, beta=0.3, legacy=legacy)
    with torch.no_grad():
        theirs.embedding.weight.copy_(ours.embedding.weight)
    z = torch.randn(2, 3, 4, 4) * 0.1
    results = []
    for module in (ours, theirs):
        x = z.clone().requires_grad_(True)
        module.zero_grad()
        quantized, loss, *rest = module(x)
        indices = rest[1] if len(rest) == 2 else rest[0][2]
        loss.backward()
        results.append((quantized, loss, indices, x.grad, module.embedding.weight.grad))
    (q1, l1, i1, gx1, ge1), (q2, l2, i2, gx2, ge2) = results
    assert torch.equal(i1.flatten(), i2.flatten())
    assert (q1 - q2).abs().max() < 1e-6
    assert (l1 - l2).abs() < 1e-6
    # the weighting shows in the gradients: the input's (commitment) and the codebook's
    assert (gx1 - gx2).abs().max() < 1e-7
    assert (ge1 - ge2).abs().max() < 1e-7
