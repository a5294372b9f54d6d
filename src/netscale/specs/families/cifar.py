"""CIFAR ResNets (He et al. 2016): ResNet-(6n+2) with basic blocks, 32 px, 10 classes.

Cifar stem (3x3 stride-1 conv) of width 16, three stages of n basic blocks with widths
[16, 32, 64] and strides [1, 2, 2]; 1x1 projection shortcuts where the shape changes (the
reference's AnyNet convention).
"""

from __future__ import annotations

from functools import partial

from netscale.specs.families.build import family_spec, stage_specs
from netscale.specs.registry import register
from netscale.specs.spec import NetSpec, StemSpec


def cifar_resnet(depth: int, *, num_classes: int = 10, resolution: int = 32,
                 name: str | None = None) -> NetSpec:
    """ResNet-{depth}-CIFAR; ``depth`` must be 6n+2."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110...), got {depth}")
    n = (depth - 2) // 6
    stages = stage_specs("basic", {"width": (16, 32, 64), "stride": (1, 2, 2)}, depth=n)
    return family_spec("cifar", name or f"ResNet-{depth}-CIFAR", StemSpec("cifar", 16),
                       stages, num_classes=num_classes, resolution=resolution)


for _depth in (20, 32, 44, 56, 110):
    register(f"ResNet-{_depth}-CIFAR", "cifar", partial(cifar_resnet, _depth))
