"""ResNet and ResNeXt (He et al. 2016; Xie et al. 2017) as AnyNet specs.

Res stem (7x7/2 conv + 3x3/2 max-pool) of width 64, bottleneck stages of widths
[256, 512, 1024, 2048] with strides [1, 2, 2, 2] (stride on the 3x3 conv, "ResNet v1.5").
ResNet: bottleneck multiplier 1/4 and one group; ResNeXt-32x4d: multiplier 1/2 and 32 groups
(group widths [4, 8, 16, 32]).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from netscale.specs.compat import bottleneck_width
from netscale.specs.families.build import family_spec, stage_specs
from netscale.specs.registry import register
from netscale.specs.spec import NetSpec, StemSpec

_WIDTHS = (256, 512, 1024, 2048)
_STRIDES = (1, 2, 2, 2)
RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def resnet(
    name: str,
    depths: Sequence[int],
    *,
    widths: Sequence[int] = _WIDTHS,
    bottleneck: float = 0.25,
    group_widths: Sequence[int] | None = None,
    stem_width: int = 64,
    resolution: int = 224,
    num_classes: int = 1000,
) -> NetSpec:
    """A ResNet-style spec; ``group_widths`` None means one group (plain ResNet)."""
    if group_widths is None:
        group_widths = [bottleneck_width(w, bottleneck) for w in widths]
    stages = stage_specs(
        "bottleneck",
        {"depth": depths, "width": widths, "stride": _STRIDES, "group_width": group_widths},
        bottleneck=bottleneck)
    return family_spec("resnet", name, StemSpec("res", stem_width), stages,
                       num_classes=num_classes, resolution=resolution)


def resnext(name: str, depths: Sequence[int], groups: int = 32, width_per_group: int = 4, *,
            widths: Sequence[int] = _WIDTHS, stem_width: int = 64, resolution: int = 224,
            num_classes: int = 1000) -> NetSpec:
    """ResNeXt-{depth} {groups}x{width_per_group}d: bottleneck 1/2, group width doubling."""
    gws = [width_per_group * 2**i for i in range(4)]
    # bottleneck widths are groups * group width: 128, 256, 512, 1024 for 32x4d
    bottleneck = groups * width_per_group / _WIDTHS[0]
    return resnet(name, depths, widths=widths, bottleneck=bottleneck, group_widths=gws,
                  stem_width=stem_width, resolution=resolution, num_classes=num_classes)


for _d, _depths in RESNET_DEPTHS.items():
    register(f"ResNet-{_d}", "resnet", partial(resnet, f"ResNet-{_d}", _depths))
    register(
        f"ResNeXt-{_d}", "resnet", partial(resnext, f"ResNeXt-{_d}", _depths),
        aliases=(f"ResNeXt-{_d}-32x4d",),
    )
