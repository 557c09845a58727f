"""The original ResNetAE's checkpoints, ported into the seed specs' generated models.

The original PyTorch and TensorFlow models are rebuilt in ``tests/port_fixtures`` (their module
and attribute names, so their checkpoints have the original's tensor names), given random weights
and random batch-norm statistics, and saved as their users save them: a PyTorch state dict
(``.pt`` and ``.safetensors``) and a Keras 3 weights file. Each is ported by the spec's
``weights_from`` section into the generated PyTorch and Keras models, which must give the
original's outputs in inference (1e-5): the reconstruction, and mu and logvar for the VAE, on the
same noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from safetensors.torch import load_file, save_file  # noqa: E402

import specgen  # noqa: E402
from specgen.api import build_graph  # noqa: E402
from specgen.cli import main  # noqa: E402
from specgen.codegen.compiled import compile_module  # noqa: E402
from specgen.codegen.pyview import forward_names  # noqa: E402
from specgen.errors import SpecErrors  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "port_fixtures"))

import resnetae_torch  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
TOLERANCE = 1e-5
#: The original PyTorch code's batch norm.
TORCH_BN = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}
SMALL = {"input_shape": [16, 16, 3], "n_levels": 2, "n_residual_blocks": 2, "z_dim": 8}
SPEC_OF = {"ResNetAE": "resnet_ae", "ResNetVAE": "resnet_vae", "ResNetVQVAE": "resnet_vqvae"}


def original_kwargs(model: str, settings: dict) -> dict:
    kwargs = {
        "n_ResidualBlock": settings["n_residual_blocks"],
        "n_levels": settings["n_levels"],
        "z_dim": settings["z_dim"],
        "bUseMultiResSkips": settings.get("multires_skips", True),
    }
    if model == "ResNetVQVAE":
        kwargs.update(vq_num_embeddings=16, vq_embedding_dim=settings["bottleneck_dim"])
    else:
        kwargs["bottleneck_dim"] = settings["bottleneck_dim"]
    return kwargs


def spec_settings(model: str, settings: dict) -> dict:
    out = dict(settings)
    if model == "ResNetVQVAE":
        out["num_embeddings"] = 16
    return out


CASES = [
    ("ResNetAE", {**SMALL, "bottleneck_dim": 6}),
    ("ResNetAE", {**SMALL, "bottleneck_dim": 6, "multires_skips": False, "input_shape": [8, 8, 1]}),
    ("ResNetVAE", {**SMALL, "bottleneck_dim": 5}),
    ("ResNetVQVAE", {**SMALL, "bottleneck_dim": 4}),
]


def case_id(case) -> str:
    model, settings = case
    return model + ("_noskips" if settings.get("multires_skips") is False else "")


def report_diffs(label: str, torch_diffs: dict, keras_diffs: dict) -> None:
    """Print the largest differences (seen with pytest -s) and hold each to the tolerance."""
    print(
        f"\n{label}: max |diff| PyTorch {max(torch_diffs.values()):.2e}, "
        f"Keras {max(keras_diffs.values()):.2e}"
    )
    for name, diff in [*torch_diffs.items(), *keras_diffs.items()]:
        assert diff <= TOLERANCE, name


def outputs(graph, result) -> dict:
    """A generated model's outputs by name."""
    names = forward_names(graph)
    result = result if isinstance(result, (tuple, list)) else (result,)
    return dict(zip(names, result, strict=True))


def randomise_batch_norm_torch(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def sample(settings) -> torch.Tensor:
    size, _, channels = settings["input_shape"]
    return torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(5))


def set_noise(model, eps, framework: str) -> None:
    """Fix the generated model's VAE noise."""
    layer = model.bottleneck.sample
    layer.noise = eps if framework == "torch" else eps.numpy()


def ported_models(spec: Path, overrides: dict, checkpoint: Path, tmp_path: Path):
    """Port ``checkpoint`` into both generated models (the PyTorch one by the Python API, the
    Keras one by the command line) and load each."""
    graph = build_graph(spec, overrides)
    torch_file, keras_file = tmp_path / "ported.safetensors", tmp_path / "ported.weights.h5"
    report = specgen.port_weights(spec, checkpoint, torch_file, overrides)
    ours = compile_module(graph, "torch").build_model()
    ours.load_state_dict(load_file(str(torch_file)), strict=True)
    sets = [
        f"--set={k}={v}".replace(" ", "").replace("False", "false") for k, v in overrides.items()
    ]
    argv = ["port-weights", str(spec), "--from", str(checkpoint), "-o", str(keras_file), *sets]
    assert main(argv) == 0
    kmodel = compile_module(graph, "keras").build_model()
    kmodel.load_weights(str(keras_file))
    return graph, report, ours.eval(), kmodel


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_original_pytorch_checkpoints_port_into_both_models(tmp_path, case, suffix):
    model_name, settings = case
    torch.manual_seed(0)
    kwargs = original_kwargs(model_name, settings)
    size, _, channels = settings["input_shape"]
    if model_name == "ResNetVQVAE":
        # the original quantizes rows that mix positions; the port is compared with a quantizer
        # that takes each position's vector (below, the original's own is compared up to it)
        original = resnetae_torch.ResNetVQVAE((channels, size, size), per_position=True, **kwargs)
    else:
        original = getattr(resnetae_torch, model_name)((size, size, channels), **kwargs)
    randomise_batch_norm_torch(original)
    original.eval()
    checkpoint = tmp_path / f"original{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": original.state_dict(), "epoch": 3}, checkpoint)
    else:
        save_file(original.state_dict(), str(checkpoint))
    spec = SPECS / f"{SPEC_OF[model_name]}.yaml"
    overrides = {**spec_settings(model_name, settings), **TORCH_BN}
    graph, report, ours, kmodel = ported_models(spec, overrides, checkpoint, tmp_path)
    assert report.library == "ResNetAE (PyTorch)"
    if model_name != "ResNetVQVAE":
        assert report.reordered  # the dense layers' (C, H, W) order
    x = sample(settings)
    with torch.no_grad():
        if model_name == "ResNetVAE":
            # the original draws its noise from the global generator: the same draw is eps
            torch.manual_seed(11)
            eps = torch.randn(2, settings["bottleneck_dim"])
            torch.manual_seed(11)
            want = dict(zip(("reconstruction", "mu", "logvar"), original(x), strict=True))
            set_noise(ours, eps, "torch")
            set_noise(kmodel, eps, "keras")
        elif model_name == "ResNetVQVAE":
            loss, recon, perplexity, indices = original(x)
            want = {"reconstruction": recon, "vq_loss": loss, "perplexity": perplexity}
        else:
            want = {"reconstruction": original(x)}
        got = outputs(graph, ours(x))
    if model_name == "ResNetVQVAE":
        assert torch.equal(got["indices"], indices)
    diffs = {name: (got[name] - value).abs().max().item() for name, value in want.items()}
    # the Keras model, on the same input (channels last) and noise
    kout = outputs(graph, kmodel(x.movedim(1, -1).numpy(), training=False))
    keras_diffs = {}
    for name, value in want.items():
        have = keras.ops.convert_to_numpy(kout[name])
        value = value.movedim(1, -1) if value.ndim == 4 else value
        keras_diffs[name] = float(np.abs(have - value.numpy()).max())
    report_diffs(f"{case_id(case)} {suffix}", diffs, keras_diffs)


def test_the_original_pytorch_vq_vae_is_equal_up_to_its_quantizer(tmp_path):
    """The original PyTorch quantizer views the NCHW tensor as rows of D values (each row mixes
    positions), which no spec quantizer does; its weights still port whole, and everything up to
    the quantizer, and the decoder on the same codes, equal the original's."""
    settings = {**SMALL, "bottleneck_dim": 4}
    torch.manual_seed(0)
    original = resnetae_torch.ResNetVQVAE((3, 16, 16), **original_kwargs("ResNetVQVAE", settings))
    randomise_batch_norm_torch(original)
    original.eval()
    checkpoint = tmp_path / "vqvae.pt"
    torch.save(original.state_dict(), checkpoint)
    overrides = {**spec_settings("ResNetVQVAE", settings), **TORCH_BN}
    graph, report, ours, _ = ported_models(
        SPECS / "resnet_vqvae.yaml", overrides, checkpoint, tmp_path
    )
    assert report.transposed == ["vq_vae.embedding"]
    seen = {}
    original.pre_vq_conv.register_forward_hook(lambda m, i, o: seen.__setitem__("theirs", o))
    ours.bottleneck.pre_quant.register_forward_hook(lambda m, i, o: seen.__setitem__("ours", o))
    x = sample(settings)
    with torch.no_grad():
        _, quantized, _, _ = original.vq_vae(original.pre_vq_conv(original.encoder(x)))
        want = original.decoder(quantized)
        ours(x)
        assert (seen["ours"] - seen["theirs"]).abs().max().item() <= TOLERANCE
        # the generated decoder, given the original's codes
        got = ours.decoder(quantized)
    assert (got - want).abs().max().item() <= TOLERANCE


# ----------------------------------------------------------------------------------------------
# The TensorFlow original's weights files.


@pytest.fixture
def resnetae_keras():
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow original needs the TensorFlow backend")
    import resnetae_keras

    yield resnetae_keras
    resnetae_keras.NOISE = None


def randomise_batch_norm_keras(model) -> None:
    rng = np.random.default_rng(4)
    for variable in model.weights:
        path = variable.path
        if "batch_normalization" not in path:
            continue
        low, high = (0.5, 1.5) if path.endswith(("gamma", "moving_variance")) else (-0.3, 0.3)
        variable.assign(rng.uniform(low, high, variable.shape).astype("float32"))


@pytest.mark.parametrize("case", CASES[:3], ids=case_id)
def test_original_tensorflow_weights_port_into_both_models(tmp_path, case, resnetae_keras):
    model_name, settings = case
    size, _, channels = settings["input_shape"]
    keras.utils.set_random_seed(0)
    original = getattr(resnetae_keras, model_name)(
        (size, size, channels), **original_kwargs(model_name, settings)
    )
    x = sample(settings).movedim(1, -1).numpy()
    original(x)  # builds it
    randomise_batch_norm_keras(original)
    checkpoint = tmp_path / "original.weights.h5"
    original.save_weights(str(checkpoint))
    spec = SPECS / f"{SPEC_OF[model_name]}.yaml"
    graph, report, ours, kmodel = ported_models(
        spec, spec_settings(model_name, settings), checkpoint, tmp_path
    )
    assert report.library == "ResNetAE (TensorFlow)" and not report.reordered
    eps = np.random.default_rng(2).standard_normal((2, settings["bottleneck_dim"]), "float32")
    if model_name == "ResNetVAE":
        resnetae_keras.NOISE = eps
        set_noise(ours, torch.from_numpy(eps), "torch")
        set_noise(kmodel, torch.from_numpy(eps), "keras")
        want = dict(
            zip(("reconstruction", "mu", "logvar"), original(x, training=False), strict=True)
        )
    else:
        want = {"reconstruction": original(x, training=False)}
    want = {k: keras.ops.convert_to_numpy(v) for k, v in want.items()}
    kout = outputs(graph, kmodel(x, training=False))
    with torch.no_grad():
        tout = outputs(graph, ours(torch.from_numpy(x).movedim(-1, 1)))
    diffs, keras_diffs = {}, {}
    for name, value in want.items():
        keras_diffs[name] = float(np.abs(keras.ops.convert_to_numpy(kout[name]) - value).max())
        have = tout[name].movedim(1, -1) if tout[name].ndim == 4 else tout[name]
        diffs[name] = float(np.abs(have.numpy() - value).max())
    report_diffs(f"TensorFlow {case_id(case)}", diffs, keras_diffs)


def test_the_tensorflow_vq_vae_file_lacks_its_codebook(tmp_path, resnetae_keras, capsys):
    """The TF original keeps its codebook in a variable Keras does not save: the port says so
    by name, and writes nothing."""
    settings = {**SMALL, "bottleneck_dim": 4}
    original = resnetae_keras.ResNetVQVAE((16, 16, 3), **original_kwargs("ResNetVQVAE", settings))
    original(sample(settings).movedim(1, -1).numpy())
    checkpoint = tmp_path / "vqvae.weights.h5"
    original.save_weights(str(checkpoint))
    out = tmp_path / "out.safetensors"
    sets = [
        f"--set={k}={v}".replace(" ", "") for k, v in spec_settings("ResNetVQVAE", settings).items()
    ]
    code = main(
        [
            "port-weights",
            str(SPECS / "resnet_vqvae.yaml"),
            "--from",
            str(checkpoint),
            "-o",
            str(out),
            *sets,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "lacks 1 tensor that the model needs: 'bottleneck.quantizer.embedding.weight'" in err
    assert "ResNetAE (TensorFlow)" in err


def test_a_library_is_chosen_by_name_and_a_wrong_format_is_refused(tmp_path):
    settings = {**SMALL, "bottleneck_dim": 6}
    original = resnetae_torch.ResNetAE((16, 16, 3), **original_kwargs("ResNetAE", settings))
    checkpoint = tmp_path / "ae.safetensors"
    save_file(original.state_dict(), str(checkpoint))
    spec = SPECS / "resnet_ae.yaml"
    report = specgen.port_weights(
        spec, checkpoint, tmp_path / "a.safetensors", settings, library="resnetae (pytorch)"
    )
    assert report.library == "ResNetAE (PyTorch)"
    with pytest.raises(SpecErrors, match="maps keras checkpoints, and this one is a pytorch"):
        specgen.port_weights(
            spec, checkpoint, tmp_path / "b.safetensors", settings, library="ResNetAE (TensorFlow)"
        )
    with pytest.raises(SpecErrors, match="no mapping for library 'MONAI'") as info:
        specgen.port_weights(
            spec, checkpoint, tmp_path / "c.safetensors", settings, library="MONAI"
        )
    assert "'ResNetAE (PyTorch)', 'ResNetAE (TensorFlow)'" in str(info.value)
    assert not (tmp_path / "b.safetensors").exists() and not (tmp_path / "c.safetensors").exists()


def test_a_checkpoint_of_other_settings_is_refused_with_the_closest_naming(tmp_path):
    """A checkpoint of another depth: every mapping is tried; the error shows the closest."""
    settings = {**SMALL, "bottleneck_dim": 6}
    original = resnetae_torch.ResNetAE(
        (16, 16, 3), **original_kwargs("ResNetAE", {**settings, "n_residual_blocks": 3})
    )
    checkpoint = tmp_path / "ae.safetensors"
    save_file(original.state_dict(), str(checkpoint))
    with pytest.raises(SpecErrors) as info:
        specgen.port_weights(
            SPECS / "resnet_ae.yaml", checkpoint, tmp_path / "o.safetensors", settings
        )
    text = str(info.value)
    assert "(as 'decoder.level0.blocks.block2.bn1.bias')" in text
    assert "named by ResNetAE (PyTorch)'s names, the closest" in text
    assert not (tmp_path / "o.safetensors").exists()


# ----------------------------------------------------------------------------------------------
# The Keras AutoEncoder's weights file.


@pytest.mark.parametrize("widths", [[16, 8, 8], [8], [8, 4]], ids=str)
def test_original_keras_autoencoder_weights_port_into_both_models(tmp_path, widths):
    pytest.importorskip("tensorflow")
    import conv_autoencoder_keras

    keras.utils.set_random_seed(0)
    original = conv_autoencoder_keras.autoencoder(widths, (16, 16, 3))
    randomise_batch_norm_keras(original)
    checkpoint = tmp_path / "autoencoder.weights.h5"
    original.save_weights(str(checkpoint))
    settings = {"layers": widths, "input_shape": [16, 16, 3]}
    graph, report, ours, kmodel = ported_models(
        SPECS / "conv_autoencoder.yaml", settings, checkpoint, tmp_path
    )
    assert report.library == "Keras AutoEncoder"
    x = sample(settings)
    want = keras.ops.convert_to_numpy(original(x.movedim(1, -1).numpy(), training=False))
    have = keras.ops.convert_to_numpy(kmodel(x.movedim(1, -1).numpy(), training=False))
    keras_diff = float(np.abs(have - want).max())
    with torch.no_grad():
        have = ours(x).movedim(1, -1).numpy()
    torch_diff = float(np.abs(have - want).max())
    report_diffs(f"Keras AutoEncoder {widths}", {"out": torch_diff}, {"out": keras_diff})
