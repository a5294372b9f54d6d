"""Benchmark: speed of analytic and measured complexity counting (issue: foundation).

Run: .venv/bin/python benchmarks/bench_complexity.py

Goals: analytic count of one spec <= 1 ms (median); measured count of ResNet-50 <= 1 s;
RegNetY-32GF at 448 px measured without allocating its activations (peak RSS reported).
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time

import torch

from netscale.complexity import complexity
from netscale.complexity.measured import measure_spec
from netscale.specs import get_spec, list_models


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    names = list_models()
    specs = [get_spec(n) for n in names]
    per_spec = [_median_time(lambda s=s: complexity(s), 200) for s in specs]
    worst = max(zip(per_spec, names))
    print(f"analytic count, median over {len(specs)} named models: "
          f"{statistics.median(per_spec) * 1e6:.1f} us per spec "
          f"(slowest: {worst[1]} {worst[0] * 1e6:.1f} us; goal <= 1 ms)")

    r50 = get_spec("ResNet-50")
    t = _median_time(lambda: measure_spec(r50), 5)
    print(f"measured count of ResNet-50 (build on meta + dispatch count): {t * 1000:.0f} ms "
          "median of 5 (goal <= 1 s)")

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
    print(f"measured count of RegNetY-32GF at 448 px: {big['flops']:,} multiply-adds, "
          f"{big['acts']:,} acts in {big['seconds']:.2f} s; peak RSS {big['peak_rss_mib']:.0f} "
          f"MiB vs {base['peak_rss_mib']:.0f} MiB for 'import torch' alone "
          f"(its activations alone would take {fp32_acts_gib:.2f} GiB in fp32 at batch 1, its "
          f"weights {complexity(get_spec('RegNetY-32GF')).params * 4 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
