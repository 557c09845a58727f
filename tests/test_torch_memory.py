"""Memory and layout of the generated PyTorch models: in-place activations and channels-last.

Activations run in place only where that changes nothing but memory: the generated model with
and without them gives bit-identical outputs, gradients and running statistics, and no tensor
that anything else reads is overwritten. ``channels_last`` is read when ``build_model`` runs.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch.overrides import TorchFunctionMode  # noqa: E402

from specgen.api import build_graph, load_spec  # noqa: E402
from specgen.codegen.torch_target import computes_inplace, render_torch  # noqa: E402

pytestmark = pytest.mark.frameworks

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: Specs at small settings, and how many activations each computes in place.
CASES = [
    ("resnet_ae", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [16, 16, 3]}, 18),
    ("resnet_ae_preact", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [16, 16, 3]}, 18),
    ("resnet_vae", {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [16, 16, 3]}, 18),
    (
        "resnet_vqvae",
        {"n_levels": 2, "n_residual_blocks": 1, "input_shape": [16, 16, 3], "num_embeddings": 8},
        18,
    ),
    ("unet_ae", {"n_levels": 2, "base_filters": 4, "input_shape": [16, 16, 3]}, 10),
    ("conv_autoencoder", {"layers": [8, 16], "input_shape": [16, 16, 1]}, 4),
    ("res_ae_mnist", {"batch_norm": True, "code_dim": 8}, 12),
    (
        "zoo/monai_autoencoder",
        {
            "input_shape": [16, 16, 1],
            "channels": [4, 8],
            "strides": [2, 2],
            "act": "LEAKYRELU",
            "norm": "BATCH",
            "num_res_units": 1,
        },
        5,
    ),
    (
        "zoo/monai_autoencoder",
        {
            "input_shape": [16, 16, 1],
            "channels": [4, 8],
            "strides": [2, 2],
            "act": "RELU",
            "norm": "INSTANCE",
        },
        3,
    ),
    (
        "zoo/monai_varautoencoder",
        {
            "input_shape": [16, 16, 1],
            "channels": [4, 8],
            "strides": [2, 2],
            "act": "RELU",
            "latent_size": 4,
        },
        3,
    ),
    (
        "zoo/diffusers_autoencoder_kl",
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [8, 16],
            "layers_per_block": 1,
            "norm_num_groups": 4,
            "latent_channels": 2,
        },
        0,
    ),
    ("zoo/compressai_factorized_prior", {"N": 8, "M": 12, "input_shape": [16, 16, 3]}, 0),
    ("shared", {}, 4),
]

#: Activations after tensors that are read twice, a model output, a skip source, and kinds
#: whose in-place form is not exact or saves nothing: only a1, a3, a4 and a8 run in place.
SHARED = """\
specgen: 1
name: shared
input: {shape: [8, 8, 2]}
encoder:
  - {kind: conv2d, name: c1, filters: 4, kernel_size: 3, padding: same}
  - {kind: batch_norm, name: b1}
  - {kind: relu, name: a1}
  - {kind: conv2d, name: c2, filters: 4, kernel_size: 3, padding: same}
  - {kind: leaky_relu, name: a2, negative_slope: 0.1}
  - {kind: add, name: total, inputs: [a2, c2]}
  - {kind: batch_norm, name: b3}
  - {kind: leaky_relu, name: a3, negative_slope: 0.3}
  - {kind: conv2d, name: c4, filters: 4, kernel_size: 3, padding: same}
  - {kind: batch_norm, name: b4}
  - {kind: relu, name: a4}
  - {kind: conv2d, name: c5, filters: 4, kernel_size: 3, padding: same}
  - {kind: elu, name: a5}
  - {kind: group_norm, name: g6, groups: 2}
  - {kind: relu, name: a6}
  - {kind: conv2d, name: c7, filters: 4, kernel_size: 3, padding: same}
  - {kind: silu, name: a7}
decoder:
  - {kind: conv2d_transpose, name: up, filters: 4, kernel_size: 3, padding: same}
  - {kind: instance_norm, name: n8}
  - {kind: leaky_relu, name: a8, negative_slope: 0.0}
  - {kind: conv2d, name: c9, filters: 4, kernel_size: 1}
  - {kind: layer_norm, name: n9}
  - {kind: relu, name: a9}
  - {kind: conv2d, name: out, filters: 2, kernel_size: 1}
skips:
  - {name: skip, from: encoder.g6, to: decoder.up, merge: add}
outputs:
  - {name: feature, from: decoder.n9}
"""


def graph_of(spec: str, overrides: dict):
    if spec == "shared":
        return build_graph(load_spec(text=SHARED, filename="shared.yaml"))
    return build_graph(SPECS / f"{spec}.yaml", overrides)


def module_of(graph, inplace: bool) -> tuple[types.ModuleType, str]:
    """The generated torch_model.py of ``graph``, executed as a fresh module, and its text."""
    text = render_torch(graph, "<spec>", "# test", inplace=inplace)
    module = types.ModuleType(f"memory_{graph.name}_{inplace}")
    exec(compile(text, f"<{graph.name} torch_model.py>", "exec"), module.__dict__)
    return module, text


def step(model, x: torch.Tensor, seed: int):
    """One forward and backward pass; the outputs, the input's gradient and the parameters'."""
    x = x.clone().requires_grad_(True)
    torch.manual_seed(seed)  # the same sampling noise and dropout masks both times
    outputs = model(x)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    floats = [o for o in outputs if o.is_floating_point()]
    generator = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=generator)).sum() for o in floats)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return [o.detach() for o in outputs], x.grad.clone(), grads


def assert_identical(a, b) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert torch.equal(u, v), (u - v).abs().max()


CASE_IDS = [f"{spec}-{i}" for i, (spec, _, _) in enumerate(CASES)]


@pytest.mark.parametrize(("spec", "overrides", "count"), CASES, ids=CASE_IDS)
def test_inplace_activations_are_bit_identical(spec, overrides, count):
    graph = graph_of(spec, overrides)
    inplace, text = module_of(graph, True)
    plain, plain_text = module_of(graph, False)
    assert ("inplace=True" in text) == (count > 0)
    assert sum(computes_inplace(n, graph) for n in graph.nodes) == count
    assert "inplace=True" not in plain_text
    torch.manual_seed(0)
    a = inplace.build_model().train()
    b = plain.build_model().train()
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, *inplace.INPUT_SHAPE, generator=torch.Generator().manual_seed(1))
    for seed in (0, 1):  # twice: the running statistics of the first step feed the second
        out_a, gx_a, g_a = step(a, x, seed)
        out_b, gx_b, g_b = step(b, x, seed)
        assert_identical(out_a, out_b)
        assert_identical([gx_a], [gx_b])
        assert g_a.keys() == g_b.keys()
        assert_identical(list(g_a.values()), list(g_b.values()))
        a.zero_grad(set_to_none=True)
        b.zero_grad(set_to_none=True)
    assert_identical(list(a.state_dict().values()), list(b.state_dict().values()))
    a.eval()
    b.eval()
    with torch.no_grad():
        torch.manual_seed(2)
        ya = a(x)
        torch.manual_seed(2)
        yb = b(x)
    ya, yb = (ya if isinstance(ya, tuple) else (ya,)), (yb if isinstance(yb, tuple) else (yb,))
    assert_identical(list(ya), list(yb))


def test_inplace_only_where_nothing_else_reads_the_tensor():
    graph = graph_of("shared", {})
    chosen = sorted(n.name for n in graph.nodes if computes_inplace(n, graph))
    assert chosen == ["decoder.a8", "encoder.a1", "encoder.a3", "encoder.a4"]
    _, text = module_of(graph, True)
    assert "self.a1 = nn.ReLU(inplace=True)" in text
    assert "self.a2 = nn.LeakyReLU(0.1)\n" in text  # c2 is read by a2 and by the add
    assert "self.a3 = nn.LeakyReLU(0.3, inplace=True)" in text
    assert "self.a4 = nn.ReLU(inplace=True)" in text
    assert "self.a5 = nn.ELU()\n" in text  # not bit-identical in place
    assert "self.a6 = nn.ReLU()\n" in text  # g6 is a skip's source
    assert "self.a7 = nn.SiLU()\n" in text  # in place it keeps a copy: nothing saved
    assert "self.a8 = nn.LeakyReLU(0.0, inplace=True)" in text
    assert "self.a9 = nn.ReLU()\n" in text  # n9 is a model output


class ReadLog(TorchFunctionMode):
    """Every torch call with the tensors it reads, each with its version at the call, and
    whether it overwrote its first argument (returned it with a new version)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[object, bool, list[tuple[torch.Tensor, int]]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [
            (t, t._version)
            for t in (*args, *kwargs.values())
            if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter)
        ]
        result = func(*args, **kwargs)
        first = args[0] if args else None
        inplace = (
            bool(tensors)
            and result is first
            and tensors[0][0] is first
            and first._version != tensors[0][1]
        )
        self.calls.append((func, inplace, tensors))
        return result


@pytest.mark.parametrize(
    ("spec", "overrides"),
    [(s, o) for s, o, n in CASES if n],
    ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if c[2]],
)
def test_no_tensor_read_twice_is_modified_in_place(spec, overrides):
    """Run the model with and without in-place activations, which make the same calls in the
    same order: every tensor that an in-place call overwrites is, in the run without, read by
    that call alone."""
    graph = graph_of(spec, overrides)
    logs = []
    for inplace in (True, False):
        module, _ = module_of(graph, inplace)
        torch.manual_seed(0)
        model = module.build_model().train()
        x = torch.rand(4, *module.INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
        log = ReadLog()
        with log:
            model(x.requires_grad_(True))
        logs.append(log.calls)
    inplace_calls, plain_calls = logs
    assert [c[0] for c in inplace_calls] == [c[0] for c in plain_calls]
    activations = (torch.nn.functional.relu, torch.nn.functional.leaky_relu)
    assert not any(f in activations and overwrites for f, overwrites, _ in plain_calls)
    overwritten = [
        i for i, (f, overwrites, _) in enumerate(inplace_calls) if f in activations and overwrites
    ]
    assert len(overwritten) == sum(computes_inplace(n, graph) for n in graph.nodes) > 0
    for i in overwritten:
        target = plain_calls[i][2][0][0]
        readers = [
            plain_calls[j][0]
            for j in range(len(plain_calls))
            if j != i and any(t is target for t, _ in plain_calls[j][2])
        ]
        assert not readers, (plain_calls[i][0], readers)


def channels_last_maps(model, x: torch.Tensor) -> tuple[list[bool], object]:
    """Whether each feature map a layer returns (with more than one channel) is held
    channels-last, and the model's output."""
    seen: list[bool] = []

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[1] > 1:
            seen.append(output.is_contiguous(memory_format=torch.channels_last))

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen, y


def test_channels_last_is_read_when_the_model_is_built():
    graph = graph_of("conv_autoencoder", {"layers": [8, 16], "input_shape": [16, 16, 3]})
    module, _ = module_of(graph, True)
    x = torch.rand(2, *module.INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    reference = module.build_model().eval()
    maps, expected = channels_last_maps(reference, x)
    assert maps and not any(maps)

    def built(**kwargs):
        model = module.build_model(**kwargs).eval()
        model.load_state_dict(reference.state_dict())
        return model

    module.CHANNELS_LAST = True  # set after import, as a user would
    try:
        by_flag = built()
        off_by_argument = built(channels_last=False)
    finally:
        module.CHANNELS_LAST = False
    by_argument = built(channels_last=True)
    for model in (by_flag, by_argument):
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
        for inputs in (x, x.contiguous(memory_format=torch.channels_last)):
            maps, y = channels_last_maps(model, inputs)
            assert maps and all(maps)
            assert torch.allclose(y, expected, rtol=0, atol=1e-6)
    maps, y = channels_last_maps(off_by_argument, x)
    assert not any(maps)
    assert torch.equal(y, expected)


def test_compile_is_read_when_the_model_is_built(monkeypatch):
    graph = graph_of("conv_autoencoder", {"layers": [8, 16], "input_shape": [16, 16, 1]})
    module, _ = module_of(graph, True)
    wrapped = []
    monkeypatch.setattr(module.torch, "compile", lambda m: wrapped.append(m) or m)
    module.build_model()
    assert not wrapped
    module.COMPILE = True
    module.build_model()
    assert len(wrapped) == 1
    module.build_model(compile=False)
    assert len(wrapped) == 1
