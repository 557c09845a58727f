"""Two custom layer kinds for specgen: ``learned_scale`` and ``swish_gate``.

``example_layers.kinds`` holds their configs (what specgen reads, importing no framework);
``example_layers.torch_layers`` and ``example_layers.keras_layers`` their implementations.
"""

__version__ = "0.1.0"
