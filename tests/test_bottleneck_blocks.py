"""The bottleneck as a part written in the spec language: the library's blocks behind the
``{kind: ...}`` shorthand, block uses inlined in a scope, block requirements, references to a
node's other outputs (``name:k``) and the model outputs the spec declares with their roles."""

from __future__ import annotations

import re

import pytest

from specgen.api import build_graph, load_spec
from specgen.errors import SpecErrors
from specgen.expand.budget import MAX_DENSE_WIDTH
from specgen.library import library, shorthand_block
from specgen.schema import (
    DenseBottleneck,
    DiagonalGaussianBottleneck,
    NoBottleneck,
    VariationalBottleneck,
    VectorQuantizedBottleneck,
)
from specgen.to_spec import dump_spec, graph_to_spec

SHORTHAND_MODELS = {
    "none": NoBottleneck,
    "dense": DenseBottleneck,
    "variational": VariationalBottleneck,
    "vector_quantized": VectorQuantizedBottleneck,
    "diagonal_gaussian": DiagonalGaussianBottleneck,
}

HEAD = """\
specgen: 1
name: tiny
input: {shape: [16, 16, 1]}
encoder:
  - {kind: conv2d, name: down, filters: 4, kernel_size: 3, strides: 2}
"""
DECODER = """\
decoder:
  - {kind: conv2d_transpose, name: up, filters: 1, kernel_size: 2, strides: 2}
"""


def graph_from(text: str, name: str = "spec.yaml"):
    return build_graph(load_spec(text=text, filename=name))


def errors_of(text: str) -> list:
    with pytest.raises(SpecErrors) as caught:
        graph_from(text)
    return caught.value.errors


def rendered(text: str) -> str:
    with pytest.raises(SpecErrors) as caught:
        graph_from(text)
    return caught.value.render()


def round_trips(graph) -> str:
    text = dump_spec(graph_to_spec(graph))
    again = graph_from(text, "expanded.yaml")
    assert again.structure() == graph.structure()
    return text


def network(graph) -> list:
    """Nodes without provenance or the role the shorthand gives its nodes."""
    return [
        (n.name, n.layer, n.inputs, n.output_shapes, n.trainable, n.non_trainable, n.part)
        for n in graph.nodes
    ]


# -- the library ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SHORTHAND_MODELS))
def test_each_shorthand_kind_has_a_library_block_with_its_fields_and_defaults(kind):
    block = library().blocks[shorthand_block(kind)]
    model = SHORTHAND_MODELS[kind]
    fields = {name: field.default for name, field in model.model_fields.items() if name != "kind"}
    assert set(block.params) == set(fields)
    for name, default in fields.items():
        expected = None if default.__class__.__name__ == "PydanticUndefinedType" else default
        assert block.params[name] == expected, name


def test_the_library_states_the_dense_width_limit():
    for name in ("dense_bottleneck", "variational_bottleneck"):
        conditions = [str(r.that) for r in library().blocks[name].require]
        assert any(str(MAX_DENSE_WIDTH) in c for c in conditions), conditions


SHORTHANDS = {
    "none": "{kind: none}",
    "dense": "{kind: dense, units: 6, activation: tanh, expand_activation: relu}",
    "variational": "{kind: variational, units: 5, inference: sample, use_bias: false}",
    "vector_quantized": "{kind: vector_quantized, embedding_dim: 3, num_embeddings: 7}",
    "diagonal_gaussian": "{kind: diagonal_gaussian, latent_channels: 4}",
}


@pytest.mark.parametrize("kind", sorted(SHORTHANDS))
def test_the_shorthand_is_the_library_block_inlined(kind):
    short = graph_from(HEAD + f"bottleneck: {SHORTHANDS[kind]}\n" + DECODER)
    args = SHORTHANDS[kind].replace(f"kind: {kind}", "").strip("{} ,")
    written = graph_from(
        HEAD
        + "bottleneck:\n"
        + f"  - {{block: {shorthand_block(kind)}, inline: true, args: {{{args}}}}}\n"
        + DECODER
    )
    assert network(written) == network(short)
    assert written.outputs == short.outputs
    assert written.output_roles == short.output_roles
    assert short.bottleneck.kind == kind and written.bottleneck is None
    assert {n.role for n in short.part_nodes("bottleneck")} <= {"bottleneck"}
    assert {n.role for n in written.part_nodes("bottleneck")} <= {"layer"}
    round_trips(short)
    round_trips(written)


def test_the_outputs_of_each_kind_and_their_order():
    expected = {
        "none": ["reconstruction", "code"],
        "dense": ["reconstruction", "code"],
        "variational": ["reconstruction", "mu", "logvar"],
        "vector_quantized": ["vq_loss", "reconstruction", "perplexity", "indices"],
        "diagonal_gaussian": ["reconstruction", "mu", "logvar"],
    }
    for kind, names in expected.items():
        graph = graph_from(HEAD + f"bottleneck: {SHORTHANDS[kind]}\n" + DECODER)
        assert [n for n, _ in graph.outputs] == names, kind
        assert graph.output_roles == tuple(names), kind
    dense = graph_from(HEAD + f"bottleneck: {SHORTHANDS['dense']}\n" + DECODER)
    assert dense.output("code").node == "bottleneck.code_activation"
    assert dense.forward_outputs() == ("reconstruction",)


def test_a_spec_block_of_the_same_name_replaces_the_library_one():
    text = (
        HEAD
        + """\
blocks:
  dense_bottleneck:
    params: {units: null}
    layers:
      - {kind: conv2d, name: squeeze, filters: "${units}", kernel_size: 1}
    outputs:
      - {name: code, from: squeeze}
bottleneck: {kind: dense, units: 2}
"""
        + DECODER.replace("filters: 1, kernel_size: 2", "filters: 1, kernel_size: 2")
    )
    graph = graph_from(text)
    assert [n.name for n in graph.part_nodes("bottleneck")] == ["bottleneck.squeeze"]
    assert graph.bottleneck is None  # no longer the library's shorthand
    assert graph.output("code").node == "bottleneck.squeeze"
    expanded = round_trips(graph)
    assert "kind: dense" not in expanded


def test_a_library_error_points_at_the_library_and_the_use_site():
    text = HEAD.replace("filters: 4", "filters: 16400") + "bottleneck: {kind: dense, units: 3}\n"
    (error,) = errors_of(text + DECODER)
    assert error.source is not None
    assert error.source.filename == "specgen/library/bottlenecks.yaml"
    assert error.path[:2] == ("blocks", "dense_bottleneck")
    assert "too many for a dense bottleneck" in error.message
    assert "16400 channels at 64 positions" in error.message
    assert str(8 * 8 * 16400) in error.message
    assert error.notes == ("in block 'dense_bottleneck' used at spec.yaml:6:13",)
    assert "bottleneck kind none" in error.hint
    text = rendered(text + DECODER)
    line = re.search(r"^specgen/library/bottlenecks\.yaml:(\d+):\d+: error", text, re.M)
    library_text = library().sources["dense_bottleneck"].text.splitlines()
    assert "that:" in library_text[int(line.group(1)) - 1]


def test_a_bottleneck_must_be_a_list_or_a_mapping():
    (error,) = errors_of(HEAD + "bottleneck: 3\n" + DECODER)
    assert "a list of items, or a mapping with 'kind'" in error.message
    assert error.path == ("bottleneck",)


# -- a bottleneck of items ------------------------------------------------------------------------

SPATIAL_VAE = (
    HEAD
    + """\
bottleneck:
  - {kind: conv2d, name: moments, filters: 4, kernel_size: 1}
  - {kind: diagonal_gaussian, name: gauss}
  - {kind: vae_sampling, name: z, inputs: [gauss, "gauss:1"]}
"""
    + DECODER
    + """\
outputs:
  - {name: mu, from: bottleneck.gauss}
  - {name: logvar, from: "bottleneck.gauss:1"}
"""
)


def test_a_bottleneck_of_items_with_declared_outputs():
    graph = graph_from(SPATIAL_VAE)
    assert [n.name for n in graph.part_nodes("bottleneck")] == [
        "bottleneck.moments",
        "bottleneck.gauss",
        "bottleneck.z",
    ]
    assert graph.part("bottleneck").input.node == "encoder.down"
    assert graph.part("decoder").input.node == "bottleneck.z"
    z = graph.node("bottleneck.z")
    assert [str(r) for r in z.inputs] == ["bottleneck.gauss", "bottleneck.gauss:1"]
    assert [(n, str(r)) for n, r in graph.outputs] == [
        ("reconstruction", "decoder.up"),
        ("mu", "bottleneck.gauss"),
        ("logvar", "bottleneck.gauss:1"),
    ]
    assert graph.output_roles == ("reconstruction", "mu", "logvar")
    expanded = round_trips(graph)
    assert "inputs: [gauss, 'gauss:1']" in expanded


def test_an_empty_bottleneck_passes_the_encoder_output_through():
    graph = graph_from(HEAD + "bottleneck: []\n" + DECODER)
    assert graph.part("bottleneck").output == graph.part("encoder").output
    assert [n for n, _ in graph.outputs] == ["reconstruction"]
    round_trips(graph)


def test_a_sample_without_declared_outputs_is_rejected():
    text = SPATIAL_VAE[: SPATIAL_VAE.index("outputs:")]
    (error,) = errors_of(text)
    assert "'bottleneck.z' samples a latent" in error.message
    assert "outputs:" in error.hint


def test_a_sample_of_other_tensors_than_the_declared_ones_is_rejected():
    text = SPATIAL_VAE.replace(
        '{name: logvar, from: "bottleneck.gauss:1"}', "{name: logvar, from: bottleneck.gauss}"
    )
    (error,) = errors_of(text)
    assert "'bottleneck.z' samples a latent" in error.message


def test_an_encoder_block_may_declare_the_sampled_latent():
    text = """\
specgen: 1
name: tiny
input: {shape: [8, 8, 1]}
blocks:
  gaussian:
    params: {channels: null}
    layers:
      - {kind: conv2d, name: mu, filters: "${channels}", kernel_size: 1}
      - {kind: conv2d, name: logvar, inputs: [input], filters: "${channels}", kernel_size: 1}
      - {kind: vae_sampling, inputs: [mu, logvar]}
    outputs:
      - {name: mu, from: mu}
      - {name: logvar, from: logvar}
encoder:
  - {block: gaussian, name: latent, args: {channels: 2}}
decoder:
  - {kind: conv2d, filters: 1, kernel_size: 1}
"""
    graph = graph_from(text)
    assert dict(graph.outputs)["mu"].node == "encoder.latent.mu"
    expanded = round_trips(graph)
    assert "from: encoder.latent.mu" in expanded


# -- ports ----------------------------------------------------------------------------------------


def test_a_port_past_the_node_outputs_is_an_error():
    text = SPATIAL_VAE.replace('"gauss:1"]', '"gauss:2"]')
    errors = errors_of(text)
    assert any(
        "'gauss' has 2 outputs, so 'gauss:2' names none of them" in e.message for e in errors
    ), [e.message for e in errors]


def test_a_bad_port_is_an_error():
    text = SPATIAL_VAE.replace('"gauss:1"]', '"gauss:one"]')
    errors = errors_of(text)
    assert any("bad reference 'gauss:one'" in e.message for e in errors)


# -- inline block uses ----------------------------------------------------------------------------


def test_an_inline_block_names_its_nodes_in_the_current_scope():
    text = (
        HEAD
        + """\
blocks:
  two:
    layers:
      - {kind: conv2d, filters: 4, kernel_size: 1}
      - {kind: relu, name: act}
      - {kind: add, inputs: [act, input]}
"""
        + """\
bottleneck:
  - {kind: conv2d, filters: 4, kernel_size: 1}
  - {block: two, inline: true}
"""
        + DECODER
    )
    graph = graph_from(text)
    assert [n.name for n in graph.part_nodes("bottleneck")] == [
        "bottleneck.conv1",
        "bottleneck.conv2",
        "bottleneck.act",
        "bottleneck.add1",
    ]
    assert [str(r) for r in graph.node("bottleneck.add1").inputs] == [
        "bottleneck.act",
        "bottleneck.conv1",  # the block's input, not the bottleneck's
    ]
    round_trips(graph)


def test_an_inline_block_use_takes_no_name():
    text = (
        HEAD
        + "blocks:\n  one:\n    layers: [{kind: relu}]\n"
        + "bottleneck:\n  - {block: one, inline: true, name: x}\n"
        + DECODER
    )
    (error,) = errors_of(text)
    assert "an inlined block use makes no group" in error.message
    assert error.path == ("bottleneck", 0, "inline")


def test_two_inline_uses_of_one_block_name_the_first_use_in_the_duplicate_error():
    """The same item of a block inlined twice in one scope: the error says which use made the
    name first (the item's own line is the same for both) and how to avoid the clash."""
    text = (
        HEAD
        + "blocks:\n  named:\n    layers: [{kind: relu, name: act}]\n"
        + "bottleneck:\n  - {block: named, inline: true}\n  - {block: named, inline: true}\n"
        + DECODER
    )
    (error,) = errors_of(text)
    assert error.path == ("blocks", "named", "layers", 0, "name")
    assert error.message == (
        "duplicate name 'act' in bottleneck (first defined at spec.yaml:8:33, "
        "in block 'named' used at spec.yaml:10:5)"
    )
    assert error.notes == ("in block 'named' used at spec.yaml:11:5",)
    assert "drop 'inline: true'" in error.hint


# -- block requirements ---------------------------------------------------------------------------


def test_block_requirements_interpolate_and_stop_at_the_first_unmet():
    text = (
        HEAD
        + """\
blocks:
  wide:
    params: {width: null}
    require:
      - that: ${width % 2 == 0}
        message: width ${width} is odd on ${in_channels} channels
        hint: try ${width + 1}
      - that: ${undefined_name}
        message: never reached
    layers:
      - {kind: conv2d, filters: "${width}", kernel_size: 1}
encoder:
  - {block: wide, args: {width: 3}}
"""
        + DECODER
    ).replace(HEAD[HEAD.index("encoder:") :], "")
    (error,) = errors_of(text)
    assert error.message == "width 3 is odd on 1 channels"
    assert error.hint == "try 4"
    assert error.path == ("blocks", "wide", "require", 0, "that")
    assert error.source is None  # the spec's own block
    assert error.notes[0].startswith("in block 'wide' used at spec.yaml:")


# -- declared outputs: order and rules ------------------------------------------------------------

VQ = HEAD + "bottleneck: {kind: vector_quantized, embedding_dim: 3, num_embeddings: 7}\n" + DECODER


def test_top_level_outputs_follow_the_blocks_outputs_and_may_place_them():
    graph = graph_from(VQ + "outputs:\n  - {name: codes, from: bottleneck.pre_quant}\n")
    assert [n for n, _ in graph.outputs] == [
        "vq_loss",
        "reconstruction",
        "perplexity",
        "indices",
        "codes",
    ]
    assert graph.role("codes") == "extra"
    round_trips(graph)
    graph = graph_from(
        VQ
        + "outputs:\n  - {name: reconstruction}\n  - {name: indices}\n"
        + "  - {name: q, from: bottleneck.quantizer, role: code}\n"
    )
    assert [n for n, _ in graph.outputs] == [
        "vq_loss",
        "perplexity",
        "reconstruction",
        "indices",
        "q",
    ]
    assert graph.forward_outputs() == ("vq_loss", "perplexity", "reconstruction", "indices")
    text = round_trips(graph)
    assert "- {name: vq_loss}" in text and "- {name: reconstruction}" in text


@pytest.mark.parametrize(
    "outputs,message",
    [
        ("[{name: vq_loss, from: bottleneck.pre_quant}]", "model output 'vq_loss' is declared"),
        ("[{name: reconstruction, from: decoder.up}]", "the reconstruction is always"),
        ("[{name: nothing}]", "no output 'nothing' to place"),
        ("[{name: x, role: extra}]", "output 'x' has a role but no 'from'"),
        ("[{name: reconstruction}, {name: reconstruction}]", "places it again"),
        ("[{name: l2, from: 'bottleneck.quantizer:1', role: vq_loss}]", "both have the role"),
        ("[{name: mu, from: bottleneck.pre_quant}]", "no output has the role 'logvar'"),
        ("[{name: x, from: bottleneck.nowhere}]", "unknown reference"),
    ],
)
def test_output_declarations_that_are_rejected(outputs, message):
    errors = errors_of(VQ + f"outputs: {outputs}\n")
    assert any(message in e.message for e in errors), [e.message for e in errors]
    assert all(e.path and e.path[0] == "outputs" for e in errors), [e.path for e in errors]


def test_an_unknown_role_lists_the_roles():
    (error,) = errors_of(VQ + "outputs: [{name: x, from: bottleneck.pre_quant, role: rate}]\n")
    assert "likelihoods" in error.hint and "reconstruction" in error.hint


def test_the_kl_pair_must_have_one_shape_and_the_vq_loss_must_be_a_scalar():
    text = SPATIAL_VAE.replace('"bottleneck.gauss:1"}', "bottleneck.moments}").replace(
        '"gauss:1"]', "moments]"
    )
    errors = errors_of(text)
    assert any("must have one shape" in e.message for e in errors), [e.message for e in errors]
    errors = errors_of(HEAD + DECODER + "outputs: [{name: vq_loss, from: encoder.down}]\n")
    assert any("must be a scalar" in e.message for e in errors)


def test_a_block_used_twice_declares_its_outputs_twice():
    text = """\
specgen: 1
name: tiny
input: {shape: [8, 8, 1]}
blocks:
  tap:
    params: {tag: null}
    layers: [{kind: identity}]
    outputs: [{name: "${tag}", from: identity1}]
  same:
    layers: [{kind: identity}]
    outputs: [{name: seen, from: identity1}]
encoder:
  - {block: tap, name: a, args: {tag: first}}
  - {block: tap, name: b, args: {tag: second}}
decoder:
  - {kind: conv2d, filters: 1, kernel_size: 1}
"""
    graph = graph_from(text)
    assert [(n, graph.role(n)) for n, _ in graph.outputs][1:] == [
        ("first", "extra"),
        ("second", "extra"),
        ("code", "code"),  # the default bottleneck's
    ]
    round_trips(graph)
    twice = text.replace("block: tap, name: b, args: {tag: second}", "block: same, name: b")
    twice = twice.replace("block: tap, name: a, args: {tag: first}", "block: same, name: a")
    (error,) = errors_of(twice)
    assert "model output 'seen' is declared again" in error.message
    assert error.notes and "in block 'same'" in error.notes[0]


# -- generated code of a bottleneck written as items ----------------------------------------------

RATE_AND_HEAD = (
    HEAD
    + """\
bottleneck:
  - {kind: conv2d, name: squeeze, filters: 3, kernel_size: 1}
  - {kind: entropy_bottleneck, name: entropy, filters: [2]}
decoder:
  - {kind: conv2d_transpose, name: up, filters: 4, kernel_size: 2, strides: 2}
  - {kind: conv2d, name: edges, filters: 2, kernel_size: 1}
  - {kind: conv2d, name: out, inputs: [up], filters: 1, kernel_size: 1}
outputs:
  - {name: y_rate, from: "bottleneck.entropy:1", role: likelihoods}
  - {name: code, from: bottleneck.squeeze}
  - {name: reconstruction}
  - {name: edge_map, from: decoder.edges}
"""
)


@pytest.mark.frameworks
@pytest.mark.parametrize("text", [SPATIAL_VAE, RATE_AND_HEAD], ids=["spatial_vae", "rate"])
def test_a_bottleneck_of_items_is_the_same_in_both_frameworks(text, tmp_path):
    from specgen.verify import verify
    from test_primitives import generated_files_lint_clean

    graph = graph_from(text)
    report = verify(graph)
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}
    assert {r.output for r in report.rows} >= set(graph.forward_outputs())
    generated_files_lint_clean(graph, tmp_path)


@pytest.mark.frameworks
def test_the_model_returns_the_declared_outputs_in_order_and_encode_the_code():
    import torch
    from specgen.codegen.compiled import compile_module

    graph = graph_from(RATE_AND_HEAD)
    assert graph.forward_outputs() == ("y_rate", "reconstruction", "edge_map")
    model = compile_module(graph, "torch").build_model().eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        y_rate, reconstruction, edge_map = model(x)
        latent, *handed_on = model.encode(x)
        code = model.bottleneck.squeeze(model.encoder(x))
    assert tuple(y_rate.shape) == (2, 3, 8, 8)
    assert tuple(reconstruction.shape) == (2, 1, 16, 16)
    assert tuple(edge_map.shape) == (2, 2, 16, 16)
    assert tuple(latent.shape) == (2, 3, 8, 8)
    assert any(torch.equal(t, y_rate) for t in handed_on)
    assert any(torch.equal(t, code) for t in handed_on)


def test_the_training_scripts_know_each_output_by_its_role(tmp_path):
    from specgen.codegen.train_target import render_train

    graph = graph_from(RATE_AND_HEAD)
    for target in ("torch", "keras"):
        script = render_train(graph, target, "# generated\n")
        assert "OUTPUTS = ('likelihoods', 'reconstruction', 'extra')" in script.replace('"', "'"), (
            target
        )


def test_the_summary_names_a_role_that_differs_from_the_name():
    from specgen.summary import summary_table

    text = summary_table(graph_from(RATE_AND_HEAD))
    assert "  output y_rate (likelihoods): (8, 8, 3)" in text.splitlines()
    assert "  output code: (8, 8, 3)" in text.splitlines()
    assert "  output edge_map (extra): (16, 16, 2)" in text.splitlines()
