"""Notebook API for the Keras 3 target.

    import specgen.keras
    model = specgen.keras.build("specs/resnet_ae.yaml", n_levels=3, input_shape=[64, 64, 3])

``source`` gives the text ``specgen generate --target keras`` writes, ``load_module`` that file
compiled in memory, ``build`` its ``build_model()``; nothing is written to disk.
"""

from .codegen.compiled import api
from .extras import needs_extra

source, load_module, build = api("keras")
# without the framework installed: MissingExtra, naming `pip install 'specgen[keras]'`
load_module = needs_extra("keras", "specgen.keras.load_module")(load_module)
build = needs_extra("keras", "specgen.keras.build")(build)

__all__ = ["source", "load_module", "build"]
