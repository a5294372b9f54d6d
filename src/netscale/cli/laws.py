"""`netscale fit` (scaling-law fits of a study) and `netscale recommend` (choose a strategy)."""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from typing import Any

from netscale.cli.common import parse_float_list, positive_int, print_json, seed_int
from netscale.errors import NetscaleError
from netscale.scaling.strategy import NAMED


def add_parser(sub: Any) -> None:
    _add_fit_parser(sub)
    _add_recommend_parser(sub)


def _add_fit_parser(sub: Any) -> None:
    from netscale.advise.study_fits import LAW_CHOICES, X_METRICS

    p = sub.add_parser(
        "fit",
        help="fit scaling laws (error vs flops) per strategy of a study, with intervals",
        description="Fit top-1 error against a complexity metric for each scaling strategy of a "
        "study: the saturating law err = a·x^(−b) + c (or the plain power law err = a·x^(−b) "
        "when there are too few points), robustly, with bootstrap intervals, goodness of fit "
        "and a leave-largest-out check; plus the runtime model of the study's benchmark rows. "
        "Flops are multiply-adds; errors are fractions.",
    )
    p.add_argument("study_dir", metavar="SOURCE",
                   help="a study directory (results.sqlite) or a results file (.csv or .json: "
                   "group, flops or model, top1_err...; see docs/results-format.md)")
    _results_args(p)
    p.add_argument("--at", metavar="FLOPS,...",
                   help="predict each group's error at these x values (e.g. 3.2G,8G,32G; "
                   "flops = multiply-adds) with 95%% prediction intervals and how far past the "
                   "fitted data each lies")
    p.add_argument("--noise", metavar="SD",
                   help="a known run-to-run noise (standard deviation of the top-1 error) used "
                   "as a floor by the intervals: 0.3pt (percentage points) or 0.003 (fraction)")
    p.add_argument("--x", default="flops", choices=X_METRICS,
                   help="complexity metric on the x axis (default flops)")
    p.add_argument("--law", default="auto", choices=LAW_CHOICES,
                   help="auto (default): saturating when a strategy has >= 4 points over >= 3 "
                   "sizes, else the plain power law; or force one law")
    p.add_argument("--level", type=float, default=0.95,
                   help="interval level (default 0.95)")
    p.add_argument("--n-boot", type=int, default=200,
                   help="bootstrap refits per fit (default 200)")
    p.add_argument("--seed", type=seed_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--base", help="only this base (studies with several bases)")
    p.add_argument("--json", action="store_true", help="print the fits as JSON")
    p.add_argument("--samples", action="store_true",
                   help="with --json: keep the bootstrap draws so the fits can be reloaded "
                   "with FitReport.from_dict and predict intervals")
    p.set_defaults(func=run_fit)


def _add_recommend_parser(sub: Any) -> None:
    from netscale.advise.study_fits import LAW_CHOICES

    p = sub.add_parser(
        "recommend",
        help="choose a scaling strategy (and fast-scaling α) for a flops target under "
        "latency / params / activations limits",
        description="Scale the base to the target with every candidate strategy (named ones "
        "and fast:α on a grid), predict each one's error from the study's fitted laws and its "
        "runtime from the study's runtime model (or measure it), and rank the feasible ones by "
        "predicted error (near-ties by runtime). Without a study (a model name or spec file), "
        "candidates are timed here and ranked by the paper's prior (α near 0.8, dWr).",
    )
    p.add_argument("source", metavar="STUDY_DIR_OR_BASE",
                   help="a study directory (trained results), a results file (.csv/.json, "
                   "see docs/results-format.md: the groups are ranked), a model name / spec "
                   "file, or a zoo model (timm:NAME, torchvision:NAME; docs/zoo.md)")
    _results_args(p)
    p.add_argument("--noise", metavar="SD",
                   help="results files: a known run-to-run noise of the top-1 error, a floor "
                   "for the prediction intervals: 0.3pt (points) or 0.003 (fraction)")
    p.add_argument("--target-flops", required=True, metavar="TARGET",
                   help="flops factor (4x) or absolute multiply-adds (4G, 400M)")
    p.add_argument("--max-latency", type=float, metavar="MS",
                   help="max time in ms per batch (of --batch-size): inference, or a training "
                   "step with --latency-mode train")
    p.add_argument("--latency-mode", choices=("infer", "train"), default="infer",
                   help="what --max-latency and the runtime column measure: inference time "
                   "(default) or training step time (forward + backward + step) per batch; "
                   "from the study's benchmark rows of that mode (bench.mode train or both) "
                   "or measured with --measure")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help="batch size of the latency limit (default: the study's benchmark "
                   "batch size; without a study the bench default, 8 on CPU)")
    p.add_argument("--max-params", metavar="P", help="max parameters (e.g. 25M)")
    p.add_argument("--max-acts", metavar="A", help="max activations (e.g. 40M)")
    p.add_argument("--device", help="cpu or cuda[:N] for measured runtimes (default: the "
                   "study's benchmark device, else cuda if available)")
    p.add_argument("--measure", action=argparse.BooleanOptionalAction, default=None,
                   help="time the candidates here with the bench harness (default: only "
                   "without a study)")
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds of timing per measured candidate (default 1)")
    p.add_argument("--strategies", help=f"named candidates instead of {','.join(NAMED)} "
                   "(any strategy spelling; the study's trained ones are always included)")
    p.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                   help="fast compound α grid (default 0,0.1,...,1; '' for none)")
    p.add_argument("--base", help="the base to scale (studies with several bases)")
    p.add_argument("--x", default="flops", choices=("flops", "params", "acts"),
                   help="metric the error laws are fitted against (default flops)")
    p.add_argument("--law", default="auto", choices=LAW_CHOICES,
                   help="law for the error fits (default auto)")
    p.add_argument("--out", help="write the chosen scaled spec here (.yaml or .json)")
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    p.set_defaults(func=run_recommend)


def _results_args(p: Any) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--percent", action="store_const", const=True, dest="percent",
                   default=None, help="a results file's top1_err column is in percent")
    g.add_argument("--fraction", action="store_const", const=False, dest="percent",
                   help="a results file's top1_err column is a fraction (the default for "
                   "top1_err; top1_err_pct / top1_err_frac headers say it themselves)")


def parse_noise(text: str | None) -> float | None:
    """'0.3pt' / '0.3pts' / '0.3%' -> 0.003; '0.003' -> 0.003 (a fraction)."""
    if text is None:
        return None
    t = str(text).strip().lower().replace(" ", "")
    for suf in ("points", "point", "pts", "pt", "%"):
        if t.endswith(suf):
            try:
                v = float(t[: -len(suf)]) / 100.0
            except ValueError:
                break
            if not (math.isfinite(v) and 0 <= v < 0.1):
                raise NetscaleError(f"--noise {text!r}: give a standard deviation below 10 "
                                    "points, e.g. 0.3pt")
            return v
    else:
        try:
            v = float(t)
        except ValueError:
            v = math.nan
        if math.isfinite(v) and 0 <= v < 0.1:
            return v
        if math.isfinite(v) and v >= 0.1:
            raise NetscaleError(f"--noise {text!r} as a fraction would be {100 * v:g} points; "
                                f"write {v:g}pt for percentage points or a fraction below 0.1")
    raise NetscaleError(f"--noise {text!r}: write the run-to-run standard deviation as 0.3pt "
                        "(percentage points) or 0.003 (fraction)")


def parse_at(text: str) -> list[float]:
    from netscale.util.units import parse_count

    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise NetscaleError("--at is empty; give x values such as 3.2G,8G,32G")
    values = [parse_count(p, "--at value") for p in parts]
    small = [v for v in values if v < 1]
    if small:
        raise NetscaleError(f"--at {small[0]:g} is below 1: --at takes counts (flops in "
                            "multiply-adds, params, activations), e.g. 3.2G,8G")
    return values


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _holdout_text(rep: Any) -> str:
    from netscale.advise.records import pct
    h = rep.holdout.get(rep.best)
    if h is None:
        return "-"
    if h.skipped:
        return "skipped (too few smaller models)"
    return (f"{pct(h.predicted)} [{pct(h.lo)}, {pct(h.hi)}] vs {pct(h.actual)} "
            f"({'inside' if h.within else 'OUTSIDE'}, {100 * (h.predicted - h.actual):+.2f})")


def fit_table(fits: Any, head: str = "strategy") -> str:
    """The fit table; every error in it (c, RMSE, leave-largest-out) is in percentage
    points."""
    from netscale.advise.records import pct, pct_interval, with_interval
    from netscale.util.fmt import table

    rows = []
    for label, f in fits.fits.items():
        alpha = "-" if f.alpha is None else f"{f.alpha:.3g}"
        pts = f"{f.n_points} ({f.n_sizes})"
        if f.report is None:
            rows.append([label, alpha, pts, "-", "-", "-", "-", "-", "not fitted (see notes)"])
            continue
        lf = f.report.best_fit
        c = pct_interval(lf.c, lf.intervals.get("c")) if lf.law == "saturating" else "-"
        rows.append([label, alpha, pts, lf.law, with_interval(lf.b, lf.intervals.get("b")), c,
                     f"{lf.r2_log:.3f}" if math.isfinite(lf.r2_log) else "-",
                     pct(lf.rmse), _holdout_text(f.report)])
    return table(rows, [head, "α", "points (sizes)", "law", "b [CI]", "c [CI] (pts)",
                        "R²(log)", "RMSE (pts)",
                        "leave-largest-out: predicted [PI] vs actual (pts, difference)"],
                 align="lrrlrrrrl")


def grouped_notes(fits: Any) -> list[str]:
    """Notes per strategy, identical notes merged ("d, w: ...")."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for label, f in fits.fits.items():
        for n in ((f"not fitted: {f.skipped}",) if f.skipped else ()) + f.notes:
            by_text[n].append(label)
        if f.report is not None:
            for n in f.report.best_fit.notes:
                by_text[n].append(label)
    return [f"{', '.join(labels)}: {text}" for text, labels in by_text.items()]


def runtime_text(rt: Any) -> str:
    if rt is None:
        return "runtime model: none (the study has no benchmark rows)"
    r = ", ".join(f"{m} {f.pearson_r:.3f}" for m, f in rt.model.per_metric.items()
                  if math.isfinite(f.pearson_r))
    lines = [f"runtime model ({rt.summary()}): {rt.formula()}",
             f"  Pearson r of time vs each metric: {r or 'undefined'}; best single metric: "
             f"{rt.model.best_metric}"]
    if rt.other_settings:
        lines.append(f"  also measured (not used): {', '.join(rt.other_settings)}")
    return "\n".join(lines)


def run_fit(args: argparse.Namespace) -> int:
    from netscale.advise.records import with_interval
    from netscale.advise.results_io import load_source
    from netscale.advise.study_fits import fit_study, study_runtime
    from netscale.util.validate import MAX_N_BOOT, check_fraction, check_int_range

    check_int_range(args.n_boot, "--n-boot", 0, MAX_N_BOOT,
                    "each refit is kept in memory; 200-2000 is plenty for 95% intervals")
    check_fraction(args.level, "--level")
    if args.samples and not args.json:
        raise NetscaleError("--samples only changes the --json output; add --json (or leave "
                            "--samples out)")
    noise = parse_noise(args.noise)
    at = parse_at(args.at) if args.at is not None else None
    study = load_source(args.study_dir, percent=args.percent)
    trials = [t for t in study.trials if args.base is None or t.base == args.base]
    if args.base is not None and not trials:
        raise NetscaleError(f"base {args.base!r} is not in the study; bases: "
                            f"{', '.join(study.bases)}")
    fits = fit_study(trials, x=args.x, law=args.law, n_boot=args.n_boot, level=args.level,
                     seed=args.seed, noise=noise)
    rt = study_runtime(trials)
    preds = predictions_at(fits, at, args.level) if at is not None else None
    if args.json:
        extra: dict[str, Any] = {}
        if study.source_info() is not None:
            extra["source"] = study.source_info()
        if preds is not None:
            extra["predictions"] = preds
        print_json({"study": study.name, "path": str(study.path), **fits.to_dict(
            samples=args.samples), "noise": noise, "runtime": rt.to_dict() if rt else None,
            **extra})
        return 0
    _print_fit_head(args, study, noise)
    print()
    print("all errors in percentage points (pts); b is the exponent of x")
    print(fit_table(fits, study.group_word))
    print()
    print("fits:")
    for label, f in fits.fits.items():
        if f.report is not None:
            lf = f.report.best_fit
            a = lf.intervals.get("a")
            print(f"  {label}: {lf.formula()}   (a {with_interval(lf.a, a)}; err as a fraction)")
    notes = grouped_notes(fits)
    if notes:
        print("notes:")
        for n in notes:
            print(f"  {n}")
    if preds is not None:
        print()
        print(predictions_text(preds, args.x, args.level))
    if study.source_info() is None or rt is not None:
        print()
        print(runtime_text(rt))
    return 0


def _print_fit_head(args: argparse.Namespace, study: Any, noise: float | None) -> None:
    """What was fitted: the source, x metric (flops are multiply-adds), law and intervals."""
    from netscale.advise.sources import ResultsFile

    print(f"{study.kind} {study.name} ({study.path}): top-1 error vs {args.x}"
          f"{' (multiply-adds)' if 'flops' in args.x else ''}, law {args.law}, "
          f"{args.level:.0%} intervals ({args.n_boot} bootstrap refits)"
          + (f", known noise {100 * noise:.2f} points" if noise else ""))
    if isinstance(study, ResultsFile):
        print(f"  {study.summary()}")


EXTRAPOLATION_WARN = 4.0


def predictions_at(fits: Any, at: list[float], level: float) -> dict[str, Any]:
    """Per group: the predicted error at each x with its prediction interval and how far
    past the fitted data it lies; groups that could not be fitted carry the reason."""
    out: dict[str, Any] = {}
    for label, f in fits.fits.items():
        if f.report is None:
            out[label] = {"skipped": f.skipped, "predictions": []}
            continue
        lf = f.report.best_fit
        rows = []
        for xv in at:
            p = f.report.predict(xv, level)
            warn = None
            if p.extrapolation > EXTRAPOLATION_WARN:
                side = "largest" if xv > lf.x_max else "smallest"
                warn = (f"x{p.extrapolation:.3g} past the {side} fitted model: beyond "
                        f"x{EXTRAPOLATION_WARN:g} the law is a guess, trust the interval "
                        "rather than the value")
            rows.append({**p.to_dict(), "warning": warn})
        out[label] = {"law": lf.law, "fallback_power": lf.law == "power" and any(
            n.startswith("only ") for n in f.notes), "x_min": lf.x_min, "x_max": lf.x_max,
            "noise": lf.noise, "predictions": rows}
    return {"x": fits.x_metric, "level": level, "units": {"error": "fraction",
            "flops": "multiply-adds"}, "groups": out}


def predictions_text(preds: dict[str, Any], x: str, level: float) -> str:
    from netscale.advise.records import fmt_count, pct
    from netscale.util.fmt import table

    unit = " (multiply-adds)" if x == "flops" else ""
    rows, skipped, fallback = [], [], []
    warns: dict[str, list[str]] = {}
    narrow: list[str] = []
    for label, g in preds["groups"].items():
        if not g["predictions"]:
            skipped.append(f"{label}: not fitted ({g['skipped']})")
            continue
        if g["fallback_power"]:
            fallback.append(label)
        for p in g["predictions"]:
            ex = p["extrapolation"]
            rows.append([label, fmt_count(p["x"]), g["law"] + ("*" if g["fallback_power"] else ""),
                         pct(p["value"]), f"[{pct(p['lo'])}, {pct(p['hi'])}]",
                         "inside" if ex <= 1 + 1e-9 else f"x{ex:.3g}",
                         " ".join(w for w, on in (("WARNING", p["warning"]),
                                                   ("NARROW", p.get("narrower_than_loo")))
                                  if on)])
            if p["warning"]:
                warns.setdefault(label, []).append(fmt_count(p["x"]))
            if p.get("narrower_than_loo"):
                narrow.append(f"warning: {label} at {fmt_count(p['x'])}: NARROW, the interval is "
                              "narrower than the fit's own leave-one-out error (±"
                              f"{100 * p['loo_rmse_log']:.2f} % relative): too confident")
    lines = [f"predicted top-1 error at --at {x}{unit}; errors in percentage points, "
             f"{level:.0%} prediction intervals for a new run; 'past data' = how far beyond "
             "the fitted sizes"]
    if rows:
        lines.append(table(rows, ["group", x, "law", "predicted (pts)",
                                  f"{level:.0%} interval (pts)", "past data", ""],
                           align="lrlrrrl"))
    for label, xs in warns.items():
        g = preds["groups"][label]
        lines.append(f"warning: {label} at {', '.join(xs)}: more than x{EXTRAPOLATION_WARN:g} "
                     f"past the fitted sizes ({fmt_count(g['x_min'])}..{fmt_count(g['x_max'])}); "
                     "there the law is a guess: trust the interval rather than the value")
    lines += narrow
    if fallback:
        lines.append(f"* {', '.join(fallback)}: the plain power law (too few points for the "
                     "saturating law) has no floor and underpredicts larger models (by 2-6 "
                     "points on pycls's RegNets); its values are optimistic")
    for s in skipped:
        lines.append(f"no prediction: {s}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# recommend
# --------------------------------------------------------------------------------------------


def run_recommend(args: argparse.Namespace) -> int:
    from netscale.advise.recommend import recommend
    from netscale.advise.results_io import is_results_file

    opts = _recommend_options(args)
    if args.out and args.source.startswith(("timm:", "torchvision:")):
        raise NetscaleError("--out writes a netscale spec; a zoo base's candidates are zoo "
                            "calls: build the chosen one with its printed call (or --json)")
    if is_results_file(args.source):  # results trained elsewhere: rank the file's groups
        return _recommend_results_file(args, opts)
    if args.percent is not None or args.noise is not None:
        raise NetscaleError("--percent/--fraction/--noise apply to a results file (.csv or "
                            f".json), not to {args.source!r}")
    rec = recommend(args.source, args.target_flops, opts)
    if args.out:
        rec.chosen_spec().save(args.out)
    if args.json:
        print_json(rec.to_dict())
    else:
        print(rec.format_text())
        if args.out:
            print(f"\nwrote {args.out} ({rec.chosen.name}, "
                  f"{rec.chosen.flops / 1e6 if rec.chosen.flops else 0:.3g} M flops)")
    return 0


def _recommend_options(args: argparse.Namespace) -> Any:
    """The checked flags of ``netscale recommend`` as a RecommendOptions (candidates timed
    here are reported on stderr)."""
    from netscale.advise.options import (
        CandidateOptions,
        LawOptions,
        RecommendOptions,
        TimingOptions,
    )
    from netscale.advise.records import Constraints
    from netscale.advise.runtimes import default_measure
    from netscale.util.device import check_device
    from netscale.util.units import parse_count
    from netscale.util.validate import check_output_file

    check_device(args.device)
    if args.out is not None:
        check_output_file(args.out, "--out", suffixes=(".yaml", ".yml", ".json"))
    if args.strategies is not None and not all(s.strip() for s in args.strategies.split(",")):
        raise NetscaleError(f"--strategies {args.strategies!r} has an empty entry; give "
                            "comma-separated strategies, e.g. d,w,dWr")

    max_params = parse_count(args.max_params, "--max-params") if args.max_params else None
    max_acts = parse_count(args.max_acts, "--max-acts") if args.max_acts else None
    if args.max_latency is not None and not (math.isfinite(args.max_latency)
                                             and args.max_latency > 0):
        raise NetscaleError(f"--max-latency must be a positive number of ms, got "
                            f"{args.max_latency:g}")
    if not (math.isfinite(args.budget) and 0 < args.budget <= 86400):
        raise NetscaleError(f"--budget must be a positive number of seconds (at most a day), "
                            f"got {args.budget}")
    alphas = parse_float_list(args.alphas, "--alphas") if args.alphas.strip() else []
    strategies = ([s.strip() for s in args.strategies.split(",") if s.strip()]
                  if args.strategies else None)
    inner = default_measure(args.budget, mode=args.latency_mode)

    def timed(spec: Any, batch: int | None, device: str | None) -> Any:
        res = inner(spec, batch, device)
        shown = "failed" if res is None else f"{res[0]:.3g} ms per batch of {res[1]}"
        print(f"[recommend] timed {spec.name}: {shown}", file=sys.stderr, flush=True)
        return res

    return RecommendOptions(
        constraints=Constraints(max_latency_ms=args.max_latency, batch_size=args.batch_size,
                                max_params=max_params, max_acts=max_acts),
        candidates=CandidateOptions(strategies=strategies, alphas=alphas, base=args.base),
        laws=LawOptions(x=args.x, law=args.law),
        timing=TimingOptions(device=args.device, measure=args.measure, budget_s=args.budget,
                             measure_fn=timed, latency_mode=args.latency_mode))


def _recommend_results_file(args: argparse.Namespace, opts: Any) -> int:
    """``netscale recommend FILE``: the file's groups ranked at an absolute flops target."""
    from dataclasses import replace

    from netscale.advise.groups import GROUPS_TIE, recommend_groups
    from netscale.advise.results_io import load_source
    from netscale.advise.sources import ResultsFile

    if args.out:
        raise NetscaleError("--out writes a scaled network spec, but a results file has no "
                            "networks; drop --out (or recommend from a study directory)")
    source = load_source(args.source, percent=args.percent)
    assert isinstance(source, ResultsFile)  # is_results_file(args.source)
    extra = [f for f, v in (("--base", args.base), ("--strategies", args.strategies),
                            ("--device", args.device)) if v]
    if extra:
        raise NetscaleError(f"{', '.join(extra)} scale or time a base network; a results "
                            "file ranks its own groups, so drop them")
    rec = recommend_groups(source, args.target_flops,
                           replace(opts, tie=GROUPS_TIE,
                                   laws=replace(opts.laws, noise=parse_noise(args.noise))))
    if args.json:
        print_json(rec.to_dict())
    else:
        print(rec.format_text())
    return 0
