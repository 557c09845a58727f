"""specgen port-weights: a library's checkpoint, renamed by the spec's ``weights_from`` section,
loaded into both generated models.

For each zoo spec with a mapping, the library's randomly initialised model is saved as a real
checkpoint (``.safetensors``, and a PyTorch ``.pt``), ported into the generated PyTorch model
(``.safetensors``) and the Keras one (``.weights.h5``); each generated model, loading the file
written, must give the library's outputs in inference. A checkpoint with a tensor too many or too
few is refused by name and nothing is written; bfloat16 tensors are converted and reported; a
malicious pickle is refused without being run; a truncated file is a clean error.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("keras")

from safetensors.torch import load_file, save_file  # noqa: E402

import specgen  # noqa: E402
from specgen.api import build_graph  # noqa: E402
from specgen.cli import main  # noqa: E402
from specgen.codegen.compiled import compile_module  # noqa: E402
from specgen.codegen.pyview import forward_names  # noqa: E402
from specgen.errors import SpecErrors  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
KL = ZOO / "diffusers_autoencoder_kl.yaml"
VQ = ZOO / "diffusers_vq_model.yaml"
FACTORIZED = ZOO / "compressai_factorized_prior.yaml"
TOLERANCE = 1e-5

KL_SMALL = {
    "input_shape": [16, 16, 3],
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "latent_channels": 2,
}
VQ_SMALL = {
    "input_shape": [16, 16, 3],
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "latent_channels": 3,
    "vq_embed_dim": 3,
    "num_vq_embeddings": 16,
}
FACTORIZED_SMALL = {"N": 8, "M": 12, "input_shape": [32, 32, 3]}


def diffusers_model(cls, overrides: dict):
    blocks = len(overrides["block_out_channels"])
    kwargs = {k: v for k, v in overrides.items() if k != "input_shape"}
    kwargs["block_out_channels"] = tuple(kwargs["block_out_channels"])
    channels = overrides["input_shape"][-1]
    torch.manual_seed(0)
    model = cls(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        **kwargs,
    )
    if cls is diffusers.VQModel:
        # codes spread like the latents, so that the nearest code is not decided by rounding
        with torch.no_grad():
            model.quantize.embedding.weight.normal_(generator=torch.Generator().manual_seed(2))
    return model.eval()


def kl_reference(model, x):
    return model(x).sample


def vq_reference(model, x):
    return model(x).sample


def factorized_model(compressai):
    torch.manual_seed(0)
    model = compressai.models.FactorizedPrior(FACTORIZED_SMALL["N"], FACTORIZED_SMALL["M"])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # quantiles off their initial values, as after training
        model.entropy_bottleneck.quantiles.add_(
            torch.randn(model.entropy_bottleneck.quantiles.shape, generator=generator) * 0.5
        )
    return model.eval()


def sample(graph) -> torch.Tensor:
    *spatial, channels = graph.input_shape
    return torch.randn(2, channels, *spatial, generator=torch.Generator().manual_seed(1))


def reconstruction(graph, output):
    """The reconstruction among a generated model's outputs."""
    if not isinstance(output, (tuple, list)):
        return output
    return output[forward_names(graph).index("reconstruction")]


def check_both_models(spec: Path, overrides: dict, checkpoint: Path, want, x, tmp_path):
    """Port ``checkpoint`` into both generated models; each must reproduce ``want``. The report
    carries the largest differences measured (``report.diffs``: PyTorch's, Keras')."""
    graph = build_graph(spec, overrides)
    torch_file = tmp_path / "ported.safetensors"
    keras_file = tmp_path / "ported.weights.h5"
    report = specgen.port_weights(spec, checkpoint, torch_file, overrides)
    assert report.lines()[-1].startswith(f"wrote {torch_file}")
    ours = compile_module(graph, "torch").build_model()
    ours.load_state_dict(load_file(str(torch_file)), strict=True)
    ours.eval()
    with torch.no_grad():
        have = reconstruction(graph, ours(x))
    torch_diff = (have - want).abs().max().item()
    assert torch_diff <= TOLERANCE

    assert (
        main(
            ["port-weights", str(spec), "--from", str(checkpoint), "-o", str(keras_file)]
            + [f"--set={k}={v}".replace(" ", "") for k, v in overrides.items()]
        )
        == 0
    )
    kmodel = compile_module(graph, "keras").build_model()
    kmodel.load_weights(str(keras_file))
    import keras

    have_k = keras.ops.convert_to_numpy(
        reconstruction(graph, kmodel(x.movedim(1, -1).numpy(), training=False))
    )
    keras_diff = np.abs(have_k - want.movedim(1, -1).numpy()).max()
    assert keras_diff <= TOLERANCE
    report.diffs = (torch_diff, float(keras_diff))
    print(f"\n{spec.stem} {overrides}: max |diff| PyTorch {torch_diff:.2e}, Keras {keras_diff:.2e}")
    return report


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_autoencoder_kl_ports_into_both_models(tmp_path, suffix):
    theirs = diffusers_model(diffusers.AutoencoderKL, KL_SMALL)
    checkpoint = tmp_path / f"diffusion_pytorch_model{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": theirs.state_dict(), "epoch": 3}, checkpoint)
    else:
        save_file(theirs.state_dict(), str(checkpoint))
    x = sample(build_graph(KL, KL_SMALL))
    with torch.no_grad():
        want = kl_reference(theirs, x)
    report = check_both_models(KL, KL_SMALL, checkpoint, want, x, tmp_path)
    n = len(theirs.state_dict())
    assert report.lines()[0].startswith(f"matched {n} tensors of the diffusers checkpoint")


def test_vq_model_ports_into_both_models(tmp_path):
    theirs = diffusers_model(diffusers.VQModel, VQ_SMALL)
    checkpoint = tmp_path / "vq.safetensors"
    save_file(theirs.state_dict(), str(checkpoint))
    x = sample(build_graph(VQ, VQ_SMALL))
    with torch.no_grad():
        want = vq_reference(theirs, x)
    check_both_models(VQ, VQ_SMALL, checkpoint, want, x, tmp_path)


def test_factorized_prior_ports_into_both_models(tmp_path, compressai):
    theirs = factorized_model(compressai)
    checkpoint = tmp_path / "factorized.safetensors"
    save_file(theirs.state_dict(), str(checkpoint))
    x = sample(build_graph(FACTORIZED, FACTORIZED_SMALL))
    with torch.no_grad():
        want = theirs(x)["x_hat"]
    report = check_both_models(FACTORIZED, FACTORIZED_SMALL, checkpoint, want, x, tmp_path)
    # compressai's derived constants and CDF tables are left out, each named
    ignored = next(line for line in report.lines() if "that the spec ignores" in line)
    assert "'entropy_bottleneck._quantized_cdf'" in ignored
    assert "'g_a.1.beta_reparam.pedestal'" in ignored


MONAI_3D = {"input_shape": [16, 16, 16, 1], "channels": [4, 8, 16]}
MONAI_CASES = [
    (spec, overrides)
    for spec, strides in (
        ("monai_autoencoder", [2, 2, 2]),
        ("monai_unet", [2, 2]),
        ("monai_varautoencoder", [1, 2, 2]),
    )
    for overrides in ({}, {**MONAI_3D, "strides": strides}, {"num_res_units": 1})
] + [
    ("monai_unet", {"input_shape": [64, 2], "channels": [4, 8], "strides": [2], "norm": "BATCH"}),
    (
        "monai_autoencoder",
        {"num_res_units": 2, "inter_channels": [8, 16], "inter_dilations": [1, 2]},
    ),
    ("monai_varautoencoder", {"num_res_units": 1, "inter_channels": [32, 64]}),
]


def monai_model(spec: str, graph):
    """MONAI's network for the spec's parameter values (its arguments, by the same names)."""
    nets = pytest.importorskip("monai.networks.nets")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in graph.parameters.items()}
    *spatial, in_channels = values.pop("input_shape")
    values["spatial_dims"] = len(spatial)
    if spec == "monai_varautoencoder":
        values["in_shape"] = (in_channels, *spatial)
        cls = nets.VarAutoEncoder
    else:
        values["in_channels"] = in_channels
        cls = nets.UNet if spec == "monai_unet" else nets.AutoEncoder
    torch.manual_seed(0)
    model = cls(**values)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # batch statistics off their initial values, as after training
        for name, buffer in model.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    return model.eval()


def monai_id(case) -> str:
    spec, overrides = case
    return (
        spec.removeprefix("monai_")
        + "-"
        + (",".join(f"{k}={v}" for k, v in overrides.items()).replace(" ", "") or "defaults")
    )


@pytest.mark.parametrize("case", MONAI_CASES, ids=monai_id)
def test_monai_ports_into_both_models(tmp_path, case):
    spec, overrides = case
    path = ZOO / f"{spec}.yaml"
    graph = build_graph(path, overrides)
    theirs = monai_model(spec, graph)
    checkpoint = tmp_path / "monai.safetensors"
    save_file(theirs.state_dict(), str(checkpoint))
    x = sample(graph)
    with torch.no_grad():
        want = theirs(x)
    want = want[0] if isinstance(want, tuple) else want
    report = check_both_models(path, overrides, checkpoint, want, x, tmp_path)
    n = len(theirs.state_dict())
    assert report.lines()[0].startswith(f"matched {n} tensors of the MONAI checkpoint")
    torch_diff, keras_diff = report.diffs
    print(f"\n{monai_id(case)}: max |diff| PyTorch {torch_diff:.2e}, Keras {keras_diff:.2e}")


def kl_checkpoint(tmp_path, edit=None, dtype=None) -> Path:
    state = diffusers_model(diffusers.AutoencoderKL, KL_SMALL).state_dict()
    if edit is not None:
        edit(state)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    path = tmp_path / "kl.safetensors"
    save_file(state, str(path))
    return path


def port_cli(path: Path, out: Path, capsys) -> tuple[int, str, str]:
    sets = [f"--set={k}={v}".replace(" ", "") for k, v in KL_SMALL.items()]
    code = main(["port-weights", str(KL), "--from", str(path), "-o", str(out), *sets])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("output", ["out.safetensors", "out.weights.h5"])
def test_a_leftover_and_a_missing_tensor_are_named_and_nothing_is_written(tmp_path, capsys, output):
    def edit(state):
        state["encoder.extra_head.weight"] = torch.zeros(3)
        del state["decoder.conv_out.bias"]

    out = tmp_path / output
    code, _, err = port_cli(kl_checkpoint(tmp_path, edit), out, capsys)
    assert code == 1
    assert "the checkpoint lacks 1 tensor that the model needs: 'decoder.conv_out.bias'" in err
    assert "the checkpoint has 1 tensor that the model lacks: 'encoder.extra_head.weight'" in err
    assert not out.exists() and os.listdir(tmp_path) == ["kl.safetensors"]


def test_a_wrong_shape_is_named(tmp_path, capsys):
    def edit(state):
        state["encoder.down_blocks.1.resnets.0.conv1.weight"] = torch.zeros(16, 8, 5, 5)

    code, _, err = port_cli(kl_checkpoint(tmp_path, edit), tmp_path / "o.safetensors", capsys)
    assert code == 1
    assert (
        "'encoder.down_blocks.1.resnets.0.conv1.weight' (as "
        "'encoder.down_block1.resnet0.conv1.weight') has shape (16, 8, 5, 5), but the spec's "
        "model needs (16, 8, 3, 3)"
    ) in err


def test_bfloat16_is_converted_with_a_report_line(tmp_path, capsys):
    path = kl_checkpoint(tmp_path, dtype=torch.bfloat16)
    out = tmp_path / "out.safetensors"
    code, stdout, _ = port_cli(path, out, capsys)
    assert code == 0
    n = len(load_file(str(path)))
    assert f"converted {n} tensors from bfloat16 to float32 (exactly)" in stdout
    ported = load_file(str(out))
    source = load_file(str(path))
    assert all(t.dtype == torch.float32 for t in ported.values())
    key = "encoder.down_blocks.0.resnets.0.conv1.weight"
    assert torch.equal(ported["encoder.down_block0.resnet0.conv1.weight"], source[key].float())


class _WritesAFile:
    """A pickle that, if unpickled with code execution, writes a file."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


def test_a_malicious_pickle_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "executed.txt"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _WritesAFile(str(marker))}, handle)
    torch.save({"conv.weight": _WritesAFile(str(marker))}, tmp_path / "evil_zip.pt")
    for checkpoint in (path, tmp_path / "evil_zip.pt"):
        out = tmp_path / "out.safetensors"
        code, _, err = port_cli(checkpoint, out, capsys)
        assert code == 1
        assert "cannot read this PyTorch checkpoint safely" in err
        assert len([line for line in err.splitlines() if "error:" in line]) == 1
        assert not marker.exists() and not out.exists()


def test_a_truncated_safetensors_is_a_clean_error(tmp_path, capsys):
    path = kl_checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.weights.h5"
    code, _, err = port_cli(path, out, capsys)
    assert code == 1
    assert "not a valid safetensors file" in err
    assert not out.exists()


def test_a_spec_without_weights_from_is_refused(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "x.safetensors"
    save_file({"features.0.weight": np.zeros((2, 2), np.float32)}, str(foreign))
    with pytest.raises(SpecErrors, match="has no weights_from section"):
        specgen.port_weights(ZOO.parent / "res_ae_mnist.yaml", foreign, tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()


def test_the_specs_own_pytorch_weights_port_without_a_mapping(tmp_path, capsys):
    """A state dict of the generated PyTorch model itself needs no mapping: it is named as the
    model names it (and ports to the Keras model, computing the same function)."""
    spec = ZOO.parent / "conv_autoencoder.yaml"
    graph = specgen.build_graph(spec, layers=[8, 4])
    torch.manual_seed(3)
    model = compile_module(graph, "torch").build_model().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    own = tmp_path / "own.safetensors"
    from safetensors.torch import save_file

    save_file(dict(model.state_dict()), str(own))
    out = tmp_path / "own.weights.h5"
    report = specgen.port_weights(spec, own, out, layers=[8, 4])
    assert report.library == "PyTorch" and not report.renamed
    keras_model = compile_module(graph, "keras").build_model()
    keras_model.load_weights(str(out))
    x = sample(graph)
    with torch.no_grad():
        want = reconstruction(graph, model(x)).movedim(1, -1).numpy()
    got = reconstruction(graph, keras_model(x.movedim(1, -1).numpy(), training=False))
    assert np.abs(np.asarray(got) - want).max() <= TOLERANCE


def test_a_bad_pattern_is_a_located_error(tmp_path):
    text = KL.read_text().replace(r"'\.upsamplers\.0\.'", r"'\.upsamplers\.(0\.'")
    with pytest.raises(SpecErrors) as info:
        specgen.load_spec(text=text, filename="kl.yaml")
    rendered = info.value.render()
    assert "not a valid regular expression" in rendered
    line = next(i for i, t in enumerate(text.splitlines(), 1) if r"upsamplers\.(0" in t)
    assert f"kl.yaml:{line}:" in rendered


def test_a_layout_note_transposes_the_tensors_it_matches(tmp_path, capsys):
    note = "  layout:\n    - {match: 'attentions\\.0\\.to_q\\.weight$', layout: transpose}\n"
    loaded = specgen.load_spec(text=KL.read_text() + note, filename=str(KL))
    state = diffusers_model(diffusers.AutoencoderKL, KL_SMALL).state_dict()
    stored = {
        k: v.T.contiguous() if k.endswith("attentions.0.to_q.weight") else v
        for k, v in state.items()
    }
    path = tmp_path / "kl.safetensors"
    save_file(stored, str(path))
    out = tmp_path / "out.safetensors"
    report = specgen.port_weights(loaded, path, out, KL_SMALL)
    ported = load_file(str(out))
    for part in ("encoder", "decoder"):
        key = f"{part}.mid_block.attentions.0.to_q.weight"
        assert torch.equal(ported[f"{part}.mid_block.attention.to_q.weight"], state[key])
        assert not torch.equal(stored[key], state[key])
    assert report.lines()[1] == (
        "transposed 2 tensors: 'decoder.mid_block.attentions.0.to_q.weight', "
        "'encoder.mid_block.attentions.0.to_q.weight'"
    )


KERAS_CASES = [
    ("monai_unet", {"channels": [4, 8], "strides": [2], "norm": "BATCH", "num_res_units": 1}),
    ("diffusers_autoencoder_kl", KL_SMALL),
]


@pytest.mark.parametrize("case", KERAS_CASES, ids=lambda case: case[0])
def test_keras_weights_port_to_pytorch_bit_for_bit(tmp_path, case):
    """A generated Keras model's own weights file (as after training in Keras) ports to the
    PyTorch model's .safetensors: every tensor equals the Keras variable it comes from, and the
    PyTorch model gives the Keras model's outputs."""
    import keras
    from specgen.convert import keras_to_torch_state, weight_map

    spec, overrides = case
    path = ZOO / f"{spec}.yaml"
    graph = build_graph(path, overrides)
    kmodel = compile_module(graph, "keras").build_model()
    generator = np.random.default_rng(4)
    for variable in kmodel.weights:  # every value off its initial one, positive for variances
        shape = tuple(variable.shape)
        values = (
            generator.uniform(0.5, 1.5, shape)
            if "variance" in variable.path
            else generator.normal(0.0, 0.3, shape)
        )
        variable.assign(values.astype("float32"))
    keras_file = tmp_path / "trained.weights.h5"
    kmodel.save_weights(str(keras_file))
    out = tmp_path / "ported.safetensors"
    report = specgen.port_weights(path, keras_file, out, overrides)
    ported = load_file(str(out))
    want = keras_to_torch_state(graph, kmodel)
    assert set(ported) == set(want)
    assert all(np.array_equal(ported[k].numpy(), want[k]) for k in want)
    n = len(list(weight_map(graph)))
    assert report.lines()[0] == f"matched {n} tensors of the Keras checkpoint (0 renamed)"

    ours = compile_module(graph, "torch").build_model()
    ours.load_state_dict(ported, strict=True)
    ours.eval()
    x = sample(graph)
    with torch.no_grad():
        have = reconstruction(graph, ours(x))
    have_k = keras.ops.convert_to_numpy(
        reconstruction(graph, kmodel(x.movedim(1, -1).numpy(), training=False))
    )
    diff = np.abs(have.movedim(1, -1).numpy() - have_k).max()
    print(f"\n{spec}: Keras -> PyTorch max |diff| {diff:.2e}")
    assert diff <= TOLERANCE


def keras_weights(tmp_path) -> tuple[Path, dict]:
    overrides = {"channels": [4, 8], "strides": [2]}
    graph = build_graph(ZOO / "monai_unet.yaml", overrides)
    path = tmp_path / "model.weights.h5"
    compile_module(graph, "keras").build_model().save_weights(str(path))
    return path, overrides


def port_keras(path: Path, overrides: dict, out: Path, capsys) -> tuple[int, str]:
    sets = [f"--set={k}={v}".replace(" ", "") for k, v in overrides.items()]
    spec = str(ZOO / "monai_unet.yaml")
    code = main(["port-weights", spec, "--from", str(path), "-o", str(out), *sets])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", ["port-weights", "convert-weights"])
def test_an_hdf5_external_link_is_refused(tmp_path, capsys, command):
    import h5py

    path, overrides = keras_weights(tmp_path)
    secret = tmp_path / "elsewhere.h5"
    with h5py.File(secret, "w") as handle:
        handle["data"] = np.ones((4,), dtype="float32")
    with h5py.File(path, "a") as handle:
        del handle["encoder/down_0/convolution/conv/vars/1"]
        handle["encoder/down_0/convolution/conv/vars/1"] = h5py.ExternalLink(str(secret), "/data")
    out = tmp_path / "out.safetensors"
    if command == "port-weights":
        code, err = port_keras(path, overrides, out, capsys)
    else:  # the same walk guards convert-weights
        sets = [f"--set={k}={v}".replace(" ", "") for k, v in overrides.items()]
        code = main([command, str(ZOO / "monai_unet.yaml"), str(path), str(out), *sets])
        err = capsys.readouterr().err
    assert code == 1
    assert (
        "cannot read this Keras weights file safely: 'encoder/down_0/convolution/conv/vars/1'"
        in err
    )
    assert "is an external link (to '" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not out.exists()


def test_an_hdf5_virtual_dataset_and_a_shape_bomb_are_refused(tmp_path, capsys):
    import h5py

    path, overrides = keras_weights(tmp_path)
    name = "encoder/down_0/convolution/conv/vars/1"
    with h5py.File(path, "a") as handle:
        del handle[name]
        layout = h5py.VirtualLayout(shape=(4,), dtype="float32")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "data", shape=(4,))
        handle.create_virtual_dataset(name, layout)
    out = tmp_path / "out.safetensors"
    code, err = port_keras(path, overrides, out, capsys)
    assert code == 1 and f"'{name}' is a virtual dataset" in err

    path, overrides = keras_weights(tmp_path)
    with h5py.File(path, "a") as handle:  # declared, never written: a small file
        del handle[name]
        handle.create_dataset(name, shape=(2**40, 2**20), dtype="float32", chunks=(1, 1))
    assert path.stat().st_size < 1_000_000
    code, err = port_keras(path, overrides, out, capsys)
    assert code == 1
    assert f"'{name}' declares the shape (1099511627776, 1048576), more than" in err
    assert not out.exists()


@pytest.mark.parametrize("bomb", ["shape", "header"])
def test_a_safetensors_bomb_is_refused_without_allocating(tmp_path, capsys, bomb):
    import json
    import tracemalloc

    path = tmp_path / "bomb.safetensors"
    if bomb == "shape":
        header = {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}
        raw = json.dumps(header).encode()
        path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(16))
        expected = "tensor 'w' has 16 bytes of data, not (1099511627776, 1099511627776) x F32"
    else:
        path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
        expected = f"its header claims {2**62} bytes, more than the file has"
    out = tmp_path / "out.safetensors"
    tracemalloc.start()
    try:
        code, _, err = port_cli(path, out, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 1
    assert "not a valid safetensors file" in err and expected in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert peak < 50 * 2**20 and not out.exists()


def test_a_renaming_loop_is_validated_where_it_is_written(tmp_path):
    unet = (ZOO / "monai_unet.yaml").read_text()
    for broken, message in (
        ("      in: ${len(channels) - 1}\n", "needs both 'for' and 'in'"),
        ('\'^${"model." + "1.submodule." * i}0\\.\'', "invalid expression"),
    ):
        assert broken in unet
        text = unet.replace(broken, "'^${\"model.\" + }0\\.'" if "model" in broken else "", 1)
        with pytest.raises(SpecErrors) as info:
            specgen.load_spec(text=text, filename="unet.yaml")
        rendered = info.value.render()
        assert message in rendered and "unet.yaml:" in rendered
    # an expression that fails only for the values given is located at its step
    text = unet.replace('1.submodule." * i}0', '1.submodule." * i}${channels[9]}', 1)
    with pytest.raises(SpecErrors) as info:
        specgen.port_weights(
            specgen.load_spec(text=text, filename=str(ZOO / "monai_unet.yaml")),
            kl_checkpoint(tmp_path),
            tmp_path / "o.safetensors",
        )
    rendered = info.value.render()
    assert "index 9 is out of range" in rendered and "weights_from.rename[0]" in rendered


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(\w+)+\.", "a repetition inside another repetition"),
        (r"(?:a|ab)*\.", r"alternatives \(\|\) inside a repetition"),
        (r"a*b*c*\.", "at most 2 repetitions"),
        (r"(up)\1", "backreferences are not allowed"),
    ],
)
def test_patterns_that_could_match_for_ever_are_refused_where_they_are_written(pattern, why):
    text = KL.read_text().replace(r"'\.upsamplers\.0\.'", f"'{pattern}'")
    with pytest.raises(SpecErrors, match=why) as info:
        specgen.load_spec(text=text, filename="kl.yaml")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if pattern in t)
    assert f"kl.yaml:{line}:" in info.value.render()


def test_a_renaming_step_that_grows_names_without_end_is_stopped(tmp_path, capsys):
    # each step doubles the name: unbounded, it would need 2**40 characters after 40 tensors
    text = KL.read_text().replace(
        r"- {match: '\.upsamplers\.0\.', to: '.upsampler.'}",
        r"- {match: '^(.+)$', to: '\1\1', for: k, in: 40}",
    )
    spec = tmp_path / "kl.yaml"
    spec.write_text(text)
    sets = [f"--set={k}={v}".replace(" ", "") for k, v in KL_SMALL.items()]
    out = tmp_path / "o.safetensors"
    code = main(
        ["port-weights", str(spec), "--from", str(kl_checkpoint(tmp_path)), "-o", str(out), *sets]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "longer than 1024 characters" in err
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# --match order, with and without a reference model.

FIXTURES = Path(__file__).resolve().parent / "port_fixtures"
TINY_AE = f"{FIXTURES / 'tiny_ae.py'}:TinyAE"
TINY_SPEC = """\
specgen: 1
name: tiny_ae
parameters:
  input_shape: [8, 8, 1]
input:
  shape: ${input_shape}
encoder:
  - {kind: conv, name: conv, filters: 4, kernel_size: 3, strides: 2, padding: 1}
  - {kind: relu, name: relu}
bottleneck:
  - {kind: flatten, name: flatten, order: channels_first}
  - {kind: dense, name: down, units: 6}
  - {kind: dense, name: up, units: "${prod(in_shape)}"}
  - {kind: reshape, name: view, target_shape: "${in_shape}", order: channels_first}
decoder:
  - {kind: conv_transpose, name: out, filters: 1, kernel_size: 3, strides: 2, padding: 1,
     output_padding: 1}
"""


def tiny_checkpoint(tmp_path, suffix=".safetensors", edit=None) -> tuple[Path, Path]:
    from tests.port_fixtures.tiny_ae import TinyAE

    torch.manual_seed(0)
    state = TinyAE().state_dict()
    if edit is not None:
        edit(state)
    spec = tmp_path / "tiny_ae.yaml"
    spec.write_text(TINY_SPEC)
    checkpoint = tmp_path / f"tiny{suffix}"
    if suffix == ".pt":
        torch.save(state, checkpoint)
    else:
        save_file(state, str(checkpoint))
    return spec, checkpoint


def test_order_with_a_reference_ports_a_user_model(tmp_path, capsys):
    from tests.port_fixtures.tiny_ae import TinyAE

    spec, checkpoint = tiny_checkpoint(tmp_path)
    out = tmp_path / "ported.safetensors"
    args = ["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out)]
    code = main([*args, "--match", "order", "--reference", TINY_AE])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "paired the tensors by the order TinyAE calls its modules in and shape" in stdout
    diff = float(stdout.split("max |difference| of the outputs ")[1].split()[0])
    assert diff <= TOLERANCE
    # TinyAE registers down/up after the decoder; the call order pairs them with the bottleneck
    theirs = TinyAE()
    theirs.load_state_dict(load_file(str(checkpoint)))
    ours = compile_module(build_graph(spec), "torch").build_model()
    ours.load_state_dict(load_file(str(out)), strict=True)
    x = sample(build_graph(spec))
    with torch.no_grad():
        assert (ours.eval()(x) - theirs.eval()(x)).abs().max().item() <= TOLERANCE


def test_order_without_a_reference_follows_the_checkpoint(tmp_path, capsys):
    # registration order (a .pt keeps it): TinyAE's decoder comes before its bottleneck
    spec, checkpoint = tiny_checkpoint(tmp_path, ".pt")
    out = tmp_path / "o.safetensors"
    code = main(["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out),
                 "--match", "order"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "paired by order, tensor 3 of the checkpoint, 'decoder.0.weight' of shape (4, 1, 3, 3), "
        "meets 'bottleneck.down.weight' of the spec's model, of shape (6, 64)"
    ) in err
    assert "needs --reference" in err
    assert not out.exists()


def test_order_refuses_a_wrong_shape_by_name_and_writes_nothing(tmp_path, capsys):
    def edit(state):
        state["down.weight"] = torch.zeros(7, 64)
        state["down.bias"] = torch.zeros(7)
        state["up.weight"] = torch.zeros(64, 7)

    spec, checkpoint = tiny_checkpoint(tmp_path, ".pt", edit)
    out = tmp_path / "o.safetensors"
    code = main(["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out),
                 "--match", "order", "--reference", TINY_AE,
                 "--reference-kwargs", '{"latent": 7}'])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "'down.weight' of shape (7, 64), meets 'bottleneck.down.weight' of the spec's model, "
        "of shape (6, 64)"
    ) in err
    assert not out.exists()


def in_call_order(state):
    for name in ("decoder.0.weight", "decoder.0.bias"):
        state.move_to_end(name)


def test_order_without_a_reference_ports_a_checkpoint_in_the_models_order(tmp_path, capsys):
    spec, checkpoint = tiny_checkpoint(tmp_path, ".pt", in_call_order)
    out = tmp_path / "o.safetensors"
    code = main(["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out),
                 "--match", "order"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    assert "matched 8 tensors of the source checkpoint (8 renamed)" in stdout
    assert "paired the tensors by the checkpoint's order and shape" in stdout
    ported = load_file(str(out))
    source = torch.load(checkpoint, weights_only=True)
    assert torch.equal(ported["bottleneck.down.weight"], source["down.weight"])
    assert torch.equal(ported["decoder.out.bias"], source["decoder.0.bias"])


def test_order_refuses_a_tensor_too_many_by_name(tmp_path, capsys):
    def edit(state):
        in_call_order(state)
        state["extra.weight"] = torch.zeros(3)

    spec, checkpoint = tiny_checkpoint(tmp_path, ".pt", edit)
    out = tmp_path / "o.safetensors"
    code = main(["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out),
                 "--match", "order"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "the checkpoint has 9 tensors and the spec's model 8" in err
    assert "the checkpoint has 'extra.weight' (tensor 9)" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("reference", "kwargs", "message"),
    [
        ("nowhere.py:TinyAE", None, "there is no file nowhere.py"),
        (f"{FIXTURES / 'tiny_ae.py'}:Missing", None, "has no Missing"),
        (TINY_AE, "[1]", "not a JSON object"),
        (TINY_AE, "{bad", "not valid JSON"),
        (TINY_AE, '{"width": 5}', "the checkpoint does not load into it"),
        ("TinyAE", None, "cannot tell the module and the class apart"),
    ],
)
def test_a_bad_reference_is_a_clean_error(tmp_path, capsys, reference, kwargs, message):
    spec, checkpoint = tiny_checkpoint(tmp_path)
    out = tmp_path / "o.safetensors"
    extra = [] if kwargs is None else ["--reference-kwargs", kwargs]
    code = main(["port-weights", str(spec), "--from", str(checkpoint), "-o", str(out),
                 "--match", "order", "--reference", reference, *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and message in err and "--reference" in err
    assert not out.exists()


@pytest.mark.parametrize("overrides", [{}, {"act": "RELU", "norm": "BATCH"}], ids=["default", "bn"])
def test_monai_varautoencoder_ports_by_call_order(tmp_path, overrides):
    # (residual units are not paired by order: MONAI calls a unit's shortcut before its convs)
    spec = ZOO / "monai_varautoencoder.yaml"
    graph = build_graph(spec, overrides)
    theirs = monai_model("monai_varautoencoder", graph)
    checkpoint = tmp_path / "vae.safetensors"
    save_file(theirs.state_dict(), str(checkpoint))
    kwargs = {
        "spatial_dims": 2,
        "in_shape": [1, 32, 32],
        "out_channels": 1,
        "latent_size": 2,
        "channels": [16, 32, 64],
        "strides": [1, 2, 2],
        **overrides,
    }
    out = tmp_path / "ported.safetensors"
    # the spec's own names are not used: its weights_from section is dropped
    text = spec.read_text().split("\nweights_from:")[0]
    loaded = specgen.load_spec(text=text, filename=str(spec))
    assert loaded.document.weights_from is None
    report = specgen.port_weights(
        loaded,
        checkpoint,
        out,
        overrides,
        match="order",
        reference="monai.networks.nets:VarAutoEncoder",
        reference_kwargs=kwargs,
    )
    assert report.reference_diff <= TOLERANCE
    n = len(theirs.state_dict())
    assert report.lines()[0].startswith(f"matched {n} tensors of the VarAutoEncoder checkpoint")
    ours = compile_module(graph, "torch").build_model()
    ours.load_state_dict(load_file(str(out)), strict=True)
    x = sample(graph)
    with torch.no_grad():
        diff = (reconstruction(graph, ours.eval()(x)) - theirs(x)[0]).abs().max().item()
    assert diff <= TOLERANCE
    print(f"\nVarAutoEncoder {overrides}: reference diff {report.reference_diff:.2e}, {diff:.2e}")
