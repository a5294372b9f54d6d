"""Do runtime prediction intervals hold for fresh measurements taken later, in another process?

Run 1 (this process) is `netscale bench --fit`'s own path (netscale.bench.run_analysis): it
times the base (RegNetY-200MF) and the base scaled by d, w, r, dw and dWr at s in
{1.5, 2, 3, 4} (21 models), then re-times --retime of them (default: the library's, 6) in
reverse order, the base last: the base's change is the drift (netscale.bench.fit.drift_of), the
spread of the pairs around their common shift the between-run scatter of one model's timing
(netscale.bench.fit.scatter_of). It fits the runtime model. Run 2 (a separate process, after
--wait seconds) re-times every model and a wide model past the fitted range (w ×8), and counts
how many of the 21 fresh timings fall inside run 1's 95 % prediction intervals, for the joint
line and the log-space fit, with and without the drift and scatter terms. It also prints the
between-process scatter the 21 pairs show (what run 1's scatter estimates).

    .venv/bin/python benchmarks/runtime_drift.py [--budget 1.5] [--wait 30] [--retime 6]

Batch 8, 1 thread, inference. Results depend on the machine being quiet: docs/statistics.md
("Runtime intervals between runs") says which figure was measured how. Prints the load
average at the start and end of each run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STRATEGIES = ("d", "w", "r", "dw", "dWr")
FACTORS = (1, 1.5, 2, 3, 4)
WIDE = ("w", 8.0)
VARIANTS = (("fit only", False, False), ("+ drift", True, False), ("+ scatter", False, True),
            ("+ drift + scatter", True, True))


def _config(args: argparse.Namespace) -> Any:
    from netscale.bench import BenchConfig, TimingPolicy

    return BenchConfig(batch_size=args.batch_size, device="cpu", threads=1, retries=1,
                       policy=TimingPolicy(budget_s=args.budget))


def _entries(base: str, wide: bool) -> list[tuple[str, Any]]:
    from netscale.bench.analysis import BenchModel, generate_models
    from netscale.scaling import parse_strategy, scale_report
    from netscale.specs import get_spec

    spec = get_spec(base)
    out = [(_name(e.strategy, e.factor), e) for e in generate_models(spec, STRATEGIES, FACTORS)]
    if wide:
        s, f = WIDE
        out.append((_name(s, f), BenchModel(scale_report(spec, f, parse_strategy(s)).spec)))
    return out


def _name(strategy: str | None, factor: float | None) -> str:
    return "base" if factor == 1 else f"{strategy}x{factor:g}"


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    from netscale.bench import run_analysis
    from netscale.bench.env import load_average

    load0 = load_average()
    named = _entries(args.base, wide=False)
    t0 = time.perf_counter()
    done = [0]

    def show(r: Any) -> None:
        print(f"  run 1 {named[done[0]][0]:8s} {r.time_ms or math.nan:8.2f} ms/batch", flush=True)
        done[0] += 1

    an = run_analysis([e for _, e in named], _config(args), ["infer"], fit=True,
                      progress=show, retime=args.retime)
    fit = an.fits["infer"]
    rows = [{"model": name, "flops": r.flops, "params": r.params, "acts": r.acts,
             "time_ms": r.time_ms} for (name, _), r in zip(named, an.rows)]
    print(f"run 1: {len(rows)} models + {fit.scatter_n} re-timed in {time.perf_counter() - t0:.0f} "
          f"s; drift {fit.drift:.2%}, between-run scatter {fit.scatter:.2%} (relative standard "
          f"deviations); load average {load0} -> {load_average()}")
    return {"rows": rows, "model": fit.to_dict()}


def _covers(model: Any, pt: dict[str, float], using: str, t: float) -> tuple[bool, float]:
    y, lo, hi = model.interval(pt, using=using)
    return lo <= t <= hi, (hi - lo) / 2 / y


def run_check(state: dict[str, Any], args: argparse.Namespace) -> None:
    from netscale.bench import bench_spec
    from netscale.bench.env import load_average
    from netscale.bench.fit import RuntimeModel, scatter_of
    from netscale.errors import NetscaleError

    full = RuntimeModel.from_dict(state["model"])
    models = {label: full.with_drift(full.drift if d else 0.0)
              .with_scatter(full.scatter if s else 0.0, full.scatter_n)
              for label, d, s in VARIANTS}
    first = {r["model"]: r["time_ms"] for r in state["rows"]}
    load0 = load_average()
    cfg = _config(args)
    hits: dict[tuple[str, str], list[bool]] = {}
    widths: dict[tuple[str, str], list[float]] = {}
    lines, pairs = [], []
    for name, e in _entries(args.base, wide=True):
        r = bench_spec(e.spec, cfg)
        if not (r.ok and r.time_ms):
            lines.append(f"{name:8s} {r.status}")
            continue
        t = float(r.time_ms)
        pt = {"flops": r.flops, "params": r.params, "acts": r.acts}
        past = name == _name(*WIDE)
        out = []
        for using in ("joint", "log"):
            for label, _, _ in VARIANTS:
                try:
                    inside, half = _covers(models[label], pt, using, t)
                except NetscaleError as exc:  # a missing fit is reported, not fatal
                    out.append(f"{using}: {exc}")
                    break
                if not past:
                    hits.setdefault((using, label), []).append(inside)
                    widths.setdefault((using, label), []).append(half)
                if not inside:
                    out.append(f"{using} {label} OUT")
        y, lo, hi = models[VARIANTS[-1][0]].interval(pt, using=full.predictor)
        was = first.get(name)
        change = f"{t / was - 1:+6.1%}" if was else "  past"
        if was:
            pairs.append((was, t))
        lines.append(f"{name:8s} {was or math.nan:8.2f} {t:8.2f} {change}  {full.predictor} "
                     f"{y:.1f} [{lo:.1f}, {hi:.1f}]  {'; '.join(out) or 'inside all'}")
    print(f"run 2 (separate process, {args.wait:g} s later); load average {load0} -> "
          f"{load_average()}; ms per batch of {args.batch_size} (model, run 1, run 2, change, "
          "the default predictor with drift + scatter):")
    print("\n".join("  " + ln for ln in lines))
    if len(pairs) >= 2:
        a, b = zip(*pairs)
        shift = statistics.fmean(math.log(y / x) for x, y in pairs)
        print(f"between-process scatter of the {len(pairs)} models (run 1 vs run 2, common "
              f"shift {math.expm1(shift):+.1%} removed): {scatter_of(a, b):.2%}; run 1 "
              f"estimated drift {full.drift:.2%}, scatter {full.scatter:.2%} "
              f"({full.scatter_n} models re-timed)")
    n = len(next(iter(hits.values()), []))
    print(f"coverage of the {n} fitted models' fresh timings by run 1's 95 % prediction "
          "intervals (median half-width, % of the prediction):")
    print(f"  {'fit':6s} {'terms':18s} {'inside':>12s} {'half-width':>10s}")
    for (using, label), h in hits.items():
        w = statistics.median(widths[(using, label)])
        print(f"  {using:6s} {label:18s} {sum(h):>4d}/{len(h)} ({sum(h) / len(h):4.0%}) "
              f"{w:>9.1%}")
    print(f"(the w ×{WIDE[1]:g} row is past the fitted range and not in the counts)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="RegNetY-200MF")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per timing")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds between the two runs")
    ap.add_argument("--retime", type=int, default=None,
                    help="models re-timed in run 1 (default: netscale bench --fit's)")
    ap.add_argument("--phase", choices=("all", "check"), default="all")
    ap.add_argument("--state", help="(internal) run 1's results for --phase check")
    args = ap.parse_args()
    if args.retime is None:
        from netscale.bench.analysis import DEFAULT_RETIME

        args.retime = DEFAULT_RETIME
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
