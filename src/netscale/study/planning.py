"""Planning a study: every (base, strategy, factor, seed) trial with its scaled model and
counts, without running anything (the trial table of ``--dry-run`` is the plan). Planning is
pure and cheap (scale + count); :mod:`netscale.study.runner` runs the plan."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.scaling import BASE_STRATEGY, Strategy, parse_strategy, scale_report
from netscale.scaling.module import ModuleScaleResult, scale_module
from netscale.specs.spec import network_key
from netscale.study.config import StudyConfig
from netscale.study.module_base import ModuleSpec, adapt_module_base, is_module_base


@dataclass(frozen=True)
class PlannedTrial:
    """One (base, strategy, factor, seed) combination with its scaled spec and counts."""

    id: str
    base: str
    strategy: str
    factor: float
    seed: int
    spec: dict[str, Any]
    flops: int
    params: int
    acts: int
    resolution: int
    flops_factor: float
    params_factor: float
    acts_factor: float
    within_tolerance: bool
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    # id of the trial with the same network (architecture and resolution) planned first for
    # this base and seed: this one is not trained or timed again, it mirrors that one's results
    same_as: str | None = None

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def trial_id(base: str, strategy: str, factor: float, seed: int) -> str:
    return f"{base}|{strategy}|x{factor:g}|seed{seed}"


def trial_dirname(tid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tid).strip("_")


def data_info(cfg: StudyConfig) -> dict[str, Any] | None:
    """Classes and input channels of the study's dataset (None when not training)."""
    if not cfg.train:
        return None
    from netscale.data import describe  # start-up: `netscale fit --help` imports study

    if cfg.data is None:
        raise NetscaleError(f"{cfg.source}: data needs 'name' or 'path' to train")
    info = describe(cfg.data)
    return {"num_classes": info.num_classes, "in_channels": info.in_channels,
            "dataset": info.name, "train_size": info.train_size, "val_size": info.val_size}


def _new_trial_keys(cfg: StudyConfig, label: str, seen: set[str]
                    ) -> Iterator[tuple[int, Strategy, str, float, str]]:
    """(seed, strategy, name, factor, trial id) of every trial of base ``label`` not in
    ``seen`` (which it updates): factor 1 is the base, shared by all strategies."""
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            for factor in cfg.factors:
                strat = parse_strategy(strategy)
                name = BASE_STRATEGY if factor == 1 else strat.name
                tid = trial_id(label, name, factor, seed)
                if tid in seen:
                    continue
                seen.add(tid)
                yield seed, strat, name, float(factor), tid


def plan_trials(cfg: StudyConfig, info: Mapping[str, Any] | None = None) -> list[PlannedTrial]:
    """Every trial of the study, without running anything. Factor 1 is shared by all
    strategies (it is the base model) and appears once per base and seed.

    One network, one trial: when a (strategy, factor) scales the base to a network already
    planned for that base and seed (same architecture at the same resolution, e.g. w x2 and
    dWr x2 whose depth and resolution steps round to nothing), its row is kept with
    ``same_as`` naming the first such trial; only that one is trained and timed."""
    out: list[PlannedTrial] = []
    seen: set[str] = set()
    canonical: dict[tuple[str, int, str], str] = {}
    for base in cfg.bases:
        if is_module_base(base):  # your own nn.Module factory
            out.extend(_plan_module_trials(cfg, base, info, seen))
            continue
        spec = cfg.resolve_base(base, info)
        label = Path(base).stem if base.lower().endswith((".yaml", ".yml", ".json")) else base
        for seed, strat, name, factor, tid in _new_trial_keys(cfg, label, seen):
            r = scale_report(spec, factor, strat, rounding=cfg.rounding,
                             tolerance=cfg.tolerance,
                             resolution_multiple=cfg.resolution_multiple,
                             name=f"{label}_x{factor:g}_{name}")
            spec_dict = r.spec.to_dict()
            first = canonical.setdefault((label, seed, network_key(spec_dict)), tid)
            out.append(PlannedTrial(
                id=tid, base=label, strategy=name, factor=float(factor), seed=seed,
                spec=spec_dict, flops=r.counts.flops, params=r.counts.params,
                acts=r.counts.acts, resolution=r.spec.resolution,
                flops_factor=r.flops_factor, params_factor=r.params_factor,
                acts_factor=r.acts_factor, within_tolerance=r.within_tolerance,
                depths=tuple(r.spec.depths), widths=tuple(r.spec.widths),
                same_as=None if first == tid else first,
            ))
    return out


def _plan_module_trials(cfg: StudyConfig, base: Mapping[str, Any],
                        info: Mapping[str, Any] | None, seen: set[str]) -> list[PlannedTrial]:
    """The planned trials of one module base (see :func:`plan_trials`)."""
    shape, kwargs, num_classes = adapt_module_base(base, info, cfg.base_overrides, cfg.source)
    label = str(base["name"])
    out = []
    cache: dict[tuple[str, float], ModuleScaleResult] = {}
    for seed, strat, name, factor, tid in _new_trial_keys(cfg, label, seen):
        key = (name, float(factor))
        if key not in cache:
            cache[key] = scale_module(
                base["module"], shape, float(factor), strat,
                depth_arg=base["depth_arg"], width_arg=base["width_arg"],
                tolerance=cfg.tolerance,
                resolution_multiple=int(base["resolution_multiple"]),
                kwargs=kwargs, name=label, resolution_arg=base.get("resolution_arg"))
        r = cache[key]
        spec = ModuleSpec(name=f"{label}_x{factor:g}_{name}", module=base["module"],
                          kwargs=r.factory_kwargs(), input_shape=r.input_shape,
                          num_classes=num_classes or 0)
        out.append(PlannedTrial(
            id=tid, base=label, strategy=name, factor=float(factor), seed=seed,
            spec=spec.to_dict(), flops=r.counts.flops, params=r.counts.params,
            acts=r.counts.acts, resolution=r.resolution,
            flops_factor=r.flops_factor, params_factor=r.params_factor,
            acts_factor=r.acts_factor, within_tolerance=r.within_tolerance,
            depths=(), widths=(),
        ))
    return out
