"""Width / bottleneck / group-width compatibility (docs/conventions.md,
"Width and group rounding"), as the reference does it.

For a stage of width ``w``, bottleneck multiplier ``b`` and group width ``g``:
``v = max(1, int(w*b)); g = min(g, v); m = lcm(g, b) if b > 1 else g;
v = max(m, round(v/m)*m); w = int(v/b)`` — so that the bottleneck width is a multiple of the
group width (and of ``b`` for inverted bottlenecks). Python's ``round`` (half to even).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def adjust_compatibility(
    widths: Sequence[int], bottlenecks: Sequence[float], group_widths: Sequence[int]
) -> tuple[list[int], list[float], list[int]]:
    """Returns ``(widths, bottlenecks, group_widths)`` made mutually compatible."""
    if not len(widths) == len(bottlenecks) == len(group_widths):
        raise ValueError("widths, bottlenecks and group_widths must have the same length")
    ws: list[int] = []
    gs: list[int] = []
    for w, b, g in zip(widths, bottlenecks, group_widths):
        w2, g2 = compatible_width(w, b, g)
        ws.append(w2)
        gs.append(g2)
    return ws, list(bottlenecks), gs


def bottleneck_width(width: float, bottleneck: float) -> int:
    """Inner width of a (linear) bottleneck block: ``round(width * bottleneck)`` (half to even);
    the one definition that specs, models, complexity and the scaler use."""
    return int(round(width * bottleneck))


def conv_groups(inner_width: int, group_width: int) -> int:
    """Groups of a bottleneck's kxk conv: ``inner_width // group_width`` (one group for a
    group width of 0)."""
    return inner_width // group_width if group_width else 1


def compatible_width(w: float, b: float, g: int) -> tuple[int, int]:
    """The compatibility step for one stage: returns ``(width, group_width)``."""
    v = int(max(1, w * b))
    g = int(min(g, v))
    m = math.lcm(g, int(b)) if b > 1 else g
    v = max(m, int(round(v / m) * m))
    return int(v / b), g


def snap_group_width(g: float) -> int:
    """The reference scaler's group-width rounding: 1, 2, 4 (for 3..5) or a multiple of 8."""
    g = max(1, round(g))
    if g <= 2:
        return g
    if g <= 5:
        return 4
    return round(g / 8) * 8
