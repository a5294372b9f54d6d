"""The candidates of a recommendation: every strategy (the study's, the named ones and fast
compound scaling on a grid of α) scaled from the base to the target with exact rounding, and
the constraints each one violates."""

from __future__ import annotations

import math
from collections.abc import Sequence

from netscale.advise.records import Candidate, Constraints, fmt_count
from netscale.advise.study_fits import fast_alpha
from netscale.errors import NetscaleError
from netscale.scaling import NAMED, Strategy, fast, parse_strategy, scale_report
from netscale.specs import NetSpec
from netscale.specs.spec import network_key


def strategy_list(trained: Sequence[str], extra: Sequence[str] | None,
                   alphas: Sequence[float]) -> list[tuple[Strategy, str]]:
    """(Strategy, origin) for trained, named (or ``extra``) and fast:α, deduplicated by
    exponents (first wins)."""
    out: list[tuple[Strategy, str]] = []
    seen: set[tuple[float, float, float]] = set()

    def add(s: Strategy, origin: str) -> None:
        key = (round(s.e_d, 6), round(s.e_w, 6), round(s.e_r, 6))
        if key not in seen:
            seen.add(key)
            out.append((s, origin))

    for name in trained:
        try:
            add(parse_strategy(name), "study")
        except NetscaleError:
            continue
    for name in (NAMED if extra is None else extra):
        add(parse_strategy(name), "named")
    for a in alphas:
        a = float(a)
        if not 0.0 <= a <= 1.0:
            raise NetscaleError(f"fast compound α must be in [0, 1], got {a:g}")
        add(fast(round(a, 4)), "grid")
    return out


def scaled_candidates(spec: NetSpec, label: str, factor: float, trained: Sequence[str],
                      strategies: Sequence[str] | None, alphas: Sequence[float]
                      ) -> list[Candidate]:
    """Every strategy scaled from ``spec`` to ``factor`` with exact rounding; a candidate
    that gives the same network as an earlier one is marked ``same_as``."""
    cands: list[Candidate] = []
    by_arch: dict[str, str] = {}
    for strat, origin in strategy_list(trained, strategies, alphas):
        c = Candidate(name=strat.name, strategy=strat.to_dict(), alpha=fast_alpha(
            strat.to_dict()), origin=origin, trained=strat.name in trained)
        cands.append(c)
        try:
            r = scale_report(spec, factor, strat, rounding="exact",
                             name=f"{label}_x{factor:.3g}_{strat.name}")
        except NetscaleError as exc:
            c.scale_error = str(exc)
            c.verdict = f"could not be scaled: {exc}"
            continue
        c.spec = r.spec.to_dict()
        c.flops, c.params, c.acts = r.counts.flops, r.counts.params, r.counts.acts
        c.resolution = r.spec.resolution
        c.flops_factor = r.flops_factor
        key = network_key(c.spec)
        if key in by_arch:
            c.same_as = by_arch[key]
            c.verdict = f"same network as {c.same_as} at this target"
        else:
            by_arch[key] = c.name
    check_reachable(cands, factor, label)
    return cands


def check_reachable(cands: Sequence[Candidate], factor: float, label: str) -> None:
    landed = [(c.flops_factor, c.name) for c in cands if c.flops_factor is not None]
    if not landed or any(abs(f / factor - 1) <= 0.10 for f, _ in landed):
        return
    near, near_name = min(landed, key=lambda p: abs(math.log(p[0] / factor)))
    lo = min(f for f, _ in landed)
    where = (f"{label} cannot shrink that far (the smallest model any candidate reaches "
             f"is x{lo:.3g})" if factor < 1 else
             f"no candidate lands within 10% of it (closest: x{near:.3g} by {near_name})")
    raise NetscaleError(f"target x{factor:.3g} of {label} cannot be reached: {where}; "
                        "choose a target nearer the base")



def _over(ratio: float) -> str:
    return f"+{100 * (ratio - 1):.0f}%"


def check_static(c: Candidate, cons: Constraints) -> None:
    if cons.max_params is not None and c.params is not None and c.params > cons.max_params:
        c.excess["max params"] = c.params / cons.max_params
        c.violations.append(f"params {fmt_count(c.params)} > max {fmt_count(cons.max_params)}"
                            f" ({_over(c.excess['max params'])})")
    if cons.max_acts is not None and c.acts is not None and c.acts > cons.max_acts:
        c.excess["max acts"] = c.acts / cons.max_acts
        c.violations.append(f"acts {fmt_count(c.acts)} > max {fmt_count(cons.max_acts)}"
                            f" ({_over(c.excess['max acts'])})")


def check_latency(c: Candidate, cons: Constraints, batch: int | None) -> None:
    if cons.max_latency_ms is None or not c.usable:
        return
    t = c.time_ms
    if t is None:
        if c.violations:  # already excluded (and so not measured)
            return
        c.violations.append("runtime unknown (measurement failed)")
        c.excess["max latency"] = math.inf
        return
    if t > cons.max_latency_ms:
        kind = "measured" if c.measured_ms is not None else "predicted"
        c.excess["max latency"] = t / cons.max_latency_ms
        c.violations.append(f"latency {t:.4g} ms ({kind}) > max {cons.max_latency_ms:g} ms"
                            + (f" at batch {batch}" if batch else "")
                            + f" ({_over(c.excess['max latency'])})")


def infeasible(cands: Sequence[Candidate], cons: Constraints, batch: int | None) -> NetscaleError:
    usable = [c for c in cands if c.usable]
    if not usable:
        why = "; ".join(f"{c.name}: {c.scale_error}" for c in cands if c.scale_error)
        return NetscaleError(f"no candidate could be scaled to the target ({why})")
    counts: dict[str, int] = {}
    for c in usable:
        for k in c.excess:
            counts[k] = counts.get(k, 0) + 1
    total = len(usable)
    parts = []
    for k, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if k == "max latency":
            limit = f"{cons.max_latency_ms:g} ms" + (f" at batch {batch}" if batch else "")
        else:
            limit = fmt_count((cons.max_params if k == "max params" else cons.max_acts) or 0)
        parts.append(f"{k} {limit} excludes {n} of {total}")
    alone = [k for k, n in counts.items() if n == total]
    if len(alone) == 1:
        head = f"{alone[0]} alone excludes every candidate"
    elif alone:
        head = f"{' and '.join(alone)} each exclude every candidate"
    else:
        head = "together the constraints exclude every candidate"
    closest = min(usable, key=lambda c: max(c.excess.values(), default=0.0))
    return NetscaleError(
        f"no candidate meets the constraints: {head} ({'; '.join(parts)}); closest: "
        f"{closest.name} ({'; '.join(closest.violations)}); relax the constraint or lower "
        "--target-flops")
