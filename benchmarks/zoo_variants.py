"""The zoo's own scaled variants beside netscale's ×s models of the smallest one.

For each family that ships scaled variants (timm's EfficientNet B0..B7, RegNetY, ResNet
18..152, ViT S/B/L), every variant is counted at its own input, and the smallest one is scaled
by netscale to the same flops factor (strategy dWr by default) through the family's adapter.
Prints a markdown table (flops = multiply-adds, params, acts = output elements of
conv/linear/matmul layers), for docs/zoo.md.

Run in the zoo environment (see docs/zoo.md):
    PYTHONPATH=src .venv-zoo/bin/python benchmarks/zoo_variants.py [--strategy dWr]
        [--families efficientnet,regnety,resnet,vit]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time

FAMILIES = {
    "efficientnet": [f"timm:efficientnet_b{i}" for i in range(8)],
    "regnety": [f"timm:regnety_{s}" for s in ("002", "004", "008", "016", "032", "080", "160",
                                             "320")],
    "resnet": [f"timm:resnet{d}" for d in (18, 34, 50, 101, 152)],
    "vit": ["timm:vit_small_patch16_224", "timm:vit_base_patch16_224",
            "timm:vit_large_patch16_224"],
}


def _si(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g} {unit}"
    return f"{x:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategy", default="dWr")
    ap.add_argument("--families", default=",".join(FAMILIES))
    args = ap.parse_args(argv)

    import timm
    import torch
    import torchvision

    from netscale.complexity.measured import count_measured
    from netscale.zoo import parse_zoo_name, scale_zoo

    print(f"Generated {datetime.date.today()} by `benchmarks/zoo_variants.py --strategy "
          f"{args.strategy}` (timm {timm.__version__}, torchvision {torchvision.__version__}, "
          f"torch {torch.__version__}, Python {platform.python_version()}). Flops are "
          "multiply-adds at batch size 1; netscale's model is the family's smallest scaled "
          "to the variant's flops factor; ± = its flops vs the variant's.\n")
    print("| variant | px | flops | params | acts | netscale ×s | px | flops (±) | params | "
          "acts | call |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fam in args.families.split(","):
        names = FAMILIES[fam.strip()]
        base = parse_zoo_name(names[0])
        base_shape = base.input_shape()
        base_flops = count_measured(base.build("meta"), base_shape, per_module=False).flops
        for name in names:
            t0 = time.perf_counter()
            m = parse_zoo_name(name)
            shape = m.input_shape()
            rec = count_measured(m.build("meta"), shape, per_module=False)
            s = rec.flops / base_flops
            row = [m.name, shape[1], _si(rec.flops), _si(rec.params), _si(rec.acts)]
            if name == names[0]:
                row += ["(base)", "", "", "", "", ""]
            else:
                r = scale_zoo(base, s, args.strategy, input_shape=base_shape)
                err = r.counts.flops / rec.flops - 1
                flag = "" if r.within_tolerance else " (outside ±2 %)"
                call = r.call.split("(", 1)[1].rstrip(")")
                call = ", ".join(p for p in call.split(", ")[1:] if "pretrained" not in p)
                row += [f"×{s:.2f}", r.resolution, f"{_si(r.counts.flops)} ({err:+.1%}){flag}",
                        _si(r.counts.params), _si(r.counts.acts), f"`{call}`"]
            print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
            print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
