"""Figures as text (DOT, Mermaid) and, through graphviz's ``dot``, as SVG/PNG/PDF.

Every string that reaches DOT or Mermaid goes through one escaping function, so no name or label
can end a quoted string, start an HTML-like label or add an attribute. ``dot`` runs with a time
limit and layout iteration limits; when it is not installed, the ``.dot`` files are still written
and one message says how to install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from .diagram import PRINT_COLORS, SKIP_COLORS, Cluster, Figure, Unit
from .render import render

#: Seconds ``dot`` may take for one figure.
DOT_TIMEOUT = 60
#: Layout limits passed to ``dot`` (crossing minimisation and network simplex iterations).
DOT_LIMITS = ("-Gmclimit=2", "-Gnslimit=20", "-Gnslimit1=20")

#: Controls, line separators and bidirectional controls (which reorder how a label reads).
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]"
)


def dot_string(text: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, line breaks as centred ``\\n``."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def mermaid_string(text: str) -> str:
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", "<br/>")
    )
    return f'"{text}"'


@dataclass(frozen=True)
class Theme:
    fill: str
    block: str
    merge: str
    io: str
    line: str
    cluster: str
    text: str
    muted: str
    skips: tuple[str, ...]


THEMES = {
    "color": Theme(
        "#f4f6f8",
        "#dde8f3",
        "#fff4cc",
        "#ffffff",
        "#5b6770",
        "#9aa5ad",
        "#1f2a33",
        "#5b6770",
        SKIP_COLORS,
    ),
    "print": Theme(
        "#ffffff",
        "#e6e6e6",
        "#f2f2f2",
        "#ffffff",
        "#333333",
        "#999999",
        "#000000",
        "#555555",
        PRINT_COLORS,
    ),
}


@dataclass
class _U:
    id: str
    attrs: str


@dataclass
class _C:
    id: str
    label: str
    units: list
    clusters: list


@dataclass
class _E:
    src: str
    dst: str
    attrs: str


@dataclass
class _L:
    a: str
    b: str
    label: str
    attrs: str


@dataclass
class _DotView:
    header: str
    comment: str
    name: str
    title: str
    direction: str
    theme: Theme
    units: list
    clusters: list
    edges: list
    legend: list


@dataclass
class _MermaidView:
    header: str
    direction: str
    lines: list


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs)


def _skip_styles(fig: Figure, theme: Theme) -> dict[str, tuple[str, str]]:
    styles = ("dashed", "dotted", "bold", "dashed", "dotted")
    return {
        fam: (theme.skips[i % len(theme.skips)], styles[i % len(styles)])
        for i, fam in enumerate(fig.skips)
    }


def _unit_attrs(u: Unit, theme: Theme, skip_style) -> str:
    pairs = [("label", dot_string("\n".join(u.lines)))]
    if u.kind == "block":
        pairs += [("fillcolor", f'"{theme.block}"'), ("penwidth", "1.3")]
    elif u.kind == "skip":
        color, style = skip_style.get(u.skip, (theme.line, "dashed"))
        pairs += [
            ("style", '"rounded,dashed"'),
            ("color", f'"{color}"'),
            ("fillcolor", f'"{theme.io}"'),
            ("penwidth", "1.3"),
        ]
    elif u.kind == "merge":
        concat = u.lines[0] == "concat"
        pairs = [
            ("label", dot_string(u.lines[0])),
            ("shape", "box" if concat else "circle"),
            ("fillcolor", f'"{theme.merge}"'),
            ("width", "0.3"),
            ("height", "0.3"),
            ("fixedsize", "false" if concat else "true"),
        ]
    elif u.kind == "io":
        pairs += [("shape", "plaintext"), ("style", '""')]
    return _attrs(pairs)


def dot_view(fig: Figure, header: str, theme_name: str = "color", legend: bool = True):
    theme = THEMES[theme_name]
    skip_style = _skip_styles(fig, theme)
    ids: dict[str, str] = {}

    def qid(raw: str) -> str:
        return ids.setdefault(raw, dot_string(raw))

    clusters = {
        c.id: _C(dot_string(f"cluster_{c.id}"), dot_string(c.label), [], []) for c in fig.clusters
    }
    top_units, top_clusters = [], []
    for c in fig.clusters:
        (clusters[c.parent].clusters if c.parent in clusters else top_clusters).append(
            clusters[c.id]
        )
    for u in fig.units:
        entry = _U(qid(u.id), _unit_attrs(u, theme, skip_style))
        (clusters[u.cluster].units if u.cluster in clusters else top_units).append(entry)
    edges = []
    for e in fig.edges:
        pairs = []
        if e.label:
            pairs.append(("label", dot_string(e.label)))
        if e.skip:
            color, style = skip_style[e.skip]
            pairs += [("color", f'"{color}"'), ("style", style), ("penwidth", "1.4")]
        edges.append(_E(qid(e.src), qid(e.dst), _attrs(pairs)))
    rows = []
    if legend and fig.skips:
        entries = [("main path", f'color="{theme.line}"')] + [
            (
                f"skip path {fam}",
                f'color="{skip_style[fam][0]}", style={skip_style[fam][1]}, penwidth=1.4',
            )
            for fam in fig.skips
        ]
        for i, (label, attrs) in enumerate(entries):
            rows.append(_L(f'"legend_{i}_a"', f'"legend_{i}_b"', dot_string(label), attrs))
    title = fig.title + (f" ({fig.note})" if fig.note else "")
    return _DotView(
        header,
        dot_string(header),
        dot_string(fig.name),
        dot_string(title),
        fig.direction,
        theme,
        top_units,
        top_clusters,
        edges,
        rows,
    )


def to_dot(fig: Figure, header: str, theme: str = "color") -> str:
    return render("diagram/figure.dot.j2", v=dot_view(fig, header, theme))


def to_mermaid(fig: Figure, header: str) -> str:
    ids = {u.id: f"n{i}" for i, u in enumerate(fig.units)}
    cids = {c.id: f"c{i}" for i, c in enumerate(fig.clusters)}
    lines: list[str] = []

    def emit(cluster: Cluster | None, indent: str) -> None:
        for u in fig.units:
            if u.cluster == (cluster.id if cluster else None) or (
                cluster is None and u.cluster not in cids
            ):
                if u.kind == "merge":
                    shape = f"(({mermaid_string(u.lines[0])}))"
                else:
                    shape = f"[{mermaid_string(chr(10).join(u.lines))}]"
                lines.append(f"{indent}{ids[u.id]}{shape}")
        for c in fig.clusters:
            if c.parent == (cluster.id if cluster else None):
                lines.append(f"{indent}subgraph {cids[c.id]}[{mermaid_string(c.label)}]")
                emit(c, indent + "  ")
                lines.append(f"{indent}end")

    emit(None, "")
    styles = _skip_styles(fig, THEMES["color"])
    for i, e in enumerate(fig.edges):
        arrow = (
            f"-.->|{mermaid_string(e.label)}|"
            if e.skip and e.label
            else ("-.->" if e.skip else (f"-->|{mermaid_string(e.label)}|" if e.label else "-->"))
        )
        lines.append(f"{ids[e.src]} {arrow} {ids[e.dst]}")
        if e.skip:
            lines.append(f"linkStyle {i} stroke:{styles[e.skip][0]}")
    return render("diagram/figure.mmd.j2", v=_MermaidView(header, fig.direction, lines))


def dot_available() -> bool:
    return shutil.which("dot") is not None


class DotError(Exception):
    pass


def run_dot(dot_text: str, fmt: str, timeout: int = DOT_TIMEOUT) -> bytes:
    """Render DOT text with graphviz (``fmt``: svg, png or pdf)."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotError("graphviz's 'dot' is not installed")
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}", *DOT_LIMITS],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DotError(f"dot took longer than {timeout} s") from None
    if proc.returncode != 0:
        raise DotError(proc.stderr.decode("utf-8", "replace").strip()[:500])
    return proc.stdout


#: Output formats of ``specgen diagram``; ``dot`` is always written.
FORMATS = ("dot", "svg", "png", "pdf", "mermaid")


def diagram_files(
    graph,
    header: str,
    *,
    formats=("dot", "svg"),
    direction: str = "LR",
    shapes: bool = True,
    params: bool = False,
    theme: str = "color",
    expand: bool = False,
) -> tuple[dict[str, bytes], list[str]]:
    """``diagrams/<figure>.<ext>`` files of one spec, and messages for the user."""
    from .diagram import figures

    files: dict[str, bytes] = {}
    messages: list[str] = []
    rendered = [f for f in formats if f in ("svg", "png", "pdf")]
    can_render = dot_available()
    if rendered and not can_render:
        messages.append(
            "graphviz's 'dot' is not installed, so only .dot files were written; install it "
            "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz) to get "
            + ", ".join(rendered)
        )
    base = f"{graph.name}/diagrams"
    for fig in figures(graph, expand=expand, shapes=shapes, params=params, direction=direction):
        text = to_dot(fig, header, theme)
        files[f"{base}/{fig.name}.dot"] = text.encode("utf-8")
        if "mermaid" in formats:
            files[f"{base}/{fig.name}.mmd"] = to_mermaid(fig, header).encode("utf-8")
        if can_render:
            for fmt in rendered:
                try:
                    files[f"{base}/{fig.name}.{fmt}"] = run_dot(text, fmt)
                except DotError as exc:
                    messages.append(f"{base}/{fig.name}.{fmt} was not rendered: {exc}")
    return files, messages
