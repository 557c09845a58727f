"""specgen: convolutional autoencoders from one declarative spec.

A spec (YAML or JSON) is validated, expanded into an explicit graph of layers whose every tensor
shape and parameter count is checked, and rendered as framework code and figures.
"""

__version__ = "0.1.0"

from .api import build_graph, load_spec, port_weights  # noqa: E402
from .errors import SpecError, SpecErrors  # noqa: E402
from .plugins import load_plugins  # noqa: E402

__all__ = [
    "__version__",
    "build_graph",
    "load_plugins",
    "load_spec",
    "port_weights",
    "SpecError",
    "SpecErrors",
]
