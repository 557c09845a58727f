"""How much memory a spec's model needs, estimated from its graph before anything is built.

A spec can be valid and still describe a model no machine can hold (one 2^20-filter convolution
on a 64x64 input makes 17 GB of activations per sample). The commands that build a model
(``verify``, ``convert-weights``, ``train``) compare this estimate with the memory the machine has
available and refuse, with both figures, unless ``--allow-large`` is given.

The estimate counts float32 values (4 bytes): every parameter once, and every tensor a forward pass
produces (the model input and each node's outputs) once per sample, with the tensors a layer makes
inside itself where they outgrow its output: an ``attention`` layer's ``(H*W) x (H*W)`` scores and
their softmax, per head (``H*W`` being all the spatial positions: ``D*H*W`` in 3-D). Training
also keeps each parameter's gradient and two optimizer moments, and each activation's gradient.
It is a lower bound: frameworks add workspaces and copies of their own.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import SpecError, SpecErrors
from .graph import ModelGraph, Node

#: Bytes of one float32 value.
BYTES_PER_VALUE = 4
#: Copies of each parameter while training: the weight, its gradient and two optimizer moments.
TRAINING_PARAMETER_COPIES = 4
#: Copies of each activation while training: the value and its gradient.
TRAINING_ACTIVATION_COPIES = 2
#: The ``(H*W) x (H*W)`` matrices an attention head holds per sample: the scores and their
#: softmax.
ATTENTION_MATRICES = 2


@dataclass(frozen=True)
class Estimate:
    """Bytes of a model's parameters, and of the activations of one sample's forward pass."""

    parameter_bytes: int
    activation_bytes_per_sample: int

    def bytes_for(self, batch: int, *, copies: int = 1, training: bool = False) -> int:
        """Bytes to build ``copies`` models and run one batch through each (and back, when
        ``training``)."""
        params = self.parameter_bytes * (TRAINING_PARAMETER_COPIES if training else 1)
        per_sample = self.activation_bytes_per_sample
        activations = per_sample * batch * (TRAINING_ACTIVATION_COPIES if training else 1)
        return copies * (params + activations)


def inner_values(node: Node) -> int:
    """Values per sample that ``node``'s layer makes inside itself on top of its outputs: an
    attention layer's scores and their softmax, ``heads x positions^2`` each; 0 for other
    kinds."""
    if node.layer.kind != "attention":
        return 0
    *spatial, channels = node.output_shapes[0]  # the input's shape, unchanged
    heads, _ = node.layer.dims(channels)
    return ATTENTION_MATRICES * heads * math.prod(spatial) ** 2


def estimate(graph: ModelGraph) -> Estimate:
    """The memory estimate of ``graph``'s model (see the module's description)."""
    trainable, non_trainable, _ = graph.counts()
    values = math.prod(graph.input_shape)
    for node in graph.nodes:
        values += sum(math.prod(shape) for shape in node.output_shapes) + inner_values(node)
    return Estimate((trainable + non_trainable) * BYTES_PER_VALUE, values * BYTES_PER_VALUE)


def available_bytes() -> int | None:
    """Memory available to a new process: ``MemAvailable`` of ``/proc/meminfo`` on Linux, the
    free physical pages elsewhere; None when neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key == "MemAvailable":
                    return int(rest.split()[0]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def fmt_bytes(count: int) -> str:
    """``17,179,869,184`` -> ``17.2 GB`` (powers of 1000)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def check_fits(
    graph: ModelGraph,
    *,
    batch: int,
    doing: str,
    copies: int = 1,
    training: bool = False,
    allow_large: bool = False,
    available: int | None = None,
) -> None:
    """Raise a clean error when building and running ``graph``'s model for ``doing`` would need
    more memory than is available (unless ``allow_large``); ``available`` defaults to what the
    machine reports, and nothing is checked when that is unknown."""
    if allow_large:
        return
    if available is None:
        available = available_bytes()
        if available is None:
            return
    est = estimate(graph)
    need = est.bytes_for(batch, copies=copies, training=training)
    if need <= available:
        return
    parts = [
        f"{fmt_bytes(est.parameter_bytes)} of parameters",
        f"{fmt_bytes(est.activation_bytes_per_sample)} of activations per sample x batch {batch}",
    ]
    if training:
        parts.append("gradients and optimizer state")
    if copies > 1:
        parts.append(f"{copies} models")
    raise SpecErrors(
        [
            SpecError(
                f"{doing} would need about {fmt_bytes(need)} of memory for model '{graph.name}' "
                f"({', '.join(parts)}; float32), more than the {fmt_bytes(available)} this "
                "machine has available",
                hint="make the model smaller (fewer filters or units, a smaller input) or the "
                "batch smaller, or pass --allow-large to build it anyway",
            )
        ]
    )


def batch_from_args(args: list[str], default: int) -> int:
    """The ``--batch-size`` a training script is given in ``args`` (``--batch-size 8`` or
    ``--batch-size=8``), else ``default``."""
    batch = default
    for i, arg in enumerate(args):
        value = None
        if arg == "--batch-size" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--batch-size="):
            value = arg.partition("=")[2]
        if value is not None and value.isdigit():
            batch = int(value)
    return batch
