"""Verdicts that know about noise (see docs/statistics.md).

* :func:`group_trials`: one :class:`GroupStats` per (base, strategy, factor): mean top-1 error
  of its seed replicates with a 95 % interval (seed spread + finite validation set), and its
  runtime with an interval and a timing-quality flag.
* :func:`decide`: the tie logic shared by every verdict. The most accurate option and every
  option statistically tied with it (the interval of their difference contains 0) form the
  tied set; the fastest of the tied set is recommended.
* :func:`study_verdict`: the verdict of a study at a trained factor, from its measured groups.
  ``netscale report`` (box and ``--json``), ``netscale recommend`` at a trained factor and the
  quickstart all call it.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.advise.records import pct
from netscale.advise.results_io import load_source
from netscale.advise.study_fits import trial_error
from netscale.laws.replicates import (
    PER_IMAGE,
    SHARED_NO_IMAGES,
    Difference,
    Replicates,
    compare,
    group_interval,
)
from netscale.laws.replicates import replicates_of_trials as _replicates
from netscale.laws.stats import (
    DEFAULT_LEVEL,
    difference_half,
    tied,
    time_interval,
)
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.study.store import TrialRow, same_networks
from netscale.util import serial

SMOKE_DATASETS = ("digits",)
FLAGGED = ("noisy", "contended")


def is_smoke_test(data: Mapping[str, Any] | str | None) -> bool:
    """True for the offline fallback dataset (scikit-learn's digits): ~180 validation images,
    one image = 0.56 points; fine to test the plumbing, not to rank strategies."""
    name = data if isinstance(data, str) else (data or {}).get("name")
    return str(name or "").lower() in SMOKE_DATASETS


# --------------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------------


@dataclass
class GroupStats:
    """One (base, strategy, factor) group of seed replicates. Errors are fractions, times ms
    per batch of the study's benchmark batch size."""

    base: str
    strategy: str
    factor: float
    n_seeds: int
    top1_err_mean: float | None
    top1_err_low: float | None
    top1_err_high: float | None
    time_ms: float | None
    time_ms_low: float | None
    time_ms_high: float | None
    time_quality: str  # "ok" | "noisy" | "contended" | "none" (not timed)
    seeds: list[int] = field(default_factory=list)
    seeds_missing: bool = True
    seed_half: float | None = None
    sampling_half: float | None = None
    n_val: int | None = None
    level: float = DEFAULT_LEVEL
    flops: int = 0
    params: int = 0
    acts: int = 0
    n_trials: int = 0
    epochs: int | None = None
    same_network_as: list[str] = field(default_factory=list)
    interval_method: str = ""  # how the error interval was computed (netscale.laws.replicates)

    @property
    def measured(self) -> bool:
        return self.top1_err_mean is not None

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    def err_text(self) -> str:
        if self.top1_err_mean is None:
            return "no result"
        return (f"{pct(self.top1_err_mean)}% [{pct(self.top1_err_low)}, "
                f"{pct(self.top1_err_high)}]")

    def time_text(self) -> str:
        if self.time_ms is None:
            return "not timed"
        flag = "" if self.time_quality == "ok" else f", {self.time_quality}"
        return f"{self.time_ms:.3g} ms [{self.time_ms_low:.3g}, {self.time_ms_high:.3g}]{flag}"




def group_trials(trials: Sequence[TrialRow], n_val: int | None = None,
                 level: float = DEFAULT_LEVEL, *, shared: bool = True) -> list[GroupStats]:
    """Groups trials by (base, strategy, factor); finished trials give the error (per-image
    results when stored; ``shared``: every seed scored on the same validation images), every
    trial with a successful benchmark row gives the runtime. Sorted by base, factor, strategy."""
    groups: dict[tuple[str, str, float], list[TrialRow]] = defaultdict(list)
    for t in trials:
        groups[(t.base, t.strategy, float(t.factor))].append(t)
    same = same_networks(trials)
    out: list[GroupStats] = []
    for (base, strategy, factor), ts in groups.items():
        scored = [(t, e) for t in ts if (e := trial_error(t)) is not None]
        done = [t for t, _ in scored]
        g = GroupStats(base=base, strategy=strategy, factor=factor, n_seeds=len(done),
                       top1_err_mean=None, top1_err_low=None, top1_err_high=None,
                       time_ms=None, time_ms_low=None, time_ms_high=None, time_quality="none",
                       seeds=sorted(int(t.seed) for t in done), n_val=n_val, level=level,
                       flops=int(ts[0].flops), params=int(ts[0].params), acts=int(ts[0].acts),
                       n_trials=len(ts))
        if done:
            ei = group_interval(_replicates(done, n_val, shared), level)
            g.top1_err_mean, g.top1_err_low, g.top1_err_high = ei.mean, ei.low, ei.high
            g.interval_method = ei.method
            g.seeds_missing, g.seed_half, g.sampling_half = (ei.seeds_missing, ei.seed_half,
                                                             ei.sampling_half)
            eps = [int(t.epochs_done) for t in done if t.epochs_done]
            g.epochs = int(statistics.median(eps)) if eps else None
        ti = time_interval([tm.row for tm in (t.timing for t in ts) if tm is not None and tm.ok])
        if ti is not None:
            g.time_ms, g.time_ms_low, g.time_ms_high = ti.time_ms, ti.low, ti.high
            g.time_quality = ti.quality
        g.same_network_as = sorted({o.strategy for t in ts for o in same.get(t.id, [])
                                    if o.base == base and float(o.factor) == factor
                                    and o.strategy != strategy})
        out.append(g)
    return sorted(out, key=lambda g: (g.base, g.factor, g.strategy != BASE_STRATEGY, g.strategy))


# --------------------------------------------------------------------------------------------
# the tie logic
# --------------------------------------------------------------------------------------------


@dataclass
class Option:
    """Something to choose between: an error estimate (fraction, with its interval) and a
    runtime (ms per batch, with its interval and quality)."""

    name: str
    err: float
    err_low: float
    err_high: float
    time_ms: float | None = None
    time_low: float | None = None
    time_high: float | None = None
    time_quality: str = "none"

    @property
    def est(self) -> tuple[float, float, float]:
        return (self.err, self.err_low, self.err_high)

    def time_est(self) -> tuple[float, float, float] | None:
        if self.time_ms is None:
            return None
        lo = self.time_ms if self.time_low is None else self.time_low
        hi = self.time_ms if self.time_high is None else self.time_high
        return (self.time_ms, lo, hi)


@dataclass
class Decision:
    """The outcome of :func:`decide`."""

    best: Option  # lowest error
    pick: Option  # the fastest of the tied set (the recommendation)
    tied: list[Option]  # the others statistically tied with ``best`` on error
    separated: list[Option]  # clearly less accurate than ``best``
    runtime_tied: list[Option]  # tied options whose runtime interval overlaps ``pick``'s
    flagged: list[Option]  # tied options (pick included) whose timing is noisy/contended
    min_gap: float = 0.0
    diffs: dict[str, Difference] = field(default_factory=dict)  # other - best, by name

    @property
    def order(self) -> list[Option]:
        return [self.pick, *self.tied, *self.separated]

    @property
    def is_tie(self) -> bool:
        return bool(self.tied)


def decide(options: Sequence[Option], min_gap: float = 0.0,
           compare_to: Callable[[str, str], Difference | None] | None = None) -> Decision:
    """Most accurate option, the options statistically tied with it (difference interval
    contains 0, or the difference is at most ``min_gap``), and the fastest of those.
    ``compare_to(best, other)``: the difference other − best computed from the replicates
    (paired image by image when possible); options it returns None for use their intervals.
    Deterministic: ties on every number break by name."""
    if not options:
        raise ValueError("decide needs at least one option")
    inf = math.inf
    by_err = sorted(options, key=lambda o: (o.err, o.time_ms if o.time_ms is not None else inf,
                                            o.name))
    best = by_err[0]
    diffs = {}
    if compare_to is not None:
        for o in by_err[1:]:
            d = compare_to(best.name, o.name)
            if d is not None:
                diffs[o.name] = d
    close = [o for o in by_err if o is best or (
        (not diffs[o.name].firm or diffs[o.name].diff <= min_gap) if o.name in diffs
        else tied(best.est, o.est, min_gap))]
    pick = min(close, key=lambda o: (o.time_ms if o.time_ms is not None else inf, o.err,
                                     o.name))
    pt = pick.time_est()
    rt = []
    for o in close:
        ot = o.time_est()
        if o is not pick and pt is not None and ot is not None and tied(pt, ot):
            rt.append(o)
    return Decision(
        best=best, pick=pick, tied=[o for o in close if o is not pick],
        separated=[o for o in by_err if o not in close], runtime_tied=rt,
        flagged=[o for o in close if o.time_quality in FLAGGED], min_gap=min_gap, diffs=diffs)


def _opt_text(o: Option) -> str:
    return f"{o.name} {pct(o.err)}% [{pct(o.err_low)}, {pct(o.err_high)}]"


def _time_text(o: Option, per: str = "") -> str:
    t = o.time_est()
    if t is None:
        return "not timed"
    flag = f", {o.time_quality}" if o.time_quality in FLAGGED else ""
    return f"{t[0]:.3g} ms{per} [{t[1]:.3g}, {t[2]:.3g}]{flag}"


def explain(dec: Decision, where: str, *, what: str = "top-1 error",
            level: float = DEFAULT_LEVEL, batch: int | None = None) -> str:
    """The verdict's sentence(s), shared by every caller of :func:`decide`."""
    per = f" per batch of {batch}" if batch else " per batch"
    lvl = f"{level:.0%}"
    b, p = dec.best, dec.pick
    if not dec.is_tie:
        if dec.separated:
            nxt = dec.separated[0]
            d = dec.diffs.get(nxt.name)
            h = d.half if d is not None else difference_half(b.err, b.err_high, nxt.err,
                                                             nxt.err_low)
            how = ", paired image by image" if d is not None and d.paired else ""
            gap = (f"next is {_opt_text(nxt)}, +{100 * (nxt.err - b.err):.2f} points, outside "
                   f"the {lvl} interval of the difference (±{100 * h:.2f}{how})")
        else:
            gap = "it is the only option"
        text = f"{where}, {p.name} has the lowest {what}, {_opt_text(p)[len(p.name) + 1:]}; {gap}"
        faster = [o for o in dec.separated if o.time_ms is not None and p.time_ms is not None
                  and o.time_ms < p.time_ms]
        if faster:
            f = min(faster, key=lambda o: o.time_ms or 0.0)
            text += (f"; {f.name} is faster ({_time_text(f, per)} vs {_time_text(p)}) but "
                     f"firmly less accurate ({pct(f.err)}% vs {pct(p.err)}% {what})")
        return text
    close = sorted([p, *dec.tied], key=lambda o: (o.err, o.name))
    names = ", ".join(o.name for o in close)
    text = (f"tie: {where}, {names} are statistically tied on {what} (the {lvl} interval of "
            f"each difference to the best, {_opt_text(b)}, includes 0)")
    others = [o for o in dec.tied if o.time_ms is not None]
    if p.time_ms is None:
        text += f"; no runtime to break the tie, so {p.name}, the most accurate, is named"
    elif others:
        nxt = min(others, key=lambda o: o.time_ms or 0.0)
        text += (f"; {p.name} is the fastest of them, {_time_text(p, per)} vs {nxt.name} "
                 f"{_time_text(nxt)}")
        if dec.runtime_tied:
            text += (" (but its speed lead over "
                     f"{', '.join(o.name for o in dec.runtime_tied)} is within the timing "
                     "intervals: a runtime tie too)")
    else:
        text += f"; {p.name} is the only one of them that was timed ({_time_text(p, per)})"
    if dec.flagged:
        text += ("; the runtime ranking rests on flagged timings ("
                 + ", ".join(f"{o.name}: {o.time_quality}" for o in dec.flagged) + ")")
    return text


# --------------------------------------------------------------------------------------------
# the study verdict
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What ``netscale report --json`` prints (and the quickstart writes to verdict.json)."""

    recommended: str | None
    tied: list[str]
    reason: str
    factor: float | None
    groups: list[GroupStats]
    base: str | None = None
    basis: str = "measured"
    firm: bool = False
    smoke_test: bool = False
    to_separate: str = ""
    level: float = DEFAULT_LEVEL
    n_val: int | None = None
    data: str | None = None
    batch_size: int | None = None
    notes: list[str] = field(default_factory=list)
    decision: Decision | None = None

    def group(self, strategy: str, factor: float | None = None) -> GroupStats | None:
        f = self.factor if factor is None else factor
        return next((g for g in self.groups if g.strategy == strategy and g.factor == f
                     and (self.base is None or g.base == self.base)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommended": self.recommended, "tied": list(self.tied), "reason": self.reason,
            "factor": self.factor, "base": self.base, "basis": self.basis, "firm": self.firm,
            "smoke_test": self.smoke_test, "to_separate": self.to_separate,
            "level": self.level, "n_val": self.n_val, "data": self.data,
            "batch_size": self.batch_size, "notes": list(self.notes),
            "groups": [g.to_dict() for g in self.groups],
            "differences": {k: d.to_dict() for k, d in (
                self.decision.diffs.items() if self.decision else ())},
            "units": {"top1_err": "fraction", "time_ms": "ms per batch",
                      "flops": "multiply-adds", "factor": "flops factor over the base"},
        }


def _to_separate(groups: Sequence[GroupStats], n_val: int | None) -> str:
    parts = []
    n_min = min((g.n_seeds for g in groups), default=0)
    if n_min < 2:
        parts.append("more seeds (now 1 per group, so the seed spread is unknown and not in "
                     "the intervals; use 3 or more)")
    else:
        parts.append(f"more seeds (now {n_min} per group; the seed part of an interval "
                     "shrinks as 1/√seeds)")
    if n_val:
        sh = max((g.sampling_half or 0.0) for g in groups)
        parts.append(f"a larger validation set (now {n_val} images: ±{100 * sh:.2f} points "
                     "per group from sampling alone)")
    eps = [g.epochs for g in groups if g.epochs]
    if eps:
        parts.append(f"more epochs (now {min(eps)}), if the models are still improving")
    return "; ".join(parts)


def study_verdict(trials: Sequence[TrialRow], *, data_info: Mapping[str, Any] | None = None,
                  config: Mapping[str, Any] | None = None, level: float = DEFAULT_LEVEL,
                  factor: float | None = None, base: str | None = None,
                  only: Callable[[str], bool] | None = None,
                  min_gap: float = 0.0) -> Verdict:
    """The verdict of a study from its measured groups, at ``factor`` (default: the largest
    factor every strategy finished). ``only`` restricts the strategies compared (e.g. to the
    ones meeting a constraint); ``min_gap`` (default 0) also ties differences up to it."""
    config = config or {}
    data = config.get("data") or {}
    data_name = data.get("name") if isinstance(data, Mapping) else None
    n_val = (data_info or {}).get("val_size")
    n_val = int(n_val) if isinstance(n_val, (int, float)) and n_val > 0 else None
    shared = bool((data_info or {}).get("val_shared", True))
    bench = config.get("bench") or {}
    batch = bench.get("batch_size") if isinstance(bench, Mapping) else None
    groups = group_trials(trials, n_val, level, shared=shared)
    smoke = is_smoke_test(data_name)
    bases = sorted({g.base for g in groups})
    notes: list[str] = []
    if base is None and bases:
        base = bases[0]
        if len(bases) > 1:
            notes.append(f"the study has several bases ({', '.join(bases)}); this verdict is "
                         f"for {base}")
    v = Verdict(recommended=None, tied=[], reason="", factor=None, groups=groups, base=base,
                smoke_test=smoke, level=level, n_val=n_val, data=data_name, batch_size=batch,
                notes=notes)
    cands = [g for g in groups if g.base == base and g.strategy != BASE_STRATEGY and g.measured
             and (only is None or only(g.strategy))]
    if not cands:
        v.reason = "no trained trials yet: nothing to recommend"
        return v
    by_factor: dict[float, list[GroupStats]] = defaultdict(list)
    for g in cands:
        by_factor[g.factor].append(g)
    n_strats = len({g.strategy for g in cands})
    if factor is None:
        complete = [f for f, gs in by_factor.items() if len(gs) == n_strats]
        factor = max(complete) if complete else max(by_factor)
    at = by_factor.get(float(factor), [])
    if not at:
        v.reason = f"no trained results at ×{factor:g}: nothing to compare"
        return v
    opts = [Option(g.strategy, g.top1_err_mean or 0.0, g.top1_err_low or 0.0,
                   g.top1_err_high or 0.0, g.time_ms, g.time_ms_low, g.time_ms_high,
                   g.time_quality) for g in at]
    reps = _replicates_at(trials, base, float(factor), n_val, shared)
    dec = decide(opts, min_gap=min_gap, compare_to=lambda a, b: compare(
        reps[a], reps[b], level) if a in reps and b in reps else None)
    v.decision = dec
    v.factor = float(factor)
    v.recommended = dec.pick.name
    v.tied = [o.name for o in dec.tied]
    if n_strats > len(at):
        notes.append(f"only {len(at)} of {n_strats} strategies finished at ×{factor:g}")
    _explain_verdict(v, dec, at)
    return v


def _replicates_at(trials: Sequence[TrialRow], base: str | None, factor: float,
                   n_val: int | None, shared: bool) -> dict[str, Replicates]:
    """The finished replicates of each strategy at ``factor`` (with per-image results when
    stored), for the pairwise comparisons."""
    by: dict[str, list[TrialRow]] = defaultdict(list)
    for t in trials:
        if (t.base == base and float(t.factor) == factor and t.status == "done"
                and t.top1_err is not None and math.isfinite(float(t.top1_err))):
            by[t.strategy].append(t)
    return {k: _replicates(ts, n_val, shared) for k, ts in by.items()}


def _explain_verdict(v: Verdict, dec: Decision, at: Sequence[GroupStats]) -> None:
    """The verdict's sentence (with missing seeds, shared networks, what would separate a
    tie and the smoke-test warning), its ``to_separate`` and whether it is firm."""
    assert v.factor is not None
    reason = explain(dec, f"at ×{v.factor:g} flops (multiply-adds)", level=v.level,
                     batch=v.batch_size)
    used = [g for g in at if g.strategy in {o.name for o in [dec.best, dec.pick, *dec.tied]}]
    missing = [g for g in at if g.seeds_missing]
    if missing:
        reason += ("; seeds missing: one seed per group, so the intervals hold only the "
                   "validation-sampling part and the verdict may not survive other seeds "
                   "(train 3 or more)")
    same = sorted({f"{g.strategy} = {', '.join(g.same_network_as)}" for g in at
                   if g.same_network_as and g.strategy < min(g.same_network_as)})
    if same:
        reason += f"; same network (one result): {'; '.join(same)}"
    no_images = [g.strategy for g in at if g.interval_method == SHARED_NO_IMAGES
                 and g.n_seeds >= 2]
    if no_images and any(g.interval_method == PER_IMAGE for g in at):
        reason += (f"; no per-image results for {', '.join(sorted(no_images))}: their "
                   "intervals and comparisons use the per-seed errors only (conservative)")
    elif no_images:
        v.notes.append("no per-image results stored: intervals and comparisons use the "
                       "per-seed errors only, counting the validation sampling in full "
                       "(conservative; docs/statistics.md)")
    if dec.is_tie:
        v.to_separate = _to_separate(used, v.n_val)
        reason += f". What would separate them: {v.to_separate}"
    if v.smoke_test:
        reason = (f"SMOKE TEST on {v.data} ({v.n_val or '?'} validation images): the "
                  "accuracy verdict is not meaningful, only the plumbing is tested; install "
                  "Fashion-MNIST (apt-get install dataset-fashion-mnist) for a real answer. "
                  + reason)
    v.reason = reason
    v.firm = not dec.is_tie and not v.smoke_test and not missing


def verdict_for_study_dir(study_dir: str | Path, *, level: float = DEFAULT_LEVEL) -> Verdict:
    """:func:`study_verdict` of a study directory (results.sqlite) or a results file."""
    st = load_source(study_dir)
    return study_verdict(st.trials, data_info=st.data_info, config=st.config, level=level)


GROUP_COLUMNS = ("n_seeds", "top1_err_mean", "top1_err_low", "top1_err_high", "time_ms_group",
                 "time_ms_low", "time_ms_high", "time_quality")


def annotate_rows(rows: Sequence[dict[str, Any]], groups: Sequence[GroupStats]
                  ) -> list[dict[str, Any]]:
    """Adds each trial row's group statistics (:data:`GROUP_COLUMNS`; ``time_ms_group`` is
    the group's median time, ``time_ms`` stays the trial's own) for ``--export``."""
    by_key: dict[tuple[str | None, str | None, float], GroupStats] = {
        (g.base, g.strategy, g.factor): g for g in groups}
    out = []
    for r in rows:
        g = by_key.get((r["base"], r["strategy"], float(r["factor"])))
        extra: dict[str, Any] = dict.fromkeys(GROUP_COLUMNS)
        if g is not None:
            extra.update(n_seeds=g.n_seeds, top1_err_mean=g.top1_err_mean,
                         top1_err_low=g.top1_err_low, top1_err_high=g.top1_err_high,
                         time_ms_group=g.time_ms, time_ms_low=g.time_ms_low,
                         time_ms_high=g.time_ms_high, time_quality=g.time_quality)
        out.append({**r, **extra})
    return out
