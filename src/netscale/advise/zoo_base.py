"""Candidates of a zoo base (``timm:NAME``, ``torchvision:NAME``, or a study whose base is
one): every strategy scaled to the target through the family's adapter
(:func:`netscale.scaling.module.scale_module` on a :class:`~netscale.zoo.scale.ZooFactory`),
counted with ``count_measured`` on the meta device; each candidate carries the zoo call that
builds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from netscale.advise.candidates import check_reachable, strategy_list
from netscale.advise.records import Candidate
from netscale.advise.study_fits import fast_alpha
from netscale.complexity.measured import count_measured
from netscale.errors import NetscaleError
from netscale.scaling.module import scale_module
from netscale.study.module_base import ModuleSpec
from netscale.zoo.factory import MODULE
from netscale.zoo.scale import (
    RESOLUTION_ARG,
    ZooFactory,
    check_strategy,
    zoo_result,
    zoo_scale_options,
)

_SCALED_ARGS = ("depth_mult", "width_mult", RESOLUTION_ARG)


@dataclass(frozen=True)
class ZooBase:
    """A zoo base: its factory, input shape (C, H, W) and constructor arguments (a study's
    base adds the class and channel counts of its data)."""

    factory: ZooFactory
    input_shape: tuple[int, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.factory.model.label

    @classmethod
    def of(cls, name: str) -> ZooBase:
        """``timm:NAME[:k=v,...]`` at its own input shape."""
        factory = ZooFactory(name)
        return cls(factory, tuple(factory.input_shape))

    @classmethod
    def of_trial(cls, model: Any) -> ZooBase | None:
        """The zoo base a study trial's model was built from (None if it is not a zoo
        model): its input shape and constructor arguments without the multipliers."""
        if not (isinstance(model, ModuleSpec) and model.module.startswith(MODULE + ":")):
            return None
        zoo, _, name = model.module.partition(":")[2].partition("__")
        kwargs = {k: v for k, v in model.kwargs.items() if k not in _SCALED_ARGS}
        return cls(ZooFactory(f"{zoo}:{name}"), tuple(model.input_shape), kwargs)


@dataclass(frozen=True)
class ZooBuild:
    """What the timer builds for a zoo candidate: its zoo call, input and exact counts."""

    call: str
    label: str
    in_channels: int
    resolution: int
    counts: tuple[int, int, int]

    @property
    def name(self) -> str:  # what the timer's progress line shows, as for a spec
        return self.label


def _options(base: ZooBase) -> dict[str, Any]:
    return zoo_scale_options(base.factory, kwargs=dict(base.kwargs))


def zoo_base_flops(base: ZooBase) -> int:
    """The base's flops (multiply-adds) at its input shape, built as the adapter builds the
    candidates (multipliers 1)."""
    with torch.device("meta"):
        net = base.factory(1.0, 1.0, int(base.input_shape[1]), **dict(base.kwargs))
    rec = count_measured(net, base.input_shape, per_module=False, name=base.label)
    return int(rec.flops)


def zoo_candidates(base: ZooBase, factor: float, trained: Sequence[str],
                   strategies: Sequence[str] | None, alphas: Sequence[float]
                   ) -> list[Candidate]:
    """Every strategy (the study's ``trained`` ones first) scaled from the zoo base to
    ``factor``; a candidate whose zoo call (and input side) equals an earlier one's is marked
    ``same_as``."""
    shape, opts = base.input_shape, _options(base)
    cands: list[Candidate] = []
    by_call: dict[tuple[str, int], str] = {}
    for strat, origin in strategy_list(trained, strategies, alphas):
        c = Candidate(name=strat.name, strategy=strat.to_dict(),
                      alpha=fast_alpha(strat.to_dict()), origin=origin,
                      trained=strat.name in trained)
        cands.append(c)
        try:
            check_strategy(base.factory, strat)
            r = zoo_result(base.factory, scale_module(base.factory, shape, factor, strat,
                                                      **opts), shape)
        except NetscaleError as exc:
            c.scale_error = str(exc)
            c.verdict = f"could not be scaled: {exc}"
            continue
        c.call = r.call
        c.flops, c.params, c.acts = r.counts.flops, r.counts.params, r.counts.acts
        c.resolution = r.resolution
        c.flops_factor = r.flops_factor
        key = (r.call, r.resolution)
        if key in by_call:
            c.same_as = by_call[key]
            c.verdict = f"same network as {c.same_as} at this target"
        else:
            by_call[key] = c.name
    check_reachable(cands, factor, base.label)
    return cands


def zoo_build(base: ZooBase, c: Candidate) -> ZooBuild:
    """The :class:`ZooBuild` of a scaled candidate."""
    assert c.call is not None and c.resolution is not None
    return ZooBuild(call=c.call, label=f"{base.label} {c.name}",
                    in_channels=int(base.input_shape[0]), resolution=c.resolution,
                    counts=(c.flops or 0, c.params or 0, c.acts or 0))
