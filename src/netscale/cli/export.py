"""`netscale export`: write a (scaled) network for deployment and verify the written file."""

from __future__ import annotations

import argparse
from typing import Any

from netscale.cli.common import positive_float, positive_int, print_json
from netscale.errors import NetscaleError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a (scaled) model as TorchScript, torch.export (.pt2) or ONNX",
        description="Write MODEL_OR_SPEC (optionally scaled by --factor/--strategy, with "
        "trained weights from --weights RUN_DIR) for deployment. The file is loaded back and "
        "its output compared with the PyTorch model on a random input (max abs difference "
        "printed); it is renamed into place only when they agree. TorchScript and pt2 need "
        "torch alone; onnx needs pip install 'netscale[onnx]'.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL_OR_SPEC",
                   help="named model, spec file or zoo model (timm:NAME, torchvision:NAME); "
                   "optional with --weights: the run's network")
    p.add_argument("--format", "-f", choices=("torchscript", "pt2", "onnx"), required=True,
                   help="torchscript (torch.jit), pt2 (torch.export) or onnx")
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="file to write")
    p.add_argument("--resolution", "-r", type=positive_int, metavar="PX",
                   help="input side in pixels of the verification input (default: the spec's)")
    p.add_argument("--factor", type=positive_float, metavar="S",
                   help="scale MODEL_OR_SPEC by this flops factor first")
    p.add_argument("--strategy", default="dWr", help="scaling strategy with --factor (dWr)")
    p.add_argument("--weights", metavar="RUN_DIR",
                   help="export the trained weights of a 'netscale train' run (EMA if kept)")
    p.add_argument("--which", choices=("auto", "ema", "raw"), default="auto",
                   help="with --weights: EMA weights if the run kept them (auto), or choose")
    p.add_argument("--module", metavar="PATH_OR_PKG:FACTORY",
                   help="export any nn.Module returned by FACTORY() (with --input-shape)")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape with --module")
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="images in the verification input (default 1; the exported batch "
                   "dimension is dynamic where the format allows)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from netscale.models.export import FORMAT_NAMES, export_model, export_spec
    from netscale.zoo.names import is_zoo_name

    if args.model and is_zoo_name(args.model):
        if args.weights or args.module:
            raise NetscaleError("a zoo model is exported as built (random initialisation); "
                                "it does not go with --weights or --module")
        from netscale.zoo.use import zoo_model_for_export

        model, shape, label = zoo_model_for_export(args.model, args.input_shape,
                                                   args.resolution, args.factor, args.strategy)
        res = export_model(model, args.out, args.format, shape, batch_size=args.batch_size,
                           weights="random initialisation (seed 0)", name=label)
    elif args.module:
        if args.model or args.weights or args.factor:
            raise NetscaleError("--module exports a user nn.Module as is; it does not go with "
                                "MODEL_OR_SPEC, --weights or --factor")
        if not args.input_shape:
            raise NetscaleError("--module needs --input-shape (without batch), e.g. 3,224,224")
        from netscale.cli.common import parse_int_list
        from netscale.complexity.user_module import load_factory_model

        shape = tuple(parse_int_list(args.input_shape, "--input-shape"))
        model = load_factory_model(args.module)
        res = export_model(model, args.out, args.format, shape, batch_size=args.batch_size,
                           weights="as returned by the factory", name=args.module)
    else:
        if args.input_shape:
            raise NetscaleError("--input-shape goes with --module; for specs use --resolution")
        spec = None
        if args.model:
            from netscale.specs import resolve_spec

            spec = resolve_spec(args.model)
            if args.factor is not None:
                if args.weights:
                    raise NetscaleError("--factor builds a new (untrained) network; it does not "
                                        "go with --weights (scale, train, then export the run)")
                from netscale.scaling import scale

                spec = scale(spec, args.factor, args.strategy)
        elif args.factor is not None:
            raise NetscaleError("--factor needs MODEL_OR_SPEC")
        state, weights = None, "random initialisation (seed 0)"
        if args.weights is not None:
            from netscale.train.checkpoint import run_weights

            spec, state, weights = run_weights(args.weights, args.which, spec)
        if spec is not None:
            from netscale.complexity.limits import check_fits_memory

            check_fits_memory(spec, max(2, args.batch_size), train=False,
                              what=f"exporting {spec.name}", resolution=args.resolution,
                              hint="lower --batch-size, --resolution or --factor")
        res = export_spec(spec, args.out, args.format, resolution=args.resolution,
                          batch_size=args.batch_size, state=state, weights=weights)
    if args.json:
        print_json(res.to_dict())
        return 0
    shape_text = "x".join(str(v) for v in res.input_shape)
    print(f"exported {res.model} as {FORMAT_NAMES[res.format]} to {res.path} "
          f"({res.bytes / 2**20:.2f} MiB; {res.weights}; "
          f"{'dynamic' if res.dynamic_batch else 'fixed'} batch dimension)")
    print(f"verified: loaded back and run on a random {shape_text} input: max abs difference vs "
          f"PyTorch {res.max_abs_diff:.3g} (outputs up to {res.max_abs_output:.3g}, "
          f"{res.num_outputs} classes)")
    return 0
