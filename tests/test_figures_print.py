"""Figures a paper can print: every built-in spec's figures, rendered by the real ``dot``, are
measured from their SVG as printed on a two-column paper's page (7 × 9 in; block figures in one
3.3-in column): the smallest text must be at least 6 pt. Labels must be true of every instance a
collapsed unit stands for, merges sit in the level they merge into, and no drawing reads as a
cycle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from specgen.api import build_graph
from specgen.cli import main
from specgen.diagram import figures, op_label
from specgen.diagram_render import (
    COLUMN_WIDTH,
    MIN_PRINT_FONT,
    PAGE_WIDTH,
    print_size,
    run_dot,
    to_dot,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
#: Other ranks and sizes, so that the layouts are not tuned to the defaults alone.
VARIANTS = [
    ("zoo/monai_unet", {"input_shape": [16, 16, 16, 1], "channels": [4, 8, 16], "strides": [2, 2]}),
    ("zoo/monai_autoencoder", {"input_shape": [64, 2]}),
    ("resnet_ae", {"n_levels": 5, "input_shape": [256, 256, 1]}),
    ("unet_ae", {"input_shape": [64, 64, 1]}),
]


def cases():
    for spec in SPECS:
        yield pytest.param(spec, {}, id=spec.stem)
    for name, overrides in VARIANTS:
        yield pytest.param(ROOT / "specs" / f"{name}.yaml", overrides, id=name.split("/")[-1] + "+")


@needs_dot
@pytest.mark.parametrize(("spec", "overrides"), list(cases()))
def test_every_figure_prints_legibly(spec, overrides):
    graph = build_graph(spec, overrides)
    for fig in figures(graph):
        svg = run_dot(to_dot(fig, "h"), "svg")
        width = COLUMN_WIDTH if fig.name.startswith("block_") else PAGE_WIDTH
        size = print_size(svg, width)
        line = size.line(width)
        print(f"{spec.stem} {fig.name}: {line}")
        assert size.smallest_font_pt >= MIN_PRINT_FONT, f"{fig.name}: {line}"
        # no long line: a figure is at most two and a half times as wide as high, or high as wide
        assert 0.25 <= size.aspect <= 2.5, f"{fig.name}: {line}"


def _main_op(graph, group: str) -> str:
    nodes = [n for n in graph.nodes if n.name.startswith(group + ".")]
    for n in nodes:
        if n.layer.neutral_kind in ("conv", "conv_transpose", "dense", "vector_quantizer"):
            return op_label(n)
    return op_label(nodes[0])


@pytest.mark.parametrize(("spec", "overrides"), list(cases()))
def test_labels_are_true_of_every_instance_and_nothing_reads_as_a_cycle(spec, overrides):
    graph = build_graph(spec, overrides)
    for fig in figures(graph):
        for unit in fig.units:
            if len(unit.instances) > 1 or (unit.instances and unit.kind == "block"):
                shown = unit.lines[1]
                ops = {_main_op(graph, g) for g in unit.instances}
                assert ops == {shown}, (fig.name, unit.id, ops)
        drawn = {(e.src, e.dst) for e in fig.edges if e.visible}
        assert not any(a == b for a, b in drawn), fig.name
        assert not any((b, a) in drawn for a, b in drawn), (fig.name, sorted(drawn))


def test_a_collapsed_level_of_other_widths_is_drawn_once_per_width(specs_dir):
    """The MNIST model's two blocks differ (8 and 16 wide): two units, each labelled truly."""
    graph = build_graph(specs_dir / "res_ae_mnist.yaml")
    overview = next(f for f in figures(graph) if f.name == "overview")
    encoder = [u for u in overview.units if u.id.startswith("encoder.")]
    assert [u.lines for u in encoder] == [["block0", "conv 1×1, 8"], ["block1", "conv 1×1, 16"]]


def test_a_skips_merge_sits_in_the_level_it_merges_into(specs_dir):
    graph = build_graph(specs_dir / "unet_ae.yaml")
    decoder = next(f for f in figures(graph) if f.name == "decoder")
    merges = {u.id: u.cluster for u in decoder.units if u.kind == "merge"}
    assert merges == {
        "decoder.skip0_concat": "decoder.level0",
        "decoder.skip1_concat": "decoder.level1",
        "decoder.skip2_concat": "decoder.level2",
    }
    overview = next(f for f in figures(graph) if f.name == "overview")
    # the overview draws each level once: the skips come straight across into it
    assert not [u for u in overview.units if u.kind == "merge"]
    across = [e for e in overview.edges if e.skip and not e.constraint]
    assert sorted((e.src, e.dst) for e in across) == [
        ("encoder.level0", "decoder.level2"),
        ("encoder.level1", "decoder.level1"),
        ("encoder.level2", "decoder.level0"),
    ]


def test_operator_names_are_readable(specs_dir):
    graph = build_graph(ROOT / "specs" / "zoo" / "diffusers_autoencoder_kl.yaml")
    labels = {op_label(n) for n in graph.nodes}
    assert "GroupNorm(32)" in labels and not any("GN /" in x for x in labels)
    assert op_label(build_graph(specs_dir / "resnet_ae.yaml").node("encoder.stem.bn1")) == (
        "BatchNorm"
    )


@needs_dot
def test_dot_warnings_are_passed_on():
    warnings: list[str] = []
    run_dot("digraph { a [shape=nosuchshape]; }", "svg", warnings=warnings)
    assert any("nosuchshape" in w for w in warnings)


@needs_dot
def test_width_and_column_scale_the_figures_and_name_those_too_small(specs_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    spec = str(specs_dir / "resnet_ae.yaml")
    assert main(["diagram", spec, "-o", str(out), "--width", "17.8cm", "--format", "svg"]) == 0
    err = capsys.readouterr().err
    assert "under 6 pt" not in err
    dot = (out / "resnet_ae" / "diagrams" / "overview.dot").read_text()
    assert 'size="7.00787,9"' in dot
    assert main(["diagram", spec, "-o", str(out), "--column", "--format", "svg"]) == 0
    err = capsys.readouterr().err
    assert "resnet_ae/diagrams/overview: " in err and "under 6 pt" in err
    assert main(["diagram", spec, "-o", str(out), "--width", "7 furlongs"]) == 1
    assert "not a width" in capsys.readouterr().err


@needs_dot
def test_a_png_of_a_huge_drawing_is_drawn_at_fewer_dots(tmp_path):
    import struct

    text = "digraph { rankdir=LR; " + " ".join(f"n{i} -> n{i + 1};" for i in range(400)) + " }"
    svg = run_dot(text, "svg")
    size = print_size(svg, 1000, 1000)
    assert size.width_pt / 72 > 100  # over 100 in wide
    from specgen.diagram_render import MAX_PNG_SIDE

    dpi = max(10, min(96, int(MAX_PNG_SIDE / (size.width_pt / 72))))
    png = run_dot(text, "png", extra=[f"-Gdpi={dpi}"])
    width, height = struct.unpack(">II", png[16:24])
    assert max(width, height) <= MAX_PNG_SIDE * 1.05
