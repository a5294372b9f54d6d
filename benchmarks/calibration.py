"""Calibration of the verdict's statistics on simulated studies of known truth.

For every cell (1/3/5 seeds; seed noise 0-1.5 points; independent or shared validation sets;
gaps 0/1/2/4 points between two strategies; 3,000 validation images; 20 % error) it prints
the coverage of the 95 % group intervals, the false-firm rate (gap 0), the power (gap > 0) of
the per-image method and of the fallback without per-image results, and Welch's t-test on the
seed means at the same false-firm rate. The model is in netscale.laws.verdict_calibration;
results and the method: docs/statistics.md.

    .venv/bin/python benchmarks/calibration.py --reps 1000 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from netscale.laws.verdict_calibration import Grid, run_grid, table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000, help="studies per cell (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--n-val", type=int, default=3000, help="validation images (default 3000)")
    ap.add_argument("--seeds", default="1,3,5", help="seed counts (default 1,3,5)")
    ap.add_argument("--noise", default="0,0.5,1,1.5",
                    help="seed noise in points (default 0,0.5,1,1.5)")
    ap.add_argument("--gaps", default="0,1,2,4", help="true gaps in points (default 0,1,2,4)")
    ap.add_argument("--json", help="also write the per-cell results to this JSON file")
    args = ap.parse_args(argv)
    grid = Grid(seeds=tuple(int(v) for v in args.seeds.split(",")),
                seed_noise=tuple(float(v) / 100 for v in args.noise.split(",")),
                gaps=tuple(float(v) / 100 for v in args.gaps.split(",")), n_val=args.n_val)
    t0 = time.time()

    def progress(r: object) -> None:
        print(".", end="", file=sys.stderr, flush=True)

    results = run_grid(grid, reps=args.reps, seed=args.seed, progress=progress)
    print(file=sys.stderr)
    print(f"{args.reps} simulated studies per cell, {args.n_val} validation images, true error "
          f"20 %, 95 % intervals; 'fb' = without per-image results; Welch at the per-image "
          f"method's false-firm rate; {time.time() - t0:.0f} s")
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([r.to_dict() for r in results], fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
