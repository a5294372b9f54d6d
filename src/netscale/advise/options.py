"""How :func:`netscale.advise.recommend.recommend` ranks, one typed object per concern: the
limits (:class:`~netscale.advise.records.Constraints`), the candidates, the law fits and the
timing, plus the extra tie gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from netscale.advise.records import Constraints
from netscale.advise.runtimes import DEFAULT_BUDGET_S, MeasureFn, default_measure
from netscale.laws.fit import DEFAULT_LEVEL, DEFAULT_N_BOOT

DEFAULT_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_TIE = 0.0  # an extra minimum gap; ties come from the intervals


@dataclass(frozen=True)
class CandidateOptions:
    """Which strategies compete: ``strategies`` replaces the named ones (d, w, r, dw, dr, wr,
    dwr, dWr), ``alphas`` is the fast compound grid, ``base`` picks one base of a study with
    several."""

    strategies: Sequence[str] | None = None
    alphas: Sequence[float] = DEFAULT_ALPHAS
    base: str | None = None


@dataclass(frozen=True)
class LawOptions:
    """How the study's laws are fitted: against ``x`` with ``law`` (auto, saturating,
    power), ``level`` intervals from ``n_boot`` bootstrap refits seeded by ``seed``;
    ``noise`` is the known noise of a results file's errors (results files only)."""

    x: str = "flops"
    law: str = "auto"
    level: float = DEFAULT_LEVEL
    n_boot: int = DEFAULT_N_BOOT
    seed: int = 0
    noise: float | None = None


@dataclass(frozen=True)
class TimingOptions:
    """Where runtimes come from: ``measure`` times candidates here with the bench harness
    (default: only when there is no study) on ``device``, ``budget_s`` seconds each;
    ``measure_fn`` replaces the harness. ``latency_mode``: ``infer`` (inference time per
    batch) or ``train`` (training step time per batch) for the runtime model, the
    measurements and the latency limit."""

    device: str | None = None
    measure: bool | None = None
    budget_s: float = DEFAULT_BUDGET_S
    measure_fn: MeasureFn | None = None
    latency_mode: str = "infer"

    def timer(self, setting: str = "contiguous+fp32") -> MeasureFn:
        """``measure_fn``, else the bench harness in ``latency_mode`` and ``setting`` (the
        study runtime model's execution setting, so measured and predicted times compare)."""
        return self.measure_fn or default_measure(self.budget_s, mode=self.latency_mode,
                                                  setting=setting)


@dataclass(frozen=True)
class RecommendOptions:
    """Everything :func:`~netscale.advise.recommend.recommend` takes besides the source and
    target; ``tie`` is an extra minimum error gap under which candidates tie."""

    constraints: Constraints = field(default_factory=Constraints)
    candidates: CandidateOptions = field(default_factory=CandidateOptions)
    laws: LawOptions = field(default_factory=LawOptions)
    timing: TimingOptions = field(default_factory=TimingOptions)
    tie: float = DEFAULT_TIE

    def merged(self, *, constraints: Constraints | None = None,
               candidates: CandidateOptions | None = None, laws: LawOptions | None = None,
               timing: TimingOptions | None = None, tie: float | None = None
               ) -> RecommendOptions:
        """These options with the given parts replaced."""
        return RecommendOptions(constraints or self.constraints, candidates or self.candidates,
                                laws or self.laws, timing or self.timing,
                                self.tie if tie is None else tie)
