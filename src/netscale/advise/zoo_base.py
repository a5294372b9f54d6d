"""Candidates of a zoo base (``timm:NAME``, ``torchvision:NAME``): every strategy scaled to
the target through the family's adapter (:func:`netscale.scaling.module.scale_module` on a
:class:`~netscale.zoo.scale.ZooFactory`), counted with ``count_measured`` on the meta device;
each candidate carries the zoo call that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netscale.advise.candidates import check_reachable, strategy_list
from netscale.advise.records import Candidate
from netscale.advise.study_fits import fast_alpha
from netscale.errors import NetscaleError
from netscale.scaling.module import scale_module
from netscale.zoo.scale import ZooFactory, check_strategy, zoo_result, zoo_scale_options


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


def zoo_base_flops(factory: ZooFactory) -> int:
    """The base's flops (multiply-adds) at its own input shape."""
    from netscale.complexity.measured import count_measured  # imports torch

    rec = count_measured(factory.base, factory.input_shape, per_module=False,
                         name=factory.model.label)
    return int(rec.flops)


def zoo_candidates(factory: ZooFactory, factor: float, strategies: Sequence[str] | None,
                   alphas: Sequence[float]) -> list[Candidate]:
    """Every strategy scaled from the zoo base to ``factor``; a candidate whose zoo call (and
    input side) equals an earlier one's is marked ``same_as``."""
    shape = factory.input_shape
    opts = zoo_scale_options(factory)
    label = factory.model.label
    cands: list[Candidate] = []
    by_call: dict[tuple[str, int], str] = {}
    for strat, origin in strategy_list([], strategies, alphas):
        c = Candidate(name=strat.name, strategy=strat.to_dict(),
                      alpha=fast_alpha(strat.to_dict()), origin=origin)
        cands.append(c)
        try:
            check_strategy(factory, strat)
            r = zoo_result(factory, scale_module(factory, shape, factor, strat, **opts), shape)
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
    check_reachable(cands, factor, label)
    return cands


def zoo_build(factory: ZooFactory, c: Candidate) -> ZooBuild:
    """The :class:`ZooBuild` of a scaled candidate."""
    assert c.call is not None and c.resolution is not None
    return ZooBuild(call=c.call, label=f"{factory.model.label} {c.name}",
                    in_channels=factory.input_shape[0], resolution=c.resolution,
                    counts=(c.flops or 0, c.params or 0, c.acts or 0))
