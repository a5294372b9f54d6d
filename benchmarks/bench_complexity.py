"""Benchmark: speed of analytic and measured complexity counting.

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_complexity.py [--quick]

Goals:
* analytic count of one spec <= 1 ms (median);
* measured count of ResNet-50 at 224 px (build on ``meta`` included) at most as long as one
  real CPU forward pass of the same model under ``torch.utils.flop_counter.FlopCounterMode``,
  both timed in this run, interleaved (count, forward, count, forward, ...), medians;
* RegNetY-32GF at 448 px measured without allocating its activations (peak RSS reported).

The measured counter replays repeated ops from a process-wide memo of output shapes
(``netscale.complexity.measured``); "first count" clears that memo before every repeat (what
the first count in a fresh process pays, imports aside), "repeat count" keeps it (what every
later count of a similar network pays, e.g. scale_module's candidates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from netscale.complexity import complexity
from netscale.complexity import measured as measured_mod
from netscale.complexity.measured import measure_spec
from netscale.models import build_model
from netscale.specs import get_spec, list_models


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(_timed(fn) for _ in range(repeat))


def _quartiles(v: list[float]) -> str:
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return f"{q[1] * 1e3:7.1f} ms  [{q[0] * 1e3:.1f}, {q[2] * 1e3:.1f}]"


def _child_peak_rss(code: str) -> dict:
    """Runs code in a fresh interpreter; returns its JSON output plus peak RSS (MiB)."""
    wrapper = (
        "import json, resource\n" + code +
        "\nres['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(res))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_vs_forward(repeats: int) -> None:
    """Measured count of ResNet-50 vs one real forward under FlopCounterMode, interleaved."""
    spec = get_spec("ResNet-50")
    real = build_model(spec).eval()
    x = torch.randn(1, 3, spec.resolution, spec.resolution)

    def forward() -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            real(x)
        return counter.get_total_flops()

    def first() -> None:
        measured_mod._MEMO.clear()
        measure_spec(spec)

    # one untimed round of each (imports, oneDNN primitive caches), and the counts compared
    rec = measure_spec(spec)
    fc_flops = forward()
    nb = measured_mod.count_measured(build_model(spec, device="meta"), (3, 224, 224),
                                     count_bias=False, per_module=False)
    threads = torch.get_num_threads()

    def forward_1t() -> None:
        torch.set_num_threads(1)
        try:
            forward()
        finally:
            torch.set_num_threads(threads)

    times: dict[str, list[float]] = {"first": [], "repeat": [], "forward": [], "forward_1t": []}
    cpu: dict[str, list[float]] = {"first": [], "repeat": []}
    for _ in range(repeats):
        c0 = time.thread_time()
        times["first"].append(_timed(first))
        c1 = time.thread_time()
        times["repeat"].append(_timed(lambda: measure_spec(spec)))
        cpu["first"].append(c1 - c0)
        cpu["repeat"].append(time.thread_time() - c1)
        times["forward"].append(_timed(forward))
        if threads > 1:
            times["forward_1t"].append(_timed(forward_1t))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nResNet-50 at 224 px, batch 1, {repeats} interleaved repeats, median [quartiles]:")
    print(f"  measured count, first (memo cleared; build on meta + count): "
          f"{_quartiles(times['first'])}")
    print(f"  measured count, repeat (memo kept; build on meta + count):   "
          f"{_quartiles(times['repeat'])}")
    print(f"  real CPU forward under FlopCounterMode ({torch.get_num_threads()} threads):     "
          f"{_quartiles(times['forward'])}")
    if times["forward_1t"]:
        print(f"  the same forward with 1 thread (less hurt by a busy machine):   "
              f"{_quartiles(times['forward_1t'])}")
    for k in ("first", "repeat"):
        ok = "yes" if med[k] <= med["forward"] else "NO"
        one = (f", / 1-thread forward = {med[k] / med['forward_1t']:.2f}"
               if times["forward_1t"] else "")
        print(f"  {k} count / forward = {med[k] / med['forward']:.2f}  (goal <= 1: {ok}){one}; "
              f"its CPU time {statistics.median(cpu[k]) * 1e3:.1f} ms (one thread: what an idle "
              "core takes)")
    same = "yes" if nb.flops * 2 == fc_flops else "NO"
    print(f"  counts: {rec.flops:,} multiply-adds with biases, {nb.flops:,} without; "
          f"FlopCounterMode {fc_flops:,} flops = 2 x {fc_flops // 2:,} (same as ours: {same})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no RegNetY-32GF")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved repeats of the ResNet-50 comparison (default 15; 5 quick)")
    args = ap.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    print("flops are multiply-adds (MACs); FlopCounterMode counts 2 flops per multiply-add")
    names = list_models()
    specs = [get_spec(n) for n in names]
    per_spec = [_median_time(lambda s=s: complexity(s), 20 if args.quick else 200)
                for s in specs]
    worst = max(zip(per_spec, names))
    print(f"analytic count, median over {len(specs)} named models: "
          f"{statistics.median(per_spec) * 1e6:.1f} us per spec "
          f"(slowest: {worst[1]} {worst[0] * 1e6:.1f} us; goal <= 1 ms)")

    count_vs_forward(repeats)
    if args.quick:
        return

    base = _child_peak_rss("import torch\nres = {}\n")
    big = _child_peak_rss(
        "import time\n"
        "from netscale.specs import get_spec\n"
        "from netscale.complexity.measured import measure_spec\n"
        "t = time.perf_counter()\n"
        "r = measure_spec(get_spec('RegNetY-32GF'), 448, per_module=False)\n"
        "res = {'flops': r.flops, 'acts': r.acts, 'seconds': time.perf_counter() - t}\n"
    )
    fp32_acts_gib = big["acts"] * 4 / 2**30
    print(f"\nmeasured count of RegNetY-32GF at 448 px (fresh process): {big['flops']:,} "
          f"multiply-adds, {big['acts']:,} acts in {big['seconds']:.2f} s; peak RSS "
          f"{big['peak_rss_mib']:.0f} MiB vs {base['peak_rss_mib']:.0f} MiB for 'import torch' "
          f"alone (its activations alone would take {fp32_acts_gib:.2f} GiB in fp32 at batch 1, "
          f"its weights {complexity(get_spec('RegNetY-32GF')).params * 4 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
