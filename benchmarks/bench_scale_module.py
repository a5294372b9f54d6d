"""Scaling your own nn.Module: how close `scale_module` lands, how many candidates it measures,
and how long it takes.

Two plain factories at 224 px: a MobileNetV2 (width rounded to multiples of 8 as in the
paper's code, stage depths ceil(n·d) as EfficientNet does) and a ResNet-50 (bottleneck blocks
[3, 4, 6, 3], widths rounded to multiples of 8, stage depths round(n·d)), scaled by several
strategies and factors. Prints the realized flops factor (multiply-adds, measured on the meta
device), its error vs the target, whether it is within ±2 %, the candidate networks measured
and the wall time. The goal: scaling the ResNet-50 factory to one target in under 2 s;
each row starts with the counting memo cleared (netscale.complexity.measured), as the first
scaling in a fresh process would.

    PYTHONPATH=src python benchmarks/bench_scale_module.py [--quick] [--factors 2,4,8]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from netscale.complexity import measured
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


def _div8_plain(v: float) -> int:
    return max(8, int(round(v / 8)) * 8)


class _Bottleneck(nn.Module):
    def __init__(self, c_in: int, c_mid: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_mid, 1, bias=False), nn.BatchNorm2d(c_mid), nn.ReLU(inplace=True),
            nn.Conv2d(c_mid, c_mid, 3, stride, 1, bias=False), nn.BatchNorm2d(c_mid),
            nn.ReLU(inplace=True), nn.Conv2d(c_mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                      nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # type: ignore[no-untyped-def]
        skip = x if self.down is None else self.down(x)
        return self.relu(self.body(x) + skip)


def resnet50(depth_mult: float = 1.0, width_mult: float = 1.0,
             num_classes: int = 1000) -> nn.Module:
    """ResNet-50 as torchvision builds it (4.09 G multiply-adds at 224 px), with multipliers."""
    stem = _div8_plain(64 * width_mult)
    layers: list[nn.Module] = [nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem),
                               nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    c_in = stem
    for i, n in enumerate((3, 4, 6, 3)):
        mid = _div8_plain(64 * 2**i * width_mult)
        for j in range(max(1, round(n * depth_mult))):
            layers.append(_Bottleneck(c_in, mid, 4 * mid, 2 if i > 0 and j == 0 else 1))
            c_in = 4 * mid
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


FACTORIES: dict[str, Callable[..., nn.Module]] = {"resnet50": resnet50,
                                                   "mobilenet_v2": mobilenet_v2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--factors", default=None, help="default 2,4,8 (--quick: 2,4)")
    ap.add_argument("--strategies", default=None, help="default d,w,r,dWr (--quick: w,dWr)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats per row, median reported (default 3; --quick 1)")
    ap.add_argument("--resolution-multiple", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    factors = [float(f) for f in (args.factors or ("2,4" if args.quick else "2,4,8")).split(",")]
    strategies = (args.strategies or ("w,dWr" if args.quick else "d,w,r,dWr")).split(",")
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, load average "
          f"{os.getloadavg()[0]:.1f}; flops = multiply-adds, measured on the meta device; "
          f"sec = median wall time of {repeats} run(s) (cpu = its CPU time, what an idle core "
          "would take), counting memo cleared before each")
    for model in args.models.split(","):
        factory = FACTORIES[model]
        scale_module(factory, (3, 224, 224), 1.5, "w")  # untimed: first-use imports
        print(f"\n{model} factory at 3x224x224")
        print(f"{'strategy':8} {'s':>3} {'flops x':>8} {'error':>7} {'±2%':>4} {'d_mult':>7} "
              f"{'w_mult':>7} {'px':>4} {'cands':>5} {'sec':>6} {'cpu':>6}")
        for st in strategies:
            for f in factors:
                times, cpu = [], []
                for _ in range(repeats):
                    measured._MEMO.clear()
                    t0, c0 = time.perf_counter(), time.thread_time()
                    r = scale_module(factory, (3, 224, 224), f, st,
                                     resolution_multiple=args.resolution_multiple)
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.thread_time() - c0)
                dt = statistics.median(times)
                print(f"{st:8} {f:>3g} {r.flops_factor:>8.3f} {r.flops_error:>+7.2%} "
                      f"{'yes' if r.within_tolerance else 'NO':>4} {r.depth_mult:>7.3f} "
                      f"{r.width_mult:>7.3f} {r.resolution:>4} {r.evaluations:>5} {dt:>6.2f} "
                      f"{statistics.median(cpu):>6.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
