"""Empirical growth exponents of every strategy (exact rounding) vs docs/conventions.md
("Scaling strategies").

Run: .venv/bin/python benchmarks/growth_exponents.py [BASE]

Log-log slope of params and acts against the realized flops over s = 1…64 (13 factors,
geometrically spaced), next to the exponents the d·w²·r² model predicts.
"""

from __future__ import annotations

import sys

import numpy as np

from netscale.scaling import NAMED, parse_strategy, scale_report
from netscale.specs import get_spec


def slopes(base: str, strategy: str, lo: float = 1.0) -> tuple[float, float, float]:
    spec = get_spec(base)
    rs = [scale_report(spec, float(s), strategy) for s in np.geomspace(lo, 64, 13)]
    f = np.log([r.flops_factor for r in rs])
    p = np.log([r.params_factor for r in rs])
    a = np.log([r.acts_factor for r in rs])
    worst = max(abs(r.flops_error) for r in rs)
    return float(np.polyfit(f, p, 1)[0]), float(np.polyfit(f, a, 1)[0]), worst


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "RegNetY-400MF"
    print(f"{base}, exact rounding, s = 1…64 (slopes over s = 4…64 in brackets)\n")
    print("| strategy | e_d | e_w | e_r | params: predicted | params: measured | "
          "acts: predicted | acts: measured | worst flops error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in NAMED:
        s = parse_strategy(name)
        p, a, worst = slopes(base, name)
        p4, a4, _ = slopes(base, name, lo=4.0)
        print(f"| {name} | {s.e_d:.3g} | {s.e_w:.3g} | {s.e_r:.3g} | {s.params_exponent:.2f} | "
              f"{p:.2f} ({p4:.2f}) | {s.acts_exponent:.2f} | {a:.2f} ({a4:.2f}) | "
              f"{100 * worst:.1f}% |")


if __name__ == "__main__":
    main()
