"""The generated training scripts: ``train_torch.py`` and ``train_keras.py``.

Their defaults come from the spec's ``training:`` section (or its defaults when the spec has
none); everything else is fixed text in ``templates/train/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..graph import ModelGraph
from ..render import render
from ..schema import TrainingSpec
from .pyview import forward_names


@dataclass(frozen=True)
class TrainView:
    header: str
    name: str
    model_file: str
    #: the model's outputs in order, named by role
    outputs: tuple[str, ...]
    #: whether the output reconstructs the input (otherwise the script cannot train it)
    reconstructs: bool
    defaults: dict[str, Any]
    #: the command that installs the modules the script needs
    install: str


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
        "gradient_clip": None if t.gradient_clip is None else float(t.gradient_clip),
        "seed": t.seed,
    }


def render_train(graph: ModelGraph, target: str, header: str) -> str:
    view = TrainView(
        header.rstrip("\n"),
        graph.name,
        f"{target}_model.py",
        forward_names(graph),
        graph.reconstructs,
        defaults(graph),
        f"pip install 'specgen[{target}]'",
    )
    return render(f"train/{target}.py.j2", v=view)
