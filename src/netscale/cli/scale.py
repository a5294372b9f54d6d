"""`netscale scale`: scale a model by a flops factor with any strategy."""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from netscale.cli.common import parse_float_list, print_json
from netscale.errors import NetscaleError
from netscale.scaling import (
    DEFAULT_STRATEGY,
    NAMED,
    ROUNDING_MODES,
    ScaleResult,
    parse_strategy,
    scale_report,
)
from netscale.specs import NetSpec, resolve_spec
from netscale.specs.pycls import pycls_yaml
from netscale.util.fmt import si, table
from netscale.util.io import atomic_write_text
from netscale.util.text import csv_dict_writer
from netscale.util.units import parse_target

_CSV_FIELDS = [
    "base", "strategy", "factor", "rounding", "flops", "params", "acts", "resolution",
    "depths", "widths", "group_widths", "flops_factor", "params_factor", "acts_factor",
    "predicted_params_factor", "predicted_acts_factor", "within_tolerance", "note",
]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "scale",
        help="scale a model by a flops factor with a strategy (d, w, r, dw, dr, wr, dwr, dWr…)",
        description="Scale a model's flops (multiply-adds) by a factor with a strategy and show "
        "how flops, params and activations grew. Strategies: named "
        f"{', '.join(NAMED)} (default {DEFAULT_STRATEGY}: fast compound, α=0.8); fast:ALPHA; "
        "reference weight strings such as d1_w8_g8_r1; or e_d=…,e_w=…,e_r=….",
    )
    p.add_argument("model", metavar="MODEL_OR_SPEC", nargs="?",
                   help="named model, spec file or zoo model (timm:NAME, torchvision:NAME; "
                   "see docs/zoo.md), or --module for your own nn.Module")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--factor", "-s", type=float, help="flops factor s (e.g. 4, or 0.25)")
    amount.add_argument("--factors", help="several factors for a growth table, e.g. 2,4,8,16")
    amount.add_argument("--target-flops", metavar="FLOPS",
                        help="absolute target in multiply-adds (4G, 400M) or a factor (4x)")
    strat = p.add_mutually_exclusive_group()
    strat.add_argument("--strategy", default=None, help=f"strategy (default {DEFAULT_STRATEGY})")
    strat.add_argument("--strategies", help="several strategies for a growth table, e.g. "
                       + ",".join(NAMED))
    strat.add_argument("--alpha", type=float, help="fast compound scaling with this α in [0, 1]")
    p.add_argument("--rounding", choices=ROUNDING_MODES, default="exact",
                   help="exact (land within the tolerance of s; default) or reference "
                   "(reproduce the reference scaler, which drifts)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="exact mode: allowed relative flops error (default 0.02 = ±2%%)")
    p.add_argument("--resolution-multiple", type=int, default=None,
                   help="resolution quantum in pixels (default 4 for specs, 1 with --module)")
    p.add_argument("--out", help="write the scaled spec here (.yaml or .json); with several "
                   "results, a directory that receives one file each")
    p.add_argument("--out-format", choices=("netscale", "pycls"), default="netscale",
                   help="spec format written by --out (pycls: an anynet/effnet config)")
    p.add_argument("--name", help="name of the scaled spec (single result)")
    mod = p.add_argument_group(
        "your own model (--module)",
        "scale any nn.Module built by FACTORY(depth_mult=…, width_mult=…): the factory rounds, "
        "netscale searches the multipliers and resolution, counting each candidate on the "
        "meta device")
    mod.add_argument("--module", metavar="PATH_OR_PKG:FACTORY",
                     help="factory in a file (models.py:make_net) or package (pkg.mod:make_net)")
    mod.add_argument("--input-shape", metavar="C,H,W",
                     help="base input shape without batch (e.g. 3,224,224); its spatial "
                     "dimensions are the resolution that r scales")
    mod.add_argument("--depth-arg", default="depth_mult",
                     help="the factory's depth-multiplier keyword (default depth_mult)")
    mod.add_argument("--width-arg", default="width_mult",
                     help="the factory's width-multiplier keyword (default width_mult)")
    mod.add_argument("--kwarg", action="append", default=[], metavar="KEY=VALUE",
                     help="a fixed keyword argument for the factory (repeatable), e.g. "
                     "num_classes=10")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per result)")
    p.set_defaults(func=run)


def _strategies(args: argparse.Namespace) -> list[Any]:
    if args.alpha is not None:
        return [parse_strategy("", alpha=args.alpha)]
    if args.strategies is not None:
        names = [s.strip() for s in args.strategies.split(",")]
        if not all(names):
            raise NetscaleError(f"--strategies {args.strategies!r} has an empty entry; give "
                                "comma-separated strategies, e.g. d,w,dWr")
        return [parse_strategy(s) for s in names]
    if args.strategy is not None and not args.strategy.strip():
        raise NetscaleError("--strategy is empty; give a strategy such as dWr, dw or "
                            "e_d=0.2,e_w=0.4,e_r=0.0 (leave it out for the default "
                            f"{DEFAULT_STRATEGY})")
    return [parse_strategy(args.strategy or DEFAULT_STRATEGY)]


def _check_args(args: argparse.Namespace) -> None:
    """Ranges and output paths, before any work."""
    import math

    from netscale.util.validate import check_output_dir, check_output_file

    if not (math.isfinite(args.tolerance) and 0 < args.tolerance < 1):
        raise NetscaleError(f"--tolerance must be a fraction in (0, 1), got {args.tolerance:g}")
    if args.resolution_multiple is not None and args.resolution_multiple < 1:
        raise NetscaleError(f"--resolution-multiple must be a positive number of pixels, got "
                            f"{args.resolution_multiple}")
    if args.factor is not None and not (math.isfinite(args.factor) and args.factor > 0):
        raise NetscaleError(f"--factor must be a positive number, got {args.factor:g}")
    if args.name is not None and not args.name.strip():
        raise NetscaleError("--name is empty")
    if args.out is not None:
        if not args.out.strip():
            raise NetscaleError("--out is empty; give a file (one result) or a directory")
        out = Path(args.out)
        several = (args.factors is not None or args.strategies is not None)
        if out.is_dir() or several or not out.suffix:
            check_output_dir(out, "--out")
        else:
            check_output_file(out, "--out")


def check_resolution_multiple(multiple: int, resolution: int) -> None:
    """Refuses a resolution step larger than the base's input side: every scaled resolution
    would be a multiple of it, so the nearest networks are many times the target's flops."""
    if multiple > resolution:
        raise NetscaleError(
            f"--resolution-multiple {multiple} is larger than the base's {resolution} px input "
            f"side: every scaled resolution would be a multiple of {multiple} px, so no network "
            f"near the target exists (the closest has {(multiple / resolution) ** 2:,.0f}x the "
            f"base's per-pixel work); use a step of at most {resolution} px")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from netscale.zoo.names import is_zoo_name

    if args.model and is_zoo_name(args.model):
        return _run_zoo(args)
    if args.module or args.input_shape:
        return _run_module(args)
    if not args.model:
        raise NetscaleError("give a model name or spec file, or --module PATH_OR_PKG:FACTORY "
                            "with --input-shape")
    if args.resolution_multiple is None:
        args.resolution_multiple = 4
    spec = resolve_spec(args.model)
    check_resolution_multiple(args.resolution_multiple, spec.resolution)
    strategies = _strategies(args)
    if args.factors is not None:
        factors = parse_float_list(args.factors, "--factors")
    elif args.target_flops is not None:
        from netscale.complexity import complexity_totals

        factors = [parse_target(args.target_flops, complexity_totals(spec).flops, "--target-flops")]
    else:
        factors = [args.factor]
    if any(f <= 0 for f in factors):
        raise NetscaleError("scaling factors must be positive")
    results = [
        scale_report(spec, f, s, rounding=args.rounding, tolerance=args.tolerance,
                     resolution_multiple=args.resolution_multiple,
                     name=args.name if len(factors) * len(strategies) == 1 else None)
        for s in strategies for f in factors
    ]
    written = _write(results, Path(args.out), args.out_format) if args.out else []
    single = len(results) == 1
    if args.json:
        print_json(results[0].to_dict() if single else [r.to_dict() for r in results])
    elif args.csv:
        sys.stdout.write(_csv(results))
    elif single:
        print(_side_by_side(results[0]))
    else:
        print(_growth(results))
    if written and not (args.json or args.csv):
        where = str(written[0]) if len(written) == 1 else \
            f"{len(written)} files in {args.out}: {', '.join(p.name for p in written)}"
        print(f"\nwrote {where}" + (f" ({args.out_format} format)" if single else ""))
    return 0


def _write(results: list[ScaleResult], out: Path, fmt: str) -> list[Path]:
    """Writes the results; returns the files written."""
    def text(spec: NetSpec, path: Path) -> str:
        if fmt == "pycls":
            return pycls_yaml(spec)
        return spec.to_yaml() if path.suffix.lower() in (".yaml", ".yml", "") else spec.to_json()

    if len(results) == 1 and out.suffix and not out.is_dir():
        atomic_write_text(out, text(results[0].spec, out))
        return [out]
    if out.exists() and not out.is_dir():
        raise NetscaleError(f"--out {str(out)!r} is a file; give a directory for several results")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in results:  # a file name from the spec's name, never a path out of the directory
        stem = re.sub(r"[/\\\x00-\x1f]", "_", r.spec.name).lstrip(".") or "model"
        path = out / f"{stem}.yaml"
        atomic_write_text(path, text(r.spec, path))
        paths.append(path)
    return paths


def _describe(r: ScaleResult) -> str:
    s = r.strategy
    g = ", group width follows width" if s.group_follows_width else ""
    return (f"{r.base.name} ×{r.factor:g} by {s.name} (e_d={s.e_d:.3g}, e_w={s.e_w:.3g}, "
            f"e_r={s.e_r:.3g}{g}), {r.rounding} rounding")


def _count_rows(r: Any) -> list[list[Any]]:
    """The flops/params/acts rows (base, scaled, realized and predicted factors) shared by the
    spec and the module-factory tables."""
    return [
        ["flops (multiply-adds)", si(r.base_counts.flops), si(r.counts.flops),
         f"{r.flops_factor:.3f}", f"{r.factor:.3f}"],
        ["params", si(r.base_counts.params), si(r.counts.params), f"{r.params_factor:.3f}",
         f"{r.predicted_params_factor:.3f}"],
        ["acts (output elements)", si(r.base_counts.acts), si(r.counts.acts),
         f"{r.acts_factor:.3f}", f"{r.predicted_acts_factor:.3f}"],
    ]


def _side_by_side(r: ScaleResult) -> str:
    b, s = r.base, r.spec
    rows = [
        *_count_rows(r),
        ["resolution (px)", b.resolution, s.resolution, f"{s.resolution / b.resolution:.3f}",
         f"{r.factor ** r.strategy.e_r:.3f}"],
        ["depths", _lst(b.depths), _lst(s.depths), f"{s.num_blocks / b.num_blocks:.3f}",
         f"{r.factor ** r.strategy.e_d:.3f}"],
        ["widths", _lst(b.widths), _lst(s.widths), f"{r.dims_factors()['width']:.3f}",
         f"{r.factor ** r.strategy.e_w:.3f}"],
    ]
    if any(b.group_widths):
        rows.append(["group widths", _lst(b.group_widths), _lst(s.group_widths), "", ""])
    if b.scales_stem_and_head:
        rows.append(["stem / head width", f"{b.stem.width} / {b.head_width}",
                     f"{s.stem.width} / {s.head_width}", "", ""])
    out = [_describe(r), "",
           table(rows, ["", "base", "scaled", "realized ×", "predicted ×"], align="lllrr")]
    status = "within" if r.within_tolerance else "OUTSIDE"
    if r.rounding == "exact":
        out.append(f"\nflops land {r.flops_error:+.2%} from ×{r.factor:g} ({status} "
                   f"±{r.tolerance:.0%}).")
    else:
        out.append(f"\nreference rounding: realized flops ×{r.flops_factor:.3f} for a target "
                   f"of ×{r.factor:g} ({r.flops_error:+.1%}).")
    if r.note:
        out.append(f"note: {r.note}")
    return "\n".join(out)


def _lst(xs: list[int]) -> str:
    return "[" + ",".join(str(x) for x in xs) + "]"


def _growth_cells(r: Any) -> list[str]:
    """Strategy, s and the realized vs predicted factors: the growth tables' first columns."""
    return [r.strategy.name, f"{r.factor:g}", f"{r.flops_factor:.2f}",
            f"{r.params_factor:.2f}", f"{r.predicted_params_factor:.2f}",
            f"{r.acts_factor:.2f}", f"{r.predicted_acts_factor:.2f}"]


def _growth(results: list[ScaleResult]) -> str:
    rows = []
    for r in results:
        rows.append([
            *_growth_cells(r),
            _lst(r.spec.depths), _lst(r.spec.widths), r.spec.resolution,
            "yes" if r.within_tolerance else "NO",
        ])
    head = (f"{results[0].base.name}: growth by strategy and flops factor s "
            f"({results[0].rounding} rounding; × = realized / base; pred = s^exponent)\n")
    return head + "\n" + table(
        rows,
        ["strategy", "s", "flops ×", "params ×", "pred", "acts ×", "pred", "depths",
         "widths", "px", "±tol"],
        align="lrrrrrrllrl",
    )


def _csv(results: list[ScaleResult]) -> str:
    buf = io.StringIO()
    w = csv_dict_writer(buf, _CSV_FIELDS)
    w.writeheader()
    for r in results:
        w.writerow({
            "base": r.base.name, "strategy": r.strategy.name, "factor": r.factor,
            "rounding": r.rounding, "flops": r.counts.flops, "params": r.counts.params,
            "acts": r.counts.acts, "resolution": r.spec.resolution,
            "depths": " ".join(map(str, r.spec.depths)),
            "widths": " ".join(map(str, r.spec.widths)),
            "group_widths": " ".join(map(str, r.spec.group_widths)),
            "flops_factor": f"{r.flops_factor:.6g}", "params_factor": f"{r.params_factor:.6g}",
            "acts_factor": f"{r.acts_factor:.6g}",
            "predicted_params_factor": f"{r.predicted_params_factor:.6g}",
            "predicted_acts_factor": f"{r.predicted_acts_factor:.6g}",
            "within_tolerance": r.within_tolerance, "note": r.note,
        })
    return buf.getvalue()


# ------------------------------------------------------------------ your own model (--module)


def _module_kwargs(items: list[str]) -> dict[str, Any]:
    from netscale.util.safeload import load_yaml, short_repr

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise NetscaleError(f"--kwarg {item!r} must be KEY=VALUE, e.g. num_classes=10")
        out[key.strip()] = load_yaml(value, f"--kwarg {short_repr(item)}",
                                     invalid_as_text=True)
    return out


def _run_zoo(args: argparse.Namespace) -> int:
    """``netscale scale timm:NAME``: the family's adapter as a module factory."""
    from netscale.scaling.module import scale_module
    from netscale.zoo.scale import ZooFactory, check_strategy, zoo_result, zoo_scale_options
    from netscale.zoo.use import input_shape

    if args.module:
        raise NetscaleError("give either a zoo model or --module, not both")
    if args.rounding != "exact" or args.out_format != "netscale" or args.csv or args.name:
        raise NetscaleError("a zoo model is scaled by its constructor's own arguments; "
                            "--rounding, --out-format, --csv and --name apply to specs")
    if args.kwarg or args.depth_arg != "depth_mult" or args.width_arg != "width_mult":
        raise NetscaleError("--kwarg/--depth-arg/--width-arg go with --module; give a zoo "
                            "model's arguments inline (timm:NAME:key=value,...)")
    factory = ZooFactory(args.model)
    shape = input_shape(factory.model, args.input_shape)
    strategies = _strategies(args)
    for s in strategies:
        check_strategy(factory, s)
    common = zoo_scale_options(factory, tolerance=args.tolerance, depth_arg="depth_mult",
                               width_arg="width_mult")
    if args.resolution_multiple:
        common["resolution_multiple"] = args.resolution_multiple
    factors = _module_factors(
        args, lambda: scale_module(factory, shape, 1.0, strategies[0], **common))
    results = [zoo_result(factory, scale_module(factory, shape, f, s, **common), shape)
               for s in strategies for f in factors]
    single = _save_results(args, results)
    if not args.json:
        if single:
            r = results[0]
            text = _module_side_by_side(r.result).splitlines()
            print("\n".join(line for line in text if not line.startswith("build it:")))
        else:
            print(_module_growth([r.result for r in results]))
            print()
        print(f"{factory.model.zoo} {factory.adapter.family} adapter; depth_mult/width_mult "
              "are the adapter's multipliers. Build the scaled network with:")
        for r in results:
            prefix = "" if single else f"  {r.strategy.name} x{r.factor:g}: "
            print(f"{prefix}{r.call}  at {_shape(r.input_shape)} input")
        if args.out:
            print(f"\nwrote {args.out}")
    return 0


def _save_results(args: argparse.Namespace, results: Sequence[Any]) -> bool:
    """Writes ``--out`` and prints ``--json`` (one object for one result, else a list);
    returns whether there is one result."""
    single = len(results) == 1
    data: Any = results[0].to_dict() if single else [r.to_dict() for r in results]
    if args.out:
        _write_data(Path(args.out), data)
    if args.json:
        print_json(data)
    return single


def _module_factors(args: argparse.Namespace, base: Callable[[], Any]) -> list[float]:
    """--factors, --target-flops (against ``base()``'s flops: the factory at x1) or --factor."""
    if args.factors:
        factors = parse_float_list(args.factors, "--factors")
    elif args.target_flops:
        flops = base().base_counts.flops
        factors = [parse_target(args.target_flops, flops, "--target-flops")]
    else:
        factors = [args.factor]
    if any(not f > 0 for f in factors):
        raise NetscaleError("scaling factors must be positive")
    return factors


def _run_module(args: argparse.Namespace) -> int:
    from netscale.cli.common import parse_int_list
    from netscale.scaling.module import ModuleScaleResult, scale_module

    _check_module_flags(args)
    shape = parse_int_list(args.input_shape, "--input-shape")
    if args.resolution_multiple is not None and len(shape) > 1:
        check_resolution_multiple(args.resolution_multiple, min(shape[1:]))
    from netscale.complexity.user_module import load_factory

    factory = load_factory(args.module)
    kwargs = _module_kwargs(args.kwarg)
    strategies = _strategies(args)
    common = {"depth_arg": args.depth_arg, "width_arg": args.width_arg,
              "tolerance": args.tolerance, "kwargs": kwargs, "name": args.module,
              "resolution_multiple": args.resolution_multiple or 1}
    factors = _module_factors(
        args, lambda: scale_module(factory, shape, 1.0, strategies[0], **common))
    results: list[ModuleScaleResult] = [
        scale_module(factory, shape, f, s, **common) for s in strategies for f in factors
    ]
    single = _save_results(args, results)
    if args.json:
        pass
    elif single:
        print(_module_side_by_side(results[0]))
    else:
        print(_module_growth(results))
    if args.out and not args.json:
        print(f"\nwrote {args.out}")
    return 0


def _check_module_flags(args: argparse.Namespace) -> None:
    """``scale --module`` refuses the flags that apply to specs only."""
    if args.model:
        raise NetscaleError("give either MODEL_OR_SPEC or --module, not both")
    if not args.module or not args.input_shape:
        raise NetscaleError("--module and --input-shape go together, e.g. --module "
                            "models.py:make_net --input-shape 3,224,224")
    if args.rounding != "exact":
        raise NetscaleError("--rounding reference applies to specs; a --module factory does "
                            "its own rounding")
    if args.out_format != "netscale" or args.csv:
        raise NetscaleError("with --module, results are written as JSON (--json, --out "
                            "FILE.json or .yaml); --csv and --out-format pycls apply to specs")
    if args.name:
        raise NetscaleError("--name applies to specs")
    if not 0 < args.tolerance < 1:
        raise NetscaleError(f"--tolerance must be in (0, 1), got {args.tolerance}")


def _write_data(out: Path, data: Any) -> None:
    """``data`` as YAML (.yaml/.yml) or JSON (otherwise), written atomically."""
    if out.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        from netscale.util import jsonio

        text = jsonio.dumps(data, indent=2) + "\n"
    atomic_write_text(out, text)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _module_side_by_side(r: Any) -> str:
    s = r.strategy
    rows = [
        *_count_rows(r),
        ["input shape", _shape(r.base_input_shape), _shape(r.input_shape),
         f"{r.resolution / r.base_resolution:.3f}" if r.base_resolution else "",
         f"{r.factor ** s.e_r:.3f}"],
        [r.depth_arg, "1", f"{r.depth_mult:.4g}", "", f"{r.factor ** s.e_d:.3f}"],
        [r.width_arg, "1", f"{r.width_mult:.4g}", "", f"{r.factor ** s.e_w:.3f}"],
    ]
    head = (f"{r.module} ×{r.factor:g} by {s.name} (e_d={s.e_d:.3g}, e_w={s.e_w:.3g}, "
            f"e_r={s.e_r:.3g}), counted on the meta device")
    out = [head, "", table(rows, ["", "base", "scaled", "realized ×", "predicted ×"],
                           align="lllrr")]
    status = "within" if r.within_tolerance else "OUTSIDE"
    out.append(f"\nflops land {r.flops_error:+.2%} from ×{r.factor:g} ({status} "
               f"±{r.tolerance:.0%}); {r.evaluations} candidate networks measured.")
    kw = ", ".join(f"{k}={v!r}" for k, v in r.factory_kwargs().items())
    out.append(f"build it: {r.module.rpartition(':')[2]}({kw}) at input {_shape(r.input_shape)}")
    if r.uncounted:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(r.uncounted.items()))
        out.append(f"not counted (no flop formula): {ops}")
    if r.note:
        out.append(f"note: {r.note}")
    return "\n".join(out)


def _module_growth(results: list[Any]) -> str:
    rows = []
    for r in results:
        rows.append([
            *_growth_cells(r),
            f"{r.depth_mult:.3g}", f"{r.width_mult:.3g}", _shape(r.input_shape),
            "yes" if r.within_tolerance else "NO",
        ])
    r0 = results[0]
    head = (f"{r0.module} at {_shape(r0.base_input_shape)}: growth by strategy and flops "
            "factor s (measured on the meta device; flops = multiply-adds; × = realized / base;"
            " pred = s^exponent)\n")
    return head + "\n" + table(
        rows,
        ["strategy", "s", "flops ×", "params ×", "pred", "acts ×", "pred", r0.depth_arg,
         r0.width_arg, "input", "±tol"],
        align="lrrrrrrrrll",
    )
