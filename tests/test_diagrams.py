"""Architecture figures: DOT text, escaping, rendering with the real dot, Mermaid."""

from __future__ import annotations

import re
import shutil

import pytest

from specgen.api import build_graph, load_spec
from specgen.cli import main
from specgen.diagram import figures, op_label
from specgen.diagram_render import (
    DotError,
    diagram_files,
    dot_string,
    mermaid_string,
    run_dot,
    to_dot,
    to_mermaid,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")


def figure(graph, name):
    return next(f for f in figures(graph) if f.name == name)


def test_every_spec_gets_overview_encoder_decoder_and_block_figures(specs_dir):
    g = build_graph(specs_dir / "resnet_ae.yaml")
    names = [f.name for f in figures(g)]
    assert names == [
        "overview",
        "encoder",
        "decoder",
        "block_conv_bn_act",
        "block_res_block",
        "block_deconv_bn_act",
    ]


def test_repeated_blocks_collapse_and_levels_are_clusters(specs_dir):
    enc = figure(build_graph(specs_dir / "resnet_ae.yaml"), "encoder")
    labels = {u.id: u.lines for u in enc.units}
    assert labels["encoder.level0.blocks.block0"][0] == "ResBlock ×8"
    assert labels["encoder.level1.down"] == ["ConvBnAct", "conv 2×2/2, 32"]
    assert {c.label for c in enc.clusters} >= {"level0  256²×8", "level3  32²×64"}
    merges = [u for u in enc.units if u.kind == "merge"]
    assert len(merges) == 1
    # the four multi-resolution skips: skip-coloured edges into the one sum
    assert len([e for e in enc.edges if e.dst == merges[0].id and e.skip]) == 4
    assert enc.skips == ["encoder.skip"]


def test_expand_draws_every_layer(specs_dir):
    g = build_graph(
        specs_dir / "resnet_ae.yaml",
        {"n_residual_blocks": 1, "n_levels": 1, "input_shape": [32, 32, 3]},
    )
    enc = next(f for f in figures(g, expand=True) if f.name == "encoder")
    assert "encoder.level0.blocks.block0.conv1" in {u.id for u in enc.units}


def test_op_labels(specs_dir):
    g = build_graph(specs_dir / "resnet_ae.yaml")
    assert op_label(g.node("encoder.level0.down.conv1")) == "conv 2×2/2, 16"
    assert op_label(g.node("decoder.level0.up.deconv1")) == "convT 2×2/2, 64"
    assert op_label(g.node("encoder.stem.act1")) == "LeakyReLU 0.2"


def test_dot_is_deterministic_and_names_match_the_graph(specs_dir):
    g = build_graph(specs_dir / "unet_ae.yaml")
    a = [to_dot(f, "h") for f in figures(g)]
    b = [to_dot(f, "h") for f in figures(build_graph(specs_dir / "unet_ae.yaml"))]
    assert a == b
    assert '"decoder.level0.up"' in a[2]


@pytest.mark.parametrize("text", ['a"b', "a\\b", 'x"];\nevil [label="y', "<b>html</b>", "a]b"])
def test_labels_cannot_break_out_of_dot_strings(text):
    quoted = dot_string(text)
    inner = quoted[1:-1]
    assert quoted.startswith('"') and quoted.endswith('"')
    assert not re.search(r'(?<!\\)"', inner.replace("\\\\", ""))  # every quote is escaped
    assert "\n" not in quoted
    assert "\n" not in mermaid_string(text) and '"' not in mermaid_string(text)[1:-1]


def test_mermaid_output(specs_dir):
    text = to_mermaid(figure(build_graph(specs_dir / "unet_ae.yaml"), "decoder"), "h")
    assert text.startswith("%% h\nflowchart TB\n")
    assert "subgraph" in text and "-.->" in text and "linkStyle" in text


@needs_dot
@pytest.mark.parametrize("spec", ["resnet_ae", "unet_ae", "resnet_vqvae"])
def test_rendered_svg_has_the_expected_nodes_and_edges(specs_dir, spec):
    for fig in figures(build_graph(specs_dir / f"{spec}.yaml")):
        svg = run_dot(to_dot(fig, "h"), "svg").decode()
        assert svg.count('class="node"') == len(fig.units), fig.name
        # edges that only hold the layout together are not drawn
        drawn = re.findall(r'<g id="edge\d+" class="edge">(.*?)</g>', svg, re.S)
        visible = [d for d in drawn if "<path" in d]
        assert len(visible) == len([e for e in fig.edges if e.visible]), fig.name
        assert svg.count('class="cluster"') == len(fig.clusters)
        if fig.skips:  # the legend is a line under the title
            assert "skip path" in svg


@needs_dot
def test_dot_errors_and_time_limit_are_reported():
    with pytest.raises(DotError):
        run_dot("digraph { a -> }", "svg")
    with pytest.raises(DotError, match="longer than"):
        run_dot(
            "digraph { " + " ".join(f"n{i} -> n{i + 1};" for i in range(3000)) + " }",
            "svg",
            timeout=0.01,
        )


def test_without_dot_the_dot_files_are_still_written(specs_dir, monkeypatch):
    import specgen.diagram_render as dr

    monkeypatch.setattr(dr.shutil, "which", lambda name: None)
    files, messages = diagram_files(build_graph(specs_dir / "unet_ae.yaml"), "h")
    # the feature-map figure is drawn without graphviz
    drawn = {n for n in files if not n.endswith(".dot")}
    assert drawn == {"unet_ae/diagrams/feature_maps.svg", "unet_ae/diagrams/feature_maps.tex"}
    assert len(messages) == 1 and "apt-get install graphviz" in messages[0]


@needs_dot
def test_diagram_command_writes_the_requested_formats(specs_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    args = [
        "diagram",
        str(specs_dir / "conv_autoencoder.yaml"),
        "-o",
        str(out),
        "--format",
        "svg,png,pdf,mermaid",
        "--direction",
        "TB",
        "--theme",
        "print",
        "--params",
    ]
    assert main(args) == 0
    files = {p.name for p in (out / "conv_autoencoder" / "diagrams").iterdir()}
    for ext in ("dot", "svg", "png", "pdf", "mmd"):
        assert f"encoder.{ext}" in files
    assert (out / "conv_autoencoder" / "diagrams" / "encoder.png").read_bytes()[:4] == b"\x89PNG"
    dot = (out / "conv_autoencoder" / "diagrams" / "encoder.dot").read_text()
    assert "rankdir=TB" in dot and "params" in dot
    assert main(args) == 0  # a second run overwrites its own PNG/PDF files
    assert (
        main(
            ["diagram", str(specs_dir / "conv_autoencoder.yaml"), "-o", str(out), "--format", "gif"]
        )
        == 1
    )


def test_large_graphs_are_collapsed():
    body = (
        "specgen: 1\nname: big\ninput: {shape: [8, 8, 1]}\n"
        "encoder:\n  - name: g\n    for: i\n    in: 500\n    layers:\n"
        "      - {kind: conv2d, filters: 1, kernel_size: 1}\n"
        "      - {kind: relu}\n"
        "decoder:\n  - {kind: conv2d, filters: 1, kernel_size: 1}\n"
    )
    graph = build_graph(load_spec(text=body, filename="big.yaml"))
    enc = next(f for f in figures(graph) if f.name == "encoder")
    assert enc.note.startswith("collapsed")
    blocks = [u for u in enc.units if u.kind == "block"]
    assert [u.lines[0] for u in blocks] == ["g ×500"]
    assert len(enc.units) < 10
