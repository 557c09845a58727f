"""The ``specgen`` command line.

Every command that reads a spec takes ``--set NAME=VALUE`` and ``--plugin MODULE`` (both
repeatable). User errors print located messages and exit with code 1; a bug prints its traceback
and asks to be reported (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import SpecError, SpecErrors, terminal_safe

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _add_spec_args(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    if many:
        p.add_argument(
            "specs",
            nargs="+",
            metavar="SPEC",
            help="spec files, or folders whose *.yaml/*.yml/*.json files are used",
        )
    else:
        p.add_argument("spec", metavar="SPEC", help="a spec file (.yaml, .yml or .json)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec parameter (VALUE is a YAML scalar or flow list, e.g. "
        "--set input_shape=[64,64,3]); repeatable",
    )
    _add_plugin_arg(p)


def _add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="register the custom layer kinds a Python module defines (package.module or "
        "package.module:Class; installed plugins need no option); repeatable",
    )


def _add_allow_large(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-large",
        action="store_true",
        help="build the model even when its estimated memory (float32 parameters and "
        "activations for the batch) exceeds the memory this machine has available",
    )


def _overrides(args) -> list[tuple[str, object]]:
    from .params import parse_override

    return [parse_override(text) for text in args.overrides]


def _graph(spec: str, args):
    from .api import build_graph

    return build_graph(spec, _overrides(args))


def spec_files(paths: Sequence[str]) -> list[Path]:
    """Spec files named on the command line; folders contribute their spec files, sorted.

    A folder's entry with a spec suffix that is not a regular file (a FIFO, a socket) is kept,
    so that loading it reports it instead of it being skipped without a word."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = (f for f in p.iterdir() if f.suffix in SPEC_SUFFIXES and not f.is_dir())
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


def cmd_validate(args) -> int:
    """Every spec is checked; each one's errors are printed; exit 1 if any had errors."""
    status = 0
    for spec in spec_files(args.specs):
        try:
            g = _graph(str(spec), args)
        except SpecErrors as exc:
            print(exc.render(), file=sys.stderr)
            status = 1
            continue
        t, nt, _ = g.counts()
        print(
            f"{terminal_safe(str(spec))}: ok ({len(g.nodes)} layers, {t:,} trainable + {nt:,} "
            "non-trainable parameters)"
        )
    return status


def cmd_summary(args) -> int:
    from .summary import summary_dict, summary_table

    g = _graph(args.spec, args)
    if args.json:
        print(json.dumps(summary_dict(g), indent=2))
    else:
        sys.stdout.write(summary_table(g))
    return 0


def cmd_expand(args) -> int:
    from .to_spec import dump_spec, graph_to_spec

    g = _graph(args.spec, args)
    sys.stdout.write(dump_spec(graph_to_spec(g), json_format=args.json))
    return 0


def cmd_schema(args) -> int:
    from .jsonschema import schema_text

    sys.stdout.write(schema_text())
    return 0


def cmd_diagram(args) -> int:
    from .diagram_blocks import pdflatex_available
    from .diagram_render import COLUMN_WIDTH, FORMATS, diagram_files, dot_available, parse_width
    from .generate import FEATURE_MAPS, diagram_owner, display_path, header, print_report
    from .write import Plan, write_plan

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SpecErrors(
            [
                SpecError(
                    f"unknown diagram format {unknown[0]!r}", hint="formats: " + ", ".join(FORMATS)
                )
            ]
        )
    width = COLUMN_WIDTH if args.column else None
    if args.width is not None:
        try:
            width = parse_width(args.width)
        except ValueError as exc:
            raise SpecErrors([SpecError(f"--width: {exc}")]) from None
    files: dict[str, bytes] = {}
    scopes: list[str] = []
    messages: list[str] = []
    rendered = ("dot", *formats) if dot_available() else ("dot", "mermaid")
    for spec in spec_files(args.specs):
        graph = _graph(str(spec), args)
        label = header(display_path(spec)).strip("# \n")
        drawn, notes = diagram_files(
            graph,
            label,
            formats=("dot", *formats),
            direction=args.direction,
            shapes=not args.no_shapes,
            params=args.params,
            theme=args.theme,
            expand=args.expand,
            width_in=width,
        )
        files.update(drawn)
        scopes += [
            f"{graph.name}/diagrams:{'mmd' if f == 'mermaid' else f}"
            for f in dict.fromkeys(("dot", *formats))
            if f in rendered
        ]
        scopes += [f"{graph.name}/diagrams:{FEATURE_MAPS}.{ext}" for ext in ("svg", "tex")]
        scopes += [
            f"{graph.name}/diagrams:{FEATURE_MAPS}.{ext}"
            for ext in ("pdf", "png")
            if ext in formats and pdflatex_available()
        ]
        messages += [n for n in notes if n not in messages]
    out = Path(args.output)
    plan = Plan(files, {rel: diagram_owner(rel) for rel in files}, tuple(scopes))
    report = write_plan(plan, out, force=args.force)
    for m in messages:
        print(f"note: {m}", file=sys.stderr)
    print_report(report, out, f"{len(files)} diagram files")
    return 0


def cmd_train(args) -> int:
    """Generate the model and its training script under OUT/<name>/, then run the script
    there; checkpoints, reconstruction previews and metrics go to OUT/<name>/run/."""
    import subprocess

    from .extras import TRAINING, require
    from .generate import generate

    framework = args.framework
    require(TRAINING[framework], f"`specgen train --framework {framework}`", framework)

    spec = Path(args.spec)
    out = Path(args.output)
    targets = ("summary", args.framework, "train")
    _check_memory_for_training(_graph(args.spec, args), args)
    status = generate([spec], out, _overrides(args), targets=targets)
    if status:
        return status
    graph = _graph(args.spec, args)
    folder = out / graph.name
    script = folder / f"train_{args.framework}.py"
    if not script.is_file():
        raise SpecErrors(
            [
                SpecError(
                    f"no training script for {args.framework} yet", hint="use --framework torch"
                )
            ]
        )
    extra = list(args.script_args)
    if not _last_value(extra, "--out"):
        extra = ["--out", str(folder / "run"), *extra]
    if args.init_from is not None:
        extra = [*extra, "--init-from", str(_ported_for_training(args, extra))]
    elif args.library is not None:
        raise SpecErrors([SpecError("--library is given without --init-from")])
    return subprocess.call([sys.executable, str(script), *extra])


def _last_value(argv: list[str], flag: str) -> str:
    """The value the script's argument parser takes for ``flag`` (its last one)."""
    value = ""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.partition("=")[2]
    return value


def _ported_for_training(args, script_args: list[str]) -> Path:
    """Port ``--init-from`` into the framework's weights file in the run folder (the script's
    ``--out``), where the training script starts from it."""
    from .api import load_spec
    from .port import port_file

    if any(a == "--init-from" or a.startswith("--init-from=") for a in args.script_args):
        raise SpecErrors(
            [
                SpecError(
                    "--init-from is given both to specgen train and to the script",
                    hint="give it once, before --: specgen ports the checkpoint first",
                )
            ]
        )
    run = Path(_last_value(script_args, "--out"))
    run.mkdir(parents=True, exist_ok=True)
    suffix = ".safetensors" if args.framework == "torch" else ".weights.h5"
    target = run / f"init{suffix}"
    loaded = load_spec(args.spec)
    report = port_file(
        loaded, _graph_of(loaded, args), Path(args.init_from), target, library=args.library
    )
    print("\n".join(report.lines()), flush=True)
    return target


def _check_memory_for_training(graph, args) -> None:
    from .codegen.train_target import defaults
    from .memory import batch_from_args, check_fits

    batch = batch_from_args(args.script_args, defaults(graph)["batch_size"])
    check_fits(graph, batch=batch, doing="train", training=True, allow_large=args.allow_large)


def cmd_verify(args) -> int:
    from .verify import verify

    status = 0
    for spec in spec_files(args.specs):
        report = verify(
            _graph(str(spec), args),
            seed=args.seed,
            batch=args.batch,
            tolerance=args.tolerance,
            allow_large=args.allow_large,
        )
        sys.stdout.write(report.table())
        status |= 0 if report.ok else 1
    return status


def cmd_convert_weights(args) -> int:
    from .convert import convert_file

    graph = _graph(args.spec, args)
    print(convert_file(graph, Path(args.source), Path(args.target), allow_large=args.allow_large))
    return 0


def cmd_port_weights(args) -> int:
    from .api import load_spec
    from .port import port_file
    from .port_reference import parse_kwargs

    kwargs = parse_kwargs(args.reference_kwargs)
    if args.reference_kwargs is not None and args.reference is None:
        raise SpecErrors([SpecError("--reference-kwargs is given without --reference")])
    loaded = load_spec(args.spec)
    graph = _graph_of(loaded, args)
    report = port_file(
        loaded,
        graph,
        Path(args.source),
        Path(args.output),
        match=args.match,
        reference=args.reference,
        reference_kwargs=kwargs,
        library=args.library,
    )
    print("\n".join(report.lines()))
    return 0


def _graph_of(loaded, args):
    from .api import build_graph

    return build_graph(loaded, _overrides(args))


def cmd_generate(args) -> int:
    from .generate import TARGETS, generate

    return generate(
        spec_files(args.specs),
        Path(args.output),
        _overrides(args),
        check=args.check,
        force=args.force,
        targets=args.target or TARGETS,
        regenerate_command="specgen generate "
        + " ".join(
            [
                *args.specs,
                *(f"--set {o}" for o in args.overrides),
                *(f"--plugin {m}" for m in args.plugins),
            ]
        ),
    )


COMMANDS: dict[str, tuple[Callable, str]] = {
    "validate": (cmd_validate, "check specs and report their size"),
    "summary": (cmd_summary, "per-layer table of shapes, parameters and MACs"),
    "expand": (cmd_expand, "print the fully expanded spec (itself a valid spec)"),
    "schema": (cmd_schema, "print the JSON Schema of the spec language"),
    "generate": (cmd_generate, "write the generated files of specs into an output folder"),
    "verify": (cmd_verify, "check that the PyTorch and Keras models compute the same function"),
    "diagram": (cmd_diagram, "draw the architecture figures (graphviz, Mermaid)"),
    "train": (cmd_train, "generate and run the training script (flags after -- go to it)"),
    "convert-weights": (
        cmd_convert_weights,
        "move weights between PyTorch (.safetensors) and Keras (.weights.h5)",
    ),
    "port-weights": (
        cmd_port_weights,
        "port another library's checkpoint into the generated models, by the spec's "
        "weights_from section",
    ),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="specgen",
        description="Convolutional autoencoders from one declarative spec.",
    )
    p.add_argument("--version", action="version", version=f"specgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser("validate", help=COMMANDS["validate"][1])
    _add_spec_args(v, many=True)
    s = sub.add_parser("summary", help=COMMANDS["summary"][1])
    _add_spec_args(s)
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    e = sub.add_parser("expand", help=COMMANDS["expand"][1])
    _add_spec_args(e)
    e.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    _add_plugin_arg(sub.add_parser("schema", help=COMMANDS["schema"][1]))
    g = sub.add_parser("generate", help=COMMANDS["generate"][1])
    _add_spec_args(g, many=True)
    g.add_argument("-o", "--output", default="generated", help="output folder (default: generated)")
    g.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and name the files that differ from the output folder",
    )
    g.add_argument(
        "--target",
        action="append",
        choices=("summary", "torch", "keras", "train", "diagrams"),
        help="what to generate (repeatable; default: everything)",
    )
    g.add_argument(
        "--force", action="store_true", help="overwrite files that lack specgen's generated header"
    )
    dg = sub.add_parser("diagram", help=COMMANDS["diagram"][1])
    _add_spec_args(dg, many=True)
    dg.add_argument("-o", "--output", default="out", help="output folder (default: out)")
    dg.add_argument(
        "--format",
        default="svg",
        help="comma-separated: svg, png, pdf, mermaid (DOT is always written)",
    )
    dg.add_argument(
        "--direction",
        choices=("auto", "LR", "TB"),
        default="auto",
        help="auto (default): the overview as a U, the encoder and decoder one row per item; "
        "LR or TB: every figure as one flow, left-right or top-down",
    )
    dg.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    size = dg.add_mutually_exclusive_group()
    size.add_argument(
        "--width",
        metavar="WIDTH",
        help="print width (7in, 17.8cm, 504pt): each figure is scaled to fit it and a page's "
        "height, and one whose text would be under 6 pt is named",
    )
    size.add_argument(
        "--column", action="store_true", help="fit one column of a two-column paper (3.3 in)"
    )
    dg.add_argument("--params", action="store_true", help="show parameter counts")
    dg.add_argument(
        "--theme",
        choices=("color", "print"),
        default="color",
        help="'print' uses greys and line styles only",
    )
    dg.add_argument(
        "--expand", action="store_true", help="draw every layer instead of collapsing blocks"
    )
    dg.add_argument(
        "--force", action="store_true", help="overwrite files that lack specgen's generated header"
    )
    tr = sub.add_parser("train", help=COMMANDS["train"][1])
    _add_spec_args(tr)
    tr.add_argument("--framework", choices=("torch", "keras"), default="torch")
    tr.add_argument("-o", "--output", default="out", help="output folder (default: out)")
    tr.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        help="start from this checkpoint: another library's (ported by the spec's "
        "weights_from, as port-weights does) or the spec's own model's weights",
    )
    tr.add_argument(
        "--library",
        metavar="NAME",
        help="with --init-from: which of the spec's weights_from mappings names it",
    )
    tr.epilog = "flags after -- go to the training script, e.g. -- --epochs 3 --data demo"
    _add_allow_large(tr)
    ver = sub.add_parser("verify", help=COMMANDS["verify"][1])
    _add_spec_args(ver, many=True)
    ver.add_argument("--seed", type=int, default=0, help="seed of inputs and weights")
    ver.add_argument("--batch", type=int, default=2, help="batch size (default 2)")
    ver.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest absolute difference allowed (default 1e-4)",
    )
    _add_allow_large(ver)
    cw = sub.add_parser("convert-weights", help=COMMANDS["convert-weights"][1])
    _add_spec_args(cw)
    _add_allow_large(cw)
    cw.add_argument("source", metavar="FROM", help="weights to read (.safetensors or .weights.h5)")
    cw.add_argument("target", metavar="TO", help="file to write, in the other format")
    pw = sub.add_parser("port-weights", help=COMMANDS["port-weights"][1])
    _add_spec_args(pw)
    pw.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="CHECKPOINT",
        help="the library's checkpoint (.safetensors, or PyTorch .pt/.pth/.bin: tensors only), "
        "or the spec's own Keras weights (.weights.h5)",
    )
    pw.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="file to write: .safetensors (PyTorch model) or .weights.h5 (Keras model)",
    )
    pw.add_argument(
        "--match",
        choices=("names", "order"),
        default="names",
        help="names: rename by the spec's weights_from (default); order: pair the tensors by "
        "order and shape with the generated PyTorch model's",
    )
    pw.add_argument(
        "--library",
        metavar="NAME",
        help="which of the spec's weights_from mappings names the checkpoint's tensors "
        "(default: the first that accounts for all of them)",
    )
    pw.add_argument(
        "--reference",
        metavar="FILE.py:Class",
        help="your own PyTorch model class (or package.module:Class): it loads the checkpoint, "
        "gives the call order for --match order, and its output is compared with the port's",
    )
    pw.add_argument(
        "--reference-kwargs",
        metavar="JSON",
        help="the reference class's keyword arguments, as a JSON object",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:  # what follows goes to a generated script (specgen train)
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    args = parser().parse_args(argv)
    args.script_args = script_args
    func = COMMANDS[args.command][0]
    from .plugins import PluginError, load_plugins

    try:
        load_plugins(*getattr(args, "plugins", ()))
        return func(args)
    except PluginError as exc:  # a plugin's problem, in one line naming it
        print(f"specgen: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 1
    except SpecErrors as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except SpecError as exc:
        print(SpecErrors([exc]).render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover
        return 0
    except OSError as exc:  # the file system said no: the path and what to do
        from .outdir import os_problem

        print(SpecErrors([os_problem(exc, doing="use")]).render(), file=sys.stderr)
        return 1
    except Exception as exc:
        from .extras import explain

        missing = explain(exc, args.command, getattr(args, "framework", None))
        if missing is not None:  # an optional framework is not installed (or is broken)
            print(f"error: {missing}", file=sys.stderr)
            return 1
        traceback.print_exc()  # a bug: show it in full
        print(
            f"\nspecgen {__version__} hit an internal error (a bug, not a problem with your "
            "spec). Please report it with the traceback above and the spec that caused it.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
