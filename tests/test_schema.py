"""The JSON Schema describes the language: every built-in spec passes, malformed ones do not."""

from __future__ import annotations

import json

import pytest
import yaml

from specgen.jsonschema import spec_json_schema
from specgen.layers import REGISTRY

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def validator():
    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_builtin_spec_is_valid(validator, specs_dir):
    for spec in sorted(specs_dir.glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(spec.read_text())))
        assert not errors, (spec, [e.message for e in errors[:3]])


def test_generated_schema_file_matches(repo_root):
    on_disk = json.loads((repo_root / "generated" / "specgen.schema.json").read_text())
    assert on_disk == spec_json_schema()


BASE = {"specgen": 1, "name": "m", "input": {"shape": [8, 8, 1]}}


@pytest.mark.parametrize(
    "encoder",
    [
        [{"kind": "conv2d", "filters": 8}],  # kernel_size missing
        [{"kind": "conv2d", "filters": 8, "kernel_size": 3, "stride": 2}],  # misspelt field
        [{"kind": "convolution", "filters": 8}],  # unknown kind
        [{"kind": "conv2d", "filters": 8, "kernel_size": 3, "padding": "full"}],
        [{"block": "b", "repeat": "many"}],
        [{"name": "g"}],  # neither kind, block, for, levels nor layers
    ],
)
def test_malformed_items_are_rejected(validator, encoder):
    assert list(validator.iter_errors({**BASE, "encoder": encoder}))


def test_expressions_are_accepted_wherever_values_are(validator):
    doc = {
        **BASE,
        "encoder": [
            {"kind": "conv2d", "filters": "${4 * 2}", "kernel_size": "${k}", "when": "${flag}"}
        ],
    }
    assert not list(validator.iter_errors(doc))


def test_every_layer_kind_has_a_branch(validator):
    branches = spec_json_schema()["$defs"]["LayerItem"]["oneOf"]
    assert sorted(b["properties"]["kind"]["const"] for b in branches) == sorted(REGISTRY)
