"""The freeze: a draft graph expanded without errors becomes the immutable :class:`ModelGraph`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Source
from ..graph import INPUT, ModelGraph, Part, TensorRef
from ..schema import SpecDocument
from .nodes import DraftGraph


def freeze(
    doc: SpecDocument,
    params: Mapping[str, Any],
    source: Source | None,
    draft: DraftGraph,
    boundaries: tuple[TensorRef, TensorRef, TensorRef],
    outputs: Mapping[str, TensorRef],
    bottleneck: Any,
    output_activation: str,
    training: Any,
    reconstructs: bool = True,
    roles: Mapping[str, str] | None = None,
) -> ModelGraph:
    """The model of ``draft``; ``boundaries`` are the outputs of the encoder, the bottleneck and
    the decoder; ``roles`` the role of each output (by name)."""
    enc_out, bott_out, dec_out = boundaries
    inp = TensorRef(INPUT)
    parts = (
        Part("encoder", inp, enc_out),
        Part("bottleneck", enc_out, bott_out),
        Part("decoder", bott_out, dec_out),
    )
    return ModelGraph(
        name=doc.name,
        description=doc.description,
        spec_file=source.filename if source else "<spec>",
        input_shape=draft.input_shape,
        parameters=dict(params),
        nodes=tuple(draft.nodes.values()),
        groups=tuple(draft.groups),
        skips=tuple(draft.skip_paths),
        parts=parts,
        outputs=tuple(outputs.items()),
        output_roles=tuple((roles or {}).get(name, name) for name in outputs),
        bottleneck=bottleneck,
        output_activation=output_activation,
        training=training,
        reconstructs=reconstructs,
    )
