"""EfficientNet B0-B5 (Tan & Le 2019) as specs of MBConv stages, each at its training size.

SiLU; strides [1,2,2,2,1,2,1]; expansion [1,6,6,6,6,6,6]; kernels [3,3,5,3,5,5,3]; SE ratio
0.25 of the block input width; head 1x1 conv to the head width.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from netscale.specs.families.build import family_spec, stage_specs
from netscale.specs.registry import register
from netscale.specs.spec import NetSpec, StemSpec

_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_EXPANSIONS = (1, 6, 6, 6, 6, 6, 6)
_KERNELS = (3, 3, 5, 3, 5, 5, 3)

# name: (stem, depths, widths, head, train px, dropout)
_MODELS = {
    "B0": (32, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 1280, 224, 0.2),
    "B1": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320), 1280, 240, 0.2),
    "B2": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352), 1408, 260, 0.3),
    "B3": (40, (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 1536, 300, 0.3),
    "B4": (48, (2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448), 1792, 380, 0.4),
    "B5": (48, (3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512), 2048, 456, 0.4),
}


def effnet(
    name: str,
    stem_width: int,
    depths: Sequence[int],
    widths: Sequence[int],
    head_width: int,
    *,
    strides: Sequence[int] = _STRIDES,
    expansions: Sequence[float] = _EXPANSIONS,
    kernels: Sequence[int] = _KERNELS,
    se_ratio: float = 0.25,
    resolution: int = 224,
    num_classes: int = 1000,
    dropout: float = 0.0,
) -> NetSpec:
    """An EfficientNet-style spec (all stages MBConv)."""
    stages = stage_specs(
        "mbconv", {"depth": depths, "width": widths, "stride": strides, "kernel": kernels,
                   "expansion": expansions}, se_ratio=se_ratio)
    return family_spec("effnet", name, StemSpec("simple", stem_width), stages,
                       head_width=head_width, num_classes=num_classes, resolution=resolution,
                       activation="silu", dropout=dropout)


for _size, (_sw, _ds, _ws, _hw, _px, _do) in _MODELS.items():
    register(
        f"EfficientNet-{_size}",
        "effnet",
        partial(effnet, f"EfficientNet-{_size}", _sw, _ds, _ws, _hw, resolution=_px,
                dropout=_do),
    )
