"""Bounded work: whatever a spec from a stranger asks for ends soon, with a clean located error.

Each case writes a real spec to ``tmp_path`` and runs the real command line. Cases that used to
run for minutes (or forever) run in a child process with a timeout, so that a regression fails
instead of hanging the test run; the others run in-process through ``specgen.cli.main``. Every
error must exit with 1 (a user error), never 2 (a RecursionError or MemoryError is a bug).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specgen import memory
from specgen.api import build_graph
from specgen.cli import main
from specgen.errors import SpecErrors
from specgen.expand import MAX_NESTING, MAX_STEPS
from specgen.params import parse_override

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Seconds a child process may take; the bounded cases take a few seconds.
TIMEOUT = 120

TAIL = """\
decoder:
  - {kind: conv2d, filters: 1, kernel_size: 1}
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_child(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m specgen ARGS`` in a child process, stopped (and failed) at ``timeout``."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "specgen", *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`specgen {' '.join(args)}` did not finish within {timeout} s")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def chain_spec(folder: Path, count: int) -> Path:
    """``count`` parameters, each one more than the one before; written last to first, so that
    they must be put in order before they are evaluated."""
    params = ["  p0: 1"] + [f"  p{i}: ${{p{i - 1} + 1}}" for i in range(1, count)]
    text = "\n".join(
        [
            "specgen: 1",
            "name: chain",
            "parameters:",
            *reversed(params),
            "input: {shape: [8, 8, 1]}",
            "decoder:",
            f"  - {{kind: conv2d, filters: '${{p{count - 1} - {count - 1}}}', kernel_size: 1}}",
        ]
    )
    return write(folder / f"chain{count}.yaml", text + "\n")


def nested_blocks_spec(folder: Path, depth: int, *, cycle: bool = False) -> Path:
    """Blocks ``b0`` ... each using the next; the last uses ``b0`` again when ``cycle``."""
    lines = ["specgen: 1", "name: nested", "input: {shape: [8, 8, 1]}", "blocks:"]
    for i in range(depth):
        if i + 1 < depth or cycle:
            lines.append(f"  b{i}: {{layers: [{{block: b{(i + 1) % depth}}}]}}")
        else:
            lines.append(f"  b{i}: {{layers: [{{kind: relu}}]}}")
    lines += ["encoder:", "  - {block: b0}"]
    return write(folder / f"nested{depth}.yaml", "\n".join(lines) + "\n" + TAIL)


# ------------------------------------------------------------------------------ parameters


def test_twenty_thousand_chained_parameters_validate_in_seconds(tmp_path):
    spec = chain_spec(tmp_path, 20_000)
    assert spec.stat().st_size < 1_000_000
    done = run_child("validate", str(spec), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ok (1 layers, 2 trainable" in done.stdout


def test_a_long_parameter_cycle_is_reported(tmp_path, capsys):
    lines = [f"  p{i}: ${{p{(i - 1) % 3000} + 1}}" for i in range(3000)]
    spec = write(
        tmp_path / "cycle.yaml",
        "specgen: 1\nname: cycle\nparameters:\n"
        + "\n".join(lines)
        + "\ninput: {shape: [8, 8, 1]}\n"
        + TAIL,
    )
    code, _, err = run(capsys, "validate", str(spec))
    assert code == 1, err
    assert "error: parameters depend on each other in a cycle: p0 -> p1 -> p2 -> " in err
    assert "-> p2999 -> p0\n" in err


def test_parameters_used_in_thousands_of_layers_are_not_copied_for_each(tmp_path, capsys):
    """Every scope sees every parameter; looking them up must not copy them all per layer."""
    params = "\n".join(f"  p{i}: {i}" for i in range(20_000))
    spec = write(
        tmp_path / "wide.yaml",
        f"""\
specgen: 1
name: wide
parameters:
{params}
input: {{shape: [8, 8, 1]}}
encoder:
  - {{name: level, for: i, in: 2000, layers: [{{kind: relu}}, {{kind: relu}}]}}
"""
        + TAIL,
    )
    done = run_child("validate", str(spec), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ok (4001 layers" in done.stdout


def test_many_unknown_names_among_many_parameters_stop_early(tmp_path):
    params = "\n".join(f"  p{i}: {i}" for i in range(20_000))
    items = "\n".join(f"  - {{kind: relu, when: '${{q{i}}}'}}" for i in range(3000))
    spec = write(
        tmp_path / "typos.yaml",
        f"specgen: 1\nname: typos\nparameters:\n{params}\ninput: {{shape: [8, 8, 1]}}\n"
        f"encoder:\n{items}\n" + TAIL,
    )
    done = run_child("validate", str(spec), timeout=60)
    assert done.returncode == 1, done.stderr
    assert "error: unknown name 'q0' in 'q0'" in done.stderr
    assert "hint: did you mean 'p49'? 20,004 names are defined here" in done.stderr
    assert "200 errors found; nothing was written." in done.stderr


# ------------------------------------------------------------------------------ nesting


@pytest.mark.parametrize("command", ["validate", "expand", "generate"])
def test_ten_thousand_nested_blocks_are_a_clean_error(tmp_path, capsys, command):
    spec = nested_blocks_spec(tmp_path, 10_000)
    args = [command, str(spec)]
    if command == "generate":
        args += ["-o", str(tmp_path / "out")]
    code, out, err = run(capsys, *args)
    assert code == 1, err
    assert (
        "error: blocks use each other 10000 deep, more than the limit of 64: "
        "b0 -> b1 -> b2 -> b3 -> ... -> b9997 -> b9998 -> b9999" in err
    )
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_three_thousand_block_cycle_is_reported_as_a_cycle(tmp_path, capsys):
    spec = nested_blocks_spec(tmp_path, 3000, cycle=True)
    code, _, err = run(capsys, "validate", str(spec))
    assert code == 1, err
    chain = " -> ".join(f"b{i}" for i in range(3000)) + " -> b0"
    assert f"error: blocks use each other in a cycle: {chain}\n" in err
    assert "1 error found" in err


@pytest.mark.parametrize("command", ["validate", "expand", "summary", "generate"])
def test_blocks_nested_as_deep_as_allowed_work_everywhere(tmp_path, capsys, command):
    spec = nested_blocks_spec(tmp_path, MAX_NESTING)
    args = [command, str(spec)]
    if command == "generate":
        args += ["-o", str(tmp_path / "out"), "--target", "torch", "--target", "keras"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    if command == "summary":
        deepest = "encoder." + ".".join(f"b{i}" for i in range(MAX_NESTING)) + ".act1"
        assert deepest in out


def test_groups_nested_too_deep_through_levels_name_the_group(tmp_path, capsys):
    lines = ["specgen: 1", "name: deep", "input: {shape: [8, 8, 1]}", "blocks:"]
    for i in range(40):
        lines.append(f"  b{i}: {{layers: [{{levels: 1, name: l, block: b{i + 1}}}]}}")
    lines += ["  b40: {layers: [{kind: relu}]}", "encoder:", "  - {block: b0}"]
    spec = write(tmp_path / "deep.yaml", "\n".join(lines) + "\n" + TAIL)
    code, _, err = run(capsys, "validate", str(spec))
    assert code == 1, err
    assert (
        "error: groups nest more than 64 levels deep: 'encoder.b0.l0.blocks.[...].blocks."
        "block0.l0'" in err
    )
    assert "hint: blocks in use: b0 -> b1 -> b2 -> b3 -> ... -> b19 -> b20 -> b21" in err


def test_a_long_chain_of_skips_into_skips_is_a_clean_error(tmp_path, capsys):
    lines = [
        "specgen: 1",
        "name: skips",
        "input: {shape: [8, 8, 1]}",
        "encoder:",
        "  - {kind: relu, name: r}",
        "skips:",
        "  - {name: s0, from: input, to: encoder.r, merge: add, layers: [{kind: relu, name: x}]}",
    ]
    for i in range(1, 1000):
        lines.append(
            f"  - {{name: s{i}, from: input, to: encoder.s{i - 1}.x, merge: add, "
            "layers: [{kind: relu, name: x}]}"
        )
    spec = write(tmp_path / "skips.yaml", "\n".join(lines) + "\n" + TAIL)
    code, _, err = run(capsys, "validate", str(spec))
    assert code == 1, err
    assert "error: items nest more than 64 levels deep, in 'encoder.s64'" in err
    assert "at skips[64].layers" in err


# ------------------------------------------------------------------------------ iterations

LOOPS = """\
specgen: 1
name: loops
input: {shape: [8, 8, 1]}
encoder:
  - for: i
    in: 10000
    name: a
    layers:
      - for: j
        in: 10000
        name: b
        layers:
          - for: k
            in: 10000
            name: c
            layers:
              - {kind: relu, when: false}
"""

REPEATS = """\
specgen: 1
name: repeats
input: {shape: [8, 8, 1]}
blocks:
  empty: {layers: []}
  many: {layers: [{block: empty, repeat: 10000}]}
encoder:
  - {block: many, repeat: 10000}
"""

LEVELS = """\
specgen: 1
name: levels
input: {shape: [8, 8, 1]}
encoder:
  - levels: 10000
    name: a
    before:
      - {levels: 10000, name: b}
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (LOOPS, "at encoder[0].layers[0].layers[0].layers[0]"),
        (REPEATS, "at blocks.many.layers[0]"),
        (LEVELS, "at encoder[0].before[0]"),
    ],
    ids=["loops-under-when-false", "empty-repeats", "empty-levels"],
)
def test_iterations_that_make_no_layers_still_count(tmp_path, text, where):
    spec = write(tmp_path / "spec.yaml", text + TAIL)
    done = run_child("validate", str(spec), timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"error: expanding the spec takes more than {MAX_STEPS:,} steps" in done.stderr
    assert where in done.stderr
    assert "1 error found; nothing was written." in done.stderr


# ------------------------------------------------------------------------------ memory

HUGE = """\
specgen: 1
name: huge
input: {shape: [64, 64, 1]}
encoder:
  - {kind: conv2d, filters: 1048576, kernel_size: 1}
"""

TINY = """\
specgen: 1
name: tiny
input: {shape: [8, 8, 1]}
encoder:
  - {kind: conv2d, filters: 2, kernel_size: 3}
decoder:
  - {kind: conv2d, filters: 1, kernel_size: 3}
"""


@pytest.fixture
def eight_gigabytes(monkeypatch):
    """The machine reports 8 GB available, whatever it really has."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 10**9)


def test_the_estimate_counts_parameters_and_every_activation(tmp_path):
    graph = build_graph(write(tmp_path / "tiny.yaml", TINY))
    est = memory.estimate(graph)
    assert est.parameter_bytes == 4 * (2 * 9 + 2 + 1 * 9 * 2 + 1)
    # the input 8x8x1, then 8x8x2 and 8x8x1 ("same" padding)
    assert est.activation_bytes_per_sample == 4 * (64 + 128 + 64)
    assert est.bytes_for(3) == est.parameter_bytes + 3 * est.activation_bytes_per_sample
    assert est.bytes_for(1, copies=2, training=True) == 2 * (
        4 * est.parameter_bytes + 2 * est.activation_bytes_per_sample
    )


ATTENTION = """\
specgen: 1
name: attend
input: {shape: [64, 64, 8]}
encoder:
  - {kind: attention, norm_groups: 2, heads: 2}
decoder:
  - {kind: conv2d, filters: 8, kernel_size: 1}
"""


def test_the_estimate_counts_the_attention_scores(tmp_path):
    graph = build_graph(write(tmp_path / "attend.yaml", ATTENTION))
    est = memory.estimate(graph)
    positions = 64 * 64
    scores = 2 * positions**2 * 4  # 2 heads x (H*W)^2 float32 values: 134 MB
    assert est.activation_bytes_per_sample > scores
    # the input and the two layers' outputs, then each head's scores and their softmax
    assert est.activation_bytes_per_sample == 4 * (3 * positions * 8 + 2 * 2 * positions**2)


def test_available_memory_is_read_from_the_machine():
    found = memory.available_bytes()
    if sys.platform.startswith("linux"):
        assert isinstance(found, int) and found > 0


def test_summary_shows_the_memory_estimate(tmp_path, capsys):
    spec = write(tmp_path / "huge.yaml", HUGE + TAIL)
    code, out, err = run(capsys, "summary", str(spec))
    assert code == 0, err
    assert "  memory (float32):         12.6 MB parameters + 17.2 GB activations per sample" in out
    code, out, err = run(capsys, "summary", str(spec), "--json")
    assert json.loads(out)["memory"] == {
        "parameter_bytes": 4 * 3_145_729,
        "activation_bytes_per_sample": 4 * (64 * 64 * (1 + 2**20 + 1)),
    }


def test_verify_refuses_a_model_larger_than_the_memory(tmp_path, capsys, eight_gigabytes):
    spec = write(tmp_path / "huge.yaml", HUGE + TAIL)
    code, out, err = run(capsys, "verify", str(spec))
    assert code == 1, err
    assert (
        "specgen: error: verify would need about 68.7 GB of memory for model 'huge' (12.6 MB of "
        "parameters, 17.2 GB of activations per sample x batch 2, 2 models; float32), more than "
        "the 8.0 GB this machine has available"
    ) in err
    assert "pass --allow-large to build it anyway" in err


def test_convert_weights_refuses_a_model_larger_than_the_memory(tmp_path, capsys, eight_gigabytes):
    spec = write(tmp_path / "huge.yaml", HUGE + TAIL)
    source = write(tmp_path / "w.safetensors", "")
    target = tmp_path / "w.weights.h5"
    code, _, err = run(capsys, "convert-weights", str(spec), str(source), str(target))
    assert code == 1, err
    assert (
        "convert-weights would need about 17.2 GB of memory for model 'huge' (12.6 MB of "
        "parameters, 17.2 GB of activations per sample x batch 1; float32), more than the "
        "8.0 GB this machine has available"
    ) in err
    assert not target.exists()


def test_train_refuses_before_writing_anything(tmp_path, capsys, eight_gigabytes):
    spec = write(tmp_path / "huge.yaml", HUGE + TAIL)
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "train", str(spec), "-o", str(out_dir), "--", "--batch-size", "3")
    assert code == 1, err
    assert "train would need about 103.1 GB of memory" in err
    assert "x batch 3, gradients and optimizer state; float32" in err
    assert not out_dir.exists()


def test_a_small_model_is_refused_on_a_small_machine_unless_allowed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    graph = build_graph(write(tmp_path / "tiny.yaml", TINY))
    with pytest.raises(SpecErrors, match="more than the 1.0 kB this machine has available"):
        memory.check_fits(graph, batch=2, doing="verify", copies=2)
    memory.check_fits(graph, batch=2, doing="verify", copies=2, allow_large=True)
    memory.check_fits(graph, batch=2, doing="verify", available=10**6)


@pytest.mark.frameworks
def test_allow_large_lets_verify_build_the_model(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    spec = write(tmp_path / "tiny.yaml", TINY)
    code, _, err = run(capsys, "verify", str(spec))
    assert code == 1 and "--allow-large" in err
    code, out, err = run(capsys, "verify", str(spec), "--allow-large")
    assert code == 0, err
    assert "PASS" in out


# ------------------------------------------------------------------------------ files

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
def test_a_fifo_given_as_the_spec_is_refused_not_read(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    done = run_child("validate", str(fifo), timeout=30)
    assert done.returncode == 1, done.stderr
    assert (
        f"error: cannot read spec file '{fifo}': it is a FIFO (named pipe), not a regular file"
        in done.stderr
    )


@needs_fifo
def test_a_fifo_in_a_folder_of_specs_is_reported(tmp_path):
    write(tmp_path / "tiny.yaml", TINY)
    os.mkfifo(tmp_path / "x.yaml")
    done = run_child("validate", str(tmp_path), timeout=30)
    assert done.returncode == 1, done.stderr
    assert f"{tmp_path / 'tiny.yaml'}: ok" in done.stdout
    assert f"cannot read spec file '{tmp_path / 'x.yaml'}': it is a FIFO" in done.stderr


def test_a_folder_given_as_the_spec_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "summary", str(tmp_path))
    assert code == 1, err
    assert "it is a folder, not a regular file" in err


# ------------------------------------------------------------------------------ --set


def test_set_refuses_yaml_after_the_value(capsys, tmp_path):
    spec = write(
        tmp_path / "spec.yaml",
        "specgen: 1\nname: tiny\nparameters: {widths: [2]}\ninput: {shape: [8, 8, 1]}\n" + TAIL,
    )
    code, _, err = run(capsys, "validate", str(spec), "--set", "widths=[4, 8]\nname: evil")
    assert code == 1, err
    assert (
        "--set:1:1: error: --set widths: the value must be one YAML scalar or flow list on one "
        "line, got '[4, 8]\\nname: evil'"
    ) in err
    assert "evil" not in err.split("got", 1)[0]


@pytest.mark.parametrize(
    "text", ["n=3\nm: 4", "n=3\rm: 4", "n=[1,\n2]", "n=|\n  a", "n=- 1\n- 2", "n=1\u2028x: 2"]
)
def test_set_values_span_one_line(text):
    with pytest.raises(SpecErrors, match="one YAML scalar or flow list on one line"):
        parse_override(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("n=3", 3), ("n=[4, 8]", [4, 8]), ("n= 'a b' ", "a b"), ("n=[1, 2] # note", [1, 2])],
)
def test_set_one_line_values_still_work(text, value):
    assert parse_override(text)[1] == value
