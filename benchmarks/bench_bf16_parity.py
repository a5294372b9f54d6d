"""Accuracy parity of bf16 autocast against fp32 on CPU.

Trains the same spec with the same seeds twice, once in fp32 and once under bf16 autocast
(fp32 master weights, the loss in fp32), on Fashion-MNIST with netscale's data loaders, and
compares the final top-1 validation errors seed by seed:

* each precision's mean error with its 95 % interval (seed spread and the finite validation
  set, :func:`netscale.laws.replicates.error_interval`);
* the paired difference bf16 − fp32 (same seed, same data order, same initial weights) with
  its 95 % Student-t interval over the seeds;
* the verdict: ``no loss beyond noise`` when that interval reaches zero or below, else
  ``bf16 loses X ± Y points``.

Both precisions run the same hand-written loop (SGD + Nesterov, warm-up + cosine, the loop of
``benchmarks/bench_train_overhead.py``); only the autocast context differs, so the figure
isolates the precision. The runs alternate (seed 0 fp32, seed 0 bf16, seed 1 fp32, ...).

``--record`` writes the verdict to ``src/netscale/bench/bf16_parity.json``, which
``--precision auto`` reads (:func:`netscale.bench.setting.bf16_parity`): auto considers bf16
only when the recorded verdict is parity. ``--quick`` (2 seeds, 1 epoch, small subsets) checks
that the script runs; it cannot record.

    .venv/bin/python benchmarks/bench_bf16_parity.py [--quick] [--seeds 5] [--epochs 3]
        [--subset 15000] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from netscale.bench.env import cpu_model
from netscale.bench.setting import ExecSetting, autocast, native_bf16
from netscale.complexity import complexity_totals
from netscale.data import DataConfig, load_dataset, make_loaders
from netscale.laws.stats import error_interval, t_quantile
from netscale.models import build_model
from netscale.train import Recipe, param_groups
from netscale.util.fmt import table
from netscale_fixtures.small_specs import small_regnet

PARITY_FILE = Path(__file__).resolve().parents[1] / "src/netscale/bench/bf16_parity.json"
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def train_once(spec, ds, data: DataConfig, recipe: Recipe, setting: ExecSetting,
               epochs: int) -> tuple[float, float]:
    """Trains ``spec`` for ``epochs`` in ``setting``; returns (top-1 error, seconds)."""
    torch.manual_seed(recipe.seed)
    train_loader, val_loader, _ = make_loaders(
        ds, data, resolution=spec.resolution, channels=spec.in_channels,
        batch_size=recipe.batch_size, eval_batch_size=512, seed=recipe.seed)
    model = build_model(spec)
    opt = torch.optim.SGD(param_groups(model, recipe.weight_decay), lr=recipe.effective_lr,
                          momentum=recipe.momentum, nesterov=True)
    crit = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    steps = epochs * len(train_loader)
    warm = max(1, len(train_loader) // 2)
    step = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        train_loader.set_epoch(epoch)
        for x, y in train_loader:
            lr = recipe.effective_lr * (min(1.0, (step + 1) / warm)
                                        * 0.5 * (1 + math.cos(math.pi * step / steps)))
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast(setting):
                out = model(x)
            loss = crit(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    wrong = total = 0
    with torch.inference_mode(), autocast(setting):
        for x, y in val_loader:
            wrong += int((model(x).float().argmax(1) != y).sum())
            total += len(y)
    return wrong / total, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 seeds, 1 epoch, 4,000 training images: checks the script runs")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=15000, help="training images")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--record", action="store_true",
                    help=f"write the verdict to {PARITY_FILE.relative_to(PARITY_FILE.parents[3])}"
                    " (read by --precision auto)")
    ap.add_argument("--json", metavar="PATH", help="also write the per-seed results here")
    args = ap.parse_args()
    if args.quick:
        if args.record:
            print("--record needs a full run (not --quick)", file=sys.stderr)
            return 2
        args.seeds, args.epochs, args.subset = 2, 1, 4000
    if not native_bf16("cpu"):
        print("this CPU has no native bfloat16 (AVX-512 bf16 / AMX): bf16 would be emulated; "
              "nothing to compare", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    spec = small_regnet(num_classes=10, in_channels=1, resolution=28)
    totals = complexity_totals(spec)
    flops, params = totals.flops, totals.params
    data = DataConfig(path=DATA_DIR, subset=args.subset, augment="crop")
    ds = load_dataset(data)
    n_val = ds.info.val_size
    print(f"bf16 vs fp32 accuracy parity: {spec.name} ({flops / 1e6:.1f} M multiply-adds per "
          f"image, {params / 1e3:.0f} k params) on Fashion-MNIST 28 px, {args.subset:,} "
          f"training images, {args.epochs} epoch(s), batch 128, {args.seeds} seeds, "
          f"{args.threads} thread(s); {cpu_model()}, torch {torch.__version__}", flush=True)
    settings = {"fp32": ExecSetting("contiguous", "fp32"),
                "bf16": ExecSetting("contiguous", "bf16")}
    errs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    secs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    rows = []
    for seed in range(args.seeds):
        recipe = Recipe(epochs=args.epochs, batch_size=128, lr=0.1, seed=seed)
        for name, s in settings.items():  # interleaved: a load burst hits both
            err, sec = train_once(spec, ds, data, recipe, s, args.epochs)
            errs[name].append(err)
            secs[name].append(sec)
            print(f"  seed {seed} {name}: top-1 error {100 * err:.2f} % ({sec:.0f} s)",
                  file=sys.stderr, flush=True)
        rows.append([seed, f"{100 * errs['fp32'][-1]:.2f}", f"{100 * errs['bf16'][-1]:.2f}",
                     f"{100 * (errs['bf16'][-1] - errs['fp32'][-1]):+.2f}"])
    n_val = n_val or None
    print()
    print(table(rows, ["seed", "fp32 top-1 err %", "bf16 top-1 err %", "bf16 − fp32 points"],
                align="rrrr"))
    ivs = {k: error_interval(v, n_val) for k, v in errs.items()}
    print()
    for k, iv in ivs.items():
        print(f"{k}: mean top-1 error {100 * iv.mean:.2f} % ± {100 * iv.half:.2f} points (95 %, "
              f"{iv.n_seeds} seeds{f', {n_val:,} validation images' if n_val else ''}); "
              f"median {statistics.median(secs[k]):.0f} s per run")
    diffs = [b - a for a, b in zip(errs["fp32"], errs["bf16"])]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    half = t_quantile(0.95, n - 1) * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else math.inf
    loss = mean - half > 0
    verdict = (f"bf16 loses {100 * mean:.2f} ± {100 * half:.2f} points" if loss else
               "no loss beyond noise")
    print(f"paired difference bf16 − fp32: {100 * mean:+.2f} points, 95 % interval "
          f"[{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}] ({n} seeds, Student t)")
    print(f"verdict: {verdict}")
    print("(the machine was shared with other jobs: the seconds are depressed and noisy; the "
          "errors are not affected)")
    record = {
        "verdict": "loss" if loss else "parity", "summary": verdict,
        "mean_diff_points": round(100 * mean, 3), "half_points": round(100 * half, 3),
        "level": 0.95, "seeds": n, "epochs": args.epochs, "subset": args.subset,
        "fp32_errors": errs["fp32"], "bf16_errors": errs["bf16"],
        "spec": spec.name, "data": "fashion-mnist", "cpu": cpu_model(),
        "torch": torch.__version__, "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "command": "benchmarks/bench_bf16_parity.py " + " ".join(sys.argv[1:]),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    if args.record:
        PARITY_FILE.write_text(json.dumps(record, indent=2) + "\n")
        print(f"recorded in {PARITY_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
