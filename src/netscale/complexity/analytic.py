"""Analytic complexity of a spec, without building a model.

The rules are docs/conventions.md, "Counting conventions" and "Layer formulas".

Mirrors the builder layer by layer, as pycls's static ``complexity()`` mirrors each
constructor:

* conv k x k (padding (k-1)/2), stride t, groups G: h' = (h-1)//t + 1;
  flops k²·Cin·Cout·h'²/G (+ Cout·h'² with bias); params k²·Cin·Cout/G (+ Cout); acts Cout·h'²;
* BatchNorm: 2·C params; max-pool: acts = output size; activations, adds, pooling: nothing;
* linear: flops = params = Cin·Cout + Cout; acts Cout;
* squeeze-excite on C channels with hidden width s: two biased 1x1 convs at 1x1.

Blocks after the first in a stage are identical, so a stage costs one first block plus
(depth-1) repeated blocks: counting is O(stages), a few microseconds per spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from netscale.complexity.record import Complexity, ComplexityRecord
from netscale.specs.compat import bottleneck_width, conv_groups
from netscale.specs.spec import NetSpec, StemSpec

# A count is the tuple (h_out, flops, params, acts); resolution is square.
_Count = tuple[int, int, int, int]


class StageLike(Protocol):
    """What counting reads from a stage: a :class:`StageSpec` or the scaler's cheap twin."""

    @property
    def block(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def stride(self) -> int: ...
    @property
    def bottleneck(self) -> float: ...
    @property
    def group_width(self) -> int: ...
    @property
    def kernel(self) -> int: ...
    @property
    def expansion(self) -> float: ...
    @property
    def se_ratio(self) -> float: ...


def _conv(h: int, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
          bias: bool = False) -> _Count:
    h = (h - 1) // stride + 1
    hw = h * h
    flops = k * k * cin * cout * hw // groups
    params = k * k * cin * cout // groups
    if bias:
        flops += cout * hw
        params += cout
    return h, flops, params, cout * hw


def _se(c: int, w_se: int) -> tuple[int, int, int]:
    """Squeeze-excite: (flops, params, acts)."""
    f = 2 * c * w_se + w_se + c
    return f, f, w_se + c


def _stem(stem: StemSpec, h: int, cin: int) -> _Count:
    w = stem.width
    if stem.type == "simple":
        h, f, p, a = _conv(h, cin, w, 3, 2)
    elif stem.type == "cifar":
        h, f, p, a = _conv(h, cin, w, 3, 1)
    else:  # res: 7x7/2 conv, BN, act, 3x3/2 max-pool
        h, f, p, a = _conv(h, cin, w, 7, 2)
        h = (h - 1) // 2 + 1
        a += w * h * h
    return h, f, p + 2 * w, a


def block_complexity(stage: StageLike, h: int, w_in: int, stride: int) -> _Count:
    """One block of ``stage`` with input width ``w_in`` at input side ``h``."""
    w_out = stage.width
    k = stage.kernel
    block = stage.block
    if block == "vanilla":  # kxk, BN, act, kxk, BN, act; no shortcut
        h1, f, p, a = _conv(h, w_in, w_out, k, stride)
        _, f2, p2, a2 = _conv(h1, w_out, w_out, k, 1)
        return h1, f + f2, p + p2 + 4 * w_out, a + a2
    if block == "basic":
        h1, f, p, a = _conv(h, w_in, w_out, k, stride)
        _, f2, p2, a2 = _conv(h1, w_out, w_out, k, 1)
        f, p, a = f + f2, p + p2 + 4 * w_out, a + a2
        if w_in != w_out or stride != 1:
            _, fp, pp, ap = _conv(h, w_in, w_out, 1, stride)
            f, p, a = f + fp, p + pp + 2 * w_out, a + ap
        return h1, f, p, a
    if block == "mbconv":
        w_exp = int(w_in * stage.expansion)
        f = p = a = 0
        if w_exp != w_in:
            _, f, p, a = _conv(h, w_in, w_exp, 1)
            p += 2 * w_exp
        h1, f2, p2, a2 = _conv(h, w_exp, w_exp, k, stride, groups=w_exp)
        f, p, a = f + f2, p + p2 + 2 * w_exp, a + a2
        if stage.se_ratio:
            fs, ps, as_ = _se(w_exp, int(w_in * stage.se_ratio))
            f, p, a = f + fs, p + ps, a + as_
        _, f3, p3, a3 = _conv(h1, w_exp, w_out, 1)
        return h1, f + f3, p + p3 + 2 * w_out, a + a3
    # (linear) bottleneck: 1x1 -> kxk grouped [-> SE] -> 1x1
    w_b = bottleneck_width(w_out, stage.bottleneck)
    groups = conv_groups(w_b, stage.group_width)
    _, f, p, a = _conv(h, w_in, w_b, 1)
    h1, f2, p2, a2 = _conv(h, w_b, w_b, k, stride, groups=groups)
    f, p, a = f + f2, p + p2 + 4 * w_b, a + a2
    if stage.se_ratio:
        fs, ps, as_ = _se(w_b, int(round(w_in * stage.se_ratio)))
        f, p, a = f + fs, p + ps, a + as_
    _, f3, p3, a3 = _conv(h1, w_b, w_out, 1)
    f, p, a = f + f3, p + p3 + 2 * w_out, a + a3
    if block == "bottleneck" and (w_in != w_out or stride != 1):
        _, fp, pp, ap = _conv(h, w_in, w_out, 1, stride)
        f, p, a = f + fp, p + pp + 2 * w_out, a + ap
    return h1, f, p, a


def stage_complexity(stage: StageLike, h: int, w_in: int) -> _Count:
    """A whole stage: first block plus (depth - 1) identical blocks."""
    h1, f, p, a = block_complexity(stage, h, w_in, stage.stride)
    if stage.depth > 1:
        _, f2, p2, a2 = block_complexity(stage, h1, stage.width, 1)
        n = stage.depth - 1
        f, p, a = f + n * f2, p + n * p2, a + n * a2
    return h1, f, p, a


def head_complexity(head_width: int, num_classes: int, h: int, w_in: int) -> tuple[int, int, int]:
    f = p = a = 0
    if head_width:
        _, f, p, a = _conv(h, w_in, head_width, 1)
        p += 2 * head_width
        w_in = head_width
    n = num_classes
    lin = w_in * n + n
    return f + lin, p + lin, a + n


def count_parts(stem: StemSpec, stages: Sequence[StageLike], head_width: int,
                num_classes: int, resolution: int, in_channels: int = 3) -> tuple[int, int, int]:
    """``(flops, params, acts)`` from a network's parts (stages may be any objects with the
    :class:`StageSpec` attributes): the fast path used by the scaler's search."""
    h, f, p, a = _stem(stem, resolution, in_channels)
    w = stem.width
    for stage in stages:
        h, f2, p2, a2 = stage_complexity(stage, h, w)
        f, p, a = f + f2, p + p2, a + a2
        w = stage.width
    f2, p2, a2 = head_complexity(head_width, num_classes, h, w)
    return f + f2, p + p2, a + a2


def complexity_totals(spec: NetSpec, resolution: int | None = None) -> Complexity:
    """The flops (multiply-adds), params and acts of ``spec`` as the named record, without
    the per-stage breakdown of :func:`complexity` (the fast path)."""
    res = spec.resolution if resolution is None else resolution
    return Complexity(*count_parts(spec.stem, spec.stages, spec.head_width, spec.num_classes,
                                   res, spec.in_channels))


def complexity(spec: NetSpec, resolution: int | None = None) -> ComplexityRecord:
    """Exact flops (multiply-adds), params and acts of ``spec`` at ``resolution`` (default:
    the spec's own), with a per-stage breakdown (``stem``, ``s1`` .. ``sN``, ``head``)."""
    res = spec.resolution if resolution is None else int(resolution)
    if res < 1:
        raise ValueError(f"resolution must be positive, got {res}")
    parts: list[tuple[str, Complexity]] = []
    h, f, p, a = _stem(spec.stem, res, spec.in_channels)
    parts.append(("stem", Complexity(f, p, a)))
    w = spec.stem.width
    for i, stage in enumerate(spec.stages, 1):
        h, f, p, a = stage_complexity(stage, h, w)
        parts.append((f"s{i}", Complexity(f, p, a)))
        w = stage.width
    parts.append(("head", Complexity(*head_complexity(spec.head_width, spec.num_classes, h, w))))
    total = Complexity()
    for _, c in parts:
        total = total + c
    return ComplexityRecord(
        model=spec.name, resolution=res, flops=total.flops, params=total.params,
        acts=total.acts, method="analytic", parts=tuple(parts),
    )
