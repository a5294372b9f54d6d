"""Benchmark: which torch thread count gives stable timings on this machine?

Measures the same model REPEATS times per thread count (one measurement = one `netscale bench`
row, no retries) and prints, per thread count, the median of the medians, the spread of the
medians (max/min - 1: how much a rerun can move a timing) and how many rows were flagged noisy
or contended. The load average is printed before and after: quote it with the figures.

Run: .venv/bin/python benchmarks/thread_stability.py [MODEL] [--repeats N] [--budget S]
     [--mode infer|train] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics

from netscale.bench import BenchConfig, TimingPolicy
from netscale.bench.harness import bench_spec
from netscale.specs import resolve_spec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="ResNet-20-CIFAR")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--mode", default="infer", choices=("infer", "train"))
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    spec = resolve_spec(args.model)
    threads = [int(t) for t in args.threads.split(",")]
    print(f"{args.model} {args.mode}, batch {args.batch_size}, {args.repeats} measurements of "
          f"{args.budget:g} s per thread count, {os.cpu_count()} logical CPUs, load average "
          f"{os.getloadavg()[0]:.2f} (1 min)")
    results: dict[int, list] = {t: [] for t in threads}
    for _ in range(args.repeats):  # interleaved, so both see the same background load
        for t in threads:
            cfg = BenchConfig(mode=args.mode, batch_size=args.batch_size, threads=t,
                              retries=0, policy=TimingPolicy(budget_s=args.budget))
            results[t].append(bench_spec(spec, cfg))
    print(f"{'threads':>7}  {'median ms':>9}  {'spread':>7}  {'noisy':>5}  {'contended':>9}  "
          "medians (ms per batch)")
    for t, rows in results.items():
        meds = [r.time_ms for r in rows]
        spread = max(meds) / min(meds) - 1
        print(f"{t:>7}  {statistics.median(meds):9.2f}  {spread:7.1%}  "
              f"{sum(r.noisy for r in rows):>5}  {sum(r.contended for r in rows):>9}  "
              + ", ".join(f"{m:.1f}" for m in meds))
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
