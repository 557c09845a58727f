"""Errors print as they read and say where: no control or bidirectional character of a spec or a
file name reaches the terminal, numbers that a float32 cannot hold are refused at validation,
``convert-weights`` checks every tensor before it writes, and the Python API's exceptions read
like the command line's messages. Every case runs the real CLI on real files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specgen.cli import main
from specgen.errors import SpecError, SpecErrors, terminal_safe

#: What must never be printed as it is: C0/C1 controls (but the newline that ends a line) and the
#: bidirectional and line-separating characters.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]"
)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"

TINY = """\
specgen: 1
name: tiny
input: {shape: [4, 4, 1]}
encoder:
  - {kind: conv2d, filters: 2, kernel_size: 3}
  - {kind: batch_norm}
decoder:
  - {kind: conv2d, filters: 1, kernel_size: 1}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


# ----------------------------------------------------------------------------------------------
# Terminal-safe text


def test_terminal_safe_escapes_controls_and_bidi_and_nothing_else():
    assert terminal_safe("a\x1b]0;title\x07b") == "a\\x1b]0;title\\x07b"
    assert terminal_safe("nul\x00 del\x7f c1\x9b") == "nul\\x00 del\\x7f c1\\x9b"
    assert terminal_safe("x\u202ey\u2066\u2069\u200e\u200f\u061c") == (
        "x\\u202ey\\u2066\\u2069\\u200e\\u200f\\u061c"
    )
    assert terminal_safe("line\u2028para\u2029tab\tnl\n") == "line\\u2028para\\u2029tab\\tnl\\n"
    plain = "conv2d '名前' naïve \\x1b ü → 3.4e38"
    assert terminal_safe(plain) == plain
    once = terminal_safe("\x1b\u202e")
    assert terminal_safe(once) == once


def test_control_bytes_in_a_key_are_escaped_in_message_path_and_line(tmp_path, capsys):
    spec = write(
        tmp_path / "key.yaml",
        TINY.replace(
            "kernel_size: 3}", 'kernel_size: 3, "bad\\e]0;pwned\\a\\e[2J\\u202e\\0key": 1}'
        ),
    )
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err)
    assert "conv2d has no field 'bad\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x00key'" in err
    assert "  at encoder[0].bad\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x00key" in err


def test_control_bytes_on_an_echoed_line_are_escaped(tmp_path, capsys):
    spec = tmp_path / "raw.yaml"
    spec.write_bytes(TINY.replace("name: tiny", "name: tiny  # \x1b]0;x\x07 \x00").encode())
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err)
    assert "the character U+001B is not allowed in YAML" in err
    assert "name: tiny  # \\x1b]0;x\\x07 \\x00" in err


def test_the_caret_points_at_the_offending_key_after_escaped_characters(tmp_path, capsys):
    line = '  - {"a\u202eb\u2066": 1, kind: conv2d, filters: 2, kernel_size: 3, 名前: 1, bogus: 1}'
    spec = write(
        tmp_path / "caret.yaml",
        TINY.replace("  - {kind: conv2d, filters: 2, kernel_size: 3}", line),
    )
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err)
    lines = err.splitlines()
    echoed = [i for i, text in enumerate(lines) if "bogus: 1}" in text]
    assert len(echoed) == 3  # one per unknown key
    bogus = lines[echoed[-1]]
    caret = lines[echoed[-1] + 1]
    assert "a\\u202eb\\u2066" in bogus
    prefix = bogus[: bogus.index("bogus")]
    # the caret sits under 'bogus' as shown: escapes widen the line, wide characters take two
    assert caret.index("^") == len(prefix) + sum(char in "名前" for char in prefix)


def test_json_escapes_in_keys_and_parameter_names_are_escaped(tmp_path, capsys):
    spec = write(
        tmp_path / "esc.json",
        '{"specgen": 1, "name": "t", "input": {"shape": [4, 4, 1]},'
        ' "parameters": {"a\\u0007\\u001b[31mred\\u202e": 1},'
        ' "encoder": [{"kind": "conv2d", "filters": 2, "kernel_size": 3}],'
        ' "decoder": [{"kind": "conv2d", "filters": 1, "kernel_size": 1}]}',
    )
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err)
    assert "  at parameters.a\\x07\\x1b[31mred\\u202e" in err


def test_a_file_name_with_control_characters_is_escaped(tmp_path, capsys):
    spec = write(tmp_path / "evil\x1b]0;title\x07\u202e.yaml", TINY + "bogus: 1\n")
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err)
    assert "evil\\x1b]0;title\\x07\\u202e.yaml:9:1: error: unknown key 'bogus'" in err


def test_a_valid_spec_with_such_a_file_name_is_reported_escaped(tmp_path, capsys):
    write(tmp_path / "ok\x1b[2J\u202e.yaml", TINY)
    code, out, _ = run(capsys, "validate", tmp_path)
    assert code == 0
    assert not UNSAFE.search(out) and "ok\\x1b[2J\\u202e.yaml: ok (" in out


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.text(
        alphabet=st.sampled_from("ab_\x00\x07\x1b\x9b\t\r\u2028" + BIDI), min_size=1, max_size=12
    )
)
def test_no_key_can_put_a_raw_control_character_on_stderr(tmp_path, capsys, key):
    import json

    doc = {
        "specgen": 1,
        "name": "t",
        "input": {"shape": [4, 4, 1]},
        "parameters": {key: 1},
        "encoder": [{"kind": "conv2d", "filters": 2, "kernel_size": 3, key: 1}],
        "decoder": [{"kind": "conv2d", "filters": 1, "kernel_size": 1}],
    }
    spec = write(tmp_path / "k.json", json.dumps(doc))
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert not UNSAFE.search(err), ascii(err)


# ----------------------------------------------------------------------------------------------
# Free text in generated files


def test_bidi_controls_in_descriptions_never_reach_generated_files(tmp_path, capsys):
    description = f"safe {BIDI} text \x1b[2J end"
    text = TINY.replace(
        "input:",
        f'description: "{description.encode("unicode_escape").decode()}"\n'
        "blocks:\n"
        "  unit:\n"
        f'    description: "{BIDI.encode("unicode_escape").decode()}"\n'
        "    layers: [{kind: relu}]\n"
        "input:",
    ).replace("  - {kind: batch_norm}", "  - {kind: batch_norm}\n  - {block: unit}")
    spec = write(tmp_path / "bidi.yaml", text)
    out = tmp_path / "out"
    code, _, err = run(capsys, "generate", spec, "-o", out)
    assert code == 0, err
    files = [f for f in out.rglob("*") if f.is_file()]
    assert any(f.name == "torch_model.py" for f in files)
    for f in files:
        data = f.read_bytes()
        for char in BIDI + "\x1b":
            assert char.encode() not in data, (f.name, hex(ord(char)))
    torch_model = next(f for f in files if f.name == "torch_model.py").read_text()
    assert "safe" in torch_model and "text" in torch_model


def test_bidi_controls_never_reach_dot_or_mermaid_labels():
    from specgen.diagram_render import dot_string, mermaid_string

    for escape in (dot_string, mermaid_string):
        label = escape(f"conv{BIDI}\x1b\x85 1")
        assert not UNSAFE.search(label), escape.__name__
        assert label.startswith('"conv')


# ----------------------------------------------------------------------------------------------
# Numbers a float32 cannot hold


FLOAT32_CASES = [
    (
        "training: {optimizer: {learning_rate: 1.0e+300}}",
        "1e300 does not fit a float32 (largest 3.4e38)",
        "training.optimizer.learning_rate",
    ),
    (
        "training: {optimizer: {learning_rate: 1.0e-45}}",
        "1e-45 is below the smallest normal float32 (1.2e-38) and may become 0",
        "training.optimizer.learning_rate",
    ),
    (
        "training: {optimizer: {weight_decay: 1.0e+39}}",
        "1e39 does not fit a float32 (largest 3.4e38)",
        "training.optimizer.weight_decay",
    ),
    (
        "training: {schedule: {decay_rate: 1.0e-40}}",
        "1e-40 is below the smallest normal float32 (1.2e-38) and may become 0",
        "training.schedule.decay_rate",
    ),
    ("training: {beta: 5.0e+38}", "5e38 does not fit a float32 (largest 3.4e38)", "training.beta"),
    ("training: {l2: 1.0e+100}", "1e100 does not fit a float32 (largest 3.4e38)", "training.l2"),
    (
        "training: {gradient_clip: 1.0e+39}",
        "1e39 does not fit a float32 (largest 3.4e38)",
        "training.gradient_clip",
    ),
    (
        "bottleneck: {kind: vector_quantized, embedding_dim: 2, num_embeddings: 4,"
        " commitment_cost: 1.0e+39}",
        "1e39 does not fit a float32 (largest 3.4e38)",
        "bottleneck.commitment_cost",
    ),
]

LAYER_CASES = [
    (
        "{kind: batch_norm, epsilon: 1.0e+39}",
        "1e39 does not fit a float32 (largest 3.4e38)",
        "epsilon",
    ),
    (
        "{kind: batch_norm, epsilon: 1.0e-45}",
        "1e-45 is below the smallest normal float32 (1.2e-38) and may become 0",
        "epsilon",
    ),
    (
        "{kind: layer_norm, epsilon: 2.0e-39}",
        "2e-39 is below the smallest normal float32 (1.2e-38) and may become 0",
        "epsilon",
    ),
    (
        "{kind: leaky_relu, negative_slope: 1.0e+39}",
        "1e39 does not fit a float32 (largest 3.4e38)",
        "negative_slope",
    ),
    ("{kind: elu, alpha: -1.0e+39}", "-1e39 does not fit a float32 (largest 3.4e38)", "alpha"),
    ("{kind: dropout, rate: 1.0e+39}", "less than 1", "rate"),
    ("{kind: batch_norm, momentum: 1.0e+39}", "less than 1", "momentum"),
]


@pytest.mark.parametrize("section,message,path", FLOAT32_CASES, ids=[c[2] for c in FLOAT32_CASES])
def test_sections_refuse_floats_beyond_float32(tmp_path, capsys, section, message, path):
    spec = write(tmp_path / "f.yaml", TINY + section + "\n")
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert "f.yaml:9:" in err and f"error: {message}" in err, err
    assert f"  at {path}\n" in err


@pytest.mark.parametrize("layer,message,field", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layers_refuse_floats_beyond_float32(tmp_path, capsys, layer, message, field):
    spec = write(tmp_path / "f.yaml", TINY.replace("{kind: batch_norm}", layer))
    code, _, err = run(capsys, "validate", spec)
    assert code == 1
    assert "f.yaml:6:" in err and message in err, err
    assert f"  at encoder[1].{field}\n" in err


def test_a_float_from_a_parameter_is_bounded_where_it_is_used(tmp_path, capsys):
    text = TINY.replace("input:", "parameters: {eps: 1.0e-45}\ninput:").replace(
        "{kind: batch_norm}", '{kind: batch_norm, epsilon: "${eps}"}'
    )
    code, _, err = run(capsys, "validate", write(tmp_path / "p.yaml", text))
    assert code == 1
    assert "p.yaml:7:" in err and "1e-45 is below the smallest normal float32" in err
    code, _, err = run(capsys, "validate", tmp_path / "p.yaml", "--set", "eps=1e-3")
    assert code == 0, err


def test_the_largest_float32_still_passes(tmp_path, capsys):
    layer = "{kind: leaky_relu, negative_slope: 3.4e+38}"
    spec = write(tmp_path / "ok.yaml", TINY.replace("{kind: batch_norm}", layer))
    code, _, err = run(capsys, "validate", spec)
    assert code == 0, err


# ----------------------------------------------------------------------------------------------
# convert-weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny spec and its PyTorch model's state (float32 arrays)."""
    import specgen.torch as sgt

    folder = tmp_path_factory.mktemp("weights")
    spec = write(folder / "tiny.yaml", TINY)
    state = {k: v.numpy() for k, v in sgt.build(spec).state_dict().items()}
    return spec, state


def save(path: Path, state: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file

    save_file(state, str(path))
    return path


def floats_as(state: dict[str, np.ndarray], convert) -> dict[str, np.ndarray]:
    return {k: (convert(v) if v.dtype == np.float32 else v) for k, v in state.items()}


def keras_weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, obj: found.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None
        )
    return found


def test_narrow_floats_widen_exactly_for_every_bit_pattern():
    import ml_dtypes

    from specgen.convert import _E4M3, _E5M2, _bfloat16

    bits = np.arange(256, dtype=np.uint8)
    for table, dtype in ((_E4M3, ml_dtypes.float8_e4m3fn), (_E5M2, ml_dtypes.float8_e5m2)):
        ref = bits.view(dtype).astype(np.float32)
        assert np.array_equal(table[bits], ref, equal_nan=True)
        assert np.array_equal(np.signbit(table[bits]), np.signbit(ref))
    wide = np.arange(2**16, dtype=np.uint16)
    ref = wide.view(ml_dtypes.bfloat16).astype(np.float32)
    assert np.array_equal(_bfloat16(wide).view(np.uint32), ref.view(np.uint32))


def test_float32_weights_convert_without_a_note(tmp_path, capsys, weights):
    spec, state = weights
    source = save(tmp_path / "w.safetensors", state)
    code, out, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 0, err
    assert out.splitlines() == [
        f"wrote {tmp_path / 'w.weights.h5'} (8 tensors) for the Keras model"
    ]


@pytest.mark.parametrize(
    "dtype,name,how",
    [
        ("bfloat16", "bfloat16", "exactly"),
        ("float16", "float16", "exactly"),
        ("float64", "float64", "rounding to the nearest float32"),
        ("float8_e4m3fn", "float8_e4m3fn", "exactly"),
        ("float8_e5m2", "float8_e5m2", "exactly"),
    ],
)
def test_float_dtypes_are_converted_and_said_so(tmp_path, capsys, weights, dtype, name, how):
    import ml_dtypes

    spec, state = weights
    np_dtype = getattr(ml_dtypes, dtype, None) or np.dtype(dtype)
    given = floats_as(state, lambda v: v.astype(np_dtype))
    source = save(tmp_path / "w.safetensors", given)
    target = tmp_path / "w.weights.h5"
    code, out, err = run(capsys, "convert-weights", spec, source, target)
    assert code == 0, err
    assert f"converted 8 tensors from {name} to float32 ({how})" in out.splitlines()
    kernel = keras_weights(target)["encoder/conv1/vars/0"]
    expected = given["encoder.conv1.weight"].astype(np.float32).transpose(2, 3, 1, 0)
    assert kernel.dtype == np.float32
    assert np.array_equal(kernel, expected)  # float8/bfloat16 widened exactly


@pytest.mark.parametrize(
    "convert,dtype",
    [
        (lambda v: v.astype(np.int64), "int64"),
        (lambda v: v.astype(np.uint8), "uint8"),
        (lambda v: v > 0, "bool"),
        (lambda v: v.astype(np.complex64), "complex64"),
    ],
    ids=["I64", "U8", "BOOL", "C64"],
)
def test_non_float_tensors_are_refused_by_name(tmp_path, capsys, weights, convert, dtype):
    spec, state = weights
    source = save(tmp_path / "w.safetensors", floats_as(state, convert))
    target = tmp_path / "w.weights.h5"
    code, out, err = run(capsys, "convert-weights", spec, source, target)
    assert code == 1 and out == ""
    assert f"w.safetensors: error: 8 tensors are {dtype} ('encoder.conv1.weight', " in err
    assert "the model's weights are floating point" in err
    assert not target.exists()


def test_one_non_float_tensor_is_named(tmp_path, capsys, weights):
    spec, state = weights
    given = dict(state, **{"encoder.bn1.running_var": state["encoder.bn1.running_var"] > 0})
    source = save(tmp_path / "w.safetensors", given)
    code, _, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 1
    assert error_lines(err) == [
        f"{source}: error: tensor 'encoder.bn1.running_var' is bool; "
        "the model's weights are floating point"
    ]


def test_float64_beyond_float32_is_refused(tmp_path, capsys, weights):
    spec, state = weights
    given = floats_as(state, lambda v: v.astype(np.float64))
    given["encoder.conv1.bias"] = np.full_like(given["encoder.conv1.bias"], 1e300)
    source = save(tmp_path / "w.safetensors", given)
    code, _, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 1
    assert "tensor 'encoder.conv1.bias' has values beyond float32's range" in err


def test_wrong_rank_tensors_are_named_with_both_shapes(tmp_path, capsys, weights):
    spec, state = weights
    given = {k: v.reshape(-1) if v.ndim == 4 else v for k, v in state.items()}
    source = save(tmp_path / "w.safetensors", given)
    code, _, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 1
    assert error_lines(err) == [
        f"{source}: error: 'encoder.conv1.weight' has shape (18,), but the spec's layer needs "
        "(2, 1, 3, 3)",
        f"{source}: error: 'decoder.conv1.weight' has shape (2,), but the spec's layer needs "
        "(1, 2, 1, 1)",
    ]
    assert "axes don't match" not in err


def test_weights_of_another_model_are_named_missing_and_unexpected(tmp_path, capsys, weights):
    spec, state = weights
    given = {k.replace("encoder.bn1", "encoder.norm"): v for k, v in state.items()}
    source = save(tmp_path / "w.safetensors", given)
    code, _, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 1
    assert error_lines(err) == [
        f"{source}: error: the file lacks 4 tensors that the model needs: 'encoder.bn1.bias', "
        "'encoder.bn1.running_mean', 'encoder.bn1.running_var', 'encoder.bn1.weight'",
        f"{source}: error: the file has 4 tensors that the model lacks: 'encoder.norm.bias', "
        "'encoder.norm.running_mean', 'encoder.norm.running_var', 'encoder.norm.weight'",
    ]
    assert f"note: the model is that of {spec} with the parameter values given" in err
    assert "<spec>" not in err


def test_wrong_keras_weights_are_checked_before_loading(tmp_path, capsys, weights):
    import h5py

    spec, state = weights
    good = tmp_path / "good.weights.h5"
    code, _, err = run(
        capsys, "convert-weights", spec, save(tmp_path / "w.safetensors", state), good
    )
    assert code == 0, err
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "a") as handle:
        del handle["encoder/conv1/vars/0"]
        handle["encoder/conv1/vars/0"] = np.zeros((3, 3, 4, 2), np.float32)
        del handle["decoder/conv1/vars/1"]
        handle["encoder/bn1/vars/2"][...] = 0
        del handle["encoder/bn1/vars/3"]
        handle["encoder/bn1/vars/3"] = np.zeros((2,), np.int32)
    target = tmp_path / "back.safetensors"
    code, out, err = run(capsys, "convert-weights", spec, bad, target)
    assert code == 1 and out == ""
    assert error_lines(err) == [
        f"{bad}: error: the file lacks 1 dataset that the model needs: 'decoder/conv1/vars/1' "
        "(decoder.conv1.bias)",
        f"{bad}: error: 'encoder/conv1/vars/0' (encoder.conv1.kernel) has shape (3, 3, 4, 2), "
        "but the spec's layer needs (3, 3, 1, 2)",
        f"{bad}: error: tensor 'encoder/bn1/vars/3' (encoder.bn1.moving_variance) is int32; "
        "the model's weights are floating point",
    ]
    assert "expected 2 variables" not in err and not target.exists()


def test_float64_keras_weights_are_converted_and_said_so(tmp_path, capsys, weights):
    import h5py

    spec, state = weights
    h5 = tmp_path / "w.weights.h5"
    assert (
        main(["convert-weights", str(spec), str(save(tmp_path / "w.safetensors", state)), str(h5)])
        == 0
    )
    with h5py.File(h5, "a") as handle:
        kernel = handle["encoder/conv1/vars/0"][()]
        del handle["encoder/conv1/vars/0"]
        handle["encoder/conv1/vars/0"] = kernel.astype(np.float64)
    capsys.readouterr()
    code, out, err = run(capsys, "convert-weights", spec, h5, tmp_path / "back.safetensors")
    assert code == 0, err
    assert (
        out.splitlines()[0]
        == "converted 1 tensor from float64 to float32 (rounding to the nearest float32)"
    )


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "none.safetensors", "cannot read the weights: no such file or directory"),
        (
            lambda d: (d / "dir.safetensors").mkdir() or d / "dir.safetensors",
            "cannot read the weights: this is a folder",
        ),
        (
            lambda d: write(d / "bad.safetensors", "not a safetensors file"),
            "not a valid safetensors file: its header claims",
        ),
        (
            lambda d: (
                (d / "short.safetensors").write_bytes(b"\x01\x02") and d / "short.safetensors"
            ),
            "not a valid safetensors file: it has 2 bytes, fewer than a header needs",
        ),
        (
            lambda d: (
                (d / "json.safetensors").write_bytes(b"\x04\0\0\0\0\0\0\0[1] ")
                and d / "json.safetensors"
            ),
            "not a valid safetensors file: its header is not a JSON object",
        ),
        (
            lambda d: (
                (d / "off.safetensors").write_bytes(
                    b"\x40\0\0\0\0\0\0\0"
                    + b'{"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}'.ljust(64)
                )
                and d / "off.safetensors"
            ),
            "not a valid safetensors file: the entry of tensor 'x' is malformed or out of bounds",
        ),
        (
            lambda d: write(d / "bad.weights.h5", "not HDF5"),
            "not a valid Keras weights file (HDF5): ",
        ),
    ],
    ids=["missing", "folder", "garbage", "short", "json", "offsets", "hdf5"],
)
def test_unreadable_sources_give_one_line(tmp_path, capsys, weights, make, message):
    spec, _ = weights
    source = make(tmp_path)
    other = ".weights.h5" if source.name.endswith(".safetensors") else ".safetensors"
    target = tmp_path / f"out{other}"
    code, out, err = run(capsys, "convert-weights", spec, source, target)
    assert code == 1 and out == ""
    assert len(error_lines(err)) == 1 and f"{source}: error: {message}" in err, err
    assert "Traceback" not in err and not target.exists()


def test_bad_targets_give_one_line(tmp_path, capsys, weights):
    spec, state = weights
    source = save(tmp_path / "w.safetensors", state)
    cases = [
        (tmp_path / "no" / "such" / "w.weights.h5", "cannot write here: the folder"),
        (tmp_path / "dir.weights.h5", "cannot write the weights: this is a folder"),
        (tmp_path / "w.bin", "cannot tell the format of this file from its name"),
        (source / "w.weights.h5", f"cannot write here: '{source}' is not a folder"),
    ]
    (tmp_path / "dir.weights.h5").mkdir()
    for target, message in cases:
        code, out, err = run(capsys, "convert-weights", spec, source, target)
        assert code == 1 and out == "", target
        assert len(error_lines(err)) == 1 and f"{target}: error: {message}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.weights.h5", "w.safetensors"]


def test_the_target_is_replaced_atomically_and_never_written_through_a_link(
    tmp_path, capsys, weights
):
    spec, state = weights
    source = save(tmp_path / "w.safetensors", state)
    elsewhere = write(tmp_path / "elsewhere.txt", "keep me")
    link = tmp_path / "link.weights.h5"
    link.symlink_to(elsewhere)
    code, _, err = run(capsys, "convert-weights", spec, source, link)
    assert code == 0, err
    assert elsewhere.read_text() == "keep me"
    assert not link.is_symlink() and "encoder/conv1/vars/0" in keras_weights(link)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".specgen-")]


def test_a_spec_with_errors_names_its_file_in_convert_weights(tmp_path, capsys, weights):
    _, state = weights
    lines = [f"  - {{kind: conv2d, filters: 2, kernel_size: 3, bogus{i}: 1}}" for i in range(60)]
    spec = write(
        tmp_path / "many.yaml",
        TINY.replace("  - {kind: conv2d, filters: 2, kernel_size: 3}", "\n".join(lines)),
    )
    source = save(tmp_path / "w.safetensors", state)
    code, _, err = run(capsys, "convert-weights", spec, source, tmp_path / "w.weights.h5")
    assert code == 1
    found = error_lines(err)
    assert len(found) == 50 and all(line.startswith(f"{spec}:") for line in found)
    assert "<spec>" not in err and "... and 10 more error(s) not shown" in err


# ----------------------------------------------------------------------------------------------
# The Python API


def test_api_errors_read_like_the_command_line(tmp_path):
    import specgen.torch

    spec = write(
        tmp_path / "api.yaml",
        TINY.replace("input:", "parameters: {widths: [2]}\ninput:").replace(
            "filters: 2,", 'filters: "${widths[0]}",'
        ),
    )
    with pytest.raises(SpecErrors) as info:
        specgen.torch.build(spec, widht=[1, 2])
    text = str(info.value)
    assert text == info.value.render()
    assert text.splitlines()[0] == (
        f"{spec}:3:1: error: unknown parameter 'widht' given as a keyword argument; "
        "tiny has: widths"
    )
    assert "  hint: did you mean 'widths'?" in text
    with pytest.raises(SpecErrors) as info:
        specgen.torch.source(spec, widths=3)
    assert str(info.value).splitlines()[0] == (
        f"{spec}:3:14: error: keyword argument widths: expected a list such as [64, 64, 3] "
        "(the default is [2]), got 3"
    )


def test_str_of_a_spec_error_is_its_rendered_message():
    error = SpecError("bad \x1b[2J value", ("encoder", 0, "filters"), hint="fix it")
    assert str(error) == (
        "specgen: error: bad \\x1b[2J value\n  at encoder[0].filters\n  hint: fix it"
    )
    assert str(SpecErrors([error])).endswith("1 error found; nothing was written.")
