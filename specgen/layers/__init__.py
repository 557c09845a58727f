"""The layer vocabulary: one config class and one shape/parameter/MAC rule set per layer kind.

Importing this package registers every kind in :data:`REGISTRY`. :data:`AnyLayer` is the
pydantic discriminated union (on ``kind``) of all of them.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Annotated

from pydantic import Field

from . import (  # noqa: F401
    activation,
    attention,
    compression,
    conv,
    dense,
    latent,
    merge,
    norm,
    pool,
    regularization,
    reshape,
)
from .base import (
    INITIALIZERS,
    RANK_CONTEXT,
    REGISTRY,
    SPATIAL_RANKS,
    Initializer,
    LayerConfig,
    Shape,
    ShapeError,
    fmt_shape,
    layer_kinds,
    register,
)
from .conv import Conv, Conv2d, Conv2dTranspose, ConvTranspose, same_padding, transpose_crop

AnyLayer = Annotated[
    reduce(operator.or_, (REGISTRY[k] for k in layer_kinds())),  # type: ignore[valid-type]
    Field(discriminator="kind"),
]

__all__ = [
    "AnyLayer",
    "Conv",
    "Conv2d",
    "Conv2dTranspose",
    "ConvTranspose",
    "INITIALIZERS",
    "Initializer",
    "LayerConfig",
    "RANK_CONTEXT",
    "REGISTRY",
    "SPATIAL_RANKS",
    "Shape",
    "ShapeError",
    "fmt_shape",
    "layer_kinds",
    "register",
    "same_padding",
    "transpose_crop",
]
