"""Notebook API for the PyTorch target.

    import specgen.torch
    model = specgen.torch.build("specs/resnet_ae.yaml", n_levels=3, input_shape=[64, 64, 3])

``source`` gives the text ``specgen generate --target torch`` writes, ``load_module`` that file
compiled in memory, ``build`` its ``build_model()``; nothing is written to disk.
"""

from .codegen.compiled import api
from .extras import needs_extra

source, load_module, build = api("torch")
# without the framework installed: MissingExtra, naming `pip install 'specgen[torch]'`
load_module = needs_extra("torch", "specgen.torch.load_module")(load_module)
build = needs_extra("torch", "specgen.torch.build")(build)

__all__ = ["source", "load_module", "build"]
