"""Custom layer kinds from plugins: registered by the user, never by a spec, and still verified.

The fixture plugin ``tests/plugins/example_layers`` is a real distribution's source tree: its
``example_layers.kinds`` module defines ``learned_scale`` (weights declared with ``weights()``)
and ``swish_gate`` (weights paired in order, a convolution kernel among them), with PyTorch and
Keras implementations beside it. ``tests/plugins/misbehaving`` holds plugins that break the
rules. ``tests/plugins/plugin_ae.yaml`` uses both kinds, inside a block used twice (so that the
block's class takes their arguments as parameters) and outside it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from specgen import build_graph, cli, load_plugins, load_spec, plugins
from specgen.errors import SpecErrors
from specgen.layers import REGISTRY

HERE = Path(__file__).resolve().parent
PLUGIN_ROOT = HERE / "plugins" / "example_layers"
MISBEHAVING = HERE / "plugins" / "misbehaving"
SPEC = HERE / "plugins" / "plugin_ae.yaml"
KINDS = "example_layers.kinds"
PLUGIN_KINDS = ("learned_scale", "swish_gate")
#: What the frameworks may differ by (float32 rounding).
TOLERANCE = 1e-5


@pytest.fixture
def isolated(monkeypatch):
    """The fixture plugins importable, and every registration undone afterwards (other tests
    see only the built-in kinds)."""
    monkeypatch.syspath_prepend(str(PLUGIN_ROOT))
    monkeypatch.syspath_prepend(str(MISBEHAVING))
    registry, loaded, state = dict(REGISTRY), dict(plugins._LOADED), dict(plugins._STATE)
    yield
    REGISTRY.clear()
    REGISTRY.update(registry)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    plugins._STATE.update(state)


@pytest.fixture
def graph(isolated):
    load_plugins(KINDS)
    return build_graph(SPEC)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def specgen_process(*argv: str, paths=(PLUGIN_ROOT, MISBEHAVING), cwd=None):
    """``python -m specgen ARGV`` with only ``paths`` on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return subprocess.run(
        [sys.executable, "-m", "specgen", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )


def kind_line(kind: str) -> int:
    """The 1-based line of the spec where ``kind`` is first named."""
    lines = SPEC.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if f"kind: {kind}" in line)


def spec_text(old: str, new: str, tmp_path: Path) -> Path:
    """The fixture spec with ``old`` replaced by ``new``, written under ``tmp_path``."""
    text = SPEC.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# Registration, and what a plugin may not do


def test_load_plugins_registers_the_kinds_of_a_module(isolated):
    import example_layers

    infos = load_plugins(KINDS)
    assert [i.kind for i in infos] == sorted(PLUGIN_KINDS)
    for info in infos:
        assert REGISTRY[info.kind] is info.config
        assert info.via == f"--plugin {KINDS}"
        # no installed distribution provides it: the package's own version is named
        assert info.distribution is None and info.version == example_layers.__version__
    # auto names follow the kind, or the short_name the plugin gives
    assert REGISTRY["swish_gate"].short_name == "swish_gate"
    assert REGISTRY["learned_scale"].short_name == "scale"
    assert load_plugins(KINDS) == []  # the same classes again: nothing new, no conflict


def test_a_spec_cannot_load_code(isolated):
    text = SPEC.read_text(encoding="utf-8").replace(
        "specgen: 1\n", f"specgen: 1\nplugins: [{KINDS}]\n"
    )
    with pytest.raises(SpecErrors) as info:
        load_spec(text=text, filename="with_plugins.yaml")
    assert "error: unknown key 'plugins'" in info.value.render()
    assert not set(PLUGIN_KINDS) & set(REGISTRY)
    assert plugins.loaded() == []


def test_an_unknown_kind_is_located_and_its_hint_names_plugins(isolated, capsys):
    code, out, err = run(capsys, "validate", str(SPEC))
    assert code == 1 and out == ""
    for kind in PLUGIN_KINDS:
        assert f"plugin_ae.yaml:{kind_line(kind)}:" in err
        assert f"error: unknown layer kind '{kind}'" in err
    hints = [line for line in err.splitlines() if line.startswith("  hint: ")]
    assert hints and all("--plugin MODULE" in h and "'specgen.layers'" in h for h in hints)


def test_a_plugin_may_not_shadow_a_built_in_kind(isolated, capsys):
    builtin = REGISTRY["conv2d"]
    code, out, err = run(capsys, "validate", str(SPEC), "--plugin", "shadow_conv")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "specgen: error: plugin 'shadow_conv' (--plugin) defines layer kind 'conv2d', which is "
        "built into specgen; a plugin may not replace a built-in kind: give it another name"
    ]
    assert REGISTRY["conv2d"] is builtin


def test_two_plugins_may_not_define_the_same_kind(isolated, capsys):
    code, _, err = run(
        capsys, "validate", str(SPEC), "--plugin", KINDS, "--plugin", "duplicate_swish"
    )
    assert code == 1
    assert err.splitlines() == [
        "specgen: error: plugin 'duplicate_swish' (--plugin) defines layer kind 'swish_gate', "
        f"which --plugin {KINDS} (example_layers 0.1.0) defines already; load only one of them"
    ]
    assert REGISTRY["swish_gate"].__module__ == KINDS


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kind": "Learned-Scale"}, "breaks the kind name rule"),
        ({"kind": "relu"}, "built into specgen"),
        ({"torch_class": "not a reference"}, "torch_class = 'package.module:Class'"),
        ({"keras_class": ""}, "keras_class = 'package.module:Class'"),
        ({"infer": None}, "has no shape rule: define infer()"),
        ({"field": "inputs"}, "has a field 'inputs'"),
        ({"short_name": "1st"}, "not a name stem"),
    ],
)
def test_plugin_classes_are_held_to_the_rules(change, expected):
    from typing import ClassVar, Literal

    kind = change.get("kind", "checked_kind")
    annotations = {"kind": Literal[kind], "torch_class": ClassVar[str]}
    annotations["keras_class"] = ClassVar[str]
    body = {
        "__module__": "checked",
        "__annotations__": annotations,
        "kind": kind,
        "torch_class": change.get("torch_class", "pkg.torch_layers:Checked"),
        "keras_class": change.get("keras_class", "pkg.keras_layers:Checked"),
    }
    if "infer" not in change:
        body["infer"] = lambda self, inputs: [inputs[0]]
    if "field" in change:
        annotations[change["field"]] = int
        body[change["field"]] = 1
    if "short_name" in change:
        annotations["short_name"] = ClassVar[str]
        body["short_name"] = change["short_name"]
    cls = type("Checked", (plugins.LayerPlugin,), body)
    with pytest.raises(plugins.PluginError) as info:
        plugins.check_plugin(cls, "plugin 'checked'")
    message = str(info.value)
    assert expected in message and message.startswith("plugin 'checked'")
    assert "\n" not in message


def test_a_plugin_that_fails_to_import_is_one_clean_line():
    proc = specgen_process("validate", str(SPEC), "--plugin", "broken_import")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "specgen: error: cannot load plugin 'broken_import' (--plugin): ModuleNotFoundError: "
        "No module named 'specgen_no_such_dependency'"
    ]


def test_what_a_plugin_prints_at_import_stays_off_stdout():
    """stdout carries results (``expand`` writes the spec there): a plugin's prints go to
    stderr, so the expanded spec is the same with or without it."""
    plain = specgen_process("expand", str(SPEC), "--plugin", KINDS)
    noisy = specgen_process("expand", str(SPEC), "--plugin", KINDS, "--plugin", "noisy_import")
    assert plain.returncode == noisy.returncode == 0, noisy.stderr
    assert noisy.stdout == plain.stdout and noisy.stdout.startswith("specgen: 1\n")
    assert noisy.stderr == "noisy_import: loading the passthrough kind\n"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            str(MISBEHAVING / "noisy_import.py"),
            f"a Python file, but --plugin takes a module name: put its folder ({MISBEHAVING}) "
            "on PYTHONPATH and give --plugin noisy_import",
        ),
        (
            "noisy_import.py",
            "a Python file, but --plugin takes a module name: put its folder (.) on "
            "PYTHONPATH and give --plugin noisy_import",
        ),
        (
            str(SPEC),
            "a spec file, but --plugin takes the module name of a plugin (package.module); "
            "give spec files as SPEC arguments",
        ),
        ("../noisy_import", "not a module name (give package.module or package.module:Class)"),
    ],
)
def test_a_file_given_as_plugin_is_refused_without_running_it(given, expected):
    proc = specgen_process("validate", str(SPEC), "--plugin", given, cwd=MISBEHAVING)
    assert proc.returncode == 1 and proc.stdout == ""
    # one line, and the file was not imported (it would have printed)
    assert proc.stderr.splitlines() == [f"specgen: error: plugin '{given}' (--plugin): {expected}"]


def test_a_bug_in_a_plugin_rule_is_the_plugin_s(isolated, capsys, tmp_path):
    spec = spec_text(
        "{kind: learned_scale, name: out_scale, use_bias: false}", "{kind: buggy_rule}", tmp_path
    )
    code, _, err = run(capsys, "validate", str(spec), "--plugin", KINDS, "--plugin", "buggy_rule")
    assert code == 1
    assert err.splitlines() == [
        "specgen: error: plugin layer 'buggy_rule' (buggy_rule (version unknown)): its shape "
        "rule failed for input (4, 4, 16): ZeroDivisionError: integer division or modulo by zero"
    ]


def test_a_plugin_shape_error_is_located_at_its_field(isolated, tmp_path):
    load_plugins(KINDS)
    spec = spec_text(
        "{kind: swish_gate, kernel_size: 3}", "{kind: swish_gate, kernel_size: 2}", tmp_path
    )
    with pytest.raises(SpecErrors) as info:
        build_graph(spec)
    text = info.value.render()
    assert "swish_gate needs an odd kernel_size, got (2, 2)" in text
    assert "at blocks.gated.layers[2].kernel_size" in text
    assert "hint: use 1, 3, 5, ..." in text


# ----------------------------------------------------------------------------------------------
# Counts, generated code, verification and weights


@pytest.mark.frameworks
def test_validate_and_summary_count_plugin_layers_as_the_models_do(graph, capsys):
    from specgen.codegen.compiled import compile_module
    from specgen.convert import keras_layer

    tmodel = compile_module(graph, "torch").build_model()
    kmodel = compile_module(graph, "keras").build_model()
    total = sum(p.numel() for p in tmodel.parameters())
    assert total == sum(int(w.numpy().size) for w in kmodel.trainable_weights)

    code, out, _ = run(capsys, "validate", str(SPEC), "--plugin", KINDS)
    assert code == 0
    assert f"({len(graph.nodes)} layers, {total:,} trainable + 0 non-trainable parameters)" in out

    code, table, _ = run(capsys, "summary", str(SPEC), "--plugin", KINDS)
    assert code == 0
    plugin_nodes = [n for n in graph.nodes if n.kind in PLUGIN_KINDS]
    assert {n.kind for n in plugin_nodes} == set(PLUGIN_KINDS) and len(plugin_nodes) == 6
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    for node in plugin_nodes:
        params = sum(p.numel() for p in tmodel.get_submodule(node.name).parameters())
        assert params == keras_layer(kmodel, node.name).count_params() == node.trainable
        assert rows[node.name][1] == node.kind
        assert rows[node.name][-2] == f"{params:,}"
        # MACs: the swish gate's convolution counts, the scale's element-wise product does not
        assert rows[node.name][-1] == f"{node.macs:,}"
        assert (node.macs > 0) == (node.kind == "swish_gate")


@pytest.mark.frameworks
def test_generated_models_import_the_plugin_and_run(graph, capsys, tmp_path):
    import example_layers
    import numpy as np

    import torch

    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        "generate",
        str(SPEC),
        "--plugin",
        KINDS,
        "-o",
        str(out),
        "--target",
        "torch",
        "--target",
        "keras",
        "--target",
        "diagrams",
    )
    assert code == 0, err
    folder = out / graph.name
    files = [folder / "torch_model.py", folder / "keras_model.py"]
    for path, framework in zip(files, ("torch", "keras"), strict=True):
        text = path.read_text(encoding="utf-8")
        for kind in PLUGIN_KINDS:
            ref = REGISTRY[kind].implementation(framework)
            assert f"    {kind}: example_layers {example_layers.__version__} ({ref})" in text
        module, _, _ = ref.partition(":")
        assert f"from {module} import LearnedScale, SwishGate\n" in text
    # the linter and formatter, as a user's project runs them
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *map(str, files)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # the figures name the kind and its parameters
    dot = (folder / "diagrams" / "decoder.dot").read_text(encoding="utf-8")
    assert "swish_gate" in dot

    t, nt, _ = graph.counts()
    tmod = import_file(files[0], "plugin_ae_torch_model")
    model = tmod.build_model()
    assert sum(p.numel() for p in model.parameters()) == t == tmod.TRAINABLE_PARAMETERS
    x = torch.rand(2, *tmod.INPUT_SHAPE)
    assert tuple(model(x).shape) == (2, *tmod.INPUT_SHAPE)
    kmod = import_file(files[1], "plugin_ae_keras_model")
    kmodel = kmod.build_model()
    assert sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights) == t
    assert tuple(kmodel(np.zeros((2, *kmod.INPUT_SHAPE), "float32")).shape) == (
        2,
        *kmod.INPUT_SHAPE,
    )
    assert nt == 0


@pytest.mark.frameworks
def test_verify_proves_the_plugin_layers_equal(graph):
    from specgen.verify import verify

    report = verify(graph)
    assert report.ok, report.table()
    assert max(r.max_abs for r in report.rows) <= TOLERANCE
    assert len(set(report.counts.values())) == 1


def _randomised(graph):
    """The PyTorch model with every weight drawn afresh (the plugins' constant initial values
    would hide a weight that is not moved)."""
    import torch
    from specgen.codegen.compiled import compile_module

    torch.manual_seed(1)
    model = compile_module(graph, "torch").build_model().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def _agree(tmodel, kmodel, graph) -> float:
    import numpy as np

    import keras
    import torch

    x = np.random.default_rng(0).random((2, *graph.input_shape)).astype("float32")
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    got = keras.ops.convert_to_numpy(kmodel(x))
    return float(np.abs(got - expected).max() / max(1.0, np.abs(expected).max()))


@pytest.mark.frameworks
def test_plugin_weights_move_to_keras(graph):
    import numpy as np

    from specgen.codegen.compiled import compile_module
    from specgen.convert import keras_layer, torch_state_to_keras

    tmodel = _randomised(graph)
    kmodel = compile_module(graph, "keras").build_model()
    torch_state_to_keras(graph, tmodel.state_dict(), kmodel)
    assert _agree(tmodel, kmodel, graph) <= TOLERANCE
    # declared weights (learned_scale) by name; paired ones (swish_gate) as a conv kernel
    scale = "encoder.down0.scale1"
    assert np.array_equal(
        keras_layer(kmodel, scale).scale.numpy(), tmodel.get_submodule(scale).scale.detach().numpy()
    )
    gate = "encoder.down1.swish_gate1"
    kernel = tmodel.get_submodule(gate).conv.weight.detach().numpy()
    assert np.array_equal(
        keras_layer(kmodel, gate).conv.kernel.numpy(), kernel.transpose(2, 3, 1, 0)
    )


@pytest.mark.frameworks
def test_convert_weights_moves_plugin_weights_both_ways(graph, capsys, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file
    from safetensors.torch import save_file

    from specgen.codegen.compiled import compile_module

    tmodel = _randomised(graph)
    state = {k: v.contiguous() for k, v in tmodel.state_dict().items()}
    save_file(state, str(tmp_path / "torch.safetensors"))
    common = [str(SPEC), "--plugin", KINDS]
    code, out, err = run(
        capsys,
        "convert-weights",
        *common,
        str(tmp_path / "torch.safetensors"),
        str(tmp_path / "keras.weights.h5"),
    )
    assert code == 0, err
    assert f"({len(state)} tensors)" in out
    kmodel = compile_module(graph, "keras").build_model()
    kmodel.load_weights(str(tmp_path / "keras.weights.h5"))
    assert _agree(tmodel, kmodel, graph) <= TOLERANCE

    code, _, err = run(
        capsys,
        "convert-weights",
        *common,
        str(tmp_path / "keras.weights.h5"),
        str(tmp_path / "back.safetensors"),
    )
    assert code == 0, err
    back = load_file(str(tmp_path / "back.safetensors"))
    assert set(back) == set(state)
    for key, value in state.items():
        assert np.array_equal(back[key], value.numpy()), key


@pytest.mark.frameworks
def test_imported_names_are_reserved_in_generated_files(isolated, tmp_path):
    """A plugin class named like something the file binds is imported under another name, and
    a spec's class named like a plugin's import is renamed instead; both files agree."""
    import numpy as np

    import torch
    from specgen.codegen.compiled import compile_module, render

    load_plugins(KINDS, "clash")
    spec = tmp_path / "clash.yaml"
    spec.write_text(
        "specgen: 1\nname: clash\ninput: {shape: [8, 8, 3]}\n"
        "blocks:\n  learned_scale:\n    layers:\n"
        "      - {kind: conv2d, filters: 4, kernel_size: 3}\n"
        "      - {kind: learned_scale}\n"
        "encoder:\n  - {block: learned_scale}\n  - {kind: passthrough}\n"
        "decoder:\n  - {kind: conv2d, filters: 3, kernel_size: 3}\n",
        encoding="utf-8",
    )
    graph = build_graph(spec)
    texts = {fw: render(graph, fw, "clash.yaml") for fw in ("torch", "keras")}
    for fw, text in texts.items():
        assert f"from clash_{fw} import Encoder as Encoder2\n" in text
        assert "class Encoder(" in text and "= Encoder2()" in text
        assert f"from example_layers.{fw}_layers import LearnedScale\n" in text
        assert "class LearnedScale2(" in text
    paths = []
    for fw, text in texts.items():
        paths.append(tmp_path / f"clash_{fw}_model.py")
        paths[-1].write_text(text, encoding="utf-8")
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *map(str, paths)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    tmodel = compile_module(graph, "torch").build_model()
    assert tuple(tmodel(torch.rand(1, 3, 8, 8)).shape) == (1, 3, 8, 8)
    kmodel = compile_module(graph, "keras").build_model()
    assert tuple(kmodel(np.zeros((1, 8, 8, 3), "float32")).shape) == (1, 8, 8, 3)


@pytest.mark.frameworks
def test_a_missing_implementation_is_one_clear_line(isolated, capsys, tmp_path):
    spec = tmp_path / "half.yaml"
    spec.write_text(
        "specgen: 1\nname: half\ninput: {shape: [8, 8, 3]}\n"
        "encoder:\n  - {kind: half_installed}\ndecoder:\n  - {kind: half_installed}\n",
        encoding="utf-8",
    )
    code, out, _ = run(
        capsys, "generate", str(spec), "--plugin", "missing_impl", "-o", str(tmp_path)
    )
    assert code == 0  # generating needs no implementation
    code, out, err = run(capsys, "verify", str(spec), "--plugin", "missing_impl")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "specgen: error: plugin layer 'half_installed' (missing_impl (version unknown)): its "
        "Keras implementation missing_impl_keras_layers:HalfInstalled cannot be imported: "
        "ModuleNotFoundError: No module named 'missing_impl_keras_layers'"
    ]


# ----------------------------------------------------------------------------------------------
# Installed distributions: entry points in the group specgen.layers


def _dist_info(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution: the metadata and entry points pip would write."""
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (folder / "entry_points.txt").write_text(
        "[specgen.layers]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


def test_an_installed_distribution_s_entry_point_registers_its_kinds(tmp_path):
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    meta = project["project"]
    site = tmp_path / "site"
    _dist_info(site, meta["name"], meta["version"], meta["entry-points"]["specgen.layers"])

    proc = specgen_process("validate", str(SPEC), paths=(site, PLUGIN_ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{SPEC}: ok (")
    proc = specgen_process(
        "generate",
        str(SPEC),
        "-o",
        str(tmp_path / "out"),
        "--target",
        "torch",
        paths=(site, PLUGIN_ROOT),
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out" / "plugin_ae" / "torch_model.py").read_text(encoding="utf-8")
    assert (
        f"    swish_gate: {meta['name']} {meta['version']} "
        "(example_layers.torch_layers:SwishGate)\n" in text
    )
    # without the distribution the kinds are unknown again
    proc = specgen_process("validate", str(SPEC), paths=(PLUGIN_ROOT,))
    assert proc.returncode == 1 and "unknown layer kind 'swish_gate'" in proc.stderr


def test_a_broken_installed_plugin_is_one_clean_line_naming_its_distribution(tmp_path):
    site = tmp_path / "site"
    _dist_info(site, "broken-layers", "0.2.0", {"broken": "broken_import"})
    proc = specgen_process("validate", str(SPEC), paths=(site, MISBEHAVING))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "specgen: error: cannot load plugin 'broken' (broken-layers 0.2.0), entry point 'broken = "
        "broken_import' in group 'specgen.layers': ModuleNotFoundError: No module named "
        "'specgen_no_such_dependency'"
    ]
