"""Scaling a model given as a factory: realized flops checked by an independent count.

The independent count is ``torch.utils.flop_counter.FlopCounterMode`` on a real forward of
the chosen model (2 flops per multiply-add, biases ignored), so the search runs with
``count_bias=False`` to count the same thing.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import factories
from netscale.complexity.measured import count_measured
from netscale.errors import NetscaleError
from netscale.scaling.module import scale_module

# Base input shapes. Flops are a step function of the resolution (every stride-2 layer
# rounds the side), so pure resolution scaling can only land where the steps allow; the
# MobileNet base side (76 px) is one where x2, x4 and x8 are reachable within ±2%.
MOBILENET_SHAPE = (3, 76, 76)
VIT_SHAPE = (3, 36, 36)


def _independent_macs(factory, kwargs, shape) -> int:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = factory(**kwargs).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *shape))
    return counter.get_total_flops() // 2


_BASE: dict[str, int] = {}


def _check(factory, shape, factor, strategy) -> None:  # type: ignore[no-untyped-def]
    r = scale_module(factory, shape, factor, strategy, count_bias=False)
    key = factory.__name__
    if key not in _BASE:
        _BASE[key] = _independent_macs(factory, {}, shape)
    base = _BASE[key]
    assert r.base_counts.flops == base  # our meta count = the independent count, exactly
    scaled = _independent_macs(factory, r.factory_kwargs(), r.input_shape)
    assert r.counts.flops == scaled
    assert r.within_tolerance, r.note
    assert abs(scaled / base / factor - 1) <= 0.02
    # the strategy decides which dimensions move
    st = r.strategy
    assert (r.depth_mult != 1.0) == (st.e_d > 0) or r.depth_mult == 1.0
    if st.e_d == 0:
        assert r.depth_mult == 1.0
    if st.e_w == 0:
        assert r.width_mult == 1.0
    if st.e_r == 0:
        assert r.input_shape == shape


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["d", "w", "r", "dWr"])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_mobilenet_factory_lands_within_2_percent(strategy: str, factor: int) -> None:
    _check(factories.mobilenet, MOBILENET_SHAPE, factor, strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["d", "w", "dWr"])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_vit_factory_lands_within_2_percent(strategy: str, factor: int) -> None:
    _check(factories.vit, VIT_SHAPE, factor, strategy)


def test_vit_width_multiplier_sets_heads_and_width() -> None:
    r = scale_module(factories.vit, VIT_SHAPE, 4, "w", count_bias=False)
    model = factories.vit(**r.factory_kwargs())
    dim = model.head.in_features
    assert dim == round(64 * r.width_mult) and dim > 64
    assert model.blocks[0].attn.heads > 4 and dim % model.blocks[0].attn.heads == 0


def test_unreachable_target_returns_the_closest_and_is_flagged() -> None:
    # A ViT's flops move in token-grid steps (6-10% here): x2 by r cannot land within ±2%.
    r = scale_module(factories.vit, VIT_SHAPE, 2, "r", count_bias=False)
    with torch.device("meta"):
        model = factories.vit()
    target = 2 * r.base_counts.flops
    candidates = {}
    for side in range(36, 80):
        candidates[side] = count_measured(model, (3, side, side), per_module=False,
                                   count_bias=False).flops
    best = min(abs(f / target - 1) for f in candidates.values())
    assert abs(r.counts.flops / target - 1) == pytest.approx(best)
    assert best > 0.02  # no square input reaches x2 within ±2% ...
    assert not r.within_tolerance and "closest" in r.note  # ... and the result says so


def test_every_strategy_spelling_is_accepted() -> None:
    for spelling in ["dw", "dr", "wr", "dwr", "fast:0.6", "d1_w8_g8_r1", "e_d=0.2,e_w=0.3,e_r=0.1"]:
        r = scale_module(factories.vit, VIT_SHAPE, 2, spelling)
        assert abs(r.flops_error) <= 0.1, spelling  # strategy parsed, search ran
        assert r.strategy.name == spelling or spelling == "dWr"


def test_shrinking_and_import_string() -> None:
    r = scale_module(f"{factories.__file__}:mobilenet", MOBILENET_SHAPE, 0.5, "w")
    assert r.within_tolerance and r.width_mult < 1 and r.module.endswith("factories.py:mobilenet")


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(NetscaleError, match="takes no keyword argument 'depth'"):
        scale_module(factories.mobilenet, MOBILENET_SHAPE, 2, "d", depth_arg="depth")
    with pytest.raises(NetscaleError, match="no spatial dimension"):
        scale_module(factories.mobilenet, (3,), 2, "r")
    with pytest.raises(NetscaleError, match="unknown strategy"):
        scale_module(factories.mobilenet, MOBILENET_SHAPE, 2, "xyz")
    with pytest.raises(NetscaleError, match="failed"):
        scale_module(factories.mobilenet, (5, 76, 76), 2, "w")  # wrong channel count
