"""Benchmark: which complexity metric predicts CPU runtime on this machine?

Measures RegNetY-200MF scaled by w, dwr, dWr, d and r at s in {1, 2, 4} (11 models), inference,
small batch; fits runtime against flops (multiply-adds), params and activations; prints the
table, Pearson r per metric and the best predictor; saves the scatter plot. Also reports
repeatability (the same measurement repeated; spread of the medians, goal <= 5%) and the
harness overhead (an empty model timed through the harness; goal: negligible).

Run: .venv/bin/python benchmarks/bench_runtime_analysis.py
     [--batch-size 8] [--budget 4] [--repeats 5] [--mode infer|train|both]
     [--plot runtime_cpu.png] [--update-docs] [--out rows.json] [--threads 1]
(the plot goes to ./runtime_cpu.png; --update-docs writes the tracked docs/img/runtime_cpu.png)
(about 1.5 minutes on 2 cores; measure on an idle machine: the load average is printed)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from netscale.bench import (
    BenchConfig,
    TimingPolicy,
    bench_module,
    bench_spec,
    empty_model,
    generate_models,
    plot_runtime,
    write_results,
)
from netscale.bench.analysis import fit_rows, format_fit
from netscale.bench.env import cpu_model, load_average, logical_cpus
from netscale.specs import get_spec
from netscale.util.fmt import si, table

STRATEGIES = ["w", "dwr", "dWr", "d", "r"]
FACTORS = [1, 2, 4]
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="RegNetY-200MF")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per measurement")
    ap.add_argument("--repeats", type=int, default=5, help="repeatability: runs of one model")
    ap.add_argument("--mode", choices=("infer", "train", "both"), default="infer")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a 2-vCPU VM a 2-thread region waits "
                    "for whichever vCPU the hypervisor descheduled; medians of repeated runs "
                    "varied by 60%% with 2 threads, 6%% with 1)")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-measure a noisy or contended model up to N times (default 2)")
    ap.add_argument("--plot", default=None,
                    help="where to save the scatter plot (default ./runtime_cpu.png)")
    ap.add_argument("--update-docs", action="store_true",
                    help="write the plot to the tracked docs/img/runtime_cpu.png (the README's)")
    ap.add_argument("--out", default=None, help="also write the rows (.json/.csv)")
    args = ap.parse_args()
    if args.plot is None:  # never overwrite a tracked file in docs/ unless asked
        args.plot = str(ROOT / "docs" / "img" / "runtime_cpu.png") if args.update_docs \
            else "runtime_cpu.png"

    os.environ.setdefault("MPLBACKEND", "Agg")
    modes = ["infer", "train"] if args.mode == "both" else [args.mode]
    cfg = BenchConfig(batch_size=args.batch_size, device="cpu", threads=args.threads,
                      retries=args.retries, policy=TimingPolicy(budget_s=args.budget))
    load0 = load_average()
    print(f"machine: {cpu_model()}, {logical_cpus()} logical CPUs, torch {torch.__version__}, "
          f"{args.threads or torch.get_num_threads()} threads, float32; load average (1 min) "
          f"before: {load0}")
    print(f"models: {args.base} scaled by {','.join(STRATEGIES)} at s in "
          f"{{{','.join(map(str, FACTORS))}}} (exact rounding); batch {args.batch_size}; "
          f"budget {args.budget:g} s per measurement\n")

    t_all = time.perf_counter()
    entries = generate_models(get_spec(args.base), STRATEGIES, FACTORS)
    rows = []
    for mode in modes:
        for e in entries:
            r = bench_spec(e.spec, replace(cfg, mode=mode), base=e.base,
                           strategy=e.strategy, factor=e.factor)
            rows.append(r)
            print(f"  measured {r.model:26s} {mode}: {r.time_ms:8.2f} ms/batch  {_flags(r)}",
                  flush=True)

    body = []
    for r in rows:
        body.append([r.model, r.strategy, f"{r.factor:g}", r.mode, r.resolution, si(r.flops),
                     si(r.params), si(r.acts), f"{r.time_ms:.2f}", f"{r.iqr_ms:.2f}",
                     f"{r.rel_iqr:.1%}", r.samples, f"{r.images_per_s:.1f}",
                     f"{r.gflops_per_s:.1f}", f"{r.peak_mem_mib:.0f}",
                     f"{_pct(r.cpu_others)}/{_pct(r.cpu_steal)}",
                     _flags(r)])
    print()
    print(table(body, ["model", "strategy", "s", "mode", "px", "flops (MACs)", "params",
                       "acts", "ms/batch", "IQR ms", "IQR/med", "n", "images/s", "GFLOP/s",
                       "peak MiB", "others/steal", ""], align="lllllrrrrrrrrrrrl"))
    print("(ms/batch: median over n timed samples; flops are multiply-adds per image, "
          "1 MAC = 1 flop; GFLOP/s = 1e9 MACs/s achieved; others/steal = CPU share used by "
          "other processes / stolen by the hypervisor while timing; NOISY = IQR/median > 5%, "
          "BUSY = others + steal > 10%)")

    fits = fit_rows(rows, modes)
    for mode, fit in fits.items():
        print()
        print(format_fit(fit, mode))
    title = (f"{args.base} x {{1,2,4}} by {','.join(STRATEGIES)}: {cpu_model()}, "
             f"torch {torch.__version__}, {cfg.threads or torch.get_num_threads()} threads, "
             f"batch {args.batch_size}")
    plot = plot_runtime(rows, fits, args.plot, title=title)
    print(f"\nplot: {plot}")
    if args.out:
        write_results(args.out, rows, {"fits": {m: f.to_dict() for m, f in fits.items()}})
        print(f"rows: {args.out}")

    # repeatability: the same measurement, several times (fresh model each time)
    print(f"\nrepeatability: {args.base} {modes[0]}, batch {args.batch_size}, "
          f"{args.repeats} runs")
    meds, mins = [], []
    for _ in range(args.repeats):
        r = bench_spec(get_spec(args.base), replace(cfg, mode=modes[0]))
        meds.append(r.time_ms)
        mins.append(r.min_ms)
        print(f"  median {r.time_ms:7.2f} ms/batch  IQR {r.iqr_ms:5.2f} ms  min "
              f"{r.min_ms:7.2f} ms  n {r.samples}  others/steal {_pct(r.cpu_others)}/"
              f"{_pct(r.cpu_steal)}  {_flags(r)}",
              flush=True)
    centre = statistics.median(meds)
    worst = max(abs(m - centre) for m in meds) / centre
    spread = (max(meds) - min(meds)) / centre
    spread_min = (max(mins) - min(mins)) / statistics.median(mins)
    print(f"  every run's median within {worst:.1%} of the median of the runs "
          f"({'within' if worst <= 0.05 else 'OUTSIDE'} the 5% goal); full range of the "
          f"medians (max - min) / median: {spread:.1%}; of the fastest samples: "
          f"{spread_min:.1%}")

    # harness overhead: an (almost) empty model timed through the harness
    print("\nharness overhead (empty model: one scalar multiply; batch "
          f"{args.batch_size}, 224 px input):")
    fastest = min(r.time_ms for r in rows if r.mode == modes[0])
    for mode in ("infer", "train"):
        r = bench_module(empty_model(10), name="empty", resolution=224,
                         config=replace(cfg, mode=mode, policy=TimingPolicy(budget_s=1.0)))
        print(f"  {mode}: {r.time_ms * 1e3:7.1f} µs per iteration (n {r.samples} x "
              f"{r.iters_per_sample} iterations) = {r.time_ms / fastest:.3%} of the fastest "
              f"model's {fastest:.1f} ms/batch"
              + ("; includes torch's own loss/backward/SGD calls" if mode == "train" else ""))
    bare = _bare_loop_us(args.batch_size, cfg.threads)
    print(f"  bare loop without the harness (same empty model, infer): {bare:7.1f} µs per "
          "iteration; the difference to the harness figure is the harness' own cost")
    clock_cost = _clock_cost()
    print(f"  clock read (time.perf_counter): {clock_cost * 1e9:.0f} ns; train mode reads it "
          "4x per iteration, infer mode 2x per block")

    print(f"\nload average (1 min) after: {load_average()} "
          f"(before: {load0}); total {time.perf_counter() - t_all:.0f} s")
    for mode, fit in fits.items():
        best = fit.best_metric
        if best:
            print(f"RESULT ({mode}): {best} best predicts CPU runtime here (Pearson r "
                  + ", ".join(f"{m} {fit.per_metric[m].pearson_r:.3f}" for m in fit.ranking())
                  + ")")


def _flags(r: object) -> str:
    return " ".join(f for f, on in (("NOISY", r.noisy), ("BUSY", r.contended)) if on)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _bare_loop_us(batch: int, threads: int | None, n: int = 20_000) -> float:
    """Median per-iteration time (µs) of a plain timed loop over the empty model."""
    from netscale.bench.harness import torch_threads

    model = empty_model(10).eval()
    x = torch.randn(batch, 3, 224, 224)
    per = []
    with torch_threads(threads), torch.inference_mode():
        for _ in range(n // 10):  # warm-up
            model(x)
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(n):
                model(x)
            per.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(per)


def _clock_cost(n: int = 100_000) -> float:
    pc = time.perf_counter
    t0 = pc()
    for _ in range(n):
        pc()
    return (pc() - t0) / n


if __name__ == "__main__":
    main()
