"""What the commands do with a zoo model name: count it, build it for export or timing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from netscale.complexity.measured import count_measured
from netscale.complexity.record import ComplexityRecord
from netscale.errors import NetscaleError
from netscale.zoo.names import ZooModel, build_call, parse_zoo_name
from netscale.zoo.scale import scale_zoo


def input_shape(model: ZooModel, shape_text: str | Sequence[int] | None = None,
                resolution: int | None = None) -> tuple[int, ...]:
    """The input shape (C, H, W): ``--input-shape``, else the model's own with the side
    replaced by ``resolution`` if given."""
    if shape_text is not None and resolution:
        raise NetscaleError("give --input-shape or --resolution for a zoo model, not both")
    if shape_text is not None:
        if isinstance(shape_text, str):
            parts = shape_text.replace("x", ",").split(",")
            try:
                shape = tuple(int(p) for p in parts)
            except ValueError:
                raise NetscaleError(f"--input-shape must be comma-separated integers, got "
                                    f"{shape_text!r}") from None
        else:
            shape = tuple(int(s) for s in shape_text)
        if not shape or any(s < 1 for s in shape):
            raise NetscaleError(f"--input-shape must be positive integers, got {shape_text!r}")
        return shape
    c, h, w = model.input_shape()
    if resolution:
        return (c, int(resolution), int(resolution))
    return (c, h, w)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def zoo_record(name: str, shape_text: str | None = None, resolution: int | None = None, *,
               backward: bool = False) -> ComplexityRecord:
    """The measured complexity of a zoo model (built on the meta device) at its own input
    shape, or the one given."""

    model = parse_zoo_name(name)
    shape = input_shape(model, shape_text, resolution)
    net = model.build(device="meta")
    try:
        return count_measured(net, shape, backward=backward, name=model.label)
    except Exception as exc:
        raise NetscaleError(
            f"running {model.label} on input shape {tuple(shape)} failed: "
            f"{type(exc).__name__}: {_first_line(exc)}; give its input with --input-shape"
        ) from None


def build_cpu(name: str, factor: float | None = None, strategy: str = "dWr",
              shape_text: str | None = None,
              resolution: int | None = None) -> tuple[Any, tuple[int, ...], str]:
    """A zoo model built on the CPU with seed 0 (scaled by ``factor`` first if given): the
    module, its input shape and a label."""

    model = parse_zoo_name(name)
    shape = input_shape(model, shape_text, resolution)
    label = model.label
    expr = model.call()
    if factor is not None:
        r = scale_zoo(model, factor, strategy, input_shape=shape)
        expr, shape = r.call, tuple(r.input_shape)
        label = f"{model.label} x{factor:g} {r.strategy.name}"
    else:
        model.check()
    torch.manual_seed(0)
    return build_call(expr, label), shape, label


def zoo_model_for_export(name: str, shape_text: str | None, resolution: int | None,
                         factor: float | None, strategy: str) -> tuple[Any, tuple[int, ...], str]:
    """``netscale export timm:NAME``: the module, its input shape and label."""
    return build_cpu(name, factor, strategy, shape_text, resolution)
