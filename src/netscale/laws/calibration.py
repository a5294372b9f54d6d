"""Calibration check: do the fitted intervals cover the truth as often as they claim?

Simulates studies from a known law err = a·x^(−b) + c with log-normal noise, fits them with
:func:`netscale.laws.fit_report` and counts how often the truth falls in the intervals:
the parameters of the saturating law, and a new run predicted at ``extrapolation`` times the
largest model, for each law-selection rule. Run it for your own number of model sizes and
noise level::

    python -m netscale.laws.calibration --points 8 --noise 0.02 --c 0.2 --seeds 100
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netscale.errors import NetscaleError
from netscale.laws.fit import DEFAULT_LEVEL, FitOptions, fit_report, select_law

RULES = ("saturating", "power", "general", "aicc", "loo")


@dataclass(frozen=True)
class CalibrationResult:
    """Coverage fractions from :func:`calibration_study`.

    ``param_coverage`` maps a, b, c to the fraction of seeds whose saturating-law interval
    contains the true value; ``pred_coverage[rule][factor]`` the fraction whose prediction
    interval at factor·x_max contains a new noisy run; ``pred_width[rule][factor]`` the median
    interval width in log units (log(hi/lo)); ``picked[rule]`` how often the rule chose the
    saturating law.
    """

    settings: dict[str, Any]
    param_coverage: dict[str, float]
    pred_coverage: dict[str, dict[float, float]]
    pred_width: dict[str, dict[float, float]]
    picked: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": dict(self.settings),
            "param_coverage": dict(self.param_coverage),
            "pred_coverage": {r: {str(k): v for k, v in d.items()}
                              for r, d in self.pred_coverage.items()},
            "pred_width": {r: {str(k): v for k, v in d.items()}
                           for r, d in self.pred_width.items()},
            "picked_saturating": dict(self.picked),
        }

    def table(self) -> str:
        factors = sorted(next(iter(self.pred_coverage.values())))
        head = ["rule", "picks sat."] + [f"cover x{f:g}" for f in factors] + [
            f"width x{f:g}" for f in factors]
        rows = [head]
        for rule, cov in self.pred_coverage.items():
            rows.append([rule, f"{self.picked.get(rule, float('nan')):.2f}"]
                        + [f"{cov[f]:.2f}" for f in factors]
                        + [f"{self.pred_width[rule][f]:.3f}" for f in factors])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                           enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        params = ", ".join(f"{k} {v:.2f}" for k, v in self.param_coverage.items())
        return f"saturating-law parameter coverage: {params}\n" + "\n".join(lines)


@dataclass(frozen=True)
class CalibrationSetup:
    """The simulated studies of :func:`calibration_study`.

    Truth: err = a·x^(−b) + c with a·x_min^(−b) = ``reducible``; ``points`` model sizes
    log-spaced over [x_min, span·x_min], ``repeats`` runs each, log-normal noise of
    ``noise`` (0.02 = 2 % relative); ``seeds`` studies, new runs at the ``extrapolation``
    factors past the largest size, fits with ``n_boot`` refits at ``level``.
    """

    points: int = 8
    noise: float = 0.02
    b: float = 0.3
    c: float = 0.2
    reducible: float = 0.3
    x_min: float = 2e8
    span: float = 32.0
    repeats: int = 1
    seeds: int = 100
    extrapolation: Sequence[float] = (4.0, 16.0)
    n_boot: int = 200
    level: float = DEFAULT_LEVEL
    seed: int = 0


def calibration_study(setup: CalibrationSetup | None = None) -> CalibrationResult:
    """Simulates studies and measures interval coverage (see module docstring); ``setup``
    (a :class:`CalibrationSetup`, e.g. ``CalibrationSetup(points=5, seeds=20)``; None: the
    defaults) says which."""
    cfg = setup or CalibrationSetup()
    points, noise, b, c, x_min = cfg.points, cfg.noise, cfg.b, cfg.c, cfg.x_min
    span, repeats, seeds, n_boot, level = cfg.span, cfg.repeats, cfg.seeds, cfg.n_boot, cfg.level
    reducible, extrapolation, seed = cfg.reducible, cfg.extrapolation, cfg.seed
    if points < 3 or seeds < 1 or noise < 0 or span <= 1 or repeats < 1:
        raise NetscaleError("calibration needs points >= 3, seeds >= 1, noise >= 0, span > 1 "
                            "and repeats >= 1")
    if not 0 < c + reducible <= 1:
        raise NetscaleError("c + reducible must be an error fraction in (0, 1]")
    a = reducible * x_min**b
    x = np.repeat(np.geomspace(x_min, span * x_min, points), repeats)
    truth = {"a": a, "b": b, "c": c}

    def law(v: Any) -> Any:
        return a * v ** (-b) + c

    factors = tuple(float(f) for f in extrapolation)
    hits = {k: 0 for k in truth}
    cover = {r: dict.fromkeys(factors, 0) for r in RULES}
    width: dict[str, dict[float, list[float]]] = {r: {f: [] for f in factors} for r in RULES}
    picked = dict.fromkeys(RULES, 0)
    n_sat = 0
    for s in range(seeds):
        rng = np.random.default_rng(seed * 1_000_003 + s)
        y = np.clip(law(x) * np.exp(rng.normal(0.0, noise, x.size)), 1e-6, 1.0)
        rep = fit_report(x, y, FitOptions(n_boot=n_boot, level=level, seed=s), holdout=False)
        sat = rep.fits.get("saturating")
        n_sat += sat is not None
        for k in hits:
            if sat is not None:
                lo, hi = sat.intervals[k]
                hits[k] += lo <= truth[k] <= hi
        if sat is None:  # too few points: the power law stands in for every rule
            chosen = dict.fromkeys(RULES, rep.best)
        else:
            chosen = {"saturating": "saturating", "power": "power", "general": rep.best,
                      "aicc": select_law(rep.fits, "aicc")[0],
                      "loo": select_law(rep.fits, "loo")[0]}
        new_runs = {f: law(f * x.max()) * math.exp(rng.normal(0.0, noise)) for f in factors}
        for rule, name in chosen.items():
            picked[rule] += name == "saturating"
            for f in factors:
                p = rep.fits[name].predict_interval(f * x.max())
                cover[rule][f] += p.contains(new_runs[f])
                width[rule][f].append(math.log(p.hi / p.lo))
    return CalibrationResult(
        settings={"points": points, "repeats": repeats, "noise": noise, "a": a, "b": b,
                  "c": c, "x_min": x_min, "span": span, "seeds": seeds, "n_boot": n_boot,
                  "level": level},
        param_coverage={k: v / n_sat if n_sat else math.nan for k, v in hits.items()},
        pred_coverage={r: {f: v / seeds for f, v in d.items()} for r, d in cover.items()},
        pred_width={r: {f: float(np.median(v)) for f, v in d.items()}
                    for r, d in width.items()},
        picked={r: v / seeds for r, v in picked.items()},
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netscale.laws.calibration",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=8, help="model sizes (default 8)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per size (default 1)")
    ap.add_argument("--noise", type=float, default=0.02, help="relative noise (default 0.02)")
    ap.add_argument("--b", type=float, default=0.3, help="true exponent (default 0.3)")
    ap.add_argument("--c", type=float, default=0.2, help="true asymptote (default 0.2)")
    ap.add_argument("--span", type=float, default=32.0,
                    help="largest / smallest model flops (default 32)")
    ap.add_argument("--seeds", type=int, default=100, help="simulated studies (default 100)")
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (default 200)")
    ap.add_argument("--at", default="4,16",
                    help="extrapolation factors past the largest size (default 4,16)")
    args = ap.parse_args(argv)
    try:
        res = calibration_study(CalibrationSetup(
            points=args.points, repeats=args.repeats, noise=args.noise, b=args.b, c=args.c,
            span=args.span, seeds=args.seeds, n_boot=args.n_boot,
            extrapolation=[float(v) for v in args.at.split(",")]))
    except NetscaleError as exc:
        print(f"error: {exc}")
        return 2
    st = res.settings
    print(f"truth err = {st['a']:.4g}·x^(−{st['b']:g}) + {st['c']:g}; {st['points']} sizes x "
          f"{st['repeats']} runs over {st['span']:g}x flops; noise {st['noise']:g}; "
          f"{st['seeds']} seeds; {st['level']:.0%} intervals")
    print(res.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
