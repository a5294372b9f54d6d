"""`netscale study`, `netscale report` and `netscale quickstart`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netscale.cli.common import positive_int, print_json, seconds
from netscale.errors import DataNotFound, NetscaleError
from netscale.util.fmt import table
from netscale.util.io import atomic_write_text

if TYPE_CHECKING:  # the CLI imports the engine only when a command runs (start-up time)
    from netscale.advise.verdict import Decision, Verdict


def add_parser(sub: Any) -> None:
    _add_study_parser(sub)
    _add_report_parser(sub)
    _add_quickstart_parser(sub)


def _add_study_parser(sub: Any) -> None:
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


def _add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="HTML report, PNG plots and CSV of a study",
        description="Write STUDY_DIR/report/index.html (self-contained, opens offline), the "
        "figures as PNG and trials.csv.",
    )
    p.add_argument("study_dir", metavar="SOURCE",
                   help="a study directory, or a results file (.csv/.json, see "
                   "docs/results-format.md)")
    p.add_argument("--out", help="report directory (default STUDY_DIR/report, or FILE_report "
                   "next to a results file)")
    pg = p.add_mutually_exclusive_group()
    pg.add_argument("--percent", action="store_const", const=True, dest="percent",
                    default=None, help="a results file's top1_err column is in percent")
    pg.add_argument("--fraction", action="store_const", const=False, dest="percent",
                    help="a results file's top1_err column is a fraction")
    p.add_argument("--json", action="store_true",
                   help="also print the verdict as JSON (recommended, tied, reason, groups "
                   "with seeds and 95%% intervals); see docs/statistics.md")
    p.set_defaults(func=run_report_cmd)


def _add_quickstart_parser(sub: Any) -> None:
    p = sub.add_parser(
        "quickstart",
        help="a ready study on offline data (Fashion-MNIST or digits), trained, timed, reported",
        description="Scale a small RegNet-style base by d, w, r, dwr and dWr at s = 1, 2, 4, "
        "train each briefly with three seeds on Fashion-MNIST (Debian package "
        "dataset-fashion-mnist) or scikit-learn's digits (a smoke test), time it, write the "
        "report and end with the verdict in a few lines (recommended, tied with, why, what "
        "would separate them, where the report is); the verdict as JSON goes to "
        "STUDY_DIR/verdict.json (and to stdout with --json). About 3.5 minutes on 2 quiet "
        "cores.",
    )
    p.add_argument("--out", default="studies/quickstart", help="study directory")
    p.add_argument("--data", help="dataset (default: fashion-mnist if installed, else digits)")
    p.add_argument("--epochs", type=positive_int, help="override the quickstart's epochs")
    p.add_argument("--seeds", default="0,1,2", metavar="S,S,...",
                   help="training seeds, one replicate of every trial each (default 0,1,2); "
                   "a rerun with other seeds (e.g. 3,4,5 --out OTHER) checks the verdict")
    p.add_argument("--bench-budget", type=seconds, default=1.5, metavar="SECONDS",
                   help="runtime measurement budget per trial (default 1.5)")
    p.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                   help="trials trained at once, one CPU thread each (default: 2 on a "
                   "machine with 2+ cores; on 2 cores two 1-thread trials beat one 2-thread)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--dry-run", action="store_true", help="print the trials and stop")
    p.add_argument("--json", action="store_true",
                   help="print the verdict as JSON on stdout (the readable verdict goes to "
                   "stderr); it is always written to STUDY_DIR/verdict.json")
    p.set_defaults(func=run_quickstart_cmd)


def _load(args: argparse.Namespace) -> Any:
    from netscale.study.config import load_study_config

    return load_study_config(args.config, getattr(args, "set", None) or ())


def _dry_run_plan(cfg: Any) -> tuple[Any, Any, str, dict[str, str]]:
    """(planned trials, data info or None, why the data is missing, status of the trials
    already in the store)."""
    from netscale.study.planning import data_info, plan_trials
    from netscale.study.store import STORE_NAME, Store

    data_note = ""
    info = None
    if cfg.train:
        try:
            info = data_info(cfg)
        except DataNotFound as exc:  # the data may live on the machine that runs the study
            data_note = f"data missing: {exc}"
    plan = plan_trials(cfg, info)
    status: dict[str, str] = {}
    db = cfg.out_dir / STORE_NAME
    if db.is_file():
        with Store(db, readonly=True) as store:
            status = {t.id: t.status for t in store.trials(epochs=False)}
    return plan, info, data_note, status


def _dry_run(cfg: Any, as_json: bool, workers: int = 1, estimate: bool = True) -> int:
    plan, info, data_note, status = _dry_run_plan(cfg)
    est = _estimate(cfg, plan, info, workers) if estimate else None
    per = {t.id: t for t in est.trials} if est else {}
    if as_json:
        print_json([{**p.row(), "status": status.get(p.id, "new"),
                     **({"estimate_s": {"bench": round(per[p.id].bench_s, 1),
                                        "train": round(per[p.id].train_s, 1)}}
                        if p.id in per else {})} for p in plan])
        return 0
    by_id = {p.id: p for p in plan}

    def same(p: Any) -> str:
        c = by_id.get(p.same_as) if p.same_as else None
        if c:
            return f"same network as {c.strategy} x{c.factor:g}"
        if not p.within_tolerance:  # a pure strategy whose quanta cannot land closer
            return f"outside ±{cfg.tolerance:.0%} of x{p.factor:g} (closest pure shape)"
        return ""
    from netscale.util.fmt import duration

    rows = [[p.base, p.strategy, f"{p.factor:g}", f"{p.flops / 1e6:,.2f}",
             f"{p.params / 1e6:,.3f}", f"{p.acts / 1e6:,.3f}", p.resolution,
             ",".join(map(str, p.depths)), ",".join(map(str, p.widths)),
             f"{p.flops_factor:.3f}",
             duration(per[p.id].bench_s + per[p.id].train_s) if p.id in per else "",
             status.get(p.id, "new"), same(p)] for p in plan]
    n_alias = sum(p.same_as is not None for p in plan)
    distinct = (f" ({len(plan) - n_alias} to train and time; {n_alias} same network as "
                "another, not run twice)" if n_alias else "")
    print(f"study {cfg.name}: {len(plan)} trials{distinct} -> {cfg.out_dir}")
    print(table(rows, ["base", "strategy", "s", "flops (M MACs)", "params (M)", "acts (M)",
                       "px", "depths", "widths", "flops x", "est. time", "status", "note"],
                align="llrrrrrllrrll"))
    if info:
        from netscale.report.marks import describe_data

        print(f"\ndata: {describe_data(cfg.data_dict())} ({info['num_classes']} classes, "
              f"{info['in_channels']} "
              "input channel(s)); nothing was run (dry run).")
    elif data_note:
        print(f"\n{data_note}")
        print("(nothing was run; the plan does not need the data)")
    if est is not None:
        _print_estimate(cfg, plan, status, est, data_missing=bool(data_note))
    return 0


def _print_estimate(cfg: Any, plan: Any, status: dict[str, str], est: Any, *,
                    data_missing: bool = False) -> None:
    """The dry run's wall-time estimate (benchmark + training, units stated)."""
    from netscale.study.estimate import TRIAL_OVERHEAD_S
    from netscale.util.fmt import duration

    left = sum(1 for p in plan if status.get(p.id, "new") not in ("done", "failed"))
    imgs = (f"{est.n_train:,} training + {est.n_val or 0:,} val images x {est.epochs} "
            f"epoch{'s' if est.epochs != 1 else ''}" if est.n_train else
            "not estimated: the data is missing" if data_missing else "no training")
    print(f"\nestimated wall time (an ESTIMATE from multiply-adds, data size and a short "
          f"throughput probe on this machine, whose speed varies with its load): "
          f"{duration(est.total_s)} for all {len(plan)} trials"
          + (f" ({left} not finished yet)" if left != len(plan) else "")
          + f" = benchmark {duration(est.bench_total_s)} (one trial at a time, "
          f"{cfg.bench.budget:g} s budget each) + training {duration(est.train_total_s)} "
          f"({imgs}, {est.workers} trial(s) at a time, {TRIAL_OVERHEAD_S:g} s start-up "
          "each)")
    if est.probe:
        print(f"  {est.probe}")


def _estimate(cfg: Any, plan: Any, info: Any, workers: int) -> Any:
    from netscale.study.estimate import StudyWork, estimate_study
    from netscale.study.module_base import spec_from_payload

    specs = {p.id: spec_from_payload(p.spec) for p in plan}  # NetSpec or module factory
    return estimate_study(plan, specs, StudyWork.of(cfg, info, workers))


def _export(args: argparse.Namespace) -> int:
    from netscale.study.store import STORE_NAME, Store

    path = Path(args.config)
    if path.is_dir():
        db = path / STORE_NAME
    else:
        db = _load(args).out_dir / STORE_NAME
    if not db.is_file():
        raise NetscaleError(f"no results at {str(db)!r}; run the study first")
    if args.output:
        from netscale.util.validate import check_output_file

        check_output_file(args.output, "--output")
    with Store(db, readonly=True) as store:
        text = _export_text(store, args.export)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _export_text(store: Any, fmt: str) -> str:
    """The store's export with each row's group statistics (seeds, mean top-1 error and its
    95 % interval, the group's time interval and timing quality; docs/statistics.md)."""
    import io
    import json

    from netscale.advise.verdict import GROUP_COLUMNS, annotate_rows, group_trials
    from netscale.util import jsonio
    from netscale.util.text import csv_dict_writer

    info = json.loads(store.get_meta("data_info") or "{}")
    groups = group_trials(store.trials(), info.get("val_size") or None)
    rows = annotate_rows(store.export_rows(), groups)
    if fmt == "json":
        return jsonio.dumps(rows, indent=2) + "\n"
    buf = io.StringIO()
    if rows:
        keys = [k for k in rows[0] if k not in ("bench", "epochs", "env", *GROUP_COLUMNS)]
        w = csv_dict_writer(buf, [*keys, *GROUP_COLUMNS], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (jsonio.dumps(v) if isinstance(v, (list, dict)) else v)
                        for k, v in r.items()})
    return buf.getvalue()


def _check_workers(args: argparse.Namespace) -> None:
    from netscale.util.validate import max_threads

    if args.executor == "local" and args.workers > max_threads():
        raise NetscaleError(f"--workers {args.workers} is too many for this machine's "
                            f"{os.cpu_count() or 1} CPU(s) (at most {max_threads()} local "
                            "worker processes)")


def check_study_fits(cfg: Any, device: str | None) -> None:
    """Refuses (one line) a study with a trial whose model cannot fit in memory, estimated
    from its analytic counts before anything is built."""
    from netscale.complexity.limits import check_fits_memory
    from netscale.study.planning import plan_trials

    plan = plan_trials(cfg)
    if not plan:
        return
    from netscale.specs import NetSpec

    batch = cfg.recipe.batch_size if cfg.train else 1
    px = cfg.data.resolution if cfg.data is not None else None
    from netscale.study.module_base import is_module_spec_dict

    plan = [t for t in plan if not is_module_spec_dict(t.spec)]  # factories: no analytic count
    if not plan:
        return
    for phase, on, bs, train in (("training", cfg.train, batch, True),
                                 ("benchmark", cfg.bench.enabled, cfg.bench.batch_size,
                                  cfg.bench.mode != "infer")):
        if not on:
            continue
        worst = max(plan, key=lambda t: (t.params, t.acts))
        worst_acts = max(plan, key=lambda t: t.acts)
        for t in {worst.id: worst, worst_acts.id: worst_acts}.values():
            check_fits_memory(NetSpec.from_dict(t.spec), bs, train=train, device=device,
                              resolution=px if phase == "training" else None,
                              what=f"{cfg.source}: trial {t.id} ({phase}, {t.params:,} "
                              "params)",
                              hint="lower its factor or the batch size")


def run_study_cmd(args: argparse.Namespace) -> int:
    from netscale.util.device import check_device
    from netscale.util.validate import check_output_dir

    if args.output and not args.export:
        raise NetscaleError("--output needs --export csv|json")
    if args.export and args.dry_run:
        raise NetscaleError("--export writes a study's results and --dry-run plans a study "
                            "without running it; give one of them")
    check_device(args.device)
    _check_workers(args)
    if args.export:
        return _export(args)
    cfg = _load(args)
    if args.dry_run:
        return _dry_run(cfg, args.json, args.workers)
    check_output_dir(cfg.out_dir, "study directory")
    check_study_fits(cfg, args.device)
    from netscale.study.runner import run_study

    t0 = time.time()
    counts = run_study(cfg, executor=args.executor, workers=args.workers,
                       address=args.address, retry_failed=args.retry_failed,
                       device=args.device)
    summary = {"study": cfg.name, "dir": str(cfg.out_dir), **counts,
               "seconds": round(time.time() - t0, 1)}
    verdict = None
    if counts["done"] and cfg.train:
        from netscale.advise import verdict_for_study_dir

        verdict = verdict_for_study_dir(cfg.out_dir)
        summary["verdict"] = verdict.to_dict()
    if args.json:
        print_json(summary)
    else:
        print(f"study {cfg.name}: {counts['done']} done, {counts['failed']} failed, "
              f"{counts['pending'] + counts['running']} unfinished in {summary['seconds']} s; "
              f"results in {cfg.out_dir}/results.sqlite (report: netscale report "
              f"{cfg.out_dir})")
        if verdict is not None and verdict.recommended:
            g = verdict.group(verdict.recommended)
            tie = f", tied: {', '.join(verdict.tied)}" if verdict.tied else ""
            print(f"verdict at x{verdict.factor:g}: {verdict.recommended}{tie}"
                  + (f" ({g.err_text()} top-1 error over {g.n_seeds} seed(s), "
                     f"{g.time_text()})" if g else "")
                  + (" [SMOKE TEST: not meaningful]" if verdict.smoke_test else "")
                  + " (netscale report DIR --json for the groups and the reason)")
    return 0 if counts["failed"] == 0 and counts["pending"] + counts["running"] == 0 else 1


def run_report_cmd(args: argparse.Namespace) -> int:
    from netscale.report.html import make_report
    from netscale.util.validate import check_output_dir

    src = Path(args.study_dir)
    if not src.exists():
        raise NetscaleError(f"{args.study_dir!r} does not exist: give a study directory or a "
                            "results file (.csv/.json, see docs/results-format.md)")
    if src.is_dir():
        from netscale.advise.sources import load_study

        load_study(args.study_dir)  # a readable study, before anything is written
        check_output_dir(args.out or src / "report", "--out")
    else:
        check_output_dir(args.out or src.parent / f"{src.stem}_report", "--out")
    from netscale.study.interrupts import environment_writes

    out_dir = Path(args.out) if args.out else (
        src / "report" if src.is_dir() else src.parent / f"{src.stem}_report")
    with environment_writes(out_dir, "run the report again: it rewrites every file"):
        path = make_report(args.study_dir, args.out, percent=args.percent)
    if getattr(args, "json", False):
        from netscale.advise import verdict_for_study_dir
        from netscale.report.breakdown import breakdown_json

        print(f"wrote {path}", file=sys.stderr)
        print_json({**verdict_for_study_dir(args.study_dir).to_dict(),
                    "time_breakdown": breakdown_json(args.study_dir)})
        return 0
    print(f"wrote {path} (open it in a browser; PNGs and trials.csv alongside)")
    return 0


def run_quickstart_cmd(args: argparse.Namespace) -> int:
    from netscale.advise import is_smoke_test
    from netscale.report.html import make_report
    from netscale.study.quickstart import VERDICT_FILE, quickstart_config
    from netscale.study.runner import run_study
    from netscale.util.validate import check_output_dir

    try:
        seeds = [int(x) for x in str(args.seeds).split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or any(x < 0 for x in seeds):
        raise NetscaleError(f"--seeds must be distinct comma-separated integers >= 0 (e.g. "
                            f"0,1,2), got {args.seeds!r}")
    _check_workers(args)
    check_output_dir(args.out, "--out")  # the dry run refuses what the real run would
    if args.dry_run:  # the config files go to a temporary directory: --out stays untouched
        import tempfile

        with tempfile.TemporaryDirectory(prefix="netscale-quickstart-") as tmp:
            cfg = quickstart_config(Path(args.out), data=args.data, epochs=args.epochs,
                                    bench_budget=args.bench_budget, seeds=seeds,
                                    files_dir=Path(tmp))
            return _dry_run(cfg, args.json, args.workers)
    cfg = quickstart_config(Path(args.out), data=args.data, epochs=args.epochs,
                            bench_budget=args.bench_budget, seeds=seeds)
    t0 = time.time()
    data = cfg.data.name if cfg.data is not None else None
    print(f"netscale quickstart: {len(cfg.strategies)} strategies x factors "
          f"{', '.join(f'{f:g}' for f in cfg.factors)} x seeds {', '.join(map(str, seeds))} "
          f"on {data}; study dir {cfg.out_dir}", file=sys.stderr)
    if is_smoke_test(data):
        print(f"netscale quickstart: SMOKE TEST on {data} (Fashion-MNIST not found): the "
              "plumbing is tested, the accuracy verdict is not meaningful; get real data "
              "with: sudo apt-get install dataset-fashion-mnist", file=sys.stderr)
    counts = run_study(cfg, executor=args.executor, workers=args.workers)
    path = make_report(cfg.out_dir)
    from netscale.util.fmt import duration

    took = duration(time.time() - t0)
    from netscale.advise import verdict_for_study_dir

    v = verdict_for_study_dir(cfg.out_dir)
    from netscale.util import jsonio

    verdict_json = atomic_write_text(cfg.out_dir / VERDICT_FILE,
                                     jsonio.dumps(v.to_dict(), indent=1) + "\n")
    text = [f"quickstart finished in {took}: {counts['done']} trials done, "
            f"{counts['failed']} failed.", "",
            *quickstart_verdict_lines(v, report=path, verdict_json=verdict_json)]
    print("\n".join(text), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(jsonio.dumps(v.to_dict(), separators=(",", ":")))
    return 0 if counts["failed"] == 0 else 1


def quickstart_verdict_lines(v: Verdict, *, report: Path, verdict_json: Path) -> list[str]:
    """The quickstart's closing words: the verdict for a person, in a few labelled lines
    (recommended, tied with, why, what would separate them, where the report and the JSON
    are)."""
    lines = []
    if v.smoke_test:
        lines.append(f"SMOKE TEST on {v.data}: only the plumbing is tested, the accuracy "
                     "verdict is not meaningful (real data: sudo apt-get install "
                     "dataset-fashion-mnist)")
    dec = v.decision
    if not v.recommended or dec is None:
        lines.append(f"verdict: {v.reason}")
    else:
        g = v.group(v.recommended)
        seeds = sorted({x.n_seeds for x in v.groups if x.factor == v.factor})
        n_seeds = "/".join(map(str, seeds)) or "?"
        n_val = f", {v.n_val:,} validation images" if v.n_val else ""
        batch = f" per batch of {v.batch_size}" if v.batch_size else " per batch"
        lines.append(f"verdict at x{v.factor:g} flops (multiply-adds), {n_seeds} seed(s) per "
                     f"strategy{n_val}; top-1 error and ms{batch}, 95% intervals:")
        lines.append(f"  recommended  {_group_text(v, v.recommended)}")
        if v.tied:
            lines.append("  tied with    " + ", ".join(_group_text(v, s, time=False)
                                                  for s in v.tied)
                         + " (on error: each difference to the best includes 0)")
        else:
            lines.append("  tied with    none")
        lines.append(f"  why          {_why(dec)}")
        if v.to_separate:
            lines.append(f"  to separate  {v.to_separate}")
        if g is not None and g.seeds_missing:
            lines.append("  note         one seed per strategy: the intervals hold only the "
                         "validation sampling (train 3 or more seeds)")
    lines.extend(f"  note         {n}" for n in v.notes)
    lines.append(f"  report       {report}")
    lines.append(f"  JSON         {verdict_json} (--json prints it)")
    return lines


def _group_text(v: Verdict, strategy: str, time: bool = True) -> str:
    g = v.group(strategy)
    if g is None:
        return strategy
    return f"{strategy} {g.err_text()}" + (f", {g.time_text()}" if time else "")


def _why(dec: Decision) -> str:
    """Why the recommended strategy was chosen, from the verdict's decision."""
    pick = dec.pick
    if dec.is_tie:
        if pick.time_ms is None:
            text = f"no runtime to break the tie: {pick.name}, the most accurate, is named"
        else:
            text = f"{pick.name} is the fastest of the strategies tied on error"
            if dec.runtime_tied:
                text += (" (its lead over " + ", ".join(o.name for o in dec.runtime_tied)
                         + " is within the timing intervals: a runtime tie too)")
    elif dec.separated:
        nxt = dec.separated[0]
        text = (f"{pick.name} has the lowest top-1 error; the next, {nxt.name}, is "
                f"{100 * (nxt.err - pick.err):.2f} points worse, outside the interval of "
                "the difference")
    else:
        text = f"{pick.name} is the only strategy trained"
    if dec.flagged:
        text += ("; the runtime ranking rests on flagged timings ("
                 + ", ".join(f"{o.name}: {o.time_quality}" for o in dec.flagged) + ")")
    return text
