"""`netscale scale`: scale a model by a flops factor with any strategy."""

from __future__ import annotations

import argparse
import csv
import io
import sys
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
    p.add_argument("model", metavar="MODEL_OR_SPEC", help="named model or spec file")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--factor", "-s", type=float, help="flops factor s (e.g. 4, or 0.25)")
    amount.add_argument("--factors", help="several factors for a growth table, e.g. 2,4,8,16")
    amount.add_argument("--target-flops", metavar="FLOPS",
                        help="absolute target in multiply-adds (4G, 400M) or a factor (4x)")
    strat = p.add_mutually_exclusive_group()
    strat.add_argument("--strategy", default=None, help=f"strategy (default {DEFAULT_STRATEGY})")
    strat.add_argument("--strategies", help="several strategies for a growth table, e.g. "
                       "d,w,r,dw,dr,wr,dwr,dWr")
    strat.add_argument("--alpha", type=float, help="fast compound scaling with this α in [0, 1]")
    p.add_argument("--rounding", choices=ROUNDING_MODES, default="exact",
                   help="exact (land within the tolerance of s; default) or reference "
                   "(reproduce the reference scaler, which drifts)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="exact mode: allowed relative flops error (default 0.02 = ±2%%)")
    p.add_argument("--resolution-multiple", type=int, default=4,
                   help="exact mode: resolution quantum in pixels (default 4)")
    p.add_argument("--out", help="write the scaled spec here (.yaml or .json); with several "
                   "results, a directory that receives one file each")
    p.add_argument("--out-format", choices=("netscale", "pycls"), default="netscale",
                   help="spec format written by --out (pycls: an anynet/effnet config)")
    p.add_argument("--name", help="name of the scaled spec (single result)")
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
    if args.resolution_multiple < 1:
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


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    spec = resolve_spec(args.model)
    strategies = _strategies(args)
    if args.factors is not None:
        factors = parse_float_list(args.factors, "--factors")
    elif args.target_flops is not None:
        from netscale.complexity import count_tuple

        factors = [parse_target(args.target_flops, count_tuple(spec)[0], "--target-flops")]
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
    if args.out:
        _write(results, Path(args.out), args.out_format)
    single = len(results) == 1
    if args.json:
        print_json(results[0].to_dict() if single else [r.to_dict() for r in results])
    elif args.csv:
        sys.stdout.write(_csv(results))
    elif single:
        print(_side_by_side(results[0]))
    else:
        print(_growth(results))
    if args.out and not (args.json or args.csv):
        print(f"\nwrote {args.out}" + (f" ({args.out_format} format)" if single else ""))
    return 0


def _write(results: list[ScaleResult], out: Path, fmt: str) -> None:
    def text(spec: NetSpec, path: Path) -> str:
        if fmt == "pycls":
            return pycls_yaml(spec)
        return spec.to_yaml() if path.suffix.lower() in (".yaml", ".yml", "") else spec.to_json()

    if len(results) == 1 and out.suffix and not out.is_dir():
        atomic_write_text(out, text(results[0].spec, out))
        return
    if out.exists() and not out.is_dir():
        raise NetscaleError(f"--out {str(out)!r} is a file; give a directory for several results")
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        path = out / f"{r.spec.name}.yaml"
        atomic_write_text(path, text(r.spec, path))


def _describe(r: ScaleResult) -> str:
    s = r.strategy
    g = ", group width follows width" if s.group_follows_width else ""
    return (f"{r.base.name} ×{r.factor:g} by {s.name} (e_d={s.e_d:.3g}, e_w={s.e_w:.3g}, "
            f"e_r={s.e_r:.3g}{g}), {r.rounding} rounding")


def _side_by_side(r: ScaleResult) -> str:
    b, s = r.base, r.spec
    rows = [
        ["flops (multiply-adds)", si(r.base_counts[0]), si(r.counts[0]),
         f"{r.flops_factor:.3f}", f"{r.factor:.3f}"],
        ["params", si(r.base_counts[1]), si(r.counts[1]), f"{r.params_factor:.3f}",
         f"{r.predicted_params_factor:.3f}"],
        ["acts (output elements)", si(r.base_counts[2]), si(r.counts[2]),
         f"{r.acts_factor:.3f}", f"{r.predicted_acts_factor:.3f}"],
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


def _growth(results: list[ScaleResult]) -> str:
    rows = []
    for r in results:
        rows.append([
            r.strategy.name, f"{r.factor:g}", f"{r.flops_factor:.2f}",
            f"{r.params_factor:.2f}", f"{r.predicted_params_factor:.2f}",
            f"{r.acts_factor:.2f}", f"{r.predicted_acts_factor:.2f}",
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
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS)
    w.writeheader()
    for r in results:
        w.writerow({
            "base": r.base.name, "strategy": r.strategy.name, "factor": r.factor,
            "rounding": r.rounding, "flops": r.counts[0], "params": r.counts[1],
            "acts": r.counts[2], "resolution": r.spec.resolution,
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
