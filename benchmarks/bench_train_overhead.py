"""Trainer overhead: ``netscale.train.train`` against a hand-written SGD loop, per setting.

For ResNet-20-CIFAR (batch 128, 32 px) and RegNetY-200MF (batch 32, 224 px), 10 classes, in
each execution setting (contiguous / channels_last x fp32 / bf16 autocast, bf16 only where the
CPU runs it natively), one process measures in alternating repeats (bare, trainer, then
trainer, bare, ...):

* **bare loop**: the plainest training loop in that setting (model in the memory format, the
  batch converted to it, forward + label-smoothed loss under autocast, zero_grad, backward, SGD
  step; nothing else) over the same in-memory data loader (pad-and-crop + flip augmentation,
  normalisation) with the same batch and torch threads;
* **trainer**: ``train()`` with ``Recipe(memory_format=..., precision=...)`` on the same data,
  one epoch; its training-phase images/s (what the epoch log reports: per-step LR schedule,
  metric sums, non-finite check, progress) -- the once-per-epoch evaluation, checkpoint and
  set-up are reported separately;
* **loader alone**: the same data loader iterated without a model (images/s), to show the
  data pipeline is not the bottleneck.

Both sides build a fresh model per repeat and time a whole epoch including its first step.
Figures are medians over repeats; "trainer / bare" is the median of the per-repeat ratios with
their range, "best / best" the ratio of the fastest repeats (the least disturbed by other load
on a shared machine). Target: >= 97 % in every row. The per-step bookkeeping the trainer adds
(LR schedule, metric sums, finiteness check) is also timed alone, as microseconds per step.

    .venv/bin/python benchmarks/bench_train_overhead.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netscale.bench.env import collect_env
from netscale.bench.setting import (
    ExecSetting,
    apply_to_input,
    apply_to_model,
    autocast,
    native_bf16,
)
from netscale.data import DataConfig, Dataset, DatasetInfo, TensorSplit, make_loaders
from netscale.models import build_model
from netscale.specs import resolve_spec
from netscale.train import Recipe, train
from netscale.train.distributed import DistEnv
from netscale.train.optim import make_optimizer
from netscale.train.recipe import WarmupCosine, default_train_threads
from netscale.train.trainer import accumulate, sums_finite
from netscale.util.fmt import table

TARGET = 0.97


@dataclass(frozen=True)
class Case:
    model: str
    batch: int
    resolution: int
    steps: int  # optimizer steps per timed epoch


def synthetic(case: Case, classes: int = 10) -> tuple[Dataset, DataConfig]:
    """An in-memory uint8 dataset with ``case.steps`` batches (and one validation batch)."""
    gen = torch.Generator().manual_seed(0)
    n, r = case.batch * case.steps, case.resolution

    def split(k: int) -> TensorSplit:
        return TensorSplit(torch.randint(0, 256, (k, 3, r, r), dtype=torch.uint8, generator=gen),
                           torch.randint(0, classes, (k,), generator=gen))

    info = DatasetInfo(name="synthetic", format="cifar", path=None, num_classes=classes,
                       in_channels=3, image_size=(r, r), train_size=n, val_size=case.batch,
                       val_split="generated", mean=(0.5,) * 3, std=(0.25,) * 3)
    return Dataset(info, split(n), split(case.batch)), DataConfig(name="synthetic",
                                                                    augment="crop")


def bare_loop(spec: Any, loader: Any, recipe: Recipe, setting: ExecSetting) -> float:
    """Images/s of one epoch of a hand-written loop in ``setting``."""
    torch.manual_seed(0)
    model = apply_to_model(build_model(spec), setting).train()
    opt = make_optimizer(model, recipe, recipe.effective_lr)
    crit = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    loader.set_epoch(0)
    n = 0
    t0 = time.perf_counter()
    for x, y in loader:
        with autocast(setting):
            loss = crit(model(apply_to_input(x, setting)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t0)


def trainer_run(spec: Any, ds: Dataset, data: DataConfig, recipe: Recipe
                ) -> tuple[float, float]:
    """(training-phase images/s, seconds outside the training phase) of one train() epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = train(spec, data, recipe, Path(tmp) / "run", quiet=True, dataset=ds)
        total = time.perf_counter() - t0
    h = res.history[0]
    return float(h["images_per_sec"]), total - float(h["train_time"])


def loader_only(loader: Any) -> float:
    loader.set_epoch(1)
    n = 0
    t0 = time.perf_counter()
    for _x, y in loader:
        n += len(y)
    return n / (time.perf_counter() - t0)


def bookkeeping_us(batch: int, classes: int = 10, n: int = 2000) -> float:
    """Microseconds per step of what the trainer does beyond the bare loop: LR schedule,
    metric sums, finiteness check (one host sync) and the progress loss read."""
    sched = WarmupCosine(0.1, 100_000, 1_000)
    groups: list[dict[str, Any]] = [{"lr": 0.0}, {"lr": 0.0}]
    sums = torch.zeros(3, dtype=torch.float64)
    logits, y = torch.randn(batch, classes), torch.randint(0, classes, (batch,))
    loss, env = torch.tensor(2.3), DistEnv()
    t0 = time.perf_counter()
    for _ in range(n):
        lr = sched.lr
        for g in groups:
            g["lr"] = lr
        accumulate(sums, loss, logits, y)
        sums_finite(sums, env)
        sched.step()
        float(loss.detach())
    return (time.perf_counter() - t0) / n * 1e6


def measure_case(case: Case, settings: list[ExecSetting], repeats: int, threads: int,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    ds, data = synthetic(case)
    spec = resolve_spec(case.model).replace(num_classes=10, resolution=case.resolution)
    rows = []
    for s in settings:
        recipe = Recipe(epochs=1, batch_size=case.batch, warmup_epochs=0, threads=threads,
                        memory_format=s.memory_format, precision=s.precision)
        loader, _, _ = make_loaders(ds, data, resolution=case.resolution, channels=3,
                                    batch_size=case.batch)
        torch.set_num_threads(threads)
        bare_loop(spec, loader, recipe, s)  # warm-up: kernels, allocator, oneDNN primitives
        bare, ours, outside = [], [], []
        for r in range(repeats):
            order = ("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")
            for side in order:
                if side == "bare":
                    torch.set_num_threads(threads)
                    bare.append(bare_loop(spec, loader, recipe, s))
                else:
                    rate, extra = trainer_run(spec, ds, data, recipe)
                    ours.append(rate)
                    outside.append(extra)
            log(f"  {case.model} {s.label} repeat {r + 1}: bare {bare[-1]:,.1f}, trainer "
                f"{ours[-1]:,.1f} images/s")
        ratios = [o / b for o, b in zip(ours, bare)]
        rows.append({"case": case, "setting": s.label, "bare": statistics.median(bare),
                     "trainer": statistics.median(ours), "ratio": statistics.median(ratios),
                     "lo": min(ratios), "hi": max(ratios), "best": max(ours) / max(bare),
                     "outside": statistics.median(outside),
                     "loader": statistics.median(loader_only(loader) for _ in range(3)),
                     "repeats": repeats})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer steps and repeats (about 2 minutes on 2 cores)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for both sides (default: what netscale train uses)")
    ap.add_argument("--repeats", type=int, default=0, help="alternating repeats (default 5, "
                    "quick 3)")
    ap.add_argument("--models", default="ResNet-20-CIFAR,RegNetY-200MF")
    args = ap.parse_args(argv)
    threads = args.threads or default_train_threads() or torch.get_num_threads()
    repeats = args.repeats or (3 if args.quick else 5)
    cases = {"ResNet-20-CIFAR": Case("ResNet-20-CIFAR", 128, 32, 8 if args.quick else 24),
             "RegNetY-200MF": Case("RegNetY-200MF", 32, 224, 4 if args.quick else 10)}
    precs = ["fp32"] + (["bf16"] if native_bf16("cpu") else [])
    settings = [ExecSetting(f, p) for p in precs for f in ("contiguous", "channels_last")]
    env = collect_env("cpu", threads=threads, amp=False, amp_dtype=None, channels_last=False,
                      compile=False)
    load = f"{env.load_avg_1m:.1f}" if env.load_avg_1m is not None else "?"
    print(f"machine: {env.cpu_model} ({env.logical_cpus} logical CPUs, 1-min load {load} at "
          f"start); torch {torch.__version__}; {threads} torch thread(s); native bf16: "
          f"{native_bf16('cpu')}; {repeats} alternating repeats", flush=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows = []
    for name in args.models.split(","):
        case = cases[name.strip()]
        log(f"{case.model}: batch {case.batch}, {case.resolution} px, {case.steps} steps "
            "per timed epoch")
        rows += measure_case(case, settings, repeats, threads, log)
    out = [[f"{r['case'].model}, {r['case'].batch}", r["setting"], f"{r['bare']:,.1f}",
            f"{r['trainer']:,.1f}", f"{r['ratio']:.1%} [{r['lo']:.1%}, {r['hi']:.1%}]",
            "yes" if r["ratio"] >= TARGET else "NO", f"{r['best']:.1%}", f"{r['loader']:,.0f}",
            f"{r['loader'] / r['bare']:.0f}x", f"{r['outside']:.2f}"] for r in rows]
    print(table(out, ["model, batch", "setting", "bare loop img/s", "trainer img/s",
                      f"trainer / bare (median [range], {repeats} repeats)",
                      f">= {TARGET:.0%}", "best / best", "loader alone img/s", "loader / bare",
                      "trainer s outside training phase"], align="llrrrlrrrr"))
    for model in dict.fromkeys(r["case"].model for r in rows):
        mine = [r for r in rows if r["case"].model == model]
        plain = next(r for r in mine if r["setting"] == "contiguous+fp32")
        speed = ", ".join(f"{r['setting']} x{r['bare'] / plain['bare']:.2f}" for r in mine)
        print(f"\n{model}: bare-loop speed vs contiguous+fp32: {speed}", end="")
    print()
    print("images/s are training images per second (forward + backward + SGD step); the "
          "trainer's once-per-epoch evaluation, checkpoint and set-up are the last column "
          "(seconds per run), not in its images/s.")
    for batch in sorted({r["case"].batch for r in rows}):
        us = statistics.median(bookkeeping_us(batch) for _ in range(5))
        fastest = max(r["bare"] for r in rows if r["case"].batch == batch)
        step_ms = batch / fastest * 1e3
        print(f"trainer bookkeeping per step at batch {batch} (LR schedule, metric sums, "
              f"finiteness check, progress read): {us:,.0f} us = {us / 1e3 / step_ms:.2%} "
              f"of the fastest bare step here ({step_ms:,.0f} ms)")
    worst = min(r["ratio"] for r in rows)
    print(f"worst trainer / bare ratio {worst:.1%} (target >= {TARGET:.0%}); loader at least "
          f"{min(r['loader'] / r['bare'] for r in rows):.0f}x the fastest model's consumption")
    return 0


if __name__ == "__main__":
    sys.exit(main())
