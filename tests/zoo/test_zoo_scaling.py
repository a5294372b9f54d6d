"""Every adapter family in both zoos: the base call is the named model, ×2/×4 by d, w, r and
dWr land within ±2 % of the target flops or are flagged with the factor reached, and the
printed call rebuilds exactly the counted network."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
import torchvision

from netscale.complexity.measured import count_measured
from netscale.zoo import ZooFactory, parse_zoo_name, scale_zoo

#: (model, input side used here, strategies tested); small sides keep this fast. Across its
#: zoos each family is scaled by d, w and dWr (r, the input side alone, is the same for every
#: adapter); the generator-based timm families (EfficientNet v1/v2, MobileNetV2/V3) share one
#: code path, tested in full on EfficientNet-B0
FAMILIES = [
    ("timm:resnet18", 64, "d,w,r,dWr"),
    ("timm:resnext50_32x4d", 64, "w,dWr"),
    ("timm:regnetx_002", 64, "d,dWr"),
    ("timm:efficientnet_b0", 64, "d,w,r,dWr"),
    ("timm:tf_efficientnetv2_b0", 64, "dWr"),
    ("timm:mobilenetv2_050", 64, "dWr"),
    ("timm:mobilenetv3_small_050", 64, "w,dWr"),
    ("timm:convnext_atto", 64, "d"),
    ("timm:vit_tiny_patch16_224", 112, "d,w,r,dWr"),
    ("timm:deit_tiny_patch16_224", 112, "w,dWr"),
    ("torchvision:resnet18", 64, "d,r"),
    ("torchvision:resnet50", 64, "d,w,r,dWr"),
    ("torchvision:resnext50_32x4d", 64, "w,dWr"),
    ("torchvision:regnet_x_400mf", 64, "w,r"),
    ("torchvision:efficientnet_b0", 64, "d,w,r,dWr"),
    ("torchvision:efficientnet_v2_s", 64, "d,w"),
    ("torchvision:mobilenet_v2", 64, "d,w,dWr"),
    ("torchvision:mobilenet_v3_small", 64, "w,r,wr"),
    ("torchvision:convnext_tiny", 64, "d,w,r,dWr"),
    ("torchvision:vit_b_16", 112, "d,w,dWr"),
]
NS = {"timm": timm, "torchvision": torchvision, "torch": torch, "functools": functools}


def _build(expr: str) -> torch.nn.Module:
    """``expr`` evaluated in a fresh namespace, on the meta device where the constructor
    allows it (torchvision's RegNet initialises with real data)."""
    try:
        with torch.device("meta"):
            return eval(expr, dict(NS))
    except NotImplementedError:
        return eval(expr, dict(NS))


def _counts(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, int, int]:
    rec = count_measured(model, shape, per_module=False)
    return rec.flops, rec.params, rec.acts


def _shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", [f[0] for f in FAMILIES] + ["torchvision:regnet_y_400mf"])
def test_the_adapter_base_call_builds_the_named_model(name: str) -> None:
    model = parse_zoo_name(name)
    shape = model.input_shape()
    named = _build(f"timm.create_model({model.name!r}, pretrained=False)" if model.zoo == "timm"
                   else f"torchvision.models.get_model({model.name!r}, weights=None)")
    via = _build(ZooFactory(name).expr(resolution=shape[1]))
    assert _shapes(via) == _shapes(named)
    assert _counts(via, shape) == _counts(named, shape)


@pytest.mark.parametrize(("name", "side", "strategies"), FAMILIES)
def test_scaled_within_tolerance_or_flagged_and_the_call_rebuilds_it(
        name: str, side: int, strategies: str) -> None:
    for strategy in strategies.split(","):
        for factor in (2, 4):
            r = scale_zoo(name, factor, strategy, input_shape=(3, side, side))
            if r.within_tolerance:
                assert abs(r.flops_factor / factor - 1) <= 0.02
            else:  # flagged, with the factor that was reached
                assert f"closest ×{r.flops_factor:.3f}" in r.note, r.note
            assert 0.75 * factor < r.flops_factor < 1.25 * factor, (strategy, factor)
            rebuilt = _build(r.call)  # the printed call, in a fresh namespace
            got = _counts(rebuilt, tuple(r.input_shape))
            assert got == (r.counts.flops, r.counts.params, r.counts.acts), (strategy, factor)
