"""``specgen verify``: the PyTorch and Keras models of a spec compute the same function.

Both generated models are built from the spec; the PyTorch weights are copied into the Keras model
(:mod:`specgen.convert`); the same inputs (uniform in [0, 1)) run through both, and every output
of the model and of each part is compared — in inference mode, and in training mode (batch norm
with batch statistics, the VAE's sampling with the same noise — in inference too, where it
samples — the entropy bottleneck's additive noise the same too, and dropout switched off since
its masks cannot be shared).

An output passes when its largest difference is within the tolerance: absolute for values of
magnitude up to 1, relative to the largest value beyond that (float32 carries about seven
significant digits, so an encoder feature of magnitude 150 cannot agree to 1e-4 absolutely).
Integer outputs (code indices) must be equal. Deep networks in training mode renormalise at every
batch-norm layer, and float32 rounding differences between the frameworks' convolution kernels
can accumulate past the tolerance. So when a float32 comparison fails, both models run again in
float64: if they agree there, the float32 difference is rounding, not a different function, and
the row says so; a real difference (another layout, padding or formula) shows in float64 just the
same, and fails.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field

from .errors import terminal_safe
from .extras import needs_extra
from .graph import ModelGraph

with needs_extra("all", "specgen.verify"):
    import numpy as np

#: The tolerance both frameworks must agree within (absolute up to magnitude 1, then relative).
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Row:
    mode: str
    part: str
    output: str
    max_abs: float
    max_rel: float
    ok: bool
    note: str = ""


@dataclass
class Report:
    name: str
    tolerance: float
    rows: list[Row] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    versions: str = ""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and len(set(self.counts.values())) == 1

    def table(self) -> str:
        head = ("mode", "part", "output", "max abs diff", "max rel diff", "")
        lines = [head]
        for r in self.rows:
            verdict = ("ok" if r.ok else "FAIL") + (f" ({r.note})" if r.note else "")
            lines.append(
                (r.mode, r.part, r.output, f"{r.max_abs:.3g}", f"{r.max_rel:.3g}", verdict)
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
        out = [f"specgen verify {self.name}: {self.versions}"]
        for i, row in enumerate(lines):
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        for fw, (t, nt) in self.counts.items():
            out.append(f"{fw}: {t:,} trainable + {nt:,} non-trainable parameters")
        if self.ok:
            out.append(
                f"PASS: every output within {self.tolerance:g} (absolute up to magnitude "
                "1, relative beyond)"
            )
        else:
            out.append("FAIL: see the rows marked FAIL above")
        return "\n".join(out) + "\n"


def _nhwc(a: np.ndarray, spatial: int) -> np.ndarray:
    """A PyTorch feature map of a ``spatial``-D spec ``(N, C, *spatial)`` channels last, as Keras
    holds it; other arrays as they are."""
    return np.moveaxis(a, 1, -1) if a.ndim == spatial + 2 else a


def _nchw(a: np.ndarray, spatial: int) -> np.ndarray:
    """A Keras feature map ``(N, *spatial, C)`` channels first, as PyTorch holds it."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1)) if a.ndim == spatial + 2 else a


def _compare(mode: str, part: str, name: str, t_out, k_out, tol: float, spatial: int = 2) -> Row:
    a = _nhwc(np.asarray(t_out), spatial)
    b = np.asarray(k_out)
    if a.shape != b.shape:
        return Row(
            mode, part, name, float("inf"), float("inf"), False, f"shapes {a.shape} vs {b.shape}"
        )
    if not np.issubdtype(b.dtype, np.floating):
        diff = int(np.count_nonzero(a != b))
        note = f"{diff} of {a.size} differ" if diff else "equal"
        return Row(mode, part, name, float(diff), 0.0, diff == 0, note)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    rel = err / scale if scale > 0 else err
    return Row(mode, part, name, err, rel, err <= tol * max(1.0, scale))


def _tuple(x):
    return x if isinstance(x, (tuple, list)) else (x,)


def _keras_layers(model):
    seen = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(getattr(layer, "_layers", []))


def _counts(tmodel, kmodel, graph: ModelGraph) -> dict[str, tuple[int, int]]:
    return {
        "torch": (
            sum(p.numel() for p in tmodel.parameters()),
            sum(
                b.numel()
                for n, b in tmodel.named_buffers()
                if not n.endswith("num_batches_tracked")
            ),
        ),
        "keras": (
            sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights),
            sum(int(np.prod(w.shape)) for w in kmodel.non_trainable_weights),
        ),
        "spec": graph.counts()[:2],
    }


def _run(
    graph: ModelGraph,
    dtype: str,
    seed: int,
    batch: int,
    tolerance: float,
    report: Report | None = None,
    modes: tuple[str, ...] = ("inference", "training"),
) -> list[Row]:
    """Build both models in ``dtype`` and compare every output, in both modes."""
    import keras
    import torch

    from .codegen.compiled import compile_module
    from .codegen.pyview import forward_names
    from .convert import keras_layer, torch_state_to_keras

    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)  # the layers' dtype follows the policy, not floatx
    try:
        torch.manual_seed(seed)
        keras.utils.set_random_seed(seed)
        tmodel = compile_module(graph, "torch").build_model()
        kmodel = compile_module(graph, "keras").build_model()
        torch_state_to_keras(graph, tmodel.state_dict(), kmodel)
        if dtype == "float64":
            tmodel = tmodel.double()
        if report is not None:
            report.versions = (
                f"torch {torch.__version__} vs keras {keras.__version__} "
                f"({keras.backend.backend()} backend), batch {batch}, "
                f"seed {seed}, {dtype}"
            )
            report.counts = _counts(tmodel, kmodel, graph)
        rng = np.random.default_rng(seed)
        spatial = len(graph.input_shape) - 1
        x = rng.random((batch, *graph.input_shape)).astype(dtype)
        xt = torch.from_numpy(_nchw(x, spatial))
        names = forward_names(graph)
        kind = graph.bottleneck.kind if graph.bottleneck is not None else None
        rows: list[Row] = []
        for mode in modes:
            training = mode == "training"
            tmodel.train(training)
            if training:
                for m in tmodel.modules():
                    if isinstance(m, torch.nn.Dropout):
                        m.p = 0.0
                for layer in _keras_layers(kmodel):
                    if isinstance(layer, keras.layers.Dropout):
                        layer.rate = 0.0
            for node in graph.nodes:
                if node.kind == "vae_sampling":
                    # the same draw in both (a sample in training, and in inference when asked)
                    eps = rng.standard_normal((batch, *node.shape)).astype(dtype)
                    tmodel.get_submodule(node.name).noise = torch.from_numpy(_nchw(eps, spatial))
                    keras_layer(kmodel, node.name).noise = keras.ops.convert_to_tensor(eps)
            for node in graph.nodes if training else ():
                if node.kind == "entropy_bottleneck":
                    # the additive uniform noise, drawn once for both (NHWC for Keras)
                    u = (rng.random((batch, *graph.shape(node.inputs[0]))) - 0.5).astype(dtype)
                    tmodel.get_submodule(node.name).noise = torch.from_numpy(_nchw(u, spatial))
                    keras_layer(kmodel, node.name).noise = keras.ops.convert_to_tensor(u)
            with torch.no_grad():
                t_out = _tuple(tmodel(xt))
                t_enc = _tuple(tmodel.encoder(xt))
            k_out = _tuple(kmodel(x, training=training))
            k_enc = _tuple(kmodel.encoder(x, training=training))
            for name, a, b in zip(names, t_out, k_out, strict=True):
                ref = graph.output(name)
                part = graph.node(ref.node).part if ref.node in graph else "encoder"
                b = keras.ops.convert_to_numpy(b)
                rows.append(_compare(mode, part, name, a.numpy(), b, tolerance, spatial))
            for i, (a, b) in enumerate(zip(t_enc, k_enc, strict=True)):
                label = "output" if i == 0 else f"feature {i}"
                b = keras.ops.convert_to_numpy(b)
                rows.append(_compare(mode, "encoder", label, a.numpy(), b, tolerance, spatial))
            if kind == "dense" and not training:
                # encode() is a plain method: Keras runs it in inference mode only
                with torch.no_grad():
                    code_t = tmodel.encode(xt)
                rows.append(
                    _compare(
                        mode,
                        "bottleneck",
                        "code",
                        code_t.numpy(),
                        keras.ops.convert_to_numpy(kmodel.encode(x)),
                        tolerance,
                        spatial,
                    )
                )
        return rows
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


@needs_extra("all", "specgen.verify", check=("torch", "keras"))
def verify(
    graph: ModelGraph,
    *,
    seed: int = 0,
    batch: int = 2,
    tolerance: float = TOLERANCE,
    allow_large: bool = False,
) -> Report:
    """Compare the two generated models of ``graph`` (see the module's description); a model
    too large for the memory available is refused unless ``allow_large``."""
    from .memory import check_fits

    check_fits(graph, batch=batch, doing="verify", copies=2, allow_large=allow_large)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = Report(graph.name, tolerance)
    report.rows = _run(graph, "float32", seed, batch, tolerance, report)
    if all(r.ok for r in report.rows):
        return report
    failing = tuple(
        m for m in ("inference", "training") if any(r.mode == m and not r.ok for r in report.rows)
    )
    try:
        rerun = _run(graph, "float64", seed, batch, tolerance, modes=failing)
    except Exception as exc:  # a backend with no float64 kernel for a layer (TF's 3-D max pool)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = terminal_safe(re.sub(r"\x1b\[[0-9;]*m", "", first))[:160]
        report.rows = [
            r if r.ok else dataclasses.replace(r, note=f"no float64 recheck here: {reason}")
            for r in report.rows
        ]
        return report
    again = {(r.mode, r.part, r.output): r for r in rerun}
    rows = []
    for r in report.rows:
        r64 = again.get((r.mode, r.part, r.output))
        if not r.ok and r64 is not None:
            note = (
                f"float32 rounding: {r64.max_abs:.2g} apart in float64"
                if r64.ok
                else f"still {r64.max_abs:.2g} apart in float64"
            )
            r = dataclasses.replace(r, ok=r64.ok, note=note)
        rows.append(r)
    report.rows = rows
    return report
