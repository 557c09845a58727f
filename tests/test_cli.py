"""The command line: every command, its output contract, --set, and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from specgen.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_reports_size(capsys, specs_dir):
    code, out, err = run(capsys, "validate", str(specs_dir / "resnet_ae.yaml"))
    assert code == 0, err
    assert "ok (" in out and "11,368,683 trainable + 9,936 non-trainable" in out


def test_validate_folder_checks_every_spec(capsys, specs_dir):
    code, out, _ = run(capsys, "validate", str(specs_dir))
    assert code == 0
    specs = sorted(p.name for p in specs_dir.iterdir() if p.suffix in (".yaml", ".json"))
    assert len(out.strip().splitlines()) == len(specs) >= 7


def test_summary_json_has_the_contract_shape(capsys, specs_dir):
    code, out, _ = run(capsys, "summary", str(specs_dir / "resnet_vqvae.yaml"), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"name", "input_shape", "parameters", "macs", "parts", "outputs", "memory"}
    assert set(data["memory"]) == {"parameter_bytes", "activation_bytes_per_sample"}
    assert data["memory"]["parameter_bytes"] == 4 * data["parameters"]["total"]
    assert data["name"] == "resnet_vqvae"
    assert data["input_shape"] == [256, 256, 3]
    assert set(data["parameters"]) == {"trainable", "non_trainable", "total"}
    p = data["parameters"]
    assert p["total"] == p["trainable"] + p["non_trainable"]
    assert isinstance(data["macs"], int) and data["macs"] > 0
    assert list(data["parts"]) == ["encoder", "bottleneck", "decoder"]
    for part in data["parts"].values():
        assert set(part) == {"parameters", "output_shape"}
    # the parts add up to the whole
    assert sum(v["parameters"]["trainable"] for v in data["parts"].values()) == p["trainable"]
    assert data["outputs"] == {
        "vq_loss": [],
        "reconstruction": [256, 256, 3],
        "perplexity": [],
        "indices": [16, 16],
    }


def test_summary_table_lists_every_node_and_totals(capsys, specs_dir):
    code, out, _ = run(capsys, "summary", str(specs_dir / "conv_autoencoder.yaml"))
    assert code == 0
    assert "encoder.level0.pool.conv1" in out and "conv2d 3x3/2, 64" in out
    assert "encoder total" in out and "decoder total" in out
    assert "trainable parameters:     49,062" in out
    assert "non-trainable parameters: 390" in out


def test_set_overrides_on_every_command(capsys, specs_dir, tmp_path):
    spec = str(specs_dir / "resnet_ae.yaml")
    sets = [
        "--set",
        "n_levels=2",
        "--set",
        "input_shape=[32, 32, 1]",
        "--set",
        "n_residual_blocks=1",
    ]
    code, out, _ = run(capsys, "summary", spec, "--json", *sets)
    assert code == 0
    data = json.loads(out)
    assert data["input_shape"] == [32, 32, 1]
    assert data["parts"]["encoder"]["output_shape"] == [8, 8, 128]
    code, out, _ = run(capsys, "expand", spec, *sets)
    assert code == 0 and "shape: [32, 32, 1]" in out
    code, out, _ = run(capsys, "validate", spec, *sets)
    assert code == 0
    code, out, _ = run(capsys, "generate", spec, "-o", str(tmp_path), *sets)
    assert code == 0
    assert "(32, 32, 1)" in (tmp_path / "resnet_ae" / "summary.txt").read_text()


def test_set_unknown_parameter_lists_parameters(capsys, specs_dir):
    code, _, err = run(capsys, "summary", str(specs_dir / "resnet_ae.yaml"), "--set", "n_level=3")
    assert code == 1
    assert "unknown parameter 'n_level'" in err
    assert "did you mean 'n_levels'?" in err
    for name in (
        "input_shape",
        "n_levels",
        "n_residual_blocks",
        "z_dim",
        "bottleneck_dim",
        "multires_skips",
    ):
        assert name in err


def test_set_value_must_keep_the_parameter_type(capsys, specs_dir):
    code, _, err = run(
        capsys, "validate", str(specs_dir / "resnet_ae.yaml"), "--set", "n_levels=four"
    )
    assert code == 1
    assert "expected an integer (the default is 4), got 'four'" in err
    code, _, err = run(
        capsys, "validate", str(specs_dir / "resnet_ae.yaml"), "--set", "multires_skips=no"
    )
    assert code == 1 and "expected true or false" in err


def test_set_without_equals_is_an_error(capsys, specs_dir):
    code, _, err = run(capsys, "validate", str(specs_dir / "resnet_ae.yaml"), "--set", "n_levels")
    assert code == 1 and "NAME=VALUE" in err


def test_expand_prints_a_valid_spec(capsys, specs_dir):
    code, out, _ = run(capsys, "expand", str(specs_dir / "unet_ae.yaml"))
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["name"] == "unet_ae" and doc["skips"][0]["merge"] == "concat"
    code, out, _ = run(capsys, "expand", str(specs_dir / "unet_ae.yaml"), "--json")
    assert code == 0 and json.loads(out)["name"] == "unet_ae"


def test_schema_is_json_schema(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_missing_file_is_a_clean_error(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "Traceback" not in err and "nope.yaml" in err


def test_internal_errors_show_a_traceback_and_ask_for_a_report(capsys, monkeypatch, specs_dir):
    import specgen.cli as cli

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setitem(cli.COMMANDS, "validate", (broken, ""))
    code, _, err = run(capsys, "validate", str(specs_dir / "resnet_ae.yaml"))
    assert code == 2
    assert "Traceback" in err and "RuntimeError: boom" in err and "report" in err


def test_console_entry_point_runs_as_a_module(specs_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "specgen", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("specgen ")


def test_core_commands_import_no_deep_learning_framework(specs_dir):
    code = (
        "import sys\n"
        "from specgen.cli import main\n"
        f"for cmd in (['validate', {str(specs_dir)!r}],"
        f" ['summary', {str(specs_dir / 'resnet_ae.yaml')!r}],"
        f" ['expand', {str(specs_dir / 'unet_ae.yaml')!r}], ['schema']):\n"
        "    assert main(cmd) == 0\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
