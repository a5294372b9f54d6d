"""Benchmark: scaling + counting 1,000 (strategy, s) pairs (goal <= 1 s in all).

Exact rounding is pure (a dimension whose exponent is 0 never moves), so single-dimension
strategies miss ±2 % where their quantum is too coarse (r: 4 px steps; d: whole blocks, at
least one per stage); the misses are listed per strategy.

Run: .venv/bin/python benchmarks/bench_scaling.py [BASE ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from netscale.scaling import NAMED, scale_report
from netscale.specs import get_spec


def run(base_name: str, rounding: str) -> tuple[float, int, int, dict[str, int]]:
    base = get_spec(base_name)
    factors = np.geomspace(0.25, 64, 125)  # 8 strategies x 125 factors = 1,000 pairs
    t = time.perf_counter()
    within = 0
    misses: dict[str, int] = {}
    for strategy in NAMED:
        for s in factors:
            r = scale_report(base, float(s), strategy, rounding=rounding)
            within += r.within_tolerance
            if not r.within_tolerance:
                misses[strategy] = misses.get(strategy, 0) + 1
    return time.perf_counter() - t, within, len(NAMED) * len(factors), misses


def main() -> None:
    bases = sys.argv[1:] or ["RegNetY-400MF", "ResNet-50", "EfficientNet-B0", "ResNet-56-CIFAR"]
    print("scaling + counting 1,000 (strategy, s) pairs: 8 strategies x 125 factors in "
          "[0.25, 64]")
    for base in bases:
        for rounding in ("exact", "reference"):
            secs, within, n, misses = run(base, rounding)
            by = (" misses: " + ", ".join(f"{k} {v}" for k, v in misses.items())
                  if rounding == "exact" and misses else "")
            print(f"  {base:16s} {rounding:9s} {secs:6.3f} s  ({secs / n * 1e3:.2f} ms/pair; "
                  f"{within}/{n} within ±2% of s){by}")


if __name__ == "__main__":
    main()
