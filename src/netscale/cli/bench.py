"""`netscale bench`: measure runtime and fit a runtime model (which metric predicts runtime)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from netscale.cli.common import (
    parse_float_list,
    positive_float,
    positive_int,
    seconds,
    seed_int,
    threads_int,
)
from netscale.errors import NetscaleError
from netscale.scaling.strategy import NAMED

DEFAULT_STRATEGIES = ",".join(NAMED)
DEFAULT_FACTORS = "1,2,4"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure runtime (ms/batch, images/s, memory) and fit runtime vs flops/params/acts",
        description="Time inference or training steps of models with warm-up, repeated timed "
        "blocks and median + IQR statistics; noisy measurements are flagged. With --fit, "
        "measure a set of models (explicit, or every --strategies × --factors of a --base) and "
        "fit runtime against flops (multiply-adds), params and activations, reporting Pearson "
        "r per metric and a scatter plot. Times are ms per batch; memory in MiB.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL_OR_SPEC",
                   help="named models or spec files")
    p.add_argument("--mode", choices=("infer", "train", "both"), default="infer",
                   help="infer: eval + inference_mode; train: forward + loss + backward + SGD "
                   "step, timed per phase; both (default infer)")
    p.add_argument("--batch-size", "-b", type=positive_int, default=None, metavar="N",
                   help="images per batch (default 8 on CPU, 32 on CUDA)")
    p.add_argument("--resolution", type=positive_int, default=None, metavar="PX",
                   help="input side in pixels (default: each model's own resolution); with "
                   "--base, the base's resolution before scaling")
    p.add_argument("--device", default=None,
                   help="cpu or cuda[:N] (default: cuda if available, else cpu)")
    p.add_argument("--memory-format", choices=("auto", "channels_last", "contiguous"),
                   default=None,
                   help="memory format of weights and inputs: auto (default) probes both on "
                   "each model and keeps the faster, channels_last (NHWC) or contiguous (NCHW); "
                   "the choice is recorded with each result (docs/precision.md)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="auto (default) probes fp32 and, where the CPU/GPU runs it natively and "
                   "the recorded accuracy-parity benchmark allows it, bf16 autocast (fp32 "
                   "master weights); fp16: CUDA only, with a GradScaler")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--threads", type=threads_int, default=None, metavar="N",
                   help="torch intra-op CPU threads (default 1: stable timings on a shared "
                   "or small machine, see docs/bench.md)")
    p.add_argument("--budget", type=seconds, default=5.0, metavar="SECONDS",
                   help="time budget per measurement, warm-up included (default 5)")
    p.add_argument("--noise-threshold", type=positive_float, default=0.05, metavar="FRAC",
                   help="flag a measurement as noisy when IQR/median exceeds this (default 0.05)")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="minimum warm-up iterations (default 3; warm-up also lasts >= 0.3 s)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="re-measure up to N times while a result is noisy or contended (other "
                   "processes using > 10%% of the CPUs); keeps the best attempt; what stays "
                   "flagged shows as time_quality noisy/contended (default 2)")
    p.add_argument("--retry-oom", action="store_true",
                   help="on out-of-memory, retry at half the batch size (down to 1)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed for weights and the random batch")
    _add_output_and_fit_flags(p)


def _add_output_and_fit_flags(p: Any) -> None:
    """``netscale bench``'s output flags and its runtime-model (--fit) group."""
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per measurement)")
    p.add_argument("--out", metavar="PATH",
                   help="also write the rows to PATH (.json or .csv); with --fit the default "
                   "is the plot path with .json")
    g = p.add_argument_group("runtime model")
    g.add_argument("--fit", action="store_true",
                   help="fit runtime vs flops, params and acts (alone and jointly) over the "
                   "measured models; needs >= 3 models")
    g.add_argument("--from", dest="from_file", metavar="FILE",
                   help="with --fit: fit the runtime model on outside timings instead of "
                   "measuring: a results file (.csv/.json, docs/results-format.md) whose rows "
                   "carry time_ms (ms per batch) and flops or model; params/acts optional")
    g.add_argument("--base", metavar="MODEL", help="generate models by scaling this base")
    g.add_argument("--strategies", default=None,
                   help=f"strategies for --base (default {DEFAULT_STRATEGIES})")
    g.add_argument("--factors", default=None,
                   help=f"flops factors for --base (default {DEFAULT_FACTORS}; 1 = the base)")
    g.add_argument("--rounding", choices=("exact", "reference"), default="exact",
                   help="scaler rounding for --base (default exact)")
    g.add_argument("--retime", type=int, default=None, metavar="N",
                   help="with --fit: after the run, re-time N of the models (evenly spread, "
                   "the first included) in reverse order: the first model's change is the "
                   "machine's drift, the spread of the N pairs the between-run scatter of one "
                   "model's timing; both widen the prediction intervals for a later run "
                   "(default 6; 0: none)")
    g.add_argument("--plot", metavar="PNG",
                   help="scatter plot path for --fit (default runtime_fit.png)")
    g.add_argument("--predict", action="append", default=[], metavar="MODEL_OR_SPEC",
                   help="with --fit: predict this model's runtime (each mode) from the fits, "
                   "with 95%% prediction intervals (repeatable; counted, not measured)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Any:
    from netscale.bench import BenchConfig, TimingPolicy

    if not 0 <= args.warmup <= 10_000:
        raise NetscaleError(f"--warmup must be from 0 to 10,000 iterations, got {args.warmup}")
    if not 0 <= args.retries <= 100:
        raise NetscaleError(f"--retries must be from 0 to 100, got {args.retries}")
    if args.noise_threshold >= 10:
        raise NetscaleError(f"--noise-threshold is a fraction (0.05 = 5%), got "
                            f"{args.noise_threshold:g}")
    policy = TimingPolicy(warmup_iters=args.warmup, budget_s=args.budget,
                          noisy_threshold=args.noise_threshold)
    if args.resolution is not None and args.resolution < 8:
        raise NetscaleError(f"--resolution must be >= 8 pixels, got {args.resolution}")
    fmt, prec = _setting_flags(args)
    return BenchConfig(batch_size=args.batch_size, resolution=None,  # applied per spec
                       device=args.device, memory_format=fmt, precision=prec,
                       compile=args.compile, threads=args.threads, retry_oom=args.retry_oom,
                       retries=args.retries, policy=policy, seed=args.seed).validate()


def _setting_flags(args: argparse.Namespace) -> tuple[str, str]:
    """--memory-format and --precision (``auto`` unless given), the precision checked."""
    from netscale.bench.setting import check_precision

    fmt, prec = args.memory_format or "auto", args.precision or "auto"
    device = "cuda" if str(args.device or "").startswith("cuda") else "cpu"
    if args.device is None:
        from netscale.bench.harness import resolve_device

        device = resolve_device(None)
    check_precision(prec, device)
    return fmt, prec


def _entries(args: argparse.Namespace) -> list[Any]:
    from netscale.bench import BenchModel, generate_models
    from netscale.specs import resolve_spec

    if (args.strategies is not None or args.factors is not None) and not args.base:
        raise NetscaleError("--strategies/--factors need --base MODEL (the model to scale)")
    if args.plot and not args.fit:
        raise NetscaleError("--plot needs --fit")
    if args.retime is not None and not args.fit:
        raise NetscaleError("--retime needs --fit (it re-times models for the runtime model)")
    if args.retime is not None and not 0 <= args.retime <= 10_000:
        raise NetscaleError(f"--retime must be from 0 to 10,000 models, got {args.retime}")
    if args.predict and not args.fit:
        raise NetscaleError("--predict needs --fit (the runtime model it predicts with)")
    if args.predict:
        _predict_models(args)  # unknown models fail before anything is measured

    def at_resolution(spec: Any) -> Any:
        px = args.resolution
        return spec.replace(resolution=px) if px and px != spec.resolution else spec

    # --resolution applies to each named model, and to the base *before* scaling (so that
    # strategies that scale resolution still do)
    entries = [BenchModel(at_resolution(resolve_spec(m))) for m in args.models]
    if args.base:
        base = at_resolution(resolve_spec(args.base))
        text = DEFAULT_STRATEGIES if args.strategies is None else args.strategies
        strategies = [s.strip() for s in text.split(",")]
        if not all(strategies):
            raise NetscaleError(f"--strategies {text!r} is empty or has an empty entry; e.g. "
                                "--strategies d,w,dWr")
        factors = parse_float_list(DEFAULT_FACTORS if args.factors is None else args.factors,
                                   "--factors")
        entries += generate_models(base, strategies, factors, rounding=args.rounding)
    if not entries:
        raise NetscaleError("give at least one MODEL_OR_SPEC (e.g. netscale bench "
                            "RegNetY-200MF), or --base MODEL with --fit")
    if args.fit and len(entries) < 3:
        raise NetscaleError(f"--fit needs at least 3 models, got {len(entries)}; add models or "
                            "use --base MODEL --strategies ... --factors ...")
    return entries


def fit_outside(args: argparse.Namespace) -> int:
    """``bench --fit --from FILE``: the runtime model of timings measured elsewhere."""
    from collections import defaultdict

    from netscale.advise.results_io import load_source, timing_rows
    from netscale.bench.analysis import format_fit
    from netscale.bench.fit import METRICS, fit_runtime
    from netscale.util import jsonio

    if not args.fit:
        raise NetscaleError("--from FILE gives outside timings for the runtime model; add --fit")
    if (args.models or args.base or args.plot or args.csv or args.predict
            or args.retime is not None):
        raise NetscaleError("--fit --from FILE fits the file's timings; drop the models, --base, "
                            "--plot, --csv, --predict and --retime (nothing is measured here)")
    study = load_source(args.from_file, require_error=False)
    rows = timing_rows(study)
    if not rows:
        raise NetscaleError(f"{args.from_file}: no row has a time_ms (ms per batch); the "
                            "runtime model needs timed rows")
    by_setting: dict[tuple[str, int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_setting[(r["mode"], r["batch_size"], r["device"],
                    r.get("setting", "contiguous+fp32"))].append(r)
    out: dict[str, Any] = {"source": str(args.from_file), "fits": {}}
    texts = []
    for (mode, batch, device, setting), rs in sorted(by_setting.items()):
        metrics = [m for m in METRICS if all(r.get(m) for r in rs)]
        key = f"{mode}, batch {batch}, {device}" + (
            f", {setting}" if setting != "contiguous+fp32" else "")
        if len(rs) < 3:
            texts.append(f"{key}: only {len(rs)} timed row(s), the runtime model needs 3")
            out["fits"][key] = {"skipped": f"only {len(rs)} timed rows (needs 3)"}
            continue
        fit = fit_runtime(rs, metrics=metrics, target="time_ms")
        out["fits"][key] = {"mode": mode, "batch_size": batch, "device": device,
                            "setting": setting, "metrics": metrics, **fit.to_dict()}
        missing = [m for m in METRICS if m not in metrics]
        texts.append(f"[{key}; {len(rs)} rows from {args.from_file}]\n" + format_fit(fit, mode)
                     + (f"\nnot fitted against {', '.join(missing)}: some rows have no value"
                        if missing else ""))
    if all("skipped" in v for v in out["fits"].values()):
        raise NetscaleError(f"{args.from_file}: no (mode, batch size, device, memory format + "
                            "precision) setting has 3 "
                            "timed rows; the runtime model needs at least 3 per setting")
    if args.out:
        from netscale.util.io import atomic_write_text

        atomic_write_text(Path(args.out), jsonio.dumps(out, indent=2) + "\n")
    if args.json:
        sys.stdout.write(jsonio.dumps(out, indent=2) + "\n")
    else:
        print("\n\n".join(texts))
        if args.out:
            print(f"\nwrote {args.out}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """--out and --plot must be writable files *before* anything is measured."""
    from netscale.util.validate import check_output_file

    if args.out is not None:
        check_output_file(args.out, "--out", suffixes=(".json", ".csv"))
    if args.fit:
        plot = Path(args.plot or "runtime_fit.png")
        check_output_file(plot, "--plot")
        if args.out is None:
            check_output_file(plot.with_suffix(".json"), "--plot (its .json)")


def _check_memory(args: argparse.Namespace, config: Any, entries: list[Any],
                  modes: list[str], device: str) -> Any:
    """Estimates each model's memory from its counts before anything is built: refuses a
    batch that cannot fit, or with --retry-oom starts at the largest halving that can."""
    from netscale.complexity.limits import check_fits_memory, largest_fitting_batch

    bs = config.batch_size or (32 if device.startswith("cuda") else 8)
    train = "train" in modes
    if config.retry_oom:
        fit = min(largest_fitting_batch(e.spec, bs, train=train, device=device)
                  for e in entries)
        if fit == 0:
            worst = max(entries, key=lambda e: e.spec.num_blocks)
            check_fits_memory(worst.spec, 1, train=train, device=device,
                              what=f"{worst.spec.name}", hint="even at batch size 1")
        if 0 < fit < bs:
            import dataclasses

            _check_time(args, dataclasses.replace(config, batch_size=fit), entries, modes,
                        device)  # before the note: a refusal stays one line
            print(f"note: batch size {bs} cannot fit in memory (estimated from the models' "
                  f"counts); starting at {fit} (--retry-oom)", file=sys.stderr)
            return dataclasses.replace(config, batch_size=fit)
        return config
    for e in entries:
        check_fits_memory(e.spec, bs, train=train, device=device, what=e.spec.name,
                          hint="lower --batch-size or pass --retry-oom")
    return config


def _check_time(args: argparse.Namespace, config: Any, entries: list[Any], modes: list[str],
                device: str) -> None:
    from netscale.complexity.limits import check_bench_time

    bs = config.batch_size or (32 if device.startswith("cuda") else 8)
    for e in entries:
        check_bench_time(e.spec, bs, train="train" in modes, device=device,
                         budget_s=args.budget, warmup=args.warmup, what=e.spec.name)


def run(args: argparse.Namespace) -> int:
    from netscale.bench import run_analysis
    from netscale.bench.analysis import DEFAULT_RETIME
    from netscale.bench.harness import env_for
    from netscale.util.device import check_device

    check_device(args.device)
    if args.from_file:
        return fit_outside(args)

    config = _config(args)
    _check_outputs(args)
    from netscale.zoo.names import is_zoo_name

    if any(is_zoo_name(m) for m in args.models):
        return _run_zoo(args, config)
    entries = _entries(args)
    modes = ["infer", "train"] if args.mode == "both" else [args.mode]
    env = env_for(config)  # validates the device early (one-line error if CUDA is missing)
    config = _check_memory(args, config, entries, modes, env.device)
    _check_time(args, config, entries, modes, env.device)
    total = len(entries) * len(modes)
    quiet = args.json or args.csv
    if not quiet:
        bs = config.batch_size or ("32" if env.device.startswith("cuda") else "8")
        print(f"device {env.summary()}; batch size {bs}; budget {args.budget:g} s per "
              f"measurement; setting asked: {config.memory_format}+{config.precision}")
    done = [0]

    def progress(r: Any) -> None:
        done[0] += 1
        if total > 1:
            t = f"{r.time_ms:.2f} ms/batch" if r.ok else r.status.upper()
            flags = _flags(r)
            print(f"[{done[0]}/{total}] {r.model} {r.mode} ({r.setting.label}): {t}"
                  + (f" ({flags})" if flags else ""), file=sys.stderr, flush=True)

    if args.fit:  # one runtime model per setting: every model in the first model's setting
        rows, fits = [], {}
        for mode in modes:
            cfg = _fit_setting(config, entries[0].spec, mode, quiet)
            part = run_analysis(entries, cfg, [mode], fit=True, progress=progress,
                                retime=DEFAULT_RETIME if args.retime is None else args.retime)
            rows += part.rows
            fits.update(part.fits)
    else:
        analysis = run_analysis(entries, config, modes, fit=False, progress=progress)
        rows, fits = analysis.rows, analysis.fits
    _output(args, rows, fits, env.summary())
    return 0 if all(r.ok for r in rows) else 1


def _run_zoo(args: argparse.Namespace, config: Any) -> int:
    """``netscale bench timm:NAME ...``: each zoo model timed as built (random weights)."""
    from netscale.bench.harness import bench_module, env_for
    from netscale.complexity.measured import count_measured
    from netscale.zoo.names import is_zoo_name
    from netscale.zoo.use import build_cpu

    if not all(is_zoo_name(m) for m in args.models) or args.fit or args.base or args.predict:
        raise NetscaleError("zoo models are timed on their own: give only timm:/torchvision: "
                            "names (no specs, --fit, --base or --predict); to time scaled "
                            "versions, export them or build them with the printed call")
    env = env_for(config)
    modes = ["infer", "train"] if args.mode == "both" else [args.mode]
    rows = []
    for name in args.models:
        model, shape, label = build_cpu(name, resolution=args.resolution)
        rec = count_measured(model, shape, per_module=False, name=label)
        for mode in modes:
            import dataclasses

            cfg = dataclasses.replace(config, mode=mode)
            rows.append(bench_module(model, name=label, in_channels=shape[0],
                                     resolution=shape[1],
                                     counts=(rec.flops, rec.params, rec.acts), config=cfg))
    _output(args, rows, {}, env.summary())
    return 0 if all(r.ok for r in rows) else 1


def _output(args: argparse.Namespace, rows: Any, fits: Any, env_summary: str) -> None:
    """The results: the --fit plot, the --out file, then JSON, CSV or the tables on stdout."""
    from netscale.bench import to_csv, to_json, write_results
    from netscale.bench.analysis import format_fit, plot_runtime
    from netscale.util.io import OutputError

    extra = {"fits": {m: f.to_dict() for m, f in fits.items()}} if fits else None
    written: list[str] = []
    failed: OutputError | None = None  # a file the environment refused: print, then say so
    try:
        out = Path(args.out) if args.out else None
        if args.fit:
            plot = Path(args.plot or "runtime_fit.png")
            title = (f"runtime vs complexity on {env_summary}, batch {rows[0].batch_size}")
            plot_runtime(rows, fits, plot, title=title)
            written.append(str(plot))
            out = out or plot.with_suffix(".json")
        if out is not None:
            write_results(out, rows, extra)
            written.append(str(out))
    except OutputError as exc:
        failed = exc
    if failed is not None and not (args.json or args.csv):
        args.json = True  # the measurement goes to stdout in full, as the file would have
    if args.json:
        sys.stdout.write(to_json(rows, extra))
    elif args.csv:
        sys.stdout.write(to_csv(rows))
    else:
        print(format_table(rows))
        for m, f in fits.items():
            print()
            print(format_fit(f, m))
            if args.predict:
                from netscale.bench.analysis import format_predictions

                print()
                print(format_predictions(f, m, _predict_models(args)))
        if written:
            print(f"\nwrote {', '.join(written)}")
    if failed is not None:
        raise NetscaleError(f"{failed}; the measurements are on standard output (as JSON "
                            "unless --csv), nothing was lost")


def _fit_setting(config: Any, spec: Any, mode: str, quiet: bool) -> Any:
    """``config`` for ``mode`` with its setting resolved once, on ``spec`` (the first model):
    a runtime model is fitted over rows of one setting."""
    import dataclasses

    from netscale.bench.harness import setting_for_spec
    from netscale.bench.setting import describe_setting

    cfg = dataclasses.replace(config, mode=mode)
    setting = setting_for_spec(spec, cfg)
    if not quiet and "auto" in (config.memory_format, config.precision):
        print(f"{mode}: every model runs in {spec.name}'s {describe_setting(setting)}",
              file=sys.stderr)
    return dataclasses.replace(cfg, setting=setting)


def _predict_models(args: argparse.Namespace) -> list[tuple[str, Any]]:
    from netscale.complexity import complexity
    from netscale.specs import resolve_spec

    out = []
    for name in args.predict:
        spec = resolve_spec(name)
        px = args.resolution or spec.resolution
        out.append((f"{spec.name} ({px} px)", complexity(spec, px)))
    return out


def _flags(r: Any) -> str:
    status: str = r.status
    if status != "ok":
        return status
    flags = [f for f, on in (("noisy", r.noisy), ("contended", r.contended)) if on]
    if flags and r.attempts > 1:
        flags.append(f"after {r.attempts} attempts")
    return ", ".join(flags)


def format_table(rows: list[Any]) -> str:
    """Human-readable results table (units in the headers) with footnotes."""
    from netscale.util.fmt import si, table

    train = any(r.mode == "train" for r in rows)
    headers = ["model", "mode", "setting", "batch", "px", "flops (MACs)", "params", "acts",
               "ms/batch", "IQR ms", "n", "timing"]
    if train:
        headers += ["fwd ms", "bwd ms", "step ms"]
    headers += ["images/s", "GFLOP/s", "peak MiB", ""]
    body = []
    notes = []
    for r in rows:
        flag = _flags(r).upper()
        line: list[Any] = [r.model, r.mode, r.setting.label, r.batch_size, r.resolution,
                           si(r.flops), si(r.params), si(r.acts)]
        if r.ok:
            line += [f"{r.time_ms:.2f}", f"{r.iqr_ms:.2f}", r.samples, r.time_quality]
        else:
            line += ["-", "-", 0, "-"]
        if train:
            line += [f"{r.phases[p].median_ms:.2f}" if p in r.phases else "-"
                     for p in ("forward", "backward", "step")]
        line += [f"{r.images_per_s:.1f}" if r.images_per_s else "-",
                 f"{r.gflops_per_s:.1f}" if r.gflops_per_s else "-",
                 f"{r.peak_mem_mib:.0f}" if r.peak_mem_mib is not None else "-", flag]
        body.append(line)
        if r.note:
            notes.append(f"{r.model} ({r.mode}): {r.note}")
    text = table(body, headers, align="lllrrrrrrrrl" + ("rrr" if train else "") + "rrrl")
    foot = ("ms/batch = median time per batch over n timed samples (IQR = interquartile "
            "range); flops are multiply-adds per image (1 MAC = 1 flop); GFLOP/s = achieved "
            "1e9 MACs/s (train counts 3x forward); peak MiB = peak memory above the start "
            f"({rows[0].mem_method or 'n/a'}); timing = quality of the time after automatic "
            "re-measurement (--retries): ok, noisy (IQR/median above the threshold) or "
            "contended (other processes used the CPUs during the measurement); treat noisy or "
            "contended times as rough. setting = memory format + precision measured in "
            "(contiguous = NCHW, channels_last = NHWC; bf16/fp16 = autocast, fp32 weights).")
    probed = {(r.model, r.mode): r.setting for r in rows if r.setting.probe}
    for (model, mode), st in probed.items():
        notes.append(f"{model} ({mode}): {st.label} chosen by --memory-format/--precision "
                     f"auto: {st.reason}")
    flagged = [r for r in rows if r.ok and r.time_quality != "ok"]
    if flagged:
        notes.insert(0, f"{len(flagged)} of {len(rows)} timings stayed noisy or contended "
                        "after re-measuring: compare them with care.")
    return "\n".join([text, "", foot, *notes])
