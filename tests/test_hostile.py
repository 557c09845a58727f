"""Specs from strangers: nothing in a spec becomes code, bad input only ever gives clean errors,
and a failing spec writes nothing. Property-based over random valid specs and their mutations."""

from __future__ import annotations

import ast
import copy
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from specgen.api import build_graph, load_spec
from specgen.cli import main
from specgen.codegen.compiled import render
from specgen.codegen.train_target import render_train
from specgen.diagram import figures
from specgen.diagram_render import to_dot
from specgen.errors import SpecErrors
from test_names import all_names
from test_random_specs import random_specs, spec_text

ALLOWED_IMPORTS = {
    "torch": {"__future__", "math", "torch"},
    "keras": {"__future__", "keras"},
    "train_torch": {
        "__future__",
        "argparse",
        "base64",
        "csv",
        "ctypes",
        "io",
        "json",
        "math",
        "os",
        "queue",
        "random",
        "stat",
        "struct",
        "sys",
        "tempfile",
        "threading",
        "time",
        "warnings",
        "weakref",
        "zipfile",
        "zlib",
        "pathlib",
        "numpy",
        "torch",
        "torch_model",
        "PIL",
        "safetensors",
        # optional: the demo's digits, and progress bars when installed
        "sklearn",
        "tqdm",
        "tensorboard",  # optional: TensorBoard logs
    },
    "train_keras": {
        "__future__",
        "argparse",
        "contextlib",
        "csv",
        "io",
        "json",
        "math",
        "os",
        "random",
        "stat",
        "struct",
        "sys",
        "tempfile",
        "threading",
        "time",
        "warnings",
        "zipfile",
        "zlib",
        "pathlib",
        "h5py",
        "numpy",
        "keras",
        "tensorflow",
        "keras_model",
        "PIL",
        "sklearn",  # optional: the demo's digits
        "tensorboard",  # optional: TensorBoard logs
    },
}


def check_module(text: str, kind: str) -> None:
    """The file parses; it imports only what its kind may; its top level holds only imports,
    constants, classes, functions and the ``__main__`` guard."""
    tree = ast.parse(text)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= ALLOWED_IMPORTS[kind], imported - ALLOWED_IMPORTS[kind]
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef)):
            continue
        if isinstance(stmt, ast.Try) and all(
            isinstance(s, (ast.Import, ast.ImportFrom)) for s in stmt.body
        ):
            continue  # the training scripts' imports, with one line when a module is missing
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            assert all(
                isinstance(t, ast.Name) and t.id.isupper() or t.id.startswith("_") for t in targets
            ), ast.dump(stmt)
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value  # sys.path.insert(...) in the training scripts
            assert ast.unparse(call).startswith("sys.path.insert("), ast.unparse(call)
            continue
        assert isinstance(stmt, ast.If) and ast.unparse(stmt.test) == "__name__ == '__main__'"


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_specs())
def test_random_specs_generate_files_that_parse_and_import_only_their_framework(spec):
    graph = build_graph(load_spec(text=spec_text(spec), filename="random.yaml"))
    check_module(render(graph, "torch", "random.yaml"), "torch")
    check_module(render(graph, "keras", "random.yaml"), "keras")
    check_module(render_train(graph, "torch", "# h"), "train_torch")
    check_module(render_train(graph, "keras", "# h"), "train_keras")
    for fig in figures(graph):
        text = to_dot(fig, "h")
        assert text.count("{") == text.count("}")


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            '"""',
            "'; import os; '",
            "${__import__('os')}",
            "../../etc/passwd",
            "cоnv",
            "class",
            "print",
            "a\u2028b",
            "${1/0}",
            "${2**10**10}",
            "",
            "x" * 300,
            "\\",
            "]",
            "<b>",
            "${range(10**9)}",
        ]
    ),
    st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.sampled_from(["kind", "name", "x"]), st.integers(), max_size=2),
    # keywords, builtins, framework attributes, the generated files' own identifiers
    st.sampled_from(all_names()),
)


def paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


@st.composite
def mutated_specs(draw):
    spec = copy.deepcopy(draw(random_specs()))
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths(spec) if p]
        path = draw(st.sampled_from(candidates))
        parent = spec
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "rename", "duplicate", "name"]))
        named = [p for p in candidates if p[-1] == "name" or p[:1] == ("blocks",) and len(p) == 2]
        if action == "name" and named:
            # any name of the spec (or a block's) becomes a word Python or a framework uses
            path = draw(st.sampled_from(named))
            parent = spec
            for key in path[:-1]:
                parent = parent[key]
            word = draw(st.sampled_from(all_names()))
            if path[-1] == "name":
                parent["name"] = word
            elif word not in parent:
                parent[word] = parent.pop(path[-1])
        elif action == "delete":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["nmae", "kind ", "inputs", "when", "repeat"]))] = (
                parent.pop(last)
            )
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[last] = draw(JUNK)
    return spec


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(mutated_specs())
def test_mutated_specs_give_only_clean_errors_and_write_nothing(tmp_path, spec):
    path = tmp_path / "mutant.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    out = tmp_path / "out"
    code = main(
        [
            "generate",
            str(path),
            "-o",
            str(out),
            "--target",
            "summary",
            "--target",
            "torch",
            "--target",
            "keras",
        ]
    )
    assert code in (0, 1), "an internal error (exit 2) on a mutated spec"
    event(f"exit code {code}")
    if code == 1:
        assert not out.exists() or not any(out.rglob("*"))
    else:
        for f in out.rglob("*_model.py"):
            check_module(f.read_text(), f.stem.split("_")[0])
    for f in tmp_path.iterdir():  # fresh for the next example
        if f.is_dir():
            for g in sorted(f.rglob("*"), reverse=True):
                g.unlink() if g.is_file() else g.rmdir()
            f.rmdir()


def test_free_text_cannot_break_out_of_comments(tmp_path):
    text = (
        "specgen: 1\nname: evil\n"
        'description: "end\\"\\"\\"\\nimport os\\r\\nos.system(1)\\u2028x = 1\\u0000 \\\\"\n'
        "input: {shape: [8, 8, 1]}\n"
        "encoder:\n  - {kind: conv2d, filters: 2, kernel_size: 3}\n"
        "decoder:\n  - {kind: conv2d, filters: 1, kernel_size: 1}\n"
    )
    try:
        graph = build_graph(load_spec(text=text, filename="evil.yaml"))
    except SpecErrors:
        pytest.skip("the loader rejected the control characters outright")
    for target in ("torch", "keras"):
        source = render(graph, target, "evil.yaml")
        check_module(source, target)
        assert "import os" not in [ast.unparse(s) for s in ast.parse(source).body]


@pytest.mark.parametrize(
    "name,message",
    [
        ("cоnv", "ASCII"),  # Cyrillic o
        ("class", "keyword"),
        ("print", "builtin"),
        ("__init__", "must start with a letter"),
        ("../x", "must start with a letter"),
        ("a.b", "must start with a letter"),
        ("forward", "reserved"),
    ],
)
def test_hostile_names_are_rejected(name, message):
    text = (
        "specgen: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        f"encoder:\n  - {{kind: conv2d, name: {yaml.safe_dump(name).splitlines()[0]},"
        " filters: 2, kernel_size: 3}\n"
        "decoder:\n  - {kind: conv2d, filters: 1, kernel_size: 1}\n"
    )
    with pytest.raises(SpecErrors) as info:
        build_graph(load_spec(text=text, filename="t.yaml"))
    assert message in info.value.render()


def test_generated_output_never_leaves_the_output_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "t")
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "specgen: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "encoder:\n  - {kind: conv2d, filters: 2, kernel_size: 3}\n"
        "decoder:\n  - {kind: conv2d, filters: 1, kernel_size: 1}\n"
    )
    assert main(["generate", str(spec), "-o", str(out), "--target", "summary"]) == 1
    assert list(outside.iterdir()) == []


def test_every_checked_in_generated_file_passes_the_linter_and_has_the_expected_top_level(
    repo_root,
):
    files = sorted((repo_root / "generated").glob("*/*.py"))
    specs = [*(repo_root / "specs").glob("*.yaml"), *(repo_root / "specs" / "zoo").glob("*.yaml")]
    assert len(files) == 4 * len(specs)
    for f in files:
        check_module(f.read_text(), f.stem.removesuffix("_model"))
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
