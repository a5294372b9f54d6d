"""RegNet X / Y / Z (Radosavovic et al. 2020; RegNetZ from Dollár et al. 2021).

The generator turns the linear parameterisation (depth D, w0, wa, wm) into per-stage widths
and depths: u_j = w0 + wa*j, k_j = round(log(u_j / w0) / log(wm)), block width
round(w0 * wm**k_j / q) * q; consecutive equal widths form a stage. Rounding is numpy's
(half to even), as in the reference.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from netscale.specs.compat import adjust_compatibility
from netscale.specs.families.build import family_spec, stage_specs
from netscale.specs.registry import register
from netscale.specs.spec import NetSpec, StemSpec

#: no stage is wider than this (far beyond any real network; keeps the integer cast exact)
MAX_WIDTH = 1_000_000_000


def generate_regnet(
    depth: int, w0: float, wa: float, wm: float, q: int = 8
) -> tuple[list[int], list[int]]:
    """Per-stage ``(widths, depths)`` of the RegNet linear parameterisation."""
    finite = all(np.isfinite(v) for v in (w0, wa, wm))
    if not finite or depth < 1 or w0 <= 0 or wa < 0 or wm <= 1 or q < 1:
        raise ValueError("RegNet needs depth >= 1, finite w0 > 0, wa >= 0, wm > 1, q >= 1")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
        u = np.arange(depth) * wa + w0
        ks = np.round(np.log(u / w0) / np.log(wm))
        ws = np.round(w0 * np.power(wm, ks) / q) * q
    if not (np.all(np.isfinite(ws)) and float(ws.max()) <= MAX_WIDTH):
        raise ValueError(f"RegNet widths overflow (a stage wider than {MAX_WIDTH:,} channels); "
                         "lower w0, wa or wm")
    block_ws = ws.astype(int)
    widths, depths = np.unique(block_ws, return_counts=True)
    return [int(w) for w in widths], [int(d) for d in depths]


def regnet(
    name: str,
    depth: int,
    w0: float,
    wa: float,
    wm: float,
    group_width: int,
    *,
    bottleneck: float = 1.0,
    se_ratio: float = 0.0,
    block: str = "bottleneck",
    stem_width: int = 32,
    head_width: int = 0,
    stride: int = 2,
    activation: str = "relu",
    resolution: int = 224,
    num_classes: int = 1000,
    q: int = 8,
) -> NetSpec:
    """A RegNet spec from its generator parameters (block widths made group-compatible)."""
    widths, depths = generate_regnet(depth, w0, wa, wm, q)
    n = len(widths)
    widths, bots, gws = adjust_compatibility(widths, [bottleneck] * n, [group_width] * n)
    stages = stage_specs(
        block, {"depth": depths, "width": widths, "bottleneck": bots, "group_width": gws},
        stride=stride, se_ratio=se_ratio)
    return family_spec(
        "regnet", name, StemSpec("simple", stem_width), stages, head_width=head_width,
        num_classes=num_classes, resolution=resolution, activation=activation,
        meta={"regnet": {"depth": depth, "w0": w0, "wa": wa, "wm": wm,
                         "group_width": group_width, "bottleneck": bottleneck}},
    )


# name: (D, w0, wa, wm, g)  — the RegNet paper's values (docs/conventions.md, "Width and group
# rounding")
_REGNETX = {
    "200MF": (13, 24, 36.44, 2.49, 8),
    "400MF": (22, 24, 24.48, 2.54, 16),
    "600MF": (16, 48, 36.97, 2.24, 24),
    "800MF": (16, 56, 35.73, 2.28, 16),
    "1.6GF": (18, 80, 34.01, 2.25, 24),
    "3.2GF": (25, 88, 26.31, 2.25, 48),
    "4.0GF": (23, 96, 38.65, 2.43, 40),
    "6.4GF": (17, 184, 60.83, 2.07, 56),
    "8.0GF": (23, 80, 49.56, 2.88, 120),
    "12GF": (19, 168, 73.36, 2.37, 112),
    "16GF": (22, 216, 55.59, 2.1, 128),
    "32GF": (23, 320, 69.86, 2.0, 168),
}
_REGNETY = {
    "200MF": (13, 24, 36.44, 2.49, 8),
    "400MF": (16, 48, 27.89, 2.09, 8),
    "600MF": (15, 48, 32.54, 2.32, 16),
    "800MF": (14, 56, 38.84, 2.4, 16),
    "1.6GF": (27, 48, 20.71, 2.65, 24),
    "3.2GF": (21, 80, 42.63, 2.66, 24),
    "4.0GF": (22, 96, 31.41, 2.24, 64),
    "6.4GF": (25, 112, 33.22, 2.27, 72),
    "8.0GF": (17, 192, 76.82, 2.19, 56),
    "12GF": (19, 168, 73.36, 2.37, 112),
    "16GF": (18, 200, 106.23, 2.48, 112),
    "32GF": (20, 232, 115.89, 2.53, 232),
}
# name: (D, w0, wa, wm, g, b, head width, resolution)
_REGNETZ = {
    "500MF": (21, 16, 10.7, 2.51, 4, 4.0, 1024, 224),
    "4GF": (28, 48, 14.5, 2.226, 8, 4.0, 1536, 256),
}


def _aliases(name: str) -> tuple[str, ...]:
    """'RegNetY-4.0GF' is also 'RegNetY-4GF' (and 8.0GF -> 8GF)."""
    return (name.replace(".0GF", "GF"),) if ".0GF" in name else ()


def _register_all() -> None:
    for kind, sizes, se_ratio in (("X", _REGNETX, 0.0), ("Y", _REGNETY, 0.25)):
        for size, (d, w0, wa, wm, g) in sizes.items():
            name = f"RegNet{kind}-{size}"
            register(name, "regnet", partial(regnet, name, d, w0, wa, wm, g, se_ratio=se_ratio),
                     aliases=_aliases(name))
    for size, (d, w0, wa, wm, g, b, hw, res) in _REGNETZ.items():
        name = f"RegNetZ-{size}"
        register(
            name,
            "regnet",
            partial(regnet, name, d, w0, wa, wm, g, bottleneck=b, se_ratio=0.25,
                    block="linear_bottleneck", head_width=hw, activation="silu", resolution=res),
        )


_register_all()
