"""The generated training scripts: ``train_torch.py`` and ``train_keras.py``.

Their defaults come from the spec's ``training:`` section (or its defaults when the spec has
none); everything else is fixed text in ``templates/train/``, with the parts that depend on the
spec's spatial rank chosen here: the data it reads (image folders in 2-D only), its built-in demo
data (images, sequences or volumes) and the preview it draws of each epoch's reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..graph import ModelGraph
from ..render import render
from ..schema import TrainingSpec
from .layout import layout_of
from .pyview import forward_names

#: The preview each rank draws: an image grid, the middle slice of volumes in such a grid, or
#: line plots of sequences.
PREVIEWS = {1: "plot", 2: "grid", 3: "slice"}


@dataclass(frozen=True)
class TrainView:
    header: str
    name: str
    model_file: str
    #: the role of each output the model returns, in order
    outputs: tuple[str, ...]
    #: whether the output reconstructs the input (otherwise the script cannot train it)
    reconstructs: bool
    defaults: dict[str, Any]
    #: the command that installs the modules the script needs
    install: str
    #: what one sample is called (``image``), and its axes (``H x W x C``, ``(H, W, C)``)
    item: str
    axes: str
    axes_tuple: str
    #: whether ``--data`` may be a folder of image files (2-D specs only)
    image_folders: bool
    #: the demo data and the preview: ``grid``, ``slice`` or ``plot`` (see PREVIEWS)
    preview: str


def defaults(graph: ModelGraph) -> dict[str, Any]:
    t = graph.training or TrainingSpec()
    return {
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "learning_rate": float(t.optimizer.learning_rate),
        "optimizer": t.optimizer.kind,
        "momentum": float(t.optimizer.momentum),
        "weight_decay": float(t.optimizer.weight_decay),
        "l2": float(t.l2),
        "schedule": t.schedule.kind,
        "decay_rate": float(t.schedule.decay_rate),
        "decay_steps": t.schedule.decay_steps,
        "staircase": t.schedule.staircase,
        "loss": t.loss,
        "beta": float(t.beta),
        "distortion_weight": float(t.distortion_weight),
        "gradient_clip": None if t.gradient_clip is None else float(t.gradient_clip),
        "seed": t.seed,
    }


def render_train(graph: ModelGraph, target: str, header: str) -> str:
    layout = layout_of(graph.input_shape)
    view = TrainView(
        header.rstrip("\n"),
        graph.name,
        f"{target}_model.py",
        tuple(graph.role(name) for name in forward_names(graph)),
        graph.reconstructs,
        defaults(graph),
        f"pip install 'specgen[{target}]'",
        layout.examples[:-1],
        " x ".join((*layout.letters, "C")),
        layout.keras_axes,
        layout.rank == 2,
        PREVIEWS[layout.rank],
    )
    return render(f"train/{target}.py.j2", v=view)
