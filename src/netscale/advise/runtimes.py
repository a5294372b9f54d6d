"""Runtimes of the candidates: predicted by the study's runtime model, taken from the study
where it measured the same network, or measured here with the bench harness (ms per batch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from netscale.advise.records import Candidate, Constraints
from netscale.advise.study_fits import StudyRuntime, study_runtime
from netscale.advise.zoo_base import ZooBuild
from netscale.bench.harness import BenchConfig, bench_module, bench_spec
from netscale.bench.timing import TimingPolicy
from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.specs.spec import network_key
from netscale.study.store import TrialRow
from netscale.zoo.names import build_call

DEFAULT_BUDGET_S = 1.0

MeasureFn = Callable[[Any, "int | None", "str | None"], "tuple[float, int, str] | None"]
"""(spec or zoo build, batch_size, device) -> (ms per batch, batch size used, device) or None
(failed). A zoo base's candidates are :class:`netscale.advise.zoo_base.ZooBuild`."""


def default_measure(budget_s: float = DEFAULT_BUDGET_S, mode: str = "infer",
                    setting: str = "contiguous+fp32") -> MeasureFn:
    """Times a spec with the bench harness (median ms per batch): inference, or a training
    step (forward + backward + SGD step) with ``mode="train"``, in the execution ``setting``
    (``memory_format+precision``; one setting for every candidate, so they compare). A
    :class:`~netscale.advise.zoo_base.ZooBuild` is built from its zoo call and timed as
    built."""
    memory_format, _, precision = setting.partition("+")

    def run(spec: Any, batch_size: int | None, device: str | None
            ) -> tuple[float, int, str] | None:
        cfg = BenchConfig(mode=mode, batch_size=batch_size, device=device,
                          policy=TimingPolicy(budget_s=budget_s, warmup_s=min(0.3, budget_s)),
                          memory_format=memory_format, precision=precision)
        if isinstance(spec, ZooBuild):
            r = bench_module(_build_zoo(spec), name=spec.label, in_channels=spec.in_channels,
                             resolution=spec.resolution, counts=spec.counts, config=cfg)
        else:
            r = bench_spec(spec, cfg)
        if r.status != "ok" or r.time_ms is None:
            return None
        return float(r.time_ms), int(r.batch_size), str(r.device)

    return run


def _build_zoo(build: Any) -> Any:
    """The zoo candidate built on the CPU from its call, with seed 0."""
    torch.manual_seed(0)
    return build_call(build.call, build.label)




def study_runtime_model(trials: Sequence[TrialRow], mode: str, device: str | None,
                        cons: Constraints, measure: bool) -> StudyRuntime | None:
    """The study's runtime model in ``mode``; None when it has none and candidates are timed
    here instead."""
    runtime: StudyRuntime | None
    try:
        runtime = study_runtime(trials, mode=mode, batch_size=cons.batch_size, device=device)
    except NetscaleError as exc:
        if not measure:
            raise NetscaleError(f"{exc}; add --measure to time the candidates here at batch "
                                f"{cons.batch_size or 'the default'}"
                                + (f" on {device}" if device else "")) from None
        runtime = None
    if cons.max_latency_ms is not None and runtime is None and not measure:
        raise NetscaleError(f"the study has no {mode} runtime measurements to check "
                            "--max-latency against (benchmarking was off or failed); add "
                            "--measure to time the candidates on this machine")
    return runtime


def predicted_runtimes(cands: Sequence[Candidate], runtime: StudyRuntime | None,
                       study_times: Mapping[str, float], measure: bool) -> None:
    """The study's runtime model for every usable candidate, and the time the study measured
    for the same network (unless candidates are timed here: ``measure``)."""
    if runtime is None:
        return
    for c in cands:
        if not c.usable:
            continue
        assert c.flops is not None and c.params is not None and c.acts is not None
        c.runtime_ms = runtime.predict(c.flops, c.params, c.acts)
        c.runtime_extrapolation = runtime.extrapolation(c.flops, c.params, c.acts)
        if not measure and c.spec is not None:  # a zoo candidate has no spec to match
            t = study_times.get(network_key(c.spec))
            if t is not None:
                c.measured_ms, c.measured_source = t, "measured in the study"


def measured_runtimes(cands: Sequence[Candidate], timer: MeasureFn, batch: int | None,
                      device: str | None,
                      build: Callable[[Candidate], Any] | None = None) -> tuple[int, str] | None:
    """Times every candidate the static constraints leave (``build`` makes what the timer
    takes, a spec by default); returns the (batch size, device) used, None when nothing was
    timed."""
    setting = None
    for c in cands:
        if not c.usable or c.violations:  # static constraints already exclude it
            continue
        res = timer(build(c) if build else NetSpec.from_dict(c.spec or {}), batch, device)
        if res is None:
            c.measured_source = "measurement failed (e.g. out of memory)"
            continue
        c.measured_ms, used_batch, used_device = res
        c.measured_source = f"measured here on {used_device}"
        setting = (used_batch, used_device)
    return setting
