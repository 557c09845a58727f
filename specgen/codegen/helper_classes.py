"""The constructors of the helper classes that both targets define alike.

The attention, GDN, entropy-bottleneck, sampling, Gaussian and quantizer helpers of the PyTorch
and the Keras model files take the same arguments under the same names, so both targets print
their constructors from here.
"""

from __future__ import annotations

from .program import Arg, Ctor


def attention_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the SpatialSelfAttention helper."""
    heads, head_dim = layer.dims(shape[-1])
    args = [
        Arg(None, shape[-1], "channels"),
        Arg(None, layer.norm_groups, "num_groups"),
        Arg("heads", heads),
        Arg("head_dim", head_dim),
        Arg("eps", layer.epsilon),
    ]
    if not layer.residual:
        args.append(Arg("residual", False))
    if layer.rescale_output_factor != 1.0:
        args.append(Arg("rescale_output_factor", layer.rescale_output_factor))
    return args


def gdn_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the GeneralizedDivisiveNorm helper."""
    args = [Arg(None, shape[-1], "channels")]
    if layer.inverse:
        args.append(Arg("inverse", True))
    if layer.beta_min != 1e-6:
        args.append(Arg("beta_min", layer.beta_min))
    if layer.gamma_init != 0.1:
        args.append(Arg("gamma_init", layer.gamma_init))
    return args


def entropy_bottleneck_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the EntropyBottleneck helper."""
    args = [Arg(None, shape[-1], "channels")]
    if layer.filters != (3, 3, 3, 3):
        args.append(Arg("filters", layer.filters))
    if layer.init_scale != 10.0:
        args.append(Arg("init_scale", layer.init_scale))
    if layer.tail_mass != 1e-9:
        args.append(Arg("tail_mass", layer.tail_mass))
    if layer.likelihood_bound != 1e-9:
        args.append(Arg("likelihood_bound", layer.likelihood_bound))
    return args


def helper_ctor(kind: str, layer, shape: tuple[int, ...]) -> Ctor | None:
    """The constructor of the helper class for layer ``kind``, or None if it has none."""
    if kind == "attention":
        return Ctor("SpatialSelfAttention", tuple(attention_args(layer, shape)))
    if kind in ("gdn", "igdn"):
        return Ctor("GeneralizedDivisiveNorm", tuple(gdn_args(layer, shape)))
    if kind == "entropy_bottleneck":
        return Ctor("EntropyBottleneck", tuple(entropy_bottleneck_args(layer, shape)))
    if kind == "vae_sampling":
        if layer.inference == "mean":
            return Ctor("VaeSampling")
        return Ctor("VaeSampling", (Arg("inference", layer.inference),))
    if kind == "diagonal_gaussian":
        return Ctor("DiagonalGaussian")
    if kind == "vector_quantizer":
        args = [
            Arg(None, layer.num_embeddings, "num_embeddings"),
            Arg(None, shape[-1], "embedding_dim"),
            Arg("commitment_cost", layer.commitment_cost),
        ]
        if layer.loss_weighting != "vqvae":
            args.append(Arg("loss_weighting", layer.loss_weighting))
        return Ctor("VectorQuantizer", tuple(args))
    return None
