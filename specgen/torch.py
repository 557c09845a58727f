"""Notebook API for the PyTorch target.

    import specgen.torch
    model = specgen.torch.build("specs/resnet_ae.yaml", n_levels=3, input_shape=[64, 64, 3])

``source`` gives the text ``specgen generate --target torch`` writes, ``load_module`` that file
compiled in memory, ``build`` its ``build_model()``; nothing is written to disk.
"""

from .codegen.compiled import api

source, load_module, build = api("torch")

__all__ = ["source", "load_module", "build"]
