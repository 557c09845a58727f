"""Expansion: a validated spec document -> the explicit graph of primitive layers.

One pass over the spec in order. Loops are unrolled, blocks instantiated, ``when`` conditions
applied and every expression evaluated; each layer is validated by its kind's config model and its
output shape inferred on the spot (by the kind's own shape rule in :mod:`specgen.layers`), so
later expressions can read the shape of their scope's input (``in_channels``, ``in_height``,
``in_width``). Skip paths are joined when their target is complete.

All user errors are collected, each with the key path it comes from, and raised together. After
one error a tensor's shape is unknown and nothing downstream of it reports again.

The modules, one concept each:

- :mod:`.parts` — the pass over the model's parts: input, encoder, bottleneck, decoder, output
  activation, then the freeze and the whole-graph checks;
- :mod:`.prepass` — what is checked before anything is evaluated;
- :mod:`.scopes` — scopes, the names claimed in them and how references resolve;
- :mod:`.evaluate` — evaluation environments and ``${...}`` expressions;
- :mod:`.items` — layers, groups, block uses (their requirements, inline uses), ``for``/``in``
  loops, ``levels`` and ``when``;
- :mod:`.nodes` — the graph under construction; where output shapes are inferred;
- :mod:`.skips` — skip paths and their merges;
- :mod:`.outputs` — the model outputs the spec declares, their order and their roles (the
  bottleneck is expanded like the other parts; its ``{kind: ...}`` shorthand is a block of
  :mod:`specgen.library`);
- :mod:`.leftovers` — skip targets never reached and references never resolved;
- :mod:`.budget` — the limits on the work a spec may ask for, and the errors collected;
- :mod:`.freeze` — the draft graph into the immutable :class:`~specgen.graph.ModelGraph`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Source
from ..graph import ModelGraph
from ..schema import SpecDocument
from .budget import (
    MAX_DENSE_WIDTH,
    MAX_ERRORS,
    MAX_NESTING,
    MAX_NODES,
    MAX_PARAMETERS,
    MAX_REPEAT,
    MAX_STEPS,
)
from .parts import Expansion


def expand(doc: SpecDocument, params: Mapping[str, Any], source: Source | None) -> ModelGraph:
    """The graph of ``doc`` with parameter values ``params``; raises
    :class:`~specgen.errors.SpecErrors` with every user error found."""
    return Expansion(doc, params, source).build()


__all__ = [
    "expand",
    "Expansion",
    "MAX_DENSE_WIDTH",
    "MAX_ERRORS",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_PARAMETERS",
    "MAX_REPEAT",
    "MAX_STEPS",
]
