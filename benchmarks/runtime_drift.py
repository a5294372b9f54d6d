"""Do runtime prediction intervals hold for fresh measurements taken later, in another process?

Run 1 (this process): times a reference model (the base) at the start and at the end, and the
base scaled by w, d and dWr at s in {2, 4} (7 models); fits the runtime model
(netscale.bench.fit) with and without the between-run drift of the reference
(netscale.bench.fit.drift_of). Run 2 (a separate process, after --wait seconds): re-times every
model and a wide model past the fitted range (w ×8), and counts how many fresh timings fall
inside run 1's 95 % prediction intervals, for the linear joint fit and the log-space fit.

    .venv/bin/python benchmarks/runtime_drift.py [--budget 1.5] [--wait 30] [--batch-size 8]

Results depend on the machine being quiet: docs/statistics.md ("Runtime intervals between
runs") says which figure was measured how. Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STRATEGIES = ("w", "d", "dWr")
FACTORS = (1, 2, 4)
WIDE = ("w", 8.0)


def _bench(spec: Any, args: argparse.Namespace) -> Any:
    from netscale.bench import BenchConfig, TimingPolicy, bench_spec

    cfg = BenchConfig(batch_size=args.batch_size, device="cpu", threads=1, retries=1,
                      policy=TimingPolicy(budget_s=args.budget))
    return bench_spec(spec, cfg)


def _models(base: str, wide: bool) -> list[tuple[str, Any]]:
    from netscale.bench.analysis import generate_models
    from netscale.scaling import parse_strategy, scale_report
    from netscale.specs import get_spec

    spec = get_spec(base)
    out = [(f"{e.strategy}x{e.factor:g}", e.spec)
           for e in generate_models(spec, STRATEGIES, FACTORS)]
    if wide:
        s, f = WIDE
        out.append((f"{s}x{f:g}", scale_report(spec, f, parse_strategy(s)).spec))
    return out


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    from netscale.bench.env import load_average
    from netscale.bench.fit import drift_of, fit_runtime
    from netscale.specs import get_spec

    load0 = load_average()
    ref0 = _bench(get_spec(args.base), args).time_ms
    rows = []
    for name, spec in _models(args.base, wide=False):
        r = _bench(spec, args)
        rows.append({"model": name, "flops": r.flops, "params": r.params, "acts": r.acts,
                     "time_ms": r.time_ms})
        print(f"  run 1 {name:8s} {r.time_ms:8.2f} ms/batch", flush=True)
    ref1 = _bench(get_spec(args.base), args).time_ms
    drift = drift_of([ref0, ref1])
    model = fit_runtime(rows)
    print(f"run 1: reference {ref0:.2f} -> {ref1:.2f} ms/batch (drift {drift:.1%}); load "
          f"average {load0} -> {load_average()}")
    return {"rows": rows, "drift": drift, "model": model.to_dict(), "ref": [ref0, ref1]}


def run_check(state: dict[str, Any], args: argparse.Namespace) -> None:
    from netscale.bench.env import load_average
    from netscale.bench.fit import RuntimeModel
    from netscale.errors import NetscaleError

    model = RuntimeModel.from_dict(state["model"])
    drifted = model.with_drift(state["drift"])
    load0 = load_average()
    hits: dict[str, list[bool]] = {}
    lines = []
    for name, spec in _models(args.base, wide=True):
        r = _bench(spec, args)
        pt = {"flops": r.flops, "params": r.params, "acts": r.acts}
        row = [name, f"{r.time_ms:.2f}"]
        for label, m, using in (("joint", model, "joint"), ("joint+drift", drifted, "joint"),
                                ("log", model, "log"), ("log+drift", drifted, "log")):
            try:
                y, lo, hi = m.interval(pt, using=using)
            except NetscaleError as exc:  # a missing fit is reported, not fatal
                row.append(f"{label}: {exc}")
                continue
            inside = lo <= r.time_ms <= hi
            if not name.startswith(f"{WIDE[0]}x{WIDE[1]:g}"):
                hits.setdefault(label, []).append(inside)
            row.append(f"{label} {y:.1f} [{lo:.1f}, {hi:.1f}]{'' if inside else ' OUT'}")
        lines.append("  ".join(row))
    print(f"run 2 (separate process, {args.wait:g} s later); load average {load0} -> "
          f"{load_average()}; ms per batch of {args.batch_size}:")
    print("\n".join("  " + ln for ln in lines))
    print(f"coverage of the {len(next(iter(hits.values()), []))} fitted models' fresh timings "
          "by run 1's 95 % prediction intervals:")
    for label, h in hits.items():
        print(f"  {label:12s} {sum(h)}/{len(h)} ({sum(h) / len(h):.0%})")
    print(f"(the w ×{WIDE[1]:g} row is past the fitted range and not in the counts)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="RegNetY-200MF")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per timing")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds between the two runs")
    ap.add_argument("--phase", choices=("all", "check"), default="all")
    ap.add_argument("--state", help="(internal) run 1's results for --phase check")
    args = ap.parse_args()
    if args.phase == "check":
        run_check(json.loads(Path(args.state).read_text()), args)
        return 0
    state = run_fit(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run1.json"
        path.write_text(json.dumps(state))
        time.sleep(args.wait)
        cmd = [sys.executable, __file__, "--phase", "check", "--state", str(path),
               "--base", args.base, "--batch-size", str(args.batch_size),
               "--budget", str(args.budget), "--wait", str(args.wait)]
        return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
