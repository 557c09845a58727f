"""The Keras target, and proof that the PyTorch and Keras models are the same network."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import specgen.keras as sgk  # noqa: E402
from specgen.api import build_graph  # noqa: E402
from specgen.cli import main  # noqa: E402
from specgen.codegen.program import INLINE_OPS  # noqa: E402
from specgen.convert import keras_layer  # noqa: E402
from specgen.verify import verify  # noqa: E402

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


def load_generated(path):
    spec = importlib.util.spec_from_file_location(f"kgen_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


@pytest.mark.parametrize("name", SPECS)
def test_generated_keras_model_runs_and_matches_the_graph(repo_root, name):
    graph = build_graph(repo_root / "specs" / f"{name}.yaml")
    module = load_generated(repo_root / "generated" / name / "keras_model.py")
    model = module.build_model()
    assert counts(model) == graph.counts()[:2]
    for node in graph.nodes:  # the same attribute paths as the PyTorch model
        if node.kind not in INLINE_OPS:
            keras_layer(model, node.name)
    h, w, c = graph.input_shape
    x = np.random.default_rng(0).random((2, h, w, c), dtype=np.float32)
    outputs = model(x, training=True)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    refs = dict(graph.outputs)
    from specgen.codegen.pyview import forward_names

    for out_name, out in zip(forward_names(graph), outputs, strict=True):
        shape = graph.shape(refs[out_name])
        assert tuple(out.shape) == ((2, *shape) if shape else ()), out_name
        if out.dtype.is_floating:
            assert bool(tf.reduce_all(tf.math.is_finite(out)))


def test_summary_reports_the_graph_counts(repo_root, capsys):
    graph = build_graph(repo_root / "specs" / "resnet_ae.yaml")
    model = load_generated(repo_root / "generated" / "resnet_ae" / "keras_model.py").build_model()
    model.summary()
    out = capsys.readouterr().out
    trainable, frozen, _ = graph.counts()
    assert f"Trainable params: {trainable:,}" in out
    assert f"Non-trainable params: {frozen:,}" in out


def test_training_step_updates_weights(repo_root):
    model = sgk.build(
        repo_root / "specs" / "resnet_vae.yaml",
        n_levels=2,
        n_residual_blocks=1,
        input_shape=[16, 16, 1],
    )
    optimizer = keras.optimizers.Adam(1e-3)
    x = np.random.default_rng(0).random((4, 16, 16, 1), dtype=np.float32)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        recon, mu, logvar = model(x, training=True)
        loss = tf.reduce_mean((recon - x) ** 2) + tf.reduce_mean(mu**2)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
    changed = sum(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights, strict=True)
    )
    assert changed == len(before)


def test_vae_sampling_traces_with_an_unknown_batch_size(repo_root):
    model = sgk.build(
        repo_root / "specs" / "resnet_vae.yaml",
        n_levels=2,
        n_residual_blocks=1,
        input_shape=[16, 16, 1],
    )

    @tf.function(input_signature=[tf.TensorSpec((None, 16, 16, 1), tf.float32)])
    def run(x):
        return model(x, training=True)

    for batch in (1, 3):
        recon, mu, _ = run(tf.random.uniform((batch, 16, 16, 1)))
        assert recon.shape == (batch, 16, 16, 1) and mu.shape[0] == batch


def test_codebook_is_a_tracked_weight(repo_root):
    model = sgk.build(
        repo_root / "specs" / "resnet_vqvae.yaml",
        n_levels=2,
        n_residual_blocks=1,
        input_shape=[16, 16, 1],
        num_embeddings=32,
    )
    names = [w.path for w in model.trainable_weights]
    assert any(p.endswith("codebook") for p in names)
    assert model.bottleneck.quantizer.codebook.shape == (32, 64)


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_passes_verify(repo_root, name):
    report = verify(build_graph(repo_root / "specs" / f"{name}.yaml"))
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}
    assert {r.part for r in report.rows} >= {"encoder", "decoder"}


VARIANTS = [
    ("resnet_ae", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [32, 48, 1]}),
    (
        "resnet_vae",
        {
            "n_levels": 3,
            "n_residual_blocks": 0,
            "input_shape": [32, 32, 3],
            "multires_skips": False,
        },
    ),
    ("resnet_vqvae", {"n_levels": 1, "n_residual_blocks": 2, "input_shape": [16, 16, 2]}),
    ("res_ae_mnist", {"batch_norm": True, "dropout_rate": 0.3, "units_per_block": 2}),
    # the depth kept through a strided decoder unit: the all-ones transposed-conv shortcut
    ("res_ae_mnist", {"decoder_blocks": [[32, 16, 2], [1, 8, 2]], "units_per_block": 2}),
    ("conv_autoencoder", {"layers": [8, 16, 32, 64], "input_shape": [32, 32, 1]}),
    ("unet_ae", {"n_levels": 2, "base_filters": 4, "input_shape": [16, 16, 1]}),
]


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=lambda v: str(v))
def test_variants_pass_verify(repo_root, name, overrides):
    report = verify(build_graph(repo_root / "specs" / f"{name}.yaml", overrides), seed=3)
    assert report.ok, report.table()


def test_verify_cli_prints_a_table_and_fails_when_outputs_differ(repo_root, capsys, monkeypatch):
    spec = str(repo_root / "specs" / "conv_autoencoder.yaml")
    assert main(["verify", spec, "--set", "layers=[8]"]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out and "PASS" in out
    # a real difference (here: kernels copied upside down) fails in float64 as well
    import specgen.convert as convert

    real = convert._to_keras
    monkeypatch.setattr(
        convert,
        "_to_keras",
        lambda a, layout: real(a, layout)[::-1] if layout == "conv" else real(a, layout),
    )
    assert main(["verify", spec, "--set", "layers=[8]"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "apart in float64" in out


def test_weights_round_trip_bit_exactly(repo_root, tmp_path, capsys):
    from safetensors.numpy import load_file, save_file

    import specgen.torch as sgt

    spec = repo_root / "specs" / "resnet_vqvae.yaml"
    sets = {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [16, 16, 1], "num_embeddings": 16}
    torch_model = sgt.build(spec, **sets)
    state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    first = tmp_path / "model.safetensors"
    save_file(state, str(first))
    argv = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    h5 = tmp_path / "model.weights.h5"
    back = tmp_path / "back.safetensors"
    assert main(["convert-weights", str(spec), *argv, str(first), str(h5)]) == 0
    assert main(["convert-weights", str(spec), *argv, str(h5), str(back)]) == 0
    again = load_file(str(back))
    assert set(again) == set(state)
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        assert np.array_equal(again[key], value), key
        assert again[key].dtype == value.dtype
    # the Keras model loaded from the .weights.h5 computes what the PyTorch model computes
    import torch

    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in again.items()})
    kmodel = sgk.build(spec, **sets)
    kmodel.load_weights(str(h5))
    x = np.random.default_rng(1).random((2, 16, 16, 1), dtype=np.float32)
    torch_model.eval()
    with torch.no_grad():
        t_recon = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2)))[1].numpy()
    k_recon = kmodel(x, training=False)[1].numpy()
    assert np.max(np.abs(t_recon.transpose(0, 2, 3, 1) - k_recon)) < 1e-4


def test_convert_weights_rejects_mismatched_weights(repo_root, tmp_path, capsys):
    from safetensors.numpy import save_file

    import specgen.torch as sgt

    spec = repo_root / "specs" / "conv_autoencoder.yaml"
    state = {k: v.numpy() for k, v in sgt.build(spec, layers=[8]).state_dict().items()}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    out = tmp_path / "w.weights.h5"
    assert main(["convert-weights", str(spec), "--set", "layers=[16]", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert "has shape" in err and not out.exists()
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    assert main(["convert-weights", str(spec), str(bogus), str(out)]) == 1
    assert "not a valid safetensors file" in capsys.readouterr().err
    assert main(["convert-weights", str(spec), str(path), str(tmp_path / "x.bin")]) == 1


@pytest.mark.parametrize("name", ["conv_autoencoder", "resnet_vae"])
def test_generated_keras_file_runs_as_a_script(repo_root, name):
    proc = subprocess.run(
        [sys.executable, str(repo_root / "generated" / name / "keras_model.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reconstruction:" in proc.stdout and "non-trainable parameters" in proc.stdout
    assert "UserWarning" not in proc.stderr


def test_model_input_and_encoder_features_reach_the_decoder(tmp_path):
    """A skip from the model input, and U-Net skips across a dense bottleneck."""
    from specgen.api import load_spec

    text = (
        "specgen: 1\nname: across\ninput: {shape: [4, 4, 1]}\n"
        "encoder:\n  - name: level0\n    layers:\n"
        "      - {kind: conv2d, name: conv, filters: 2, kernel_size: 3}\n"
        "      - {kind: max_pool, name: down, pool_size: 2}\n"
        "bottleneck: {kind: dense, units: 2}\n"
        "decoder:\n  - name: level0\n    layers:\n"
        "      - {kind: conv2d_transpose, name: up, filters: 2, kernel_size: 2, strides: 2}\n"
        "  - {kind: conv2d, name: out, filters: 1, kernel_size: 1}\n"
        "skips:\n"
        "  - {name: skip, from: encoder.level0.conv, to: decoder.level0.up, merge: concat}\n"
        "  - {name: raw, from: input, to: decoder.level0.up, merge: concat}\n"
    )
    graph = build_graph(load_spec(text=text, filename="across.yaml"))
    report = verify(graph)
    assert report.ok, report.table()
    import torch
    from specgen.codegen.compiled import compile_module

    model = compile_module(graph, "torch").build_model().eval()
    x = torch.rand(2, 1, 4, 4)
    assert model.encode(x).shape == (2, 2)
    assert model(x).shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("conv_autoencoder", {}),
        ("resnet_ae", {"input_shape": [16, 16, 3], "n_levels": 2, "n_residual_blocks": 1}),
    ],
)
def test_model_fit_trains_batch_norm_with_batch_statistics(repo_root, name, overrides):
    """Keras's own fit() calls the model with training=True, and every layer inside must see
    it: the loss fit reports is that of the training-mode output, and the moving statistics
    move."""
    module = sgk.load_module(repo_root / "specs" / f"{name}.yaml", **overrides)
    model, shape = module.build_model(), tuple(module.INPUT_SHAPE)
    x = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    training = float(np.mean((np.asarray(model(x, training=True)) - x) ** 2))
    inference = float(np.mean((np.asarray(model(x, training=False)) - x) ** 2))
    assert abs(training - inference) > 1e-4  # the two modes differ on this model
    moving = [w for w in model.non_trainable_weights if "moving_mean" in w.path]
    before = [w.numpy().copy() for w in moving]
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    history = model.fit(x, x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(training, rel=1e-5)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, moving, strict=True))


def test_every_generated_keras_model_takes_the_training_flag(repo_root):
    """fit() hands training=True on only to a model whose call takes it."""
    import ast

    files = sorted((repo_root / "generated").glob("*/keras_model.py"))
    assert len(files) >= 10
    for path in files:
        tree = ast.parse(path.read_text())
        models = [
            node
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base) == "keras.Model" for base in node.bases)
        ]
        assert len(models) == 1, path
        (call,) = [f for f in models[0].body if getattr(f, "name", "") == "call"]
        assert [a.arg for a in call.args.args][-1] == "training", path
        assert ast.unparse(call.args.defaults[-1]) == "None", path
