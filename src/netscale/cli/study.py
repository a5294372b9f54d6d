"""`netscale study`, `netscale report` and `netscale quickstart`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from netscale.cli.common import positive_float, positive_int, print_json
from netscale.errors import NetscaleError
from netscale.util.fmt import table
from netscale.util.io import atomic_write_text


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "study",
        help="run a scaling study (base x strategy x factor): scale, count, bench, train",
        description="Run every trial of a study config: scale -> count -> benchmark -> train "
        "-> evaluate, recorded in STUDY_DIR/results.sqlite. Re-running resumes: finished "
        "trials are skipped, interrupted ones continue from their last checkpoint.",
    )
    p.add_argument("config", metavar="CONFIG_OR_STUDY_DIR",
                   help="study config (.yaml); with --export also a study directory")
    p.add_argument("--dry-run", action="store_true",
                   help="print the trial table (flops, params, acts) and run nothing")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help="override a config value without editing the file (VALUE is YAML; "
                   "repeatable; recorded with the study), e.g. --set recipe.epochs=1 "
                   "--set factors=[1,2] --set out=studies/b")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="run trials in this machine's processes (local) or as Ray tasks")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="trials at once (local: worker processes; ray: concurrent tasks)")
    p.add_argument("--address", help="Ray cluster address (e.g. auto, ray://head:10001); "
                   "default: start a local Ray instance")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--retry-failed", action="store_true",
                   help="give trials marked failed another round of retries")
    p.add_argument("--export", choices=("csv", "json"),
                   help="print all trials as CSV or JSON (for pandas) and exit")
    p.add_argument("--output", "-o", help="with --export: write to this file instead")
    p.add_argument("--json", action="store_true", help="dry run / summary as JSON")
    p.set_defaults(func=run_study_cmd)

    p = sub.add_parser(
        "report",
        help="HTML report, PNG plots and CSV of a study",
        description="Write STUDY_DIR/report/index.html (self-contained, opens offline), the "
        "figures as PNG and trials.csv.",
    )
    p.add_argument("study_dir", metavar="STUDY_DIR")
    p.add_argument("--out", help="report directory (default STUDY_DIR/report)")
    p.set_defaults(func=run_report_cmd)

    p = sub.add_parser(
        "quickstart",
        help="a ready study on offline data (Fashion-MNIST or digits), trained, timed, reported",
        description="Scale a small RegNet-style base by d, w, r, dwr and dWr at s = 1, 2, 4, "
        "train each briefly on Fashion-MNIST (Debian package dataset-fashion-mnist) or "
        "scikit-learn's digits, time it, and write the report. About 5-10 minutes on 2 cores.",
    )
    p.add_argument("--out", default="studies/quickstart", help="study directory")
    p.add_argument("--data", help="dataset (default: fashion-mnist if installed, else digits)")
    p.add_argument("--epochs", type=positive_int, help="override the quickstart's epochs")
    p.add_argument("--bench-budget", type=positive_float, default=1.5, metavar="SECONDS",
                   help="runtime measurement budget per trial (default 1.5)")
    p.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                   help="trials trained at once, one CPU thread each (default: 2 on a "
                   "machine with 2+ cores; on 2 cores two 1-thread trials beat one 2-thread)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--dry-run", action="store_true", help="print the trials and stop")
    p.set_defaults(func=run_quickstart_cmd)


def _load(args: argparse.Namespace) -> Any:
    from netscale.study.config import load_study_config

    return load_study_config(args.config, getattr(args, "set", None) or ())


def _dry_run(cfg: Any, as_json: bool, workers: int = 1, estimate: bool = True) -> int:
    from netscale.study.runner import STORE_NAME, data_info, plan_trials
    from netscale.study.store import Store

    data_note = ""
    info = None
    if cfg.train:
        try:
            info = data_info(cfg)
        except NetscaleError as exc:  # the dry run works without the data
            data_note = f"data missing: {exc}"
    plan = plan_trials(cfg, info)
    status: dict[str, str] = {}
    db = cfg.out_dir / STORE_NAME
    if db.is_file():
        with Store(db) as store:
            status = {t.id: t.status for t in store.trials(epochs=False)}
    est = _estimate(cfg, plan, info, workers) if estimate else None
    per = {t.id: t for t in est.trials} if est else {}
    if as_json:
        print_json([{**p.row(), "status": status.get(p.id, "new"),
                     **({"estimate_s": {"bench": round(per[p.id].bench_s, 1),
                                        "train": round(per[p.id].train_s, 1)}}
                        if p.id in per else {})} for p in plan])
        return 0
    from netscale.study.estimate import TRIAL_OVERHEAD_S
    from netscale.study.runner import _duration

    rows = [[p.base, p.strategy, f"{p.factor:g}", f"{p.flops / 1e6:,.2f}",
             f"{p.params / 1e6:,.3f}", f"{p.acts / 1e6:,.3f}", p.resolution,
             ",".join(map(str, p.depths)), ",".join(map(str, p.widths)),
             f"{p.flops_factor:.3f}",
             _duration(per[p.id].bench_s + per[p.id].train_s) if p.id in per else "",
             status.get(p.id, "new")] for p in plan]
    print(f"study {cfg.name}: {len(plan)} trials -> {cfg.out_dir}")
    print(table(rows, ["base", "strategy", "s", "flops (M MACs)", "params (M)", "acts (M)",
                       "px", "depths", "widths", "flops x", "est. time", "status"],
                align="llrrrrrllrrl"))
    if info:
        from netscale.report.marks import describe_data

        print(f"\ndata: {describe_data(cfg.data)} ({info['num_classes']} classes, "
              f"{info['in_channels']} "
              "input channel(s)); nothing was run (dry run).")
    elif data_note:
        print(f"\n{data_note}")
        print("(nothing was run; the table and the estimate do not need the data)")
    if est is not None:
        left = sum(1 for p in plan if status.get(p.id, "new") not in ("done", "failed"))
        imgs = (f"{est.n_train:,} training + {est.n_val or 0:,} val images x {est.epochs} "
                f"epoch{'s' if est.epochs != 1 else ''}" if est.n_train else "no training")
        print(f"\nestimated wall time (an ESTIMATE from multiply-adds, data size and a short "
              f"throughput probe on this machine, whose speed varies with its load): "
              f"{_duration(est.total_s)} for all {len(plan)} trials"
              + (f" ({left} not finished yet)" if left != len(plan) else "")
              + f" = benchmark {_duration(est.bench_total_s)} (one trial at a time, "
              f"{cfg.bench.budget:g} s budget each) + training {_duration(est.train_total_s)} "
              f"({imgs}, {est.workers} trial(s) at a time, {TRIAL_OVERHEAD_S:g} s start-up "
              "each)")
        if est.probe:
            print(f"  {est.probe}")
    return 0


def _estimate(cfg: Any, plan: Any, info: Any, workers: int) -> Any:
    from netscale.specs import NetSpec
    from netscale.study.estimate import data_sizes, estimate_study

    n_train, n_val = data_sizes(cfg.data, info)
    specs = {p.id: NetSpec.from_dict(p.spec) for p in plan}
    return estimate_study(plan, specs=specs, epochs=int(cfg.recipe.get("epochs", 10)),
                          n_train=n_train, n_val=n_val, bench_enabled=cfg.bench.enabled,
                          bench_budget=cfg.bench.budget, train=cfg.train, workers=workers,
                          batch_size=int(cfg.recipe.get("batch_size", 128)))


def _export(args: argparse.Namespace) -> int:
    from netscale.study.runner import STORE_NAME
    from netscale.study.store import Store

    path = Path(args.config)
    if path.is_dir():
        db = path / STORE_NAME
    else:
        db = _load(args).out_dir / STORE_NAME
    if not db.is_file():
        raise NetscaleError(f"no results at {str(db)!r}; run the study first")
    with Store(db) as store:
        text = store.export(args.export)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def run_study_cmd(args: argparse.Namespace) -> int:
    if args.export:
        return _export(args)
    cfg = _load(args)
    if args.dry_run:
        return _dry_run(cfg, args.json, args.workers)
    from netscale.study.runner import run_study

    t0 = time.time()
    counts = run_study(cfg, executor=args.executor, workers=args.workers,
                       address=args.address, retry_failed=args.retry_failed,
                       device=args.device)
    summary = {"study": cfg.name, "dir": str(cfg.out_dir), **counts,
               "seconds": round(time.time() - t0, 1)}
    if args.json:
        print_json(summary)
    else:
        print(f"study {cfg.name}: {counts['done']} done, {counts['failed']} failed, "
              f"{counts['pending'] + counts['running']} unfinished in {summary['seconds']} s; "
              f"results in {cfg.out_dir}/results.sqlite (report: netscale report "
              f"{cfg.out_dir})")
    return 0 if counts["failed"] == 0 and counts["pending"] + counts["running"] == 0 else 1


def run_report_cmd(args: argparse.Namespace) -> int:
    from netscale.report.html import make_report

    path = make_report(args.study_dir, args.out)
    print(f"wrote {path} (open it in a browser; PNGs and trials.csv alongside)")
    return 0


def run_quickstart_cmd(args: argparse.Namespace) -> int:
    from netscale.report.html import make_report
    from netscale.study.quickstart import quickstart_config
    from netscale.study.runner import run_study

    cfg = quickstart_config(Path(args.out), data=args.data, epochs=args.epochs,
                            bench_budget=args.bench_budget)
    if args.dry_run:
        return _dry_run(cfg, False, args.workers)
    t0 = time.time()
    print(f"netscale quickstart: {len(cfg.strategies)} strategies x factors "
          f"{', '.join(f'{f:g}' for f in cfg.factors)} on {cfg.data.get('name')}; study dir "
          f"{cfg.out_dir}", file=sys.stderr)
    counts = run_study(cfg, executor=args.executor, workers=args.workers)
    path = make_report(cfg.out_dir)
    minutes = (time.time() - t0) / 60
    from netscale.report.analysis import recommend_from_trials
    from netscale.study.store import Store

    with Store(cfg.out_dir / "results.sqlite") as store:
        rec = recommend_from_trials(store.trials())
    print(f"\nquickstart finished in {minutes:.1f} min: {counts['done']} trials done, "
          f"{counts['failed']} failed.")
    if rec.strategy:
        print(f"recommended strategy: {rec.strategy} — {rec.reason}")
    print(f"report: {path}")
    return 0 if counts["failed"] == 0 else 1
