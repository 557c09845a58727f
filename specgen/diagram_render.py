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
from .errors import terminal_safe
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


def html_text(text: str) -> str:
    """Text for a graphviz HTML-like label: XML-escaped (no controls, no line breaks), and
    ``]``, which would end DOT's HTML string, as an entity."""
    from .diagram_blocks import xml_escape

    return xml_escape(text).replace("]", "&#93;")


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
    ranks: list


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
    if u.group:
        pairs.append(("group", dot_string(u.group)))
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
        if not e.constraint:
            pairs.append(("constraint", "false"))
        if e.weight != 1:
            pairs.append(("weight", str(e.weight)))
        if not e.visible:
            pairs.append(("style", "invis"))
        if e.back:  # drawn from its head's row to its tail's, the arrow still at the head
            pairs.append(("dir", "back"))
            edges.append(_E(qid(e.dst), qid(e.src), _attrs(pairs)))
        else:
            edges.append(_E(qid(e.src), qid(e.dst), _attrs(pairs)))
    rows = []
    if legend and fig.skips:
        # one line of samples, in the colours and strokes the figure uses
        samples = {"dashed": "- - &#8594;", "dotted": "&#183; &#183; &#8594;", "bold": "&#8594;"}
        cells = [(theme.line, "&#8212;&#8594;", "main path")] + [
            (skip_style[fam][0], samples[skip_style[fam][1]], f"skip path {fam}")
            for fam in fig.skips
        ]
        rows = [
            f'<TD><FONT POINT-SIZE="8" COLOR="{color}">{sample}</FONT></TD>'
            f'<TD ALIGN="LEFT"><FONT POINT-SIZE="8">{html_text(label)}</FONT></TD>'
            for color, sample, label in cells
        ]
    title = fig.title + (f" ({fig.note})" if fig.note else "")
    ranks = [[qid(u) for u in group] for group in fig.ranks]
    return _DotView(
        header,
        dot_string(header),
        dot_string(fig.name),
        (  # the title, and under it the legend, as one table
            '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f'<TR><TD COLSPAN="{len(rows)}">{html_text(title)}</TD></TR>'
            f"<TR>{''.join(rows)}</TR></TABLE>>"
            if rows
            else dot_string(title)
        ),
        fig.direction,
        theme,
        top_units,
        top_clusters,
        edges,
        rows,
        ranks,
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
    for i, e in enumerate(e for e in fig.edges if e.visible):
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


def run_dot(
    dot_text: str,
    fmt: str,
    timeout: int = DOT_TIMEOUT,
    warnings: list[str] | None = None,
    extra: list[str] | tuple[str, ...] = (),
) -> bytes:
    """Render DOT text with graphviz (``fmt``: svg, png or pdf); what dot warns about (a
    drawing scaled down, a layout it gave up on) is added to ``warnings``."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotError("graphviz's 'dot' is not installed")
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}", *DOT_LIMITS, *extra],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DotError(f"dot took longer than {timeout} s") from None
    if proc.returncode != 0:
        raise DotError(proc.stderr.decode("utf-8", "replace").strip()[:500])
    if warnings is not None:
        for line in proc.stderr.decode("utf-8", "replace").splitlines():
            if line.strip() and line.strip() not in warnings:
                warnings.append(terminal_safe(line.strip())[:300])
    return proc.stdout


@dataclass(frozen=True)
class PrintSize:
    """How an SVG figure prints when scaled to fit a page area (never enlarged)."""

    width_pt: float  # the figure as drawn
    height_pt: float
    scale: float  # the factor that fits it into the area
    smallest_font_pt: float  # the smallest text after that scale
    aspect: float  # width / height

    def line(self, width_in: float) -> str:
        return (
            f"{self.width_pt / 72:.1f} × {self.height_pt / 72:.1f} in, aspect "
            f"{self.aspect:.2f}:1; at {width_in:g} in wide its smallest text is "
            f"{self.smallest_font_pt:.1f} pt"
        )


_SVG_SIZE = re.compile(rb'<svg[^>]*?\swidth="([0-9.]+)pt"[^>]*?\sheight="([0-9.]+)pt"', re.S)
_FONT_SIZE = re.compile(rb'font-size="([0-9.]+)(?:pt|px)?"')
_DRAWN_SCALE = re.compile(rb'class="graph" transform="scale\(([0-9.]+)')


def print_size(svg: bytes, width_in: float = 7.0, height_in: float = 9.0) -> PrintSize:
    """The size of an SVG figure (graphviz's, in pt) and its smallest text when it is scaled
    down to fit ``width_in`` × ``height_in`` inches (a page's text area)."""
    match = _SVG_SIZE.search(svg)
    if match is None:
        raise ValueError("not an SVG with its width and height in pt")
    width, height = float(match[1]), float(match[2])
    scale = min(1.0, width_in * 72 / width, height_in * 72 / height)
    drawn = _DRAWN_SCALE.search(svg)  # dot's own scaling, when the figure has a size
    fonts = [float(f) * (float(drawn[1]) if drawn else 1.0) for f in _FONT_SIZE.findall(svg)]
    smallest = min(fonts) * scale if fonts else 0.0
    return PrintSize(width, height, scale, smallest, width / height)


#: Output formats of ``specgen diagram``; ``dot`` is always written.
FORMATS = ("dot", "svg", "png", "pdf", "mermaid")
#: The page a figure is printed on: a two-column paper's text width and height, in inches.
PAGE_WIDTH, PAGE_HEIGHT, COLUMN_WIDTH = 7.0, 9.0, 3.3
#: The smallest text a printed figure should have, in points.
MIN_PRINT_FONT = 6.0
#: Largest side of a PNG that dot draws, in pixels (a figure drawn larger is drawn at a lower
#: resolution).
MAX_PNG_SIDE = 8000


def parse_width(text: str) -> float:
    """``7in``, ``17.8cm``, ``180mm`` or ``504pt`` (a number alone is inches) -> inches."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(in|cm|mm|pt)?\s*", text)
    if match is None:
        raise ValueError(f"not a width: {text!r:.40} (write it like 7in, 17.8cm or 504pt)")
    value = (
        float(match[1]) * {"in": 1, "cm": 1 / 2.54, "mm": 1 / 25.4, "pt": 1 / 72}[match[2] or "in"]
    )
    if not 0.5 <= value <= 100:
        raise ValueError(f"a width of {value:.2f} in is outside 0.5 to 100 in")
    return value


def _with_page(dot_text: str, width_in: float) -> str:
    """DOT text whose drawing dot scales down to ``width_in`` wide and the page's height."""
    size = f'size="{width_in:g},{PAGE_HEIGHT:g}"'
    return dot_text.replace("graph [comment=", f"graph [{size}, comment=", 1)


def diagram_files(
    graph,
    header: str,
    *,
    formats=("dot", "svg"),
    direction: str = "auto",
    shapes: bool = True,
    params: bool = False,
    theme: str = "color",
    expand: bool = False,
    width_in: float | None = None,
) -> tuple[dict[str, bytes], list[str]]:
    """``diagrams/<figure>.<ext>`` files of one spec, and messages for the user. With
    ``width_in``, each figure is drawn at most that wide (and a page high), and a figure whose
    text would print smaller than 6 pt is named. The feature-map figure (``feature_maps``) is
    written as SVG and LaTeX/TikZ, and as PDF and PNG when pdflatex and pdftoppm are there."""
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
        if width_in is not None:
            text = _with_page(text, width_in)
        files[f"{base}/{fig.name}.dot"] = text.encode("utf-8")
        if "mermaid" in formats:
            files[f"{base}/{fig.name}.mmd"] = to_mermaid(fig, header).encode("utf-8")
        if not can_render:
            continue
        warnings: list[str] = []
        try:
            svg = run_dot(text, "svg", warnings=warnings)
        except DotError as exc:
            messages.append(f"{base}/{fig.name} was not rendered: {exc}")
            continue
        if "svg" in rendered:
            files[f"{base}/{fig.name}.svg"] = svg
        size = print_size(svg, width_in or PAGE_WIDTH)
        if width_in is not None and size.smallest_font_pt < MIN_PRINT_FONT:
            messages.append(
                f"{base}/{fig.name}: {size.line(width_in)}, under {MIN_PRINT_FONT:g} pt; "
                "draw it without shapes (--no-shapes), or give it more width"
            )
        for fmt in (f for f in rendered if f != "svg"):
            extra = []
            if fmt == "png":  # a huge drawing gets fewer dots per inch, not a huge PNG
                side = max(size.width_pt, size.height_pt) * size.scale / 72
                extra = [f"-Gdpi={max(10, min(96, int(MAX_PNG_SIDE / max(side, 1e-9))))}"]
            try:
                files[f"{base}/{fig.name}.{fmt}"] = run_dot(
                    text, fmt, warnings=warnings, extra=extra
                )
            except DotError as exc:
                messages.append(f"{base}/{fig.name}.{fmt} was not rendered: {exc}")
        messages += [f"{base}/{fig.name}: dot: {w}" for w in warnings]
    files.update(_feature_map_files(graph, header, base, rendered, width_in, messages))
    return files, messages


def _feature_map_files(graph, header, base, rendered, width_in, messages) -> dict[str, bytes]:
    """The feature-map figure: SVG and TikZ always, PDF and PNG through pdflatex."""
    from . import diagram_blocks as blocks
    from .generate import FEATURE_MAPS

    fig = blocks.blocks_figure(graph, width_in=width_in or PAGE_WIDTH)
    tex = blocks.to_tikz(fig, header)
    files = {
        f"{base}/{FEATURE_MAPS}.svg": blocks.to_svg(fig, header).encode("utf-8"),
        f"{base}/{FEATURE_MAPS}.tex": tex.encode("utf-8"),
    }
    wanted = [f for f in ("pdf", "png") if f in rendered]
    if not wanted:
        return files
    if not blocks.pdflatex_available():
        messages.append(
            f"pdflatex is not installed, so {base}/feature_maps has no "
            + " or ".join(wanted).upper()
            + f" (its .tex is written); install it (Debian/Ubuntu: apt-get install "
            f"{blocks.LATEX_PACKAGES})"
        )
        return files
    try:
        pdf = blocks.run_pdflatex(tex)
        if "pdf" in wanted:
            files[f"{base}/{FEATURE_MAPS}.pdf"] = pdf
        if "png" in wanted:
            files[f"{base}/{FEATURE_MAPS}.png"] = blocks.pdf_to_png(pdf)
    except blocks.BlocksToolError as exc:
        messages.append(f"{base}/feature_maps was not rendered: {exc}")
    return files
