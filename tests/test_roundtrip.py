"""The expanded spec is itself a valid spec that expands to the same graph."""

from __future__ import annotations

import pytest

from specgen.api import build_graph, load_spec
from specgen.to_spec import dump_spec, graph_to_spec

CASES = [
    ("resnet_ae.yaml", {}),
    ("resnet_ae.yaml", {"n_levels": 2, "n_residual_blocks": 0, "multires_skips": False}),
    ("resnet_ae.yaml", {"n_levels": 3, "n_residual_blocks": 1, "input_shape": [64, 48, 1]}),
    ("resnet_vae.yaml", {"n_residual_blocks": 1}),
    ("resnet_vqvae.yaml", {"n_residual_blocks": 2, "n_levels": 3}),
    ("resnet_ae_preact.yaml", {"n_residual_blocks": 1}),
    ("res_ae_mnist.yaml", {}),
    ("res_ae_mnist.yaml", {"batch_norm": True, "dropout_rate": 0.1, "units_per_block": 2}),
    ("res_ae_mnist.yaml", {"decoder_blocks": [[32, 16, 2], [1, 8, 2]], "units_per_block": 2}),
    ("conv_autoencoder.yaml", {}),
    ("conv_autoencoder.yaml", {"layers": [16, 32, 64, 128], "input_shape": [64, 64, 1]}),
    ("unet_ae.yaml", {}),
    ("unet_ae.yaml", {"skip_connections": False, "n_levels": 2}),
]


@pytest.mark.parametrize("spec,overrides", CASES, ids=lambda v: str(v))
def test_expanded_spec_expands_to_the_same_graph(specs_dir, spec, overrides):
    graph = build_graph(specs_dir / spec, overrides)
    text = dump_spec(graph_to_spec(graph))
    again = build_graph(load_spec(text=text, filename="expanded.yaml"))
    assert again.structure() == graph.structure()
    # and expanding the expanded spec changes nothing: it is a fixed point
    assert dump_spec(graph_to_spec(again)) == text


def test_expanded_spec_has_no_templates_left(specs_dir):
    text = dump_spec(graph_to_spec(build_graph(specs_dir / "resnet_ae.yaml")))
    assert "${" not in text
    assert "parameters:" not in text
    assert "block:" not in text and "for:" not in text


def test_expanded_json_round_trips(specs_dir):
    graph = build_graph(specs_dir / "unet_ae.yaml")
    text = dump_spec(graph_to_spec(graph), json_format=True)
    again = build_graph(load_spec(text=text, filename="expanded.json"))
    assert again.structure() == graph.structure()
