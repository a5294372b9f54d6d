"""Exact complexity: the reference numbers of docs/conventions.md, analytic and measured, and
the conventions."""

from __future__ import annotations

from dataclasses import astuple

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from netscale.complexity import complexity, complexity_totals
from netscale.complexity.measured import count_measured, measure_spec
from netscale.models import build_model
from netscale.specs import NetSpec, StageSpec, StemSpec, get_spec, list_models

ORACLES = {
    "RegNetX-200MF": (199_040_872, 2_684_792, 2_164_056),
    "RegNetY-4.0GF": (3_973_301_344, 20_646_656, 12_287_200),
    "ResNet-50": (4_089_185_256, 25_557_032, 11_315_688),
    "EfficientNet-B0": (385_825_092, 5_288_548, 6_748_036),
}


@pytest.mark.parametrize("name", ORACLES)
def test_analytic_oracles(name: str) -> None:
    rec = complexity(get_spec(name))
    assert (rec.flops, rec.params, rec.acts) == ORACLES[name]
    assert rec.resolution == 224
    assert astuple(complexity_totals(get_spec(name))) == ORACLES[name]


@pytest.mark.parametrize("name", ORACLES)
def test_measured_oracles(name: str) -> None:
    rec = measure_spec(get_spec(name))
    assert (rec.flops, rec.params, rec.acts) == ORACLES[name]
    assert rec.uncounted == {}


@pytest.mark.parametrize("name", list_models())
def test_measured_equals_analytic_on_every_named_model(name: str) -> None:
    spec = get_spec(name)
    a = complexity(spec)
    m = measure_spec(spec)
    assert (m.flops, m.params, m.acts) == (a.flops, a.params, a.acts)
    # per-stage totals agree too (the module tree is stem, s1..sN, head)
    measured_parts = dict(m.parts)
    for part, c in a.parts:
        assert (measured_parts[part].flops, measured_parts[part].acts,
                measured_parts[part].params) == (c.flops, c.acts, c.params), part


@pytest.mark.parametrize("name", list_models())
def test_built_params_equal_counted_params(name: str) -> None:
    spec = get_spec(name)
    model = build_model(spec, device="meta")
    assert sum(p.numel() for p in model.parameters()) == complexity(spec).params


@pytest.mark.parametrize("res", [32, 97, 128, 331])
def test_any_resolution(res: int) -> None:
    spec = get_spec("RegNetY-400MF")
    a = complexity(spec, res)
    m = measure_spec(spec, res)
    assert a.resolution == res
    assert (m.flops, m.acts) == (a.flops, a.acts)


def test_stage_breakdown_sums_to_total() -> None:
    # each analytic part equals the measured count of that module of the built network (an
    # independent count), and the parts sum to the measured total
    spec = get_spec("ResNet-101")
    rec = complexity(spec)
    measured = measure_spec(spec)
    assert [n for n, _ in rec.parts] == ["stem", "s1", "s2", "s3", "s4", "head"]
    by_module = dict(measured.parts)
    for name, part in rec.parts:
        assert astuple(part) == astuple(by_module[name]), name
    assert sum(c.flops for _, c in rec.parts) == measured.flops
    assert sum(c.params for _, c in rec.parts) == measured.params
    assert sum(c.acts for _, c in rec.parts) == measured.acts


def _hand_spec() -> NetSpec:
    return NetSpec(
        "hand", StemSpec("cifar", 8),
        (StageSpec("bottleneck", 1, 16, stride=2, bottleneck=0.5, group_width=4, se_ratio=0.25),),
        num_classes=5, resolution=8,
    )


def test_conventions_by_hand() -> None:
    """Every term of docs/conventions.md ("Layer formulas") on a tiny net, computed by hand."""
    # stem: conv3x3 3->8 at 8x8: flops 9*3*8*64 = 13824, params 216 + BN 16, acts 512
    # block (w_in 8, w_out 16, stride 2, w_b 8, groups 2, SE hidden round(0.25*8)=2):
    #   a 1x1 8->8 @8x8: flops 4096, params 64 + 16, acts 512
    #   b 3x3 8->8 /2, groups 2 @4x4: flops 9*8*8*16/2 = 4608, params 288 + 16, acts 128
    #   SE on 8 with 2: flops = params = 2*8*2 + 2 + 8 = 42, acts 10
    #   c 1x1 8->16 @4x4: flops 2048, params 128 + 32, acts 256
    #   proj 1x1 8->16 /2 @4x4: flops 2048, params 128 + 32, acts 256
    # head: linear 16->5: flops = params = 80 + 5, acts 5
    flops = 13824 + 4096 + 4608 + 42 + 2048 + 2048 + 85
    params = 232 + 80 + 304 + 42 + 160 + 160 + 85
    acts = 512 + 512 + 128 + 10 + 256 + 256 + 5
    rec = complexity(_hand_spec())
    assert (rec.flops, rec.params, rec.acts) == (flops, params, acts)
    m = measure_spec(_hand_spec())
    assert (m.flops, m.params, m.acts) == (flops, params, acts)


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1, groups=4, bias=False)
        self.t = nn.ConvTranspose2d(32, 8, 2, stride=2, bias=False)
        self.fc = nn.Linear(8 * 16 * 16, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c2(self.c1(x)))
        return self.fc(self.t(x).flatten(1))


def test_measured_matches_torch_flop_counter() -> None:
    model = _Plain()
    with FlopCounterMode(display=False) as fc:
        model(torch.randn(1, 3, 16, 16))
    rec = count_measured(_Plain(), (3, 16, 16), count_bias=False)
    assert rec.flops == fc.get_total_flops() // 2
    assert rec.uncounted == {}


def test_linear_with_bias_counts_bias_adds() -> None:
    rec = count_measured(nn.Linear(7, 3), (7,))
    assert (rec.flops, rec.params, rec.acts) == (7 * 3 + 3, 7 * 3 + 3, 3)
    assert count_measured(nn.Linear(7, 3), (7,), count_bias=False).flops == 21


class _UserNet(nn.Module):
    """User code with functional calls, matmuls and attention."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 48))
        self.proj = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (x @ self.w).chunk(3, dim=-1)  # (1, 10, 16) each
        shape = (1, 10, 2, 8)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        o = o.transpose(1, 2).reshape(1, 10, 16)
        o = torch.nn.functional.layer_norm(o, (16,))
        return torch.bmm(self.proj(o), o.transpose(1, 2))


def test_user_model_with_functional_ops() -> None:
    rec = count_measured(_UserNet(), (10, 16))
    qkv = 10 * 16 * 48
    attention = 2 * (2 * 10 * 10 * 8)  # QK^T and AV, two heads
    proj = 10 * 16 * 16 + 10 * 16
    final = 10 * 16 * 10
    assert rec.flops == qkv + attention + proj + final
    assert rec.params == 16 * 48 + 16 * 16 + 16
    assert "aten.native_layer_norm" in rec.uncounted
    assert rec.uncounted["aten.native_layer_norm"] == 1


def test_backward_flops_are_twice_forward_for_convs_and_linears() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(),
                          nn.Linear(8 * 8 * 8, 4, bias=False))
    rec = count_measured(model, (3, 8, 8), backward=True)
    # the first conv needs no input gradient: 1x its flops; the linear needs both: 2x
    conv, lin = 9 * 3 * 8 * 64, 8 * 8 * 8 * 4
    assert rec.flops == conv + lin
    assert rec.backward_flops == conv + 2 * lin


def test_per_module_table() -> None:
    rec = measure_spec(get_spec("RegNetX-200MF"))
    names = [n for n, _ in rec.parts]
    assert names[:2] == ["stem", "stem.0"]
    assert "s3.b2.b" in names
    parts = dict(rec.parts)
    assert parts["s1"].flops + parts["s2"].flops + parts["s3"].flops + parts["s4"].flops + \
        parts["stem"].flops + parts["head"].flops == rec.flops
    assert rec.part_types["s1.b1"] == "Bottleneck"


class _RealTensors(TorchDispatchMode):
    """Counts the elements of every tensor an operator returns on a real (non-meta) device."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        self.elements += sum(t.numel() for t in tree_leaves(out)
                             if isinstance(t, torch.Tensor) and t.device.type != "meta")
        return out


def test_measure_does_not_allocate_activations() -> None:
    # RegNetY-32GF at 448 px: every operator of the measured forward returns a meta tensor
    spec = get_spec("RegNetY-32GF")
    with _RealTensors() as real:
        rec = measure_spec(spec, 448, per_module=False)
    assert real.elements == 0
    assert rec.flops == complexity(spec, 448).flops
    with _RealTensors() as real:  # the probe sees a real forward's activations
        build_model(get_spec("ResNet-20-CIFAR"))(torch.zeros(1, 3, 32, 32))
    assert real.elements > complexity(get_spec("ResNet-20-CIFAR")).acts
