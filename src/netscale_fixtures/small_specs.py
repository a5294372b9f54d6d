"""Small RegNet-style specs for tests and benchmarks (a fixture, not part of the package)."""

from __future__ import annotations

from netscale.specs import NetSpec, StageSpec, StemSpec


def small_regnet(num_classes: int = 10, in_channels: int = 1, resolution: int = 16, *,
                 widths: tuple[int, ...] = (24, 48, 96), depths: tuple[int, ...] = (1, 2, 2),
                 group_width: int = 8, stem_width: int = 16, se_ratio: float = 0.25,
                 name: str = "SmallRegNetY") -> NetSpec:
    """A tiny RegNetY-style net: simple stem, bottleneck stages (b = 1, SE, stride 2 each)."""
    stages = tuple(StageSpec(block="bottleneck", depth=d, width=w, stride=2, bottleneck=1.0,
                             group_width=group_width, se_ratio=se_ratio)
                   for d, w in zip(depths, widths))
    return NetSpec(name=name, stem=StemSpec("simple", stem_width), stages=stages,
                   num_classes=num_classes, resolution=resolution, in_channels=in_channels,
                   family="regnet").validate()
