"""Scaling your own nn.Module: how close `scale_module` lands, and how many candidates it measures.

A MobileNetV2 written as a plain factory (width rounded to multiples of 8 as in the paper's
code, stage depths ceil(n·d) as EfficientNet does), 224 px, scaled by several strategies and
factors. Prints the realized flops factor (multiply-adds, measured on the meta device), its
error vs the target, whether it is within ±2 %, the candidate networks measured and the time.

    PYTHONPATH=src python benchmarks/bench_scale_module.py [--factors 2,4,8]
"""

from __future__ import annotations

import argparse
import math
import time

from torch import nn

from netscale.scaling.module import scale_module

_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
       (6, 160, 3, 2), (6, 320, 1, 1)]


def _div8(v: float) -> int:
    n = max(8, int(v + 4) // 8 * 8)
    return n + 8 if n < 0.9 * v else n


class _IR(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, t: int) -> None:
        super().__init__()
        h = c_in * t
        layers: list[nn.Module] = []
        if t != 1:
            layers += [nn.Conv2d(c_in, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6()]
        layers += [nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h),
                   nn.ReLU6(), nn.Conv2d(h, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = self.body(x)
        return x + y if self.skip else y


def mobilenet_v2(depth_mult: float = 1.0, width_mult: float = 1.0,
                 num_classes: int = 1000) -> nn.Module:
    c_in = _div8(32 * width_mult)
    layers: list[nn.Module] = [nn.Conv2d(3, c_in, 3, 2, 1, bias=False), nn.BatchNorm2d(c_in),
                               nn.ReLU6()]
    for t, c, n, s in _V2:
        c_out = _div8(c * width_mult)
        for i in range(math.ceil(n * depth_mult)):
            layers.append(_IR(c_in, c_out, s if i == 0 else 1, t))
            c_in = c_out
    head = _div8(1280 * max(1.0, width_mult))
    layers += [nn.Conv2d(c_in, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head, num_classes)]
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--factors", default="2,4,8")
    ap.add_argument("--strategies", default="d,w,r,dWr")
    ap.add_argument("--resolution-multiple", type=int, default=1)
    args = ap.parse_args()
    factors = [float(f) for f in args.factors.split(",")]
    print("MobileNetV2 factory at 3x224x224; flops = multiply-adds, measured on the meta device")
    print(f"{'strategy':8} {'s':>3} {'flops x':>8} {'error':>7} {'±2%':>4} {'d_mult':>7} "
          f"{'w_mult':>7} {'px':>4} {'cands':>5} {'sec':>6}")
    for st in args.strategies.split(","):
        for f in factors:
            t0 = time.perf_counter()
            r = scale_module(mobilenet_v2, (3, 224, 224), f, st,
                             resolution_multiple=args.resolution_multiple)
            dt = time.perf_counter() - t0
            print(f"{st:8} {f:>3g} {r.flops_factor:>8.3f} {r.flops_error:>+7.2%} "
                  f"{'yes' if r.within_tolerance else 'NO':>4} {r.depth_mult:>7.3f} "
                  f"{r.width_mult:>7.3f} {r.resolution:>4} {r.evaluations:>5} {dt:>6.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
