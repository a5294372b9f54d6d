"""Timing of scaling-law fits and recommendations, plus the interval calibration study.

    .venv/bin/python benchmarks/bench_laws.py            # full (about a minute on 2 cores)
    .venv/bin/python benchmarks/bench_laws.py --seeds 20 # quicker calibration

Prints:
* median wall time of ``fit_law`` / ``fit_report`` on 10 points (200 bootstrap refits);
* ``fit_study``, ``recommend`` and the report's ``laws_section`` on synthetic studies the
  size of the quickstart (5 strategies x s = 1, 2, 4) and of a larger study (6 strategies x
  s = 1..16 x 2 seeds);
* the calibration of the prediction intervals (netscale.laws.calibration): how often the
  95 % interval of a new run 4x / 16x past the largest model contains it, for the
  quickstart's shape (3 sizes over 4x flops, power law) and a larger study (8 sizes over 32x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="netscale-mpl-"))


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds over ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def power_coverage(seeds: int, points: int = 3, span: float = 4.0, noise: float = 0.02,
                   b: float = 0.3, c: float = 0.2, factors: tuple[float, ...] = (2.0, 4.0)
                   ) -> dict[float, tuple[float, float]]:
    """Coverage and median log-width of the power-law prediction interval with quickstart-
    sized data (the saturating truth, 3 sizes over 4x flops, one run each)."""
    from netscale.laws import FitOptions, fit_law

    x_min = 2e8
    a = 0.3 * x_min**b
    x = np.geomspace(x_min, span * x_min, points)
    hits = {f: 0 for f in factors}
    widths: dict[float, list[float]] = {f: [] for f in factors}
    for s in range(seeds):
        rng = np.random.default_rng(10_000 + s)
        y = (a * x ** (-b) + c) * np.exp(rng.normal(0, noise, x.size))
        fit = fit_law(x, y, "power", FitOptions(seed=s), loo=False)
        for f in factors:
            xn = f * x.max()
            new = (a * xn ** (-b) + c) * np.exp(rng.normal(0, noise))
            p = fit.predict_interval(xn)
            hits[f] += p.contains(new)
            widths[f].append(float(np.log(p.hi / p.lo)))
    return {f: (hits[f] / seeds, float(np.median(widths[f]))) for f in factors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100, help="simulated studies for calibration")
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats (median reported)")
    args = ap.parse_args(argv)

    from netscale.advise.recommend import recommend
    from netscale.advise.sources import load_study
    from netscale.advise.study_fits import fit_study
    from netscale.laws import CalibrationSetup, calibration_study, fit_law, fit_report
    from netscale.report.laws_section import laws_section
    from netscale_fixtures.synthetic import synthetic_study

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    rng = np.random.default_rng(0)
    x = np.repeat(np.geomspace(2e8, 6.4e9, 5), 2)
    y = (0.3 * (x / 2e8) ** -0.3 + 0.2) * np.exp(rng.normal(0, 0.02, x.size))
    print("\n== fitting core (10 points, 200 bootstrap refits) ==")
    for label, fn in (
        ("fit_law saturating", lambda: fit_law(x, y, "saturating")),
        ("fit_law power", lambda: fit_law(x, y, "power")),
        ("fit_report (both laws + holdout)", lambda: fit_report(x, y)),
    ):
        print(f"{label:36s} {1e3 * timed(fn, args.repeat):8.1f} ms")

    print("\n== study-level (synthetic stores) ==")
    with tempfile.TemporaryDirectory() as tmp:
        quick = synthetic_study(Path(tmp) / "quick")
        big = synthetic_study(Path(tmp) / "big", strategies=("d", "w", "r", "dr", "dwr", "dWr"),
                              factors=(1, 2, 4, 8, 16), seeds=(0, 1))
        for name, path in (("quickstart-sized (5 x 3 sizes)", quick),
                           ("larger (6 x 5 sizes x 2 seeds)", big)):
            study = load_study(path)
            trials = study.trials
            out = Path(tmp) / f"report-{path.name}"
            print(f"{name}: {len(trials)} trials")
            for label, fn in (
                ("  load_study", lambda p=path: load_study(p)),
                ("  fit_study (per-strategy fit_report)", lambda t=trials: fit_study(t)),
                ("  recommend 8x (default candidates)",
                 lambda p=path: recommend(p, "8x")),
                ("  laws_section (fits + 2 figures + rec.)",
                 lambda s=study, o=out: laws_section(s, o)),
            ):
                print(f"{label:44s} {1e3 * timed(fn, max(1, args.repeat // 2)):8.1f} ms")

    print(f"\n== calibration: 95% prediction intervals, {args.seeds} simulated studies ==")
    t0 = time.perf_counter()
    res = calibration_study(CalibrationSetup(seeds=args.seeds))
    st = res.settings
    print(f"larger study: truth err = {st['a']:.4g}·x^(−{st['b']:g}) + {st['c']:g}; "
          f"{st['points']} sizes over {st['span']:g}x flops; noise {st['noise']:g} "
          f"({time.perf_counter() - t0:.1f} s)")
    print(res.table())
    t0 = time.perf_counter()
    cov = power_coverage(args.seeds)
    print(f"\nquickstart-sized: 3 sizes over 4x flops, power law fitted to the same saturating "
          f"truth ({time.perf_counter() - t0:.1f} s)")
    print("extrapolation  coverage  median width log(hi/lo)")
    for f, (c, w) in cov.items():
        print(f"x{f:<12g}  {c:8.2f}  {w:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
