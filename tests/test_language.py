"""Spec-language features, each on a small spec of its own."""

from __future__ import annotations

import pytest

from specgen.api import build_graph, load_spec
from specgen.errors import SpecErrors

HEAD = "specgen: 1\nname: t\ninput: {shape: [16, 16, 2]}\n"
TAIL = "decoder:\n  - {kind: conv2d, name: out, filters: 2, kernel_size: 1}\n"


def graph(body: str, **overrides):
    return build_graph(load_spec(text=HEAD + body, filename="t.yaml"), overrides)


def names(g, part="encoder"):
    return [n.name for n in g.part_nodes(part)]


def test_auto_names_are_numbered_per_kind_and_scope():
    g = graph(
        "encoder:\n"
        "  - {kind: conv2d, filters: 4, kernel_size: 3}\n"
        "  - {kind: batch_norm}\n"
        "  - {kind: relu}\n"
        "  - {kind: conv2d, filters: 4, kernel_size: 3}\n"
        "  - {kind: relu}\n" + TAIL
    )
    assert names(g) == [
        "encoder.conv1",
        "encoder.bn1",
        "encoder.act1",
        "encoder.conv2",
        "encoder.act2",
    ]


def test_loops_over_counts_and_lists_with_an_index():
    g = graph(
        "parameters: {widths: [4, 8]}\n"
        "encoder:\n"
        "  - name: stage\n    for: w\n    in: ${widths}\n    index: i\n    layers:\n"
        "      - {kind: conv2d, name: c, filters: '${w + i}', kernel_size: 1}\n" + TAIL
    )
    assert names(g) == ["encoder.stage0.c", "encoder.stage1.c"]
    assert [g.node(n).layer.filters for n in names(g)] == [4, 9]


def test_levels_item_makes_blocks_and_after_items():
    g = graph(
        "blocks:\n  b:\n    params: {f: null}\n    layers:\n"
        "      - {kind: conv2d, filters: '${f}', kernel_size: 3}\n"
        "encoder:\n  - levels: 2\n    block: b\n    repeat: 2\n"
        "    args: {f: '${4 * (level + 1)}'}\n"
        "    after:\n      - {kind: max_pool, name: down, pool_size: 2, strides: 2}\n"
        "decoder:\n  - {kind: upsample, size: 4}\n  - {kind: conv2d, filters: 2, kernel_size: 1}\n"
    )
    assert names(g) == [
        "encoder.level0.blocks.block0.conv1",
        "encoder.level0.blocks.block1.conv1",
        "encoder.level0.down",
        "encoder.level1.blocks.block0.conv1",
        "encoder.level1.blocks.block1.conv1",
        "encoder.level1.down",
    ]
    assert g.node("encoder.level1.blocks.block0.conv1").layer.filters == 8
    assert {grp.block for grp in g.groups if grp.name.endswith("block0")} == {"b"}


def test_when_and_shape_variables_choose_a_projection():
    body = (
        "blocks:\n  res:\n    params: {f: null}\n    layers:\n"
        "      - {kind: conv2d, filters: '${f}', kernel_size: 3}\n"
        "      - {kind: conv2d, name: proj, inputs: [input], filters: '${f}', kernel_size: 1,"
        " when: '${in_channels != f}'}\n"
        "      - {kind: add, inputs: [conv1, \"${'proj' if in_channels != f else 'input'}\"]}\n"
        "encoder:\n  - {block: res, name: a, args: {f: 2}}\n"
        "  - {block: res, name: b, args: {f: 6}}\n"
        "decoder:\n  - {kind: conv2d, filters: 2, kernel_size: 1}\n"
    )
    g = graph(body)
    assert "encoder.a.proj" not in g and "encoder.b.proj" in g
    assert [r.node for r in g.node("encoder.a.add1").inputs] == ["encoder.a.conv1", "input"]


def test_block_parameter_defaults_may_be_expressions():
    g = graph(
        "blocks:\n  b:\n    params: {f: 3, g: '${f * 2}'}\n    layers:\n"
        "      - {kind: conv2d, filters: '${g}', kernel_size: 1}\n"
        "encoder:\n  - {block: b, args: {f: 5}}\n"
        "decoder:\n  - {kind: conv2d, filters: 2, kernel_size: 1}\n"
    )
    assert g.node("encoder.b.conv1").layer.filters == 10


def test_a_skip_may_start_at_the_model_input():
    g = graph(
        "encoder:\n  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}\n"
        "decoder:\n  - {kind: upsample, name: up}\n  - {kind: conv2d, name: out, filters: 2,"
        " kernel_size: 1}\n"
        "skips:\n  - {name: raw, from: input, to: decoder.up, merge: concat}\n"
    )
    assert g.shape(g.node("decoder.out").inputs[0]) == (16, 16, 6)
    assert g.skips[0].source.node == "input"


def test_a_group_may_start_from_another_tensor():
    g = graph(
        "encoder:\n  - {kind: conv2d, name: a, filters: 2, kernel_size: 1}\n"
        "  - {kind: conv2d, name: b, filters: 2, kernel_size: 1}\n"
        "  - name: g\n    inputs: [a]\n    layers:\n      - {kind: relu}\n"
        "  - {kind: add, inputs: [b, g]}\n" + TAIL
    )
    assert g.node("encoder.g.act1").inputs[0].node == "encoder.a"


def test_skips_from_several_levels_share_one_merge_in_order():
    g = graph(
        "encoder:\n  - name: lvl\n    for: i\n    in: 3\n    layers:\n"
        "      - {kind: conv2d, name: c, filters: 2, kernel_size: 1}\n"
        "skips:\n  - {name: s, for: i, in: 2, from: 'encoder.lvl${i}', to: encoder.lvl2}\n" + TAIL
    )
    merge = g.node("encoder.s_add")
    assert [r.node for r in merge.inputs] == ["encoder.lvl2.c", "encoder.lvl0.c", "encoder.lvl1.c"]
    assert [s.name for s in g.skips] == ["encoder.s0", "encoder.s1"]


def test_parameters_may_depend_on_parameters_and_be_overridden():
    body = (
        "parameters: {a: 2, b: '${a * 3}'}\n"
        "encoder:\n  - {kind: conv2d, filters: '${b}', kernel_size: 1}\n" + TAIL
    )
    assert graph(body).node("encoder.conv1").layer.filters == 6
    assert graph(body, a=5).node("encoder.conv1").layer.filters == 15


def test_validate_reports_every_spec(tmp_path, capsys, specs_dir):
    from specgen.cli import main

    bad1 = tmp_path / "a.yaml"
    bad1.write_text(HEAD + "encoder:\n  - {kind: conv, filters: 2}\n" + TAIL)
    bad2 = tmp_path / "b.yaml"
    bad2.write_text(HEAD + "encoder:\n  - {kind: relu, slope: 2}\n" + TAIL)
    assert main(["validate", str(bad1), str(specs_dir / "unet_ae.yaml"), str(bad2)]) == 1
    out, err = capsys.readouterr()
    assert "a.yaml:5:" in err and "b.yaml:5:" in err and "unet_ae.yaml: ok" in out


def test_too_many_parameters_is_an_error():
    with pytest.raises(SpecErrors) as info:
        graph(
            "encoder:\n  - {kind: flatten}\n  - {kind: dense, units: 1048576}\n"
            "  - {kind: dense, units: 1048576}\n"
            "decoder:\n  - {kind: dense, units: 512}\n"
            "  - {kind: reshape, target_shape: [16, 16, 2]}\n"
        )
    assert "parameters, more than specgen supports (10,000,000,000)" in info.value.render()
