"""`netscale models` and `netscale info`: named models and exact complexity."""

from __future__ import annotations

import argparse
from typing import Any

from netscale.cli.common import parse_int_list, positive_int, print_json
from netscale.complexity import FLOPS_UNIT, ComplexityRecord, complexity
from netscale.errors import NetscaleError
from netscale.specs import get_spec, list_models, model_family, resolve_spec
from netscale.util.fmt import si, table


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list the named models with their complexity",
        description="List the named models with flops (multiply-adds), params and acts at "
        "their training resolution.",
    )
    p.add_argument("--family", help="only this family (regnet, resnet, effnet, cifar)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run_models)

    p = sub.add_parser(
        "info",
        help="exact flops, params and activations of a model, spec or nn.Module",
        description="Exact complexity: flops are multiply-adds at batch size 1; acts are "
        "output elements of every conv/linear/matmul layer plus max-pool outputs.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL_OR_SPEC",
                   help="a named model (see 'netscale models'), a spec file (.yaml/.json) or a "
                   "zoo model (timm:NAME, torchvision:NAME; see docs/zoo.md)")
    p.add_argument("--resolution", "-r", type=positive_int, metavar="PX",
                   help="input side in pixels (default: the spec's training resolution)")
    p.add_argument("--method", choices=("analytic", "measured"), default="analytic",
                   help="count from the spec (analytic, default) or by running the model on "
                   "the meta device (measured)")
    p.add_argument("--per-module", action="store_true",
                   help="breakdown: per stage (analytic) or per module (measured)")
    p.add_argument("--depth", type=positive_int, default=2,
                   help="module-tree depth shown by --per-module with measured counts (2)")
    p.add_argument("--backward", action="store_true",
                   help="measured only: also count backward flops")
    p.add_argument("--module", metavar="PATH_OR_PKG:FACTORY",
                   help="measure any nn.Module returned by FACTORY() in a file or package")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="input shape without batch dimension, with --module or a zoo model "
                   "(e.g. 3,224,224)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_info)


def run_models(args: argparse.Namespace) -> int:
    names = list_models(args.family)
    if not names:
        raise NetscaleError(
            f"no models in family {args.family!r}; families: regnet, resnet, effnet, cifar"
        )
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = get_spec(name)
        c = complexity(spec)
        rows.append({"name": name, "family": model_family(name), "resolution": c.resolution,
                     "num_classes": spec.num_classes, "flops": c.flops, "params": c.params,
                     "acts": c.acts})
    if args.json:
        print_json(rows)
        return 0
    print(table(
        [[r["name"], r["family"], r["resolution"], f"{r['flops'] / 1e6:,.1f}",
          f"{r['params'] / 1e6:,.2f}", f"{r['acts'] / 1e6:,.2f}"] for r in rows],
        ["model", "family", "px", "flops (M MACs)", "params (M)", "acts (M)"],
        align="llrrrr",
    ))
    print(f"\n{len(rows)} models. Flops = {FLOPS_UNIT}; acts = output elements of conv/linear "
          "layers + stem max-pool.")
    return 0


def _record_for(args: argparse.Namespace) -> tuple[ComplexityRecord, dict[str, Any]]:
    if args.module:
        if args.model:
            raise NetscaleError("give either MODEL_OR_SPEC or --module, not both")
        if not args.input_shape:
            raise NetscaleError("--module needs --input-shape (without batch), e.g. 3,224,224")
        if args.resolution:
            raise NetscaleError("--resolution applies to specs; with --module use --input-shape")
        from netscale.complexity.measured import count_measured
        from netscale.complexity.user_module import load_factory_model

        shape = parse_int_list(args.input_shape, "--input-shape")
        model = load_factory_model(args.module)
        try:
            rec = count_measured(model, shape, backward=args.backward, name=args.module)
        except Exception as exc:
            raise NetscaleError(
                f"running {args.module} on input shape {tuple(shape)} failed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        return rec, {}
    if not args.model:
        raise NetscaleError("give a model name or spec file (or --module PATH:FACTORY)")
    from netscale.zoo.names import is_zoo_name

    if is_zoo_name(args.model):
        from netscale.zoo.use import zoo_record

        return zoo_record(args.model, args.input_shape, args.resolution,
                          backward=args.backward), {}
    if args.input_shape:
        raise NetscaleError("--input-shape goes with --module; for specs use --resolution")
    spec = resolve_spec(args.model)
    if args.method == "measured" or args.backward:
        from netscale.complexity.measured import measure_spec

        rec = measure_spec(spec, args.resolution, backward=args.backward)
    else:
        rec = complexity(spec, args.resolution)
    extra = {"spec": spec.name, "num_classes": spec.num_classes,
             "depths": spec.depths, "widths": spec.widths,
             "group_widths": spec.group_widths}
    return rec, extra


def run_info(args: argparse.Namespace) -> int:
    rec, extra = _record_for(args)
    if args.json:
        data = rec.to_dict(parts=args.per_module)
        data.update(extra)
        print_json(data)
        return 0
    shape = (f"input {'x'.join(map(str, rec.input_shape))}" if rec.input_shape and not extra
             else f"{rec.resolution}x{rec.resolution} px")
    print(f"{rec.model} at {shape}, {rec.method} count (batch size 1)")
    print(f"  flops   {si(rec.flops):>9}  multiply-adds   ({rec.flops:,})")
    if rec.backward_flops is not None:
        print(f"  bwd     {si(rec.backward_flops):>9}  multiply-adds   ({rec.backward_flops:,})")
    print(f"  params  {si(rec.params):>9}  parameters      ({rec.params:,})")
    print(f"  acts    {si(rec.acts):>9}  activations     ({rec.acts:,})")
    if extra:
        print(f"  depths {extra['depths']}  widths {extra['widths']}")
    if args.per_module and rec.parts:
        print()
        rows = []
        for name, c in rec.parts:
            if rec.method == "measured" and name.count(".") >= args.depth:
                continue
            share = 100.0 * c.flops / rec.flops if rec.flops else 0.0
            kind = rec.part_types.get(name, "")
            rows.append([name, kind, c.flops, c.params, c.acts, f"{share:.1f}%"])
        label = "stage" if rec.method == "analytic" else "module"
        headers = [label, "type", "flops (MACs)", "params", "acts", "flops %"]
        if rec.method == "analytic":
            rows = [[r[0], *r[2:]] for r in rows]
            headers = [label, *headers[2:]]
        print(table(rows, headers))
    if rec.method == "measured":
        if rec.uncounted:
            ops = ", ".join(f"{k} x{v}" for k, v in sorted(rec.uncounted.items()))
            print(f"\n  not counted (no flop formula): {ops}")
        else:
            print("\n  every dispatched op was counted or is free by convention")
    return 0
