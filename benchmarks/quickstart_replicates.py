"""Does the quickstart's verdict replicate? Runs it twice with disjoint seeds and compares.

    python benchmarks/quickstart_replicates.py [--out-dir studies/replicates]
        [--seeds-a 0,1,2] [--seeds-b 3,4,5] [--epochs N] [--data NAME] [--workers N]

Each run is ``netscale quickstart --seeds ... --out ... --json`` in a subprocess, whose stdout
is the verdict JSON. The verdicts agree when each run's recommended strategy is the
other's recommended one or in its ``tied`` list. Prints both verdicts, their groups at the
verdict's factor (mean top-1 error with 95 % interval, ms per batch with interval, timing
quality) and the wall time of each run; exit code 0 when they agree, 1 when not, 2 when a
run failed. Not a test: it trains 66 models (about 2 × 8 minutes on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def run(seeds: str, out: Path, extra: list[str]) -> tuple[dict[str, Any] | None, float, str]:
    cmd = [sys.executable, "-m", "netscale", "quickstart", "--seeds", seeds, "--out", str(out),
           "--json", *extra]
    print(f"$ {' '.join(cmd[2:])}", flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t0
    lines = r.stdout.strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if lines else None
    except ValueError:
        verdict = None
    if verdict is None:
        sys.stderr.write(r.stderr[-2000:])
    return verdict, dt, r.stdout


def show(label: str, v: dict[str, Any], seconds: float) -> None:
    print(f"\n[{label}] {seconds / 60:.1f} min; recommended {v['recommended']}, tied "
          f"{v['tied'] or '[]'}, firm {v['firm']}, smoke_test {v['smoke_test']}")
    print(f"  reason: {v['reason']}")
    print(f"  {'strategy':8} {'s':>3} {'seeds':>5} {'top-1 err % [95% interval]':>28} "
          f"{'ms/batch [interval]':>24} timing")
    for g in v["groups"]:
        if g["factor"] != v["factor"] or g["n_seeds"] == 0:
            continue
        err = (f"{100 * g['top1_err_mean']:.2f} [{100 * g['top1_err_low']:.2f}, "
               f"{100 * g['top1_err_high']:.2f}]")
        t = ("-" if g["time_ms"] is None else
             f"{g['time_ms']:.2f} [{g['time_ms_low']:.2f}, {g['time_ms_high']:.2f}]")
        print(f"  {g['strategy']:8} {g['factor']:>3g} {g['n_seeds']:>5} {err:>28} {t:>24} "
              f"{g['time_quality']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", default="studies/replicates")
    p.add_argument("--seeds-a", default="0,1,2")
    p.add_argument("--seeds-b", default="3,4,5")
    p.add_argument("--epochs", help="override the quickstart's epochs (plumbing checks)")
    p.add_argument("--data", help="dataset (default: the quickstart's)")
    p.add_argument("--workers", help="trials at once (default: the quickstart's)")
    args = p.parse_args(argv)
    extra: list[str] = []
    for k in ("epochs", "data", "workers"):
        if getattr(args, k):
            extra += [f"--{k}", str(getattr(args, k))]
    root = Path(args.out_dir)
    a, ta, _ = run(args.seeds_a, root / "a", extra)
    if a is None:
        print("run A failed", file=sys.stderr)
        return 2
    b, tb, _ = run(args.seeds_b, root / "b", extra)
    if b is None:
        print("run B failed", file=sys.stderr)
        return 2
    show(f"A: seeds {args.seeds_a}", a, ta)
    show(f"B: seeds {args.seeds_b}", b, tb)
    ok_a = a["recommended"] in [b["recommended"], *b["tied"]]
    ok_b = b["recommended"] in [a["recommended"], *a["tied"]]
    agree = ok_a and ok_b
    print(f"\nagree: {agree} (A's {a['recommended']} in B's recommended/tied: {ok_a}; B's "
          f"{b['recommended']} in A's recommended/tied: {ok_b})")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
