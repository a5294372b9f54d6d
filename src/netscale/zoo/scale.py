"""Counting and scaling zoo models.

:class:`ZooFactory` presents a zoo family as a module factory
(``factory(depth_mult=d, width_mult=w, resolution=side, **kwargs)``) through its adapter, so
:func:`netscale.scaling.module.scale_module` searches the multipliers and the resolution, counting
every candidate on the meta device. :func:`scale_zoo` returns that result with the zoo's own
call that builds the chosen network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from netscale.errors import NetscaleError
from netscale.scaling.module import ModuleScaleResult, scale_module
from netscale.scaling.strategy import DEFAULT_STRATEGY, Strategy, parse_strategy
from netscale.zoo.adapters import Adapter, find_adapter
from netscale.zoo.names import ZooModel, build_call, is_zoo_name, parse_zoo_name

RESOLUTION_ARG = "resolution"
_META_CACHE = 64


def as_zoo_model(model: ZooModel | str) -> ZooModel:
    return model if isinstance(model, ZooModel) else parse_zoo_name(model)


_BASES: dict[str, Any] = {}


def _base(model: ZooModel) -> Any:
    """The unscaled model on the meta device (built once per name and arguments)."""
    if model.label not in _BASES:
        _BASES[model.label] = model.build(device="meta")
    return _BASES[model.label]


class ZooFactory:
    """A zoo model as a factory of scaled networks (the engine of ``scale --module``)."""

    def __init__(self, model: ZooModel | str) -> None:
        self.model = as_zoo_model(model)
        self.base = _base(self.model)
        self.adapter: Adapter = find_adapter(self.model, self.base)
        self._meta: dict[str, Any] = {}
        self.__name__ = self.model.label

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.model.input_shape()

    def expr(self, depth_mult: float = 1.0, width_mult: float = 1.0, resolution: int = 0,
             **kwargs: Any) -> str:
        """The zoo call that builds the model at these multipliers (and input side)."""
        side = int(resolution or self.input_shape[1])
        return self.adapter.scaled(self.model.with_kwargs(**kwargs), self.base,
                                   float(depth_mult), float(width_mult), side)

    def __call__(self, depth_mult: float = 1.0, width_mult: float = 1.0, resolution: int = 0,
                 **kwargs: Any) -> Any:
        expr = self.expr(depth_mult, width_mult, resolution, **kwargs)
        default_device = getattr(torch, "get_default_device", None)  # torch >= 2.3
        if default_device is None or str(default_device()) != "meta":
            return build_call(expr, self.model.label)
        # on the meta device (counting), multipliers that the adapter rounds to the same call
        # are the same network: built once (counting never modifies a model)
        if expr not in self._meta:
            if len(self._meta) >= _META_CACHE:
                self._meta.pop(next(iter(self._meta)))
            self._meta[expr] = build_call(expr, self.model.label, device="meta")
        return self._meta[expr]


@dataclass(frozen=True)
class ZooScaleResult:
    """A scaled zoo model: the module-factory result and the zoo call that builds it."""

    model: ZooModel
    family: str
    result: ModuleScaleResult
    call: str
    base_call: str

    def __getattr__(self, name: str) -> Any:  # the counts and factors of the search
        return getattr(self.result, name)

    def to_dict(self) -> dict[str, Any]:
        out = self.result.to_dict()
        out.update({"model": self.model.label, "family": f"{self.model.zoo} {self.family}",
                    "call": self.call, "base_call": self.base_call})
        return out


def zoo_scale_options(factory: ZooFactory, **kw: Any) -> dict[str, Any]:
    """The :func:`scale_module` keyword arguments for a zoo factory."""
    out = {"name": factory.model.label,
           "resolution_multiple": factory.adapter.multiple(factory.base), **kw}
    if factory.adapter.uses_resolution:
        out["resolution_arg"] = RESOLUTION_ARG
    return out


def check_strategy(factory: ZooFactory, strategy: Strategy) -> None:
    dims = factory.adapter.dims(factory.base)
    for letter, e in (("d", strategy.e_d), ("w", strategy.e_w)):
        if e > 0 and letter not in dims:
            what = "depth" if letter == "d" else "width"
            raise NetscaleError(
                f"{factory.model.label}: the {factory.model.zoo} {factory.adapter.family} "
                f"adapter does not scale {what}, which strategy {strategy.name} scales; "
                f"use a strategy over {', '.join(dims)}")


def scale_zoo(model: ZooModel | str, factor: float, strategy: str | Strategy = DEFAULT_STRATEGY,
              *, input_shape: Sequence[int] | None = None, tolerance: float = 0.02,
              resolution_multiple: int | None = None, **kwargs: Any) -> ZooScaleResult:
    """Scales a zoo model by flops ``factor`` with ``strategy`` (see :func:`scale_module`).

    ``input_shape`` defaults to the model's own; ``kwargs`` are passed to the constructor.
    """
    factory = ZooFactory(model)
    strat = parse_strategy(strategy)
    check_strategy(factory, strat)
    shape = tuple(input_shape) if input_shape else factory.input_shape
    opts = zoo_scale_options(factory, tolerance=tolerance, kwargs=kwargs)
    if resolution_multiple:
        opts["resolution_multiple"] = int(resolution_multiple)
    r = scale_module(factory, shape, factor, strat, depth_arg="depth_mult",
                     width_arg="width_mult", **opts)
    return zoo_result(factory, r, shape)


def zoo_result(factory: ZooFactory, r: ModuleScaleResult,
               base_shape: Sequence[int]) -> ZooScaleResult:
    """``r`` with the zoo calls that build the scaled and the base network."""
    fk = r.factory_kwargs()
    fk.setdefault(RESOLUTION_ARG, r.resolution)
    base_kw = {**r.kwargs, RESOLUTION_ARG: int(base_shape[1])}
    return ZooScaleResult(model=factory.model, family=factory.adapter.family, result=r,
                          call=factory.expr(**fk), base_call=factory.expr(**base_kw))


def zoo_factory(name: str) -> ZooFactory | None:
    """The factory of a zoo model name (None if ``name`` is not one)."""
    return ZooFactory(name) if is_zoo_name(name) else None
