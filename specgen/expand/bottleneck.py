"""The bottleneck kinds: the nodes each one adds between the encoder and the decoder.

:func:`build_bottleneck` is given the validated bottleneck config, the encoder's output and a
:class:`NodeSink` that adds nodes to the bottleneck part; it returns the tensor the decoder starts
from and the model's special tensors by role (``code``, ``mu``, ``logvar``, ``vq_loss``,
``perplexity``, ``indices``). It knows nothing else of expansion.

- ``none``: the encoder's output is the code;
- ``dense``: flatten, a dense code (and its activation), then a dense layer and a reshape back to
  the encoder's output shape;
- ``variational``: flatten, dense ``mu`` and ``logvar``, a sampling node, then back as for dense;
- ``vector_quantized``: a 1x1 convolution to the embedding width and a vector quantizer;
- ``diagonal_gaussian``: diffusers' AutoencoderKL latent — a 1x1 convolution to the mean and
  log-variance of a spatial Gaussian, a sample of it, and a 1x1 convolution of the sample.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from ..graph import TensorRef
from ..layers import Shape, fmt_shape
from .budget import MAX_DENSE_WIDTH

#: The model's outputs in order, for bottleneck kinds that do not simply follow the
#: reconstruction with their special tensors.
OUTPUT_ORDER = {"vector_quantized": ("vq_loss", "reconstruction", "perplexity", "indices")}


class NodeSink(Protocol):
    """Where a bottleneck kind puts its nodes."""

    def add(
        self, local: str, kind: str, inputs: list[TensorRef | None], **fields: Any
    ) -> TensorRef | None:
        """Add node ``bottleneck.<local>`` of layer ``kind``; None if it failed (reported)."""

    def shape(self, ref: TensorRef | None) -> Shape | None:
        """The shape of ``ref``, None when unknown after an earlier error."""

    def error(self, message: str, hint: str | None = None) -> None:
        """Report an error about the bottleneck."""


def build_bottleneck(
    cfg, incoming: TensorRef | None, sink: NodeSink
) -> tuple[TensorRef | None, dict[str, TensorRef | None]]:
    """The bottleneck ``cfg`` on ``incoming``: (the decoder's input, special tensors by role)."""
    outputs: dict[str, TensorRef | None] = {}
    enc_shape = sink.shape(incoming)
    if cfg.kind == "none":
        outputs["code"] = incoming
        return incoming, outputs
    if cfg.kind == "diagonal_gaussian":
        return _diagonal_gaussian(cfg, incoming, enc_shape, sink)
    if cfg.kind == "vector_quantized":
        if enc_shape is not None and len(enc_shape) != 3:
            sink.error(
                f"a vector-quantized bottleneck needs an image-shaped encoder output, "
                f"got {fmt_shape(enc_shape)}"
            )
            return None, outputs
        pre = sink.add(
            "pre_quant",
            "conv2d",
            [incoming],
            filters=cfg.embedding_dim,
            kernel_size=1,
            kernel_initializer=cfg.kernel_initializer,
        )
        q = sink.add(
            "quantizer",
            "vector_quantizer",
            [pre],
            num_embeddings=cfg.num_embeddings,
            commitment_cost=cfg.commitment_cost,
            loss_weighting=cfg.loss_weighting,
        )
        if q is None:
            return None, outputs
        outputs["vq_loss"] = TensorRef(q.node, 1)
        outputs["perplexity"] = TensorRef(q.node, 2)
        outputs["indices"] = TensorRef(q.node, 3)
        return q, outputs
    dense_args = dict(use_bias=cfg.use_bias, kernel_initializer=cfg.kernel_initializer)
    flat = sink.add("flatten", "flatten", [incoming])
    if cfg.kind == "dense":
        code = sink.add("code", "dense", [flat], units=cfg.units, **dense_args)
        if cfg.activation != "linear":
            code = sink.add("code_activation", cfg.activation, [code])
        outputs["code"] = code
        latent = code
    else:
        mu = sink.add("mu", "dense", [flat], units=cfg.units, **dense_args)
        logvar = sink.add("logvar", "dense", [flat], units=cfg.units, **dense_args)
        outputs["mu"], outputs["logvar"] = mu, logvar
        latent = sink.add("sample", "vae_sampling", [mu, logvar], inference=cfg.inference)
    if enc_shape is None:
        return None, outputs
    if len(enc_shape) != 3:
        sink.error(
            f"the bottleneck expects an image-shaped encoder output, got {fmt_shape(enc_shape)}"
        )
        return None, outputs
    width = math.prod(enc_shape)
    if width > MAX_DENSE_WIDTH:
        sink.error(
            f"the encoder output {fmt_shape(enc_shape)} has {width:,} values, too many for a "
            f"dense bottleneck (at most {MAX_DENSE_WIDTH:,})",
            hint="add encoder levels or strides, reduce the encoder's last width, or use "
            "bottleneck kind none",
        )
        return None, outputs
    expand = sink.add("expand", "dense", [latent], units=width, **dense_args)
    if cfg.expand_activation != "linear":
        expand = sink.add("expand_activation", cfg.expand_activation, [expand])
    out = sink.add("reshape", "reshape", [expand], target_shape=list(enc_shape))
    return out, outputs


def _diagonal_gaussian(
    cfg, incoming: TensorRef | None, enc_shape: Shape | None, sink: NodeSink
) -> tuple[TensorRef | None, dict[str, TensorRef | None]]:
    """A 1x1 convolution to the Gaussian's parameters (``quant_conv``), their split into mean and
    log-variance, a sample, and a 1x1 convolution of the sample (``post_quant_conv``)."""
    outputs: dict[str, TensorRef | None] = {}
    if enc_shape is not None and len(enc_shape) != 3:
        sink.error(
            f"a diagonal Gaussian bottleneck needs an image-shaped encoder output, "
            f"got {fmt_shape(enc_shape)}"
        )
        return None, outputs
    conv = dict(kernel_size=1, kernel_initializer=cfg.kernel_initializer)
    moments = sink.add("quant_conv", "conv2d", [incoming], filters=2 * cfg.latent_channels, **conv)
    posterior = sink.add("posterior", "diagonal_gaussian", [moments])
    if posterior is None:
        return None, outputs
    mean, logvar = posterior, TensorRef(posterior.node, 1)
    outputs["mu"], outputs["logvar"] = mean, logvar
    sample = sink.add("sample", "vae_sampling", [mean, logvar], inference=cfg.inference)
    out = sink.add("post_quant_conv", "conv2d", [sample], filters=cfg.latent_channels, **conv)
    return out, outputs


def model_outputs(
    cfg, reconstruction: TensorRef | None, special: dict[str, TensorRef | None]
) -> dict[str, TensorRef | None]:
    """The model's outputs by name, in order: the reconstruction and the special tensors."""
    outputs = {"reconstruction": reconstruction, **special}
    order = OUTPUT_ORDER.get(cfg.kind) if cfg is not None else None
    if order is not None:
        outputs = {k: outputs[k] for k in order if k in outputs}
    return outputs
