"""`netscale fit` (scaling-law fits of a study) and `netscale recommend` (choose a strategy)."""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from typing import Any

from netscale.cli.common import parse_float_list, positive_int, print_json
from netscale.errors import NetscaleError


def add_parser(sub: Any) -> None:
    from netscale.laws.study_fits import LAW_CHOICES, X_METRICS

    p = sub.add_parser(
        "fit",
        help="fit scaling laws (error vs flops) per strategy of a study, with intervals",
        description="Fit top-1 error against a complexity metric for each scaling strategy of a "
        "study: the saturating law err = a·x^(−b) + c (or the plain power law err = a·x^(−b) "
        "when there are too few points), robustly, with bootstrap intervals, goodness of fit "
        "and a leave-largest-out check; plus the runtime model of the study's benchmark rows. "
        "Flops are multiply-adds; errors are fractions.",
    )
    p.add_argument("study_dir", metavar="STUDY_DIR", help="a study directory (results.sqlite)")
    p.add_argument("--x", default="flops", choices=X_METRICS,
                   help="complexity metric on the x axis (default flops)")
    p.add_argument("--law", default="auto", choices=LAW_CHOICES,
                   help="auto (default): saturating when a strategy has >= 4 points over >= 3 "
                   "sizes, else the plain power law; or force one law")
    p.add_argument("--level", type=float, default=0.95,
                   help="interval level (default 0.95)")
    p.add_argument("--n-boot", type=int, default=200,
                   help="bootstrap refits per fit (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--base", help="only this base (studies with several bases)")
    p.add_argument("--json", action="store_true", help="print the fits as JSON")
    p.add_argument("--samples", action="store_true",
                   help="with --json: keep the bootstrap draws so the fits can be reloaded "
                   "with FitReport.from_dict and predict intervals")
    p.set_defaults(func=run_fit)

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
                   help="a study directory (trained results) or a model name / spec file")
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
    p.add_argument("--strategies", help="named candidates instead of d,w,r,dw,dr,wr,dwr,dWr "
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


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _ci(v: float, iv: tuple[float, float] | None) -> str:
    if iv is None:
        return f"{v:.3g}"
    return f"{v:.3g} [{iv[0]:.3g}, {iv[1]:.3g}]"


def _holdout_text(rep: Any) -> str:
    h = rep.holdout.get(rep.best)
    if h is None:
        return "-"
    if h.skipped:
        return "skipped (too few smaller models)"
    return (f"{100 * h.predicted:.2f}% vs {100 * h.actual:.2f}% "
            f"({'inside' if h.within else 'OUTSIDE'}, {100 * h.rel_error:+.1f}%)")


def fit_table(fits: Any) -> str:
    from netscale.util.fmt import table

    rows = []
    for label, f in fits.fits.items():
        alpha = "-" if f.alpha is None else f"{f.alpha:.3g}"
        pts = f"{f.n_points} ({f.n_sizes})"
        if f.report is None:
            rows.append([label, alpha, pts, "-", "-", "-", "-", "-", "not fitted (see notes)"])
            continue
        lf = f.report.best_fit
        c = _ci(lf.c, lf.intervals.get("c")) if lf.law == "saturating" else "-"
        rows.append([label, alpha, pts, lf.law, _ci(lf.b, lf.intervals.get("b")), c,
                     f"{lf.r2_log:.3f}" if math.isfinite(lf.r2_log) else "-",
                     f"{100 * lf.rmse:.2f}", _holdout_text(f.report)])
    return table(rows, ["strategy", "α", "points (sizes)", "law", "b [CI]", "c [CI]",
                        "R²(log)", "RMSE (pts)", "leave-largest-out: predicted vs actual"],
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
    r = ", ".join(f"{m} {v:.3f}" for m, v in rt.model.r.items() if math.isfinite(v))
    lines = [f"runtime model ({rt.describe()}): {rt.formula()}",
             f"  Pearson r of time vs each metric: {r or 'undefined'}; best single metric: "
             f"{rt.model.best_metric}"]
    if rt.other_settings:
        lines.append(f"  also measured (not used): {', '.join(rt.other_settings)}")
    return "\n".join(lines)


def run_fit(args: argparse.Namespace) -> int:
    from netscale.laws.study_fits import fit_study, load_study, study_runtime

    study = load_study(args.study_dir)
    trials = [t for t in study.trials if args.base is None or t.base == args.base]
    if args.base is not None and not trials:
        raise NetscaleError(f"base {args.base!r} is not in the study; bases: "
                            f"{', '.join(study.bases)}")
    fits = fit_study(trials, x=args.x, law=args.law, n_boot=args.n_boot, level=args.level,
                     seed=args.seed)
    rt = study_runtime(trials)
    if args.json:
        print_json({"study": study.name, "path": str(study.path), **fits.to_dict(
            samples=args.samples), "runtime": rt.to_dict() if rt else None})
        return 0
    print(f"study {study.name} ({study.path}): top-1 error vs {args.x}"
          f"{' (multiply-adds)' if 'flops' in args.x else ''}, law {args.law}, "
          f"{args.level:.0%} intervals ({args.n_boot} bootstrap refits)")
    print()
    print(fit_table(fits))
    print()
    print("fits:")
    for label, f in fits.fits.items():
        if f.report is not None:
            lf = f.report.best_fit
            a = lf.intervals.get("a")
            print(f"  {label}: {lf.formula()}   (a {_ci(lf.a, a)})")
    notes = grouped_notes(fits)
    if notes:
        print("notes:")
        for n in notes:
            print(f"  {n}")
    print()
    print(runtime_text(rt))
    return 0


# --------------------------------------------------------------------------------------------
# recommend
# --------------------------------------------------------------------------------------------


def run_recommend(args: argparse.Namespace) -> int:
    from netscale.laws.recommend import default_measure, recommend
    from netscale.util.units import parse_count

    max_params = parse_count(args.max_params, "--max-params") if args.max_params else None
    max_acts = parse_count(args.max_acts, "--max-acts") if args.max_acts else None
    if args.max_latency is not None and not (math.isfinite(args.max_latency)
                                             and args.max_latency > 0):
        raise NetscaleError(f"--max-latency must be a positive number of ms, got "
                            f"{args.max_latency:g}")
    if not (math.isfinite(args.budget) and args.budget > 0):
        raise NetscaleError(f"--budget must be a positive number of seconds, got {args.budget}")
    alphas = parse_float_list(args.alphas, "--alphas") if args.alphas.strip() else []
    strategies = ([s.strip() for s in args.strategies.split(",") if s.strip()]
                  if args.strategies else None)
    inner = default_measure(args.budget, mode=args.latency_mode)

    def timed(spec: Any, batch: int | None, device: str | None) -> Any:
        res = inner(spec, batch, device)
        shown = "failed" if res is None else f"{res[0]:.3g} ms per batch of {res[1]}"
        print(f"[recommend] timed {spec.name}: {shown}", file=sys.stderr, flush=True)
        return res

    rec = recommend(args.source, args.target_flops, max_latency_ms=args.max_latency,
                    batch_size=args.batch_size, max_params=max_params, max_acts=max_acts,
                    device=args.device, measure=args.measure, strategies=strategies,
                    alphas=alphas, base=args.base, x=args.x, law=args.law,
                    budget_s=args.budget, measure_fn=timed, latency_mode=args.latency_mode)
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
