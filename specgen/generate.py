"""``specgen generate``: every output of every spec, planned, then written (or checked).

Per spec, under ``OUT/<spec name>/``:

- ``expanded.yaml`` — the fully expanded spec (``specgen expand``);
- ``summary.txt`` — the per-layer table of shapes, parameters and MACs (``specgen summary``);
- ``torch_model.py`` — the standalone PyTorch model;
- ``keras_model.py`` — the standalone Keras 3 model (same classes, names and function);
- ``train_torch.py`` — a training script for the PyTorch model (one machine or torchrun);
- ``diagrams/`` — the architecture figures as DOT and, with graphviz installed, SVG; and the
  feature-map figure as SVG and LaTeX/TikZ (``feature_maps.svg``, ``feature_maps.tex``).

And once, ``OUT/specgen.schema.json`` — the JSON Schema the specs' editor modelines point to.

All specs are expanded before anything is written: a spec with an error writes nothing, and
neither does any other spec of the same run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import SpecError, SpecErrors
from .write import MARKER, Plan, stale_files, write_plan

SCHEMA_FILE = "specgen.schema.json"


#: Characters of a spec's path printed as they are in headers, docstrings and figures; every
#: other byte of its UTF-8 form is printed as %XX, so a file name can never end a comment or a
#: string, start a line, carry markup or a terminal control sequence.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+/@,=~%")


def safe_label(text: str) -> str:
    """``text`` (a file path from outside) as inert printable ASCII, e.g. ``my%22spec.yaml``."""
    out = []
    for ch in text:
        if ch in _PLAIN:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    # "--" may not appear inside an XML comment (the SVG figures carry the header in one)
    return "".join(out).replace("--", "-%2D")


def header(spec_file: str, comment: str = "#") -> str:
    return f"{comment} {MARKER} from {safe_label(spec_file)} — do not edit\n"


def display_path(path: Path) -> str:
    """The spec's path as written in headers: relative to the working folder when inside it,
    POSIX separators, so output does not depend on where the repository lives; made inert by
    :func:`safe_label`."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        rel = path.name
    return safe_label(rel)


#: What ``generate`` can write, per spec; ``--target`` picks among them (all by default).
TARGETS = ("summary", "torch", "keras", "train", "diagrams")


def diagram_owner(rel: str) -> str:
    """``resnet_ae/diagrams/encoder.pdf`` -> ``resnet_ae/diagrams:pdf``: figures of one format
    are produced together, so a run that draws PDFs owns (and may remove) only the PDFs."""
    spec, _, name = rel.partition("/diagrams/")
    stem, _, ext = name.rpartition(".")
    if stem == FEATURE_MAPS:  # drawn without graphviz: owned apart from dot's figures
        return f"{spec}/diagrams:{FEATURE_MAPS}.{ext}"
    return f"{spec}/diagrams:{ext}"


#: The file name (without extension) of a spec's feature-map figure.
FEATURE_MAPS = "feature_maps"


def spec_outputs(graph, spec_label: str, targets: Sequence[str] = TARGETS) -> dict[str, bytes]:
    name = graph.name
    files: dict[str, str] = {}
    if "summary" in targets:
        from .summary import summary_table
        from .to_spec import dump_spec, graph_to_spec

        files[f"{name}/expanded.yaml"] = header(spec_label) + dump_spec(graph_to_spec(graph))
        files[f"{name}/summary.txt"] = header(spec_label) + summary_table(graph)
    if "torch" in targets:
        from .codegen.torch_target import render_torch

        files[f"{name}/torch_model.py"] = render_torch(graph, spec_label, header(spec_label))
    if "keras" in targets:
        from .codegen.keras_target import render_keras

        files[f"{name}/keras_model.py"] = render_keras(graph, spec_label, header(spec_label))
    if "train" in targets:
        from .codegen.train_target import render_train

        files[f"{name}/train_torch.py"] = render_train(graph, "torch", header(spec_label))
        files[f"{name}/train_keras.py"] = render_train(graph, "keras", header(spec_label))
    out = {k: v.encode("utf-8") for k, v in files.items()}
    if "diagrams" in targets:
        from .diagram_render import diagram_files

        drawn, messages = diagram_files(graph, header(spec_label).strip("# \n"))
        out.update(drawn)
        for m in messages:
            if m not in _MESSAGES:
                _MESSAGES.append(m)
    return out


#: Messages for the user collected while planning (printed once, after writing).
_MESSAGES: list[str] = []


def plan_outputs(
    specs: Sequence[Path],
    overrides: Sequence[tuple[str, Any]],
    targets: Sequence[str] = TARGETS,
) -> Plan:
    from .api import build_graph
    from .jsonschema import schema_text

    files: dict[str, bytes] = {SCHEMA_FILE: schema_text().encode("utf-8")}
    owners: dict[str, str] = {SCHEMA_FILE: "schema"}
    scopes: list[str] = ["schema"]
    errors: list[SpecErrors] = []
    names: dict[str, Path] = {}
    for spec in specs:
        try:
            graph = build_graph(spec, overrides)
        except SpecErrors as exc:
            errors.append(exc)
            continue
        if graph.name in names:
            errors.append(
                SpecErrors(
                    [
                        SpecError(
                            f"two specs are named '{graph.name}': {names[graph.name]} and {spec}",
                            hint="give each spec its own 'name'",
                        )
                    ]
                )
            )
            continue
        names[graph.name] = spec
        try:
            produced = spec_outputs(graph, display_path(spec), targets)
        except SpecErrors as exc:
            errors.append(SpecErrors(exc.errors, exc.source or _source_of(spec)))
            continue
        files.update(produced)
        owners.update({rel: owner_of(rel) for rel in produced})
        scopes += [f"{graph.name}/{t}" for t in targets if t != "diagrams"]
        if "diagrams" in targets:
            from .diagram_render import dot_available

            # without dot no SVG is drawn: the SVGs already there are left alone; the
            # feature-map figure's SVG and TikZ need no dot
            scopes += [
                f"{graph.name}/diagrams:{ext}" for ext in ("dot", "svg")[: 1 + dot_available()]
            ]
            scopes += [f"{graph.name}/diagrams:{FEATURE_MAPS}.{ext}" for ext in ("svg", "tex")]
    if errors:
        raise _Many(errors)
    return Plan(files, owners, tuple(scopes))


#: output kind of each file ``generate`` writes in a spec's folder
_KIND = {
    "expanded.yaml": "summary",
    "summary.txt": "summary",
    "torch_model.py": "torch",
    "keras_model.py": "keras",
    "train_torch.py": "train",
    "train_keras.py": "train",
}


def owner_of(rel: str) -> str:
    """Which spec and output kind a planned file belongs to (see :class:`write.Plan`)."""
    if "/diagrams/" in rel:
        return diagram_owner(rel)
    spec, _, name = rel.partition("/")
    return f"{spec}/{_KIND[name]}"


def _source_of(spec: Path):
    from .api import load_spec

    try:
        return load_spec(spec).source
    except SpecErrors:  # pragma: no cover - it loaded a moment ago
        return None


class _Many(Exception):
    def __init__(self, errors: list[SpecErrors]):
        self.errors = errors


def generate(
    specs: Sequence[Path],
    out: Path,
    overrides: Sequence[tuple[str, Any]] = (),
    *,
    check: bool = False,
    force: bool = False,
    regenerate_command: str | None = None,
    targets: Sequence[str] = TARGETS,
) -> int:
    if not specs:
        raise SpecErrors([SpecError("no spec files given (or none found in the folders given)")])
    try:
        plan = plan_outputs(specs, overrides, targets)
    except _Many as many:
        for exc in many.errors:
            print(exc.render(), file=sys.stderr)
        return 1
    if check:
        stale = stale_files(plan, out)
        if stale:
            print(f"{len(stale)} generated file(s) in {out} are out of date:", file=sys.stderr)
            for rel in stale:
                print(f"  {out / rel}", file=sys.stderr)
            again = regenerate_command or "specgen generate " + " ".join(map(str, specs))
            print(f"regenerate them with: {again} -o {out}", file=sys.stderr)
            return 1
        print(f"{out}: {len(plan.files)} generated files up to date")
        return 0
    report = write_plan(plan, out, force=force)
    for message in _MESSAGES:
        print(f"note: {message}", file=sys.stderr)
    _MESSAGES.clear()
    n_specs = len({rel.split("/")[0] for rel in plan.files if "/" in rel})
    print_report(report, out, f"{len(plan.files)} files for {n_specs} spec(s)")
    return 0


def print_report(report, out: Path, what: str) -> None:
    """One line of totals, then every file written or removed by name (stdout), and every note
    and kept leftover (stderr)."""
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for rel, why in report.kept:
        print(f"note: kept {out / rel}: {why}", file=sys.stderr)
    print(f"{out}: {what}, {len(report.written)} written, {len(report.removed)} removed")
    if len(report.written) <= 12:
        for rel in report.written:
            print(f"  wrote {out / rel}")
    for rel in report.removed:
        print(f"  removed {out / rel}  (no longer generated)")
