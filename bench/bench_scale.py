"""How `specgen validate` and `specgen generate` scale with the size of the expanded graph.

    python bench/bench_scale.py                         # 10 ... 10,000 nodes, ~1-2 minutes
    python bench/bench_scale.py --json bench/results-scale.json
    python bench/bench_scale.py --generate-budget inf   # run every size in-process, however long
    python bench/bench_scale.py --profile 1000          # cProfile of generate at ~1,000 nodes

Specs are written as YAML text to a temporary folder: an encoder that is one loop of N levels of
(conv2d, relu) on an 8x8x2 input and a one-layer decoder, so the expanded graph has 2N + 1 nodes.
For each size, in one process and one run:

- validate: load + expand (``specgen.api.build_graph``), best of ``--repeats`` runs;
- generate: ``specgen.generate.plan_outputs`` for the summary, torch, keras and train targets
  (everything ``specgen generate`` writes except diagrams, whose graphviz rendering is bounded
  separately), best of ``--repeats`` runs.

Times are reported per expanded node; with linear growth the time per node is constant once the
fixed cost (a few ms for validate, ~50 ms for generate, which also renders the JSON Schema) is
amortised, so the ratio of per-node times between successive sizes (x10 nodes) is about 1. A
generate size whose projected cost would exceed
``--generate-budget`` seconds is run once in a child process stopped at the budget, and reported
as measured there (or as "> budget" if it did not finish); nothing is extrapolated into the
table. The cold start of ``python -m specgen validate`` on the 1,000-node spec is timed as a
subprocess, and the CLI is checked to import neither torch nor tensorflow.

Two more tables time validate on specs that are small graphs but much work to read (best of
``--repeats``, in-process):

- ``--chains``: N parameters, each one more than the one before, written last to first so that
  they must be put in dependency order (N = 20,000 is about 380 KB of YAML);
- ``--depths``: D blocks, each using the next; up to the nesting limit (64) the spec is valid,
  beyond it validate stops with an error naming the chain, and the time is that of the error.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import specgen  # noqa: E402
from specgen.api import build_graph  # noqa: E402
from specgen.errors import SpecErrors  # noqa: E402
from specgen.generate import plan_outputs  # noqa: E402

TARGETS = ("summary", "torch", "keras", "train")
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")
CLI_SIZE = 1000

SPEC = """\
specgen: 1
name: scale_{levels}
description: {levels} levels of conv2d + relu, then a 1x1 conv back to 2 channels
input:
  shape: [8, 8, 2]
encoder:
  - name: level
    for: i
    in: ${{range({levels})}}
    layers:
      - {{kind: conv2d, filters: 4, kernel_size: 3}}
      - {{kind: relu}}
decoder:
  - {{kind: conv2d, filters: 2, kernel_size: 1}}
"""


def levels_for(nodes: int) -> int:
    """Loop length whose expanded graph (2 * levels + 1 nodes) is closest to ``nodes``."""
    return max(1, nodes // 2)


def write_spec(folder: Path, target_nodes: int) -> Path:
    levels = levels_for(target_nodes)
    path = folder / f"scale_{levels}.yaml"
    path.write_text(SPEC.format(levels=levels), encoding="utf-8")
    return path


def write_chain_spec(folder: Path, count: int) -> Path:
    """``count`` chained parameters (``p1: ${p0 + 1}`` ...), written last to first."""
    params = ["  p0: 1"] + [f"  p{i}: ${{p{i - 1} + 1}}" for i in range(1, count)]
    lines = ["specgen: 1", f"name: chain_{count}", "parameters:", *reversed(params)]
    lines += [
        "input: {shape: [8, 8, 1]}",
        "decoder:",
        f"  - {{kind: conv2d, filters: '${{p{count - 1} - {count - 1}}}', kernel_size: 1}}",
    ]
    path = folder / f"chain_{count}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_nested_spec(folder: Path, depth: int) -> Path:
    """``depth`` blocks, each using the next in its layers; the last is one relu."""
    lines = ["specgen: 1", f"name: nested_{depth}", "input: {shape: [8, 8, 1]}", "blocks:"]
    for i in range(depth):
        inner = f"{{block: b{i + 1}}}" if i + 1 < depth else "{kind: relu}"
        lines.append(f"  b{i}: {{layers: [{inner}]}}")
    lines += [
        "encoder:",
        "  - {block: b0}",
        "decoder:",
        "  - {kind: conv2d, filters: 1, kernel_size: 1}",
    ]
    path = folder / f"nested_{depth}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def validate_outcome(path: Path) -> str:
    """``ok`` or the first line of the error validate reports."""
    try:
        build_graph(path)
    except SpecErrors as exc:
        return "error: " + exc.errors[0].message.split(":", 1)[0]
    return "ok"


def time_reads(folder: Path, sizes: list[int], write, repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        path = write(folder, size)
        outcome = validate_outcome(path)
        seconds = best_of(lambda p=path: validate_outcome(p), repeats)
        rows.append(
            {"size": size, "bytes": path.stat().st_size, "validate_s": seconds, "outcome": outcome}
        )
        print(f"  measured {path.stem}", file=sys.stderr, flush=True)
    return rows


def print_reads(title: str, label: str, rows: list[dict]) -> None:
    print(title)
    print()
    print(f"| {label} | spec bytes | validate s | outcome |")
    print("|---:|---:|---:|---|")
    for r in rows:
        cells = (f"{r['size']:,}", f"{r['bytes']:,}", f"{r['validate_s']:.3f}", r["outcome"])
        print("| " + " | ".join(cells) + " |")
    print()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def validate(path: Path):
    return build_graph(path)


def generate(path: Path):
    return plan_outputs([path], [], targets=TARGETS)


CHILD = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from specgen.generate import plan_outputs
path = Path({path!r})
t0 = time.perf_counter()
plan_outputs([path], [], targets={targets!r})
print(time.perf_counter() - t0)
"""


def generate_in_child(path: Path, budget: float) -> float | None:
    """One generate run in a child process; its time, or None if stopped at ``budget``."""
    code = CHILD.format(root=str(ROOT), path=str(path), targets=TARGETS)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=budget,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(out.stdout.strip().splitlines()[-1])


def cli_cold_start(path: Path, repeats: int) -> dict:
    """Wall time of ``python -m specgen validate`` and of a bare interpreter, best of repeats."""

    def run(args):
        subprocess.run(args, check=True, capture_output=True, cwd=ROOT)

    cli = best_of(lambda: run([sys.executable, "-m", "specgen", "validate", str(path)]), repeats)
    bare = best_of(lambda: run([sys.executable, "-c", "pass"]), repeats)
    # -X importtime lists every module the CLI imports (on stderr)
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "specgen", "validate", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stderr
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in trace.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    found = sorted(set(FRAMEWORKS) & imported)
    assert not found, f"`specgen validate` imports {found}"
    return {"seconds": cli, "python_startup_seconds": bare, "frameworks_imported": found}


def profile_generate(folder: Path, nodes: int, top: int) -> None:
    path = write_spec(folder, nodes)
    n = len(build_graph(path).nodes)
    prof = cProfile.Profile()
    prof.enable()
    generate(path)
    prof.disable()
    print(f"cProfile of generate at {n:,} nodes (top {top} by own time, then by cumulative time)")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="10,100,1000,10000", help="approximate node counts")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (best is kept)")
    ap.add_argument(
        "--generate-budget",
        type=float,
        default=45.0,
        help="seconds one generate size may take before it is run once, stopped at this limit "
        "('inf': no limit)",
    )
    ap.add_argument(
        "--chains",
        default="1000,2000,4000,20000",
        help="parameter-chain lengths to validate ('' for none)",
    )
    ap.add_argument(
        "--depths",
        default="16,64,65,1000,10000",
        help="depths of nested block uses to validate ('' for none)",
    )
    ap.add_argument("--json", type=Path, help="write the results to this file")
    ap.add_argument("--profile", type=int, metavar="NODES", help="only profile generate")
    ap.add_argument("--top", type=int, default=20, help="rows of the --profile listing")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="specgen-scale-") as tmp:
        folder = Path(tmp)
        if args.profile:
            profile_generate(folder, args.profile, args.top)
            return 0

        rows: list[dict] = []
        started = time.perf_counter()
        warm = write_spec(folder, 10)
        validate(warm)  # first calls import modules and compile templates: not timed
        assert not [m for m in FRAMEWORKS if m in sys.modules], "validate imported a framework"
        generate(warm)
        for target in sizes:
            path = write_spec(folder, target)
            n = len(validate(path).nodes)
            v = best_of(lambda p=path: validate(p), args.repeats)

            # generate: best of repeats in-process, unless the projection says it's too slow
            prev = [r for r in rows if r["generate_runs"] == args.repeats]
            projected = 0.0
            if prev:
                last = prev[-1]
                k = 1.0
                if len(prev) >= 2:
                    k = max(
                        1.0,
                        math.log(last["generate_s"] / prev[-2]["generate_s"])
                        / math.log(last["nodes"] / prev[-2]["nodes"]),
                    )
                projected = last["generate_s"] * (n / last["nodes"]) ** k * args.repeats
            if projected <= args.generate_budget:
                g, runs, stopped = (
                    best_of(lambda p=path: generate(p), args.repeats),
                    args.repeats,
                    False,
                )
            else:
                g = generate_in_child(path, args.generate_budget)
                runs, stopped = 1, g is None
                if g is None:
                    g = args.generate_budget
            rows.append(
                {
                    "nodes": n,
                    "levels": levels_for(target),
                    "validate_s": v,
                    "validate_us_per_node": v / n * 1e6,
                    "generate_s": g,
                    "generate_us_per_node": g / n * 1e6,
                    "generate_runs": runs,
                    "generate_stopped_at_budget": stopped,
                }
            )
            print(f"  measured {n:,} nodes", file=sys.stderr, flush=True)
        loaded_after = sorted(m for m in FRAMEWORKS if m in sys.modules)

        cli_path = write_spec(folder, CLI_SIZE)
        cli = cli_cold_start(cli_path, args.repeats)
        cli["nodes"] = len(build_graph(cli_path).nodes)
        chains = time_reads(folder, _sizes(args.chains), write_chain_spec, args.repeats)
        depths = time_reads(folder, _sizes(args.depths), write_nested_spec, args.repeats)
        total = time.perf_counter() - started

    for prev_row, row in zip([None] + rows[:-1], rows, strict=True):
        for key in ("validate", "generate"):
            ratio = None
            if prev_row is not None and not (
                key == "generate" and prev_row["generate_stopped_at_budget"]
            ):
                ratio = row[f"{key}_us_per_node"] / prev_row[f"{key}_us_per_node"]
            row[f"{key}_per_node_vs_previous"] = ratio

    print(
        f"specgen {specgen.__version__}, Python {platform.python_version()}, "
        f"best of {args.repeats}; generate = targets {', '.join(TARGETS)}"
    )
    print()
    head = ("nodes", "validate s", "µs/node", "× prev", "generate s", "µs/node", "× prev")
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for r in rows:
        gen = f"{r['generate_s']:.3f}"
        if r["generate_stopped_at_budget"]:
            gen = f"> {r['generate_s']:.0f} (stopped)"
        elif r["generate_runs"] != args.repeats:
            gen += " (1 run)"
        gen_us = f"{r['generate_us_per_node']:,.0f}"
        if r["generate_stopped_at_budget"]:
            gen_us = "> " + gen_us
        cells = (
            f"{r['nodes']:,}",
            f"{r['validate_s']:.4f}",
            f"{r['validate_us_per_node']:,.1f}",
            fmt_ratio(r["validate_per_node_vs_previous"]),
            gen,
            gen_us,
            ("> " if r["generate_stopped_at_budget"] and r["generate_per_node_vs_previous"] else "")
            + fmt_ratio(r["generate_per_node_vs_previous"]),
        )
        print("| " + " | ".join(cells) + " |")
    print()
    growth: dict[str, dict] = {}
    big = [r for r in rows if r["nodes"] >= 1000]
    if len(big) >= 2:
        a, b = big[-2], big[-1]
        for key in ("validate", "generate"):
            if key == "generate" and a["generate_stopped_at_budget"]:
                print(f"generate: {a['nodes']:,} nodes did not finish within the budget")
                continue
            ratio = b[f"{key}_us_per_node"] / a[f"{key}_us_per_node"]
            # time ~ nodes ** k between the two largest sizes; k = 1 is linear
            k = math.log(b[f"{key}_s"] / a[f"{key}_s"]) / math.log(b["nodes"] / a["nodes"])
            bound = "≥ " if key == "generate" and b["generate_stopped_at_budget"] else ""
            verdict = "≈ linear" if k <= 1.15 else "superlinear"
            if bound and k <= 1.15:
                verdict = "inconclusive: stopped at the budget"
            growth[key] = {"from_nodes": a["nodes"], "to_nodes": b["nodes"]}
            growth[key].update(per_node_ratio=ratio, exponent=k, lower_bound=bool(bound))
            print(
                f"{key}: per-node time at {b['nodes']:,} vs {a['nodes']:,} nodes = "
                f"{bound}{ratio:.2f}; time ~ nodes^{bound}{k:.2f} ({verdict})"
            )
    print(
        f"CLI cold start, `python -m specgen validate` on {cli['nodes']:,} nodes: "
        f"{cli['seconds']:.3f} s (bare interpreter {cli['python_startup_seconds']:.3f} s); "
        f"frameworks imported: {cli['frameworks_imported'] or 'none'}"
    )
    print(
        f"frameworks in sys.modules after in-process validate + generate: {loaded_after or 'none'}"
    )
    print()
    if chains:
        print_reads("Parameter chains (p_i = p_(i-1) + 1, written last to first)", "N", chains)
    if depths:
        print_reads("Nested block uses (each block uses the next)", "depth", depths)
    print(f"whole run: {total:.1f} s")

    if args.json:
        result = {
            "benchmark": "bench/bench_scale.py",
            "specgen": specgen.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "repeats": args.repeats,
            "generate_targets": list(TARGETS),
            "generate_budget_s": args.generate_budget,
            "rows": rows,
            "growth_between_two_largest": growth,
            "cli_validate_cold_start": cli,
            "parameter_chains": chains,
            "nested_blocks": depths,
            "frameworks_loaded_in_process": loaded_after,
            "whole_run_s": total,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
