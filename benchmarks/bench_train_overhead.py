"""Trainer overhead and data-pipeline headroom.

1. Training throughput (images/s) of ``netscale.train.train`` vs a bare PyTorch loop
   (forward, loss, backward, SGD step; nothing else) on the same model, data loader and
   batch. The trainer's figure is its own training-phase throughput (per-step LR schedule,
   metrics, non-finite checks, progress), without the per-epoch evaluation and checkpoint,
   which are reported separately. Target: overhead <= 5 %.
2. The data pipeline alone (batches of augmented, normalized tensors) vs what the model
   consumes in training. Target: >= 3x.

Runs alternate (bare, trainer, bare, ...); the overhead is the median over repeats of each
pair's ratio, so that drifting load on a shared machine disturbs the comparison less.

    .venv/bin/python benchmarks/bench_train_overhead.py [--data fashion-mnist] [--subset 8192]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from netscale.data import DataConfig, load_dataset, make_loaders
from netscale.errors import NetscaleError
from netscale.models import build_model
from netscale.train import Recipe, param_groups, train
from netscale.util.fmt import table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from small_specs import small_regnet


def bare_loop(spec, loader, recipe: Recipe) -> float:
    """Images/s of one epoch of the plainest possible training loop."""
    torch.manual_seed(recipe.seed)
    model = build_model(spec)
    model.train()
    opt = torch.optim.SGD(param_groups(model, recipe.weight_decay), lr=recipe.effective_lr,
                          momentum=recipe.momentum, nesterov=True)
    crit = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    loader.set_epoch(0)
    n = 0
    t0 = time.perf_counter()
    for x, y in loader:
        loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t0)


def pipeline_only(loader, epochs: int = 2) -> float:
    n = 0
    t0 = time.perf_counter()
    for e in range(epochs):
        loader.set_epoch(e)
        for _x, y in loader:
            n += len(y)
    return n / (time.perf_counter() - t0)


def imagefolder_pipeline(resolution: int, n: int = 512) -> tuple[float, int]:
    """Images/s of the lazily decoded ImageFolder pipeline on generated 64x48 PNGs."""
    import numpy as np
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="netscale-bench-if-"))
    rng = np.random.default_rng(0)
    for i in range(n):
        d = tmp / "train" / f"c{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(d / f"{i}.png")
    cfg = DataConfig(path=str(tmp), workers=1)
    ds = load_dataset(cfg)
    loader, _, _ = make_loaders(ds, cfg, resolution=resolution, channels=3, batch_size=64)
    pipeline_only(loader, 1)  # start the worker
    return pipeline_only(loader, 2), 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="dataset (default fashion-mnist, else digits)")
    ap.add_argument("--subset", type=int, default=8192, help="training images per epoch")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.data
    if name is None:
        try:
            load_dataset("fashion-mnist")
            name = "fashion-mnist"
        except NetscaleError:
            name = "digits"
    data = DataConfig(name=name, subset=args.subset, val_subset=512)
    ds = load_dataset(data)
    spec = small_regnet(num_classes=ds.info.num_classes, in_channels=ds.info.in_channels,
                        resolution=args.resolution)
    recipe = Recipe(epochs=1, batch_size=args.batch_size, warmup_epochs=0.5)
    loader, _, _ = make_loaders(ds, data, resolution=args.resolution,
                                channels=spec.in_channels, batch_size=args.batch_size)

    print(f"model {spec.name} ({sum(p.numel() for p in build_model(spec).parameters()):,} "
          f"params) at {args.resolution} px, data {ds.info.name} ({ds.info.train_size:,} train "
          f"images), batch {args.batch_size}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}", flush=True)
    bare_loop(spec, loader, recipe)  # warm-up (allocator, kernels)
    bare, ours, extra = [], [], []
    for r in range(args.repeats):
        bare.append(bare_loop(spec, loader, recipe))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = train(spec, data, recipe, Path(tmp) / "run", quiet=True, dataset=ds)
            total = time.perf_counter() - t0
        h = res.history[0]
        ours.append(h["images_per_sec"])
        extra.append((h["eval_time"], total - h["train_time"] - h["eval_time"]))
        print(f"  repeat {r + 1}: bare {bare[-1]:,.0f} img/s, trainer {ours[-1]:,.0f} img/s",
              file=sys.stderr, flush=True)
    pipe = statistics.median(pipeline_only(loader) for _ in range(args.repeats))
    b, o = statistics.median(bare), statistics.median(ours)
    overhead = 1.0 - statistics.median(t / r for t, r in zip(ours, bare))
    rows = [
        ["bare PyTorch loop (train step only), median", f"{b:,.0f}", "", ""],
        ["netscale trainer (training phase), median", f"{o:,.0f}", f"{overhead:+.1%}",
         "PASS" if overhead <= 0.05 else "FAIL (> 5%)"],
        ["  best of repeats: bare / trainer", f"{max(bare):,.0f} / {max(ours):,.0f}", "", ""],
        ["data pipeline alone (in-memory, crop+flip)", f"{pipe:,.0f}", f"{pipe / b:.1f}x model",
         "PASS" if pipe >= 3 * b else "FAIL (< 3x)"],
    ]
    try:
        ifp, workers = imagefolder_pipeline(args.resolution)
        rows.append([f"ImageFolder PNG pipeline ({workers} worker, rrc)", f"{ifp:,.0f}",
                     f"{ifp / b:.1f}x model", "info"])
    except Exception as exc:  # pragma: no cover - informational row only
        rows.append(["ImageFolder PNG pipeline", f"failed: {exc}", "", ""])
    print(table(rows, ["measurement", "images/s", "vs bare", "target"], align="lrrl"))
    ev, ck = min(extra)
    print(f"\nper epoch outside the training phase: evaluation of 512 val images {ev:.2f} s, "
          f"model/optimizer set-up + checkpoint + log {ck:.2f} s")
    print(f"trainer overhead {overhead:+.1%} (median of paired ratios; target <= 5%); "
          f"pipeline {pipe / b:.1f}x the model's consumption (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
