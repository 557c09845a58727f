"""The corpus of invalid specs in tests/invalid/: each must fail with the exact errors it expects.

Every spec file ``NAME.yaml`` (or ``NAME.json``) in ``tests/invalid/`` has a sidecar
``NAME.expected`` holding the stderr lines that matter: the ``file:line:col: error: ...`` line,
the key path, hints, notes and the final error count. ``specgen validate`` must exit with 1
(a user error, not a crash), print no traceback, and print every expected line as a line of its
own (compared after stripping trailing whitespace).

Leading comment lines of a spec file may change what is run:

* ``# args: --set NAME=VALUE ...`` - extra command-line arguments (split like a shell would);
* ``# spec: PATH`` - validate the spec at PATH (relative to the repository root) instead of this
  file, e.g. a built-in spec with ``# args:`` overrides that make it invalid.

Cases whose current output is wrong, misleading or a crash are listed in :data:`KNOWN_BAD` with
the reason; their ``.expected`` holds the output they *should* give, and they are marked
``xfail(strict=True)`` so that fixing the bug makes the test pass (and the mark must then go).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from specgen import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
INVALID_DIR = REPO_ROOT / "tests" / "invalid"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")

#: Cases whose output is known to be wrong or poor: file name -> what is wrong.
KNOWN_BAD: dict[str, str] = {}

#: Cases that also fail the "generate writes nothing" test: crashes (exit 2 instead of 1) and
#: invalid specs that are accepted (exit 0, files written).
GENERATE_BAD: set[str] = set()


@dataclass(frozen=True)
class Case:
    path: Path  # the corpus file
    target: str  # the spec that is validated, relative to the repository root
    args: tuple[str, ...]  # extra command-line arguments
    expected: tuple[str, ...]  # lines that must appear in stderr

    @property
    def name(self) -> str:
        return self.path.name


def spec_paths() -> list[Path]:
    return sorted(p for p in INVALID_DIR.iterdir() if p.suffix in SPEC_SUFFIXES)


def expected_path(spec: Path) -> Path:
    return spec.with_suffix(".expected")


def header(spec: Path) -> dict[str, str]:
    """The ``# key: value`` comment lines at the top of a corpus file."""
    found: dict[str, str] = {}
    for line in spec.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        key, sep, value = stripped[1:].partition(":")
        if sep and key.strip() in ("args", "spec"):
            found[key.strip()] = value.strip()
    return found


def load_case(spec: Path) -> Case:
    head = header(spec)
    target = head.get("spec") or spec.relative_to(REPO_ROOT).as_posix()
    args = tuple(shlex.split(head.get("args", "")))
    text = expected_path(spec).read_text(encoding="utf-8")
    expected = tuple(line.rstrip() for line in text.splitlines() if line.strip())
    return Case(spec, target, args, expected)


def params(cases_marked: dict[str, str]) -> list:
    out = []
    for spec in spec_paths():
        marks = []
        if spec.name in cases_marked:
            marks.append(pytest.mark.xfail(strict=True, reason=cases_marked[spec.name]))
        out.append(pytest.param(spec, id=spec.name, marks=marks))
    return out


@pytest.fixture
def at_repo_root(monkeypatch):
    """Run from the repository root, so that relative spec paths are as the .expected files
    show them."""
    monkeypatch.chdir(REPO_ROOT)


# ------------------------------------------------------------------------------- the corpus


def test_corpus_is_not_empty():
    assert len(spec_paths()) >= 40


def test_every_spec_has_expected_and_vice_versa():
    names = {p.name for p in INVALID_DIR.iterdir()}
    specs = {n for n in names if Path(n).suffix in SPEC_SUFFIXES}
    expected = {n for n in names if n.endswith(".expected")}
    other = names - specs - expected - {"__pycache__"}
    assert not other, f"unexpected files in tests/invalid: {sorted(other)}"
    stems = [Path(n).stem for n in specs]
    assert len(stems) == len(set(stems)), "two spec files share a stem (and a .expected file)"
    missing = sorted(n for n in specs if Path(n).stem + ".expected" not in expected)
    orphans = sorted(n for n in expected if Path(n).stem not in set(stems))
    assert not missing, f"spec files without a .expected file: {missing}"
    assert not orphans, f".expected files without a spec file: {orphans}"


def test_known_bad_names_exist():
    names = {p.name for p in spec_paths()}
    assert set(KNOWN_BAD) <= names, sorted(set(KNOWN_BAD) - names)
    assert GENERATE_BAD <= set(KNOWN_BAD)


def test_expected_files_are_well_formed():
    for spec in spec_paths():
        case = load_case(spec)
        assert case.expected, f"{expected_path(spec).name} is empty"
        assert any(": error: " in line for line in case.expected), (
            f"{expected_path(spec).name} names no 'file:line:col: error:' line"
        )
        assert case.expected[-1].endswith("found; nothing was written."), (
            f"{expected_path(spec).name} must end with the error count line"
        )
        if "spec" in header(spec):
            assert (REPO_ROOT / case.target).is_file(), case.target


@pytest.mark.parametrize("spec", params(KNOWN_BAD))
def test_invalid_spec_reports_expected_errors(spec: Path, capsys, at_repo_root):
    case = load_case(spec)
    code = cli.main(["validate", case.target, *case.args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == 1, f"exit code {code}\n{err}"
    got = {line.rstrip() for line in err.splitlines()}
    missing = [line for line in case.expected if line not in got]
    assert not missing, "missing from stderr:\n  " + "\n  ".join(missing) + "\n--- stderr:\n" + err


@pytest.mark.parametrize("spec", params({n: KNOWN_BAD[n] for n in GENERATE_BAD}))
def test_invalid_spec_generates_nothing(spec: Path, tmp_path, capsys, at_repo_root):
    case = load_case(spec)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = cli.main(["generate", case.target, "-o", str(out_dir), *case.args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == 1, f"exit code {code}\n{err}"
    assert "nothing was written." in err
    assert os.listdir(out_dir) == []
