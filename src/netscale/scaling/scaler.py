"""Scale a spec by a flops factor with a strategy, landing on the target flops.

Two rounding modes:

* ``reference`` reproduces the reference scaler (pycls; docs/conventions.md, "Rounding when
  scaling") exactly: per stage
  ``depth = max(1, round(d·m_d))``, ``width = max(1, round(w·m_w / 8))·8``, group width
  ``max(1, round(g·m_g))`` snapped to 1, 2, 4 or a multiple of 8, then the compatibility step;
  EfficientNet-style nets also scale stem and head widths; ``resolution = round(r·m_r/4)·4``.
  It never corrects the result, so the realized flops factor drifts from s.
* ``exact`` (default) keeps the strategy's proportions but chooses the rounding so the
  realized flops factor lands within ``tolerance`` (±2%) of s:

  1. a secant search on a correction c, scaling by (s·c) with the strategy's own exponents
     (depth, width and resolution move together, in the strategy's proportions);
  2. if a dimension saturates (depth 1, width 8, a coarse resolution quantum), the rest of
     the factor comes from the strategy's other dimensions (uniformly among them);
  3. a local search over single-quantum moves (one stage's depth ±1, one stage's width to
     the next compatible width, resolution ± one quantum) that lands within the tolerance
     while staying closest (least squared log-deviation) to the strategy's ideal shape,
     then a bounded beam search over such moves (several compensating steps).

  Exact mode is *pure*: a dimension whose exponent is 0 never moves (``d`` changes only
  depths, ``w`` only widths — plus stem/head widths where the family scales them and group
  widths only as the compatibility step forces —, ``r`` only the resolution; compound
  strategies only their own dimensions). If no candidate is within the tolerance the
  closest one is returned and the result says so (``within_tolerance`` False,
  ``achieved_factor``, ``note``) rather than moving another dimension.

Widths stay multiples of 8 (``width_multiple``) and group-compatible, depths >= 1, resolution
a multiple of ``resolution_multiple`` (4).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from netscale.complexity.analytic import (
    complexity_totals,
    count_parts,
    head_complexity,
    stage_complexity,
)
from netscale.complexity.record import Complexity
from netscale.errors import NetscaleError
from netscale.scaling.strategy import (
    DEFAULT_STRATEGY,
    PredictedFactors,
    Strategy,
    parse_strategy,
)
from netscale.specs.compat import bottleneck_width, compatible_width, snap_group_width
from netscale.specs.spec import GROUPED_BLOCKS, NetSpec, StageSpec, StemSpec

ROUNDING_MODES = ("exact", "reference")
_EXP_TOL = 1e-9  # an exponent at or below this is 0: that dimension is frozen (purity)


@dataclass(frozen=True)
class ScaleResult(PredictedFactors):
    """A scaled spec with how its complexity grew."""

    base: NetSpec
    spec: NetSpec
    strategy: Strategy
    factor: float
    rounding: str
    base_counts: Complexity
    counts: Complexity
    tolerance: float
    within_tolerance: bool
    note: str = ""

    @property
    def flops_factor(self) -> float:
        return self.counts.flops / self.base_counts.flops

    @property
    def params_factor(self) -> float:
        return self.counts.params / self.base_counts.params

    @property
    def acts_factor(self) -> float:
        return self.counts.acts / self.base_counts.acts

    @property
    def flops_error(self) -> float:
        """Relative error of the realized flops factor vs the target factor."""
        return self.flops_factor / self.factor - 1.0

    def dims_factors(self) -> dict[str, float]:
        """Realized depth (total blocks), mean width and resolution multipliers."""
        b, s = self.base, self.spec
        w0 = sum(b.widths) / len(b.widths)
        w1 = sum(s.widths) / len(s.widths)
        return {"depth": s.num_blocks / b.num_blocks, "width": w1 / w0,
                "resolution": s.resolution / b.resolution}

    def to_dict(self) -> dict[str, Any]:
        def side(spec: NetSpec, counts: Complexity) -> dict[str, Any]:
            return {
                "name": spec.name,
                "flops": counts.flops,
                "params": counts.params,
                "acts": counts.acts,
                "resolution": spec.resolution,
                "depths": spec.depths,
                "widths": spec.widths,
                "group_widths": spec.group_widths,
                "stem_width": spec.stem.width,
                "head_width": spec.head_width,
            }

        return {
            "strategy": self.strategy.to_dict(),
            "factor": self.factor,
            "rounding": self.rounding,
            "base": side(self.base, self.base_counts),
            "scaled": side(self.spec, self.counts),
            "realized": {"flops": self.flops_factor, "params": self.params_factor,
                         "acts": self.acts_factor, **{f"{k}_mult": v for k, v in
                                                      self.dims_factors().items()}},
            "predicted": {"flops": self.factor, "params": self.predicted_params_factor,
                          "acts": self.predicted_acts_factor},
            "flops_error": self.flops_error,
            "achieved_factor": self.flops_factor,
            "tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance,
            "note": self.note,
            "units": {"flops": "multiply-adds"},
        }


# ----------------------------------------------------------------------------- shapes


@dataclass
class _Shape:
    """The integer choices that a scaled spec is made of (before compatibility)."""

    depths: list[int]
    widths: list[int]
    groups: list[int]
    res: int
    stem: int
    head: int

    def key(self) -> tuple[Any, ...]:
        return (tuple(self.depths), tuple(self.widths), tuple(self.groups), self.res,
                self.stem, self.head)

    def copy(self) -> _Shape:
        return _Shape(list(self.depths), list(self.widths), list(self.groups), self.res,
                      self.stem, self.head)


@dataclass
class _Ideal:
    """Continuous targets for every dimension."""

    depths: list[float]
    widths: list[float]
    groups: list[float]
    res: float
    stem: float
    head: float


@dataclass
class _Context:
    base: NetSpec
    strategy: Strategy
    target: float
    tolerance: float
    wq: int
    rq: int
    scale_stem_head: bool
    base_flops: int
    base_groups: list[int] = field(default_factory=list)
    dense: list[bool] = field(default_factory=list)
    # Which dimensions may move. Exact mode freezes every dimension whose exponent is 0
    # (strategy purity); reference mode moves them all (it reproduces the reference scaler).
    move_d: bool = True
    move_w: bool = True
    move_g: bool = True
    move_r: bool = True
    cache: dict[tuple[Any, ...], _Cand] = field(default_factory=dict)
    stage_memo: dict[tuple[Any, ...], tuple[int, ...]] = field(default_factory=dict)


def _round_half_even(x: float) -> int:
    return int(round(x))


def _ideal(ctx: _Context, md: float, mw: float, mg: float, mr: float) -> _Ideal:
    b = ctx.base
    return _Ideal(
        depths=[s.depth * md for s in b.stages],
        widths=[s.width * mw for s in b.stages],
        groups=[g * mg for g in ctx.base_groups],
        res=b.resolution * mr,
        stem=b.stem.width * mw if ctx.scale_stem_head else b.stem.width,
        head=b.head_width * mw if ctx.scale_stem_head and b.head_width else b.head_width,
    )


def _ladder_floor(g: float) -> int:
    """Largest reference group width (1, 2, 4 or a multiple of 8) not above g."""
    if g < 2:
        return 1
    if g < 4:
        return 2
    if g < 8:
        return 4
    return int(g // 8) * 8


def _ladder_ceil(g: float) -> int:
    """Smallest reference group width (1, 2, 4 or a multiple of 8) not below g."""
    if g <= 1:
        return 1
    if g <= 2:
        return 2
    if g <= 4:
        return 4
    return int(math.ceil(g / 8)) * 8


def _ladder_step(g: int, step: int) -> int | None:
    """The neighbouring reference group width of g (None below 1)."""
    nxt = _ladder_ceil(g + 1) if step > 0 else (_ladder_floor(g - 1) if g > 1 else None)
    return nxt


_GROUP_ROUNDING = {"nearest": snap_group_width, "floor": _ladder_floor, "ceil": _ladder_ceil}


def _round_shape(ctx: _Context, ideal: _Ideal, gmode: str = "nearest") -> _Shape:
    wq, rq = ctx.wq, ctx.rq
    snap = _GROUP_ROUNDING[gmode]
    b = ctx.base
    stem_head = ctx.scale_stem_head and ctx.move_w
    return _Shape(
        depths=([max(1, _round_half_even(d)) for d in ideal.depths] if ctx.move_d
                else list(b.depths)),
        widths=([max(1, _round_half_even(w / wq)) * wq for w in ideal.widths] if ctx.move_w
                else list(b.widths)),
        groups=[snap(g) for g in ideal.groups] if ctx.move_g else list(ctx.base_groups),
        res=max(rq, _round_half_even(ideal.res / rq) * rq) if ctx.move_r else b.resolution,
        stem=(max(1, _round_half_even(ideal.stem / wq)) * wq if stem_head else b.stem.width),
        head=(max(1, _round_half_even(ideal.head / wq)) * wq
              if stem_head and b.head_width else b.head_width),
    )


def _stage_width(ctx: _Context, i: int, w: int, g: int) -> tuple[int, int]:
    """(width, group width) of grouped stage i after the compatibility step."""
    st = ctx.base.stages[i]
    if ctx.dense[i]:  # exact mode: a one-group (dense) conv stays dense
        g = max(1, bottleneck_width(w, st.bottleneck))
    return compatible_width(w, st.bottleneck, g)


class _FastStage(NamedTuple):
    """Duck-typed StageSpec for counting during the search (cheap to construct)."""

    block: str
    depth: int
    width: int
    stride: int
    bottleneck: float
    group_width: int
    kernel: int
    expansion: float
    se_ratio: float


@dataclass(frozen=True)
class _Cand:
    """A realized candidate: final (post-compatibility) dimensions and their counts."""

    stages: tuple[_FastStage, ...]
    res: int
    stem: int
    head: int
    counts: tuple[int, int, int]

    @property
    def flops(self) -> int:
        return self.counts[0]


def _realize(ctx: _Context, shape: _Shape) -> _Cand:
    key = shape.key()
    hit = ctx.cache.get(key)
    if hit is not None:
        return hit
    stages = []
    for i, (st, d, w, g) in enumerate(zip(ctx.base.stages, shape.depths, shape.widths,
                                          shape.groups)):
        if st.block in GROUPED_BLOCKS and not ctx.move_w and not ctx.move_g:
            w, g = st.width, st.group_width  # frozen: the base stage as it is
        elif st.block in GROUPED_BLOCKS:
            w, g = _stage_width(ctx, i, w, g)
        else:
            g = st.group_width
        stages.append(_FastStage(st.block, d, w, st.stride, st.bottleneck, g, st.kernel,
                                 st.expansion, st.se_ratio))
    counts = _count(ctx, stages, shape.res, shape.stem, shape.head)
    cand = _Cand(tuple(stages), shape.res, shape.stem, shape.head, counts)
    ctx.cache[key] = cand
    return cand


def _count(ctx: _Context, stages: list[_FastStage], res: int, stem_w: int,
           head_w: int) -> tuple[int, int, int]:
    """Like count_parts, memoising each stage's count (the search changes one stage at a time)."""
    b = ctx.base
    memo = ctx.stage_memo
    stem_hit = memo.get(("stem", stem_w, res))
    if stem_hit is None:
        stem = b.stem if stem_w == b.stem.width else StemSpec(b.stem.type, stem_w)
        stem_hit = memo[("stem", stem_w, res)] = count_parts(stem, (), 0, 0, res, b.in_channels)
    f, p, a = stem_hit
    h = b.stem.stride_out(res)
    w = stem_w
    for st in stages:
        stage_hit = memo.get((st, h, w))
        if stage_hit is None:
            stage_hit = memo[(st, h, w)] = stage_complexity(st, h, w)
        h, f2, p2, a2 = stage_hit
        f, p, a = f + f2, p + p2, a + a2
        w = st.width
    head_hit = memo.get(("head", head_w, h, w))
    if head_hit is None:
        head_hit = memo[("head", head_w, h, w)] = head_complexity(head_w, b.num_classes, h, w)
    return f + head_hit[0], p + head_hit[1], a + head_hit[2]


def _to_spec(ctx: _Context, cand: _Cand) -> NetSpec:
    b = ctx.base
    stages = tuple(
        dataclasses.replace(st, depth=f.depth, width=f.width, group_width=f.group_width)
        for st, f in zip(b.stages, cand.stages)
    )
    return dataclasses.replace(
        b, stages=stages, resolution=cand.res,
        stem=dataclasses.replace(b.stem, width=cand.stem), head_width=cand.head,
    )


def _log_err(ctx: _Context, flops: int) -> float:
    return math.log(flops / ctx.target)


def _deviation(ctx: _Context, cand: _Cand, ideal: _Ideal) -> float:
    """Mean squared log-deviation from the ideal shape, per dimension group.

    Dimensions the strategy does not scale weigh 4x, so that a depth-only strategy prefers to
    correct with depth rather than nudge widths.
    """
    s = ctx.strategy
    wd = 1.0 if s.e_d > 0 else 4.0
    ww = 1.0 if s.e_w > 0 else 4.0
    wr = 1.0 if s.e_r > 0 else 4.0
    n = len(cand.stages)
    log = math.log
    dev_d = sum(log(st.depth / d) ** 2 for st, d in zip(cand.stages, ideal.depths)) / n
    dev_w = sum(log(st.width / w) ** 2 for st, w in zip(cand.stages, ideal.widths)) / n
    dev_r = log(cand.res / ideal.res) ** 2
    return wd * dev_d + ww * dev_w + wr * dev_r


# ----------------------------------------------------------------------------- reference


def _base_groups(spec: NetSpec) -> list[int]:
    return [st.effective_group_width if st.block in GROUPED_BLOCKS else 1 for st in spec.stages]


def _reference(ctx: _Context, factor: float) -> _Cand:
    md, mw, mg, mr = ctx.strategy.factors(factor)
    return _realize(ctx, _round_shape(ctx, _ideal(ctx, md, mw, mg, mr)))


# ----------------------------------------------------------------------------- exact


def _secant(ctx: _Context, make_ideal: Any, start: float = 1.0, iters: int = 8,
            gmode: str = "nearest") -> list[tuple[_Ideal, _Cand]]:
    """Searches a 1-D correction c with make_ideal(c); returns every distinct candidate."""
    out: list[tuple[_Ideal, _Cand]] = []
    seen: set[tuple[Any, ...]] = set()
    c = start
    lo, hi = 0.0, math.inf  # bracket in c for flops below / above target
    for _ in range(iters):
        ideal = make_ideal(c)
        shape = _round_shape(ctx, ideal, gmode)
        cand = _realize(ctx, shape)
        if shape.key() not in seen:
            seen.add(shape.key())
            out.append((ideal, cand))
        err = _log_err(ctx, cand.flops)
        if abs(err) <= math.log1p(ctx.tolerance) * 0.25:
            break
        if err < 0:
            lo = max(lo, c)
        else:
            hi = min(hi, c)
        new = c * math.exp(-err)
        if not lo < new < hi:  # keep inside the bracket (rounding plateaus)
            new = math.sqrt(lo * hi) if lo > 0 and hi < math.inf else new
        if abs(math.log(new / c)) < 1e-9:
            break
        c = new
    return out


def _within(ctx: _Context, flops: int) -> bool:
    return abs(flops / ctx.target - 1.0) <= ctx.tolerance + 1e-12


def _neighbours(ctx: _Context, shape: _Shape) -> list[_Shape]:
    out: list[_Shape] = []
    n = len(shape.depths)
    for i in range(n if ctx.move_d else 0):
        for step in (-1, 1):
            d = shape.depths[i] + step
            if d >= 1:
                nb = shape.copy()
                nb.depths[i] = d
                out.append(nb)
    for i in range(n if ctx.move_w else 0):
        st = ctx.base.stages[i]
        for step in (-1, 1):
            wider = _next_width(ctx, shape, i, st, step)
            if wider is not None:
                out.append(wider)
    for i in range(n if ctx.move_g else 0):
        if ctx.base.stages[i].block not in GROUPED_BLOCKS or ctx.dense[i]:
            continue
        for step in (-1, 1):
            g = _ladder_step(shape.groups[i], step)
            if g is not None:
                nb = shape.copy()
                nb.groups[i] = g
                out.append(nb)
    for step in (-1, 1) if ctx.move_r else ():
        r = shape.res + step * ctx.rq
        if r >= ctx.rq:
            nb = shape.copy()
            nb.res = r
            out.append(nb)
    return out


def _next_width(ctx: _Context, shape: _Shape, i: int, st: StageSpec,
                step: int) -> _Shape | None:
    """The next width in direction ``step`` that changes the compatible width of stage i."""
    current = shape.widths[i]
    grouped = st.block in GROUPED_BLOCKS
    now = _stage_width(ctx, i, current, shape.groups[i])[0] if grouped else current
    w = current
    for _ in range(64):
        w += step * ctx.wq
        if w < ctx.wq:
            return None
        new = _stage_width(ctx, i, w, shape.groups[i])[0] if grouped else w
        if new != now:
            nb = shape.copy()
            nb.widths[i] = w
            return nb
    return None


def _local_search(ctx: _Context, start: _Shape, ideal: _Ideal, max_steps: int = 40) -> _Cand:
    """Greedy single-quantum moves: first reach the tolerance, then reduce the deviation."""
    shape = start
    cand = _realize(ctx, shape)

    def score(c: _Cand) -> tuple[int, float]:
        if _within(ctx, c.flops):
            return (0, _deviation(ctx, c, ideal))
        return (1, abs(_log_err(ctx, c.flops)) + 0.05 * _deviation(ctx, c, ideal))

    best = score(cand)
    for _ in range(max_steps):
        improved = False
        for nb in _neighbours(ctx, shape):
            c = _realize(ctx, nb)
            sc = score(c)
            if sc < best:
                best, shape, cand, improved = sc, nb, c, True
        if not improved:
            break
    return cand


def _exact(ctx: _Context, factor: float) -> tuple[_Cand, str]:
    strat = ctx.strategy

    def along(c: float) -> _Ideal:
        md, mw, mg, mr = strat.factors(factor * c)
        return _ideal(ctx, md, mw, mg, mr)

    def in_tolerance(cs: list[tuple[_Ideal, _Cand]]) -> list[_Cand]:
        return [c for _, c in cs if _within(ctx, c.flops)]

    cands = _secant(ctx, along)
    target_ideal = along(1.0)
    note = ""
    good = in_tolerance(cands)
    if not good and any(st.block in GROUPED_BLOCKS and not d
                        for st, d in zip(ctx.base.stages, ctx.dense)):
        # The group-width ladder (…, 8, 16, 24, …) is coarse: try rounding it down and up.
        for gmode in ("floor", "ceil"):
            cands += _secant(ctx, along, gmode=gmode)
        good = in_tolerance(cands)
    if not good:
        cands += _uniform_fallback(ctx, cands)
        good = in_tolerance(cands)
        if good:
            note = ("a dimension of the strategy saturated or its quantum was too coarse; "
                    "the strategy's other dimensions supplied the rest of the factor")
    if good:
        chosen = min(good, key=lambda c: _deviation(ctx, c, target_ideal)
                     + _log_err(ctx, c.flops) ** 2)
        return chosen, note
    return _fine_tune(ctx, cands, target_ideal)


def _uniform_fallback(ctx: _Context, cands: list[tuple[_Ideal, _Cand]]
                      ) -> list[tuple[_Ideal, _Cand]]:
    """A dimension saturated or its quantum is too coarse: candidates where the dimensions
    that can still move (all of them, uniformly) supply the rest of the factor, starting
    from the closest candidate so far."""
    strat = ctx.strategy
    md0, best = min(cands, key=lambda t: abs(_log_err(ctx, t[1].flops)))

    def fallback(c2: float) -> _Ideal:
        # Uniform over the dimensions the strategy moves (pure: frozen ones stay put).
        k = ctx.move_d + ctx.move_w + ctx.move_r
        m = c2 ** (1 / k) if ctx.move_d else 1.0
        mw = c2 ** (1 / (2 * k)) if ctx.move_w else 1.0
        mr = c2 ** (1 / (2 * k)) if ctx.move_r else 1.0
        return _Ideal(
            depths=[d * m for d in md0.depths],
            widths=[w * mw for w in md0.widths],
            groups=[g * (mw if strat.group_follows_width else 1.0) for g in md0.groups],
            res=md0.res * mr,
            stem=md0.stem * mw if ctx.scale_stem_head else md0.stem,
            head=md0.head * mw if ctx.scale_stem_head else md0.head,
        )

    return _secant(ctx, fallback, start=math.exp(-_log_err(ctx, best.flops)))


def _fine_tune(ctx: _Context, cands: list[tuple[_Ideal, _Cand]],
               target_ideal: _Ideal) -> tuple[_Cand, str]:
    """Single-quantum moves (then a small beam search) from the closest candidate."""
    _, closest = min(cands, key=lambda t: abs(_log_err(ctx, t[1].flops)))
    cand = _local_search(ctx, _shape_of(closest), target_ideal)
    if not _within(ctx, cand.flops):
        starts = [_shape_of(cand)] + [_shape_of(c) for _, c in sorted(
            cands, key=lambda t: abs(_log_err(ctx, t[1].flops)))[:4]]
        cand = _beam_search(ctx, starts, target_ideal, cand)
    if _within(ctx, cand.flops):
        note = ("landed by single-step corrections (one stage's depth/width or the "
                "resolution) around the strategy's shape")
    else:
        note = (f"no shape within ±{ctx.tolerance:.0%} of the target exists near the "
                f"strategy's proportions changing only its own dimensions "
                f"({_moving_text(ctx)}; coarse quanta); closest is "
                f"×{cand.flops / ctx.base_flops:.3f}")
    return cand, note


def _moving_text(ctx: _Context) -> str:
    names = [n for n, m in (("depth", ctx.move_d), ("width", ctx.move_w),
                            ("resolution", ctx.move_r)) if m]
    return " + ".join(names)


def _beam_search(ctx: _Context, starts: list[_Shape], ideal: _Ideal, best: _Cand,
                 width: int = 24, rounds: int = 8) -> _Cand:
    """A bounded beam search over single-quantum moves of the strategy's own dimensions.

    A pure strategy has few dimensions to move and coarse quanta (8 channels, 4 px, one
    block), so a landing may need several compensating moves (one stage narrower, another
    wider, resolution one step up). Keeps the ``width`` shapes closest in flops each round;
    returns the candidate within the tolerance closest to the ideal shape, else the one
    closest in flops.
    """
    def key(c: _Cand) -> tuple[int, float]:
        if _within(ctx, c.flops):
            return (0, _deviation(ctx, c, ideal))
        return (1, abs(_log_err(ctx, c.flops)))

    def rank(c: _Cand) -> float:
        return abs(_log_err(ctx, c.flops)) + 0.05 * _deviation(ctx, c, ideal)

    best_key = key(best)
    beam = {sh.key(): sh for sh in starts}
    seen = set(beam)
    for _ in range(rounds):
        nxt: dict[tuple[Any, ...], tuple[float, _Shape]] = {}
        for shape in beam.values():
            for nb in _neighbours(ctx, shape):
                k = nb.key()
                if k in seen:
                    continue
                seen.add(k)
                c = _realize(ctx, nb)
                ck = key(c)
                if ck < best_key:
                    best, best_key = c, ck
                nxt[k] = (rank(c), nb)
        if best_key[0] == 0 or not nxt:
            break
        ordered = sorted(nxt.items(), key=lambda kv: kv[1][0])[:width]
        beam = {k: sh for k, (_, sh) in ordered}
    return best


def _shape_of(cand: _Cand) -> _Shape:
    return _Shape(
        depths=[st.depth for st in cand.stages],
        widths=[st.width for st in cand.stages],
        groups=[st.group_width if st.block in GROUPED_BLOCKS else 1 for st in cand.stages],
        res=cand.res,
        stem=cand.stem,
        head=cand.head,
    )


# ----------------------------------------------------------------------------- public API


def _check_scale_args(factor: float, rounding: str, tolerance: float, width_multiple: int,
                      resolution_multiple: int) -> float:
    """The factor as a float, after checking every argument of :func:`scale_report`."""
    if (not isinstance(factor, numbers.Real) or isinstance(factor, bool)
            or not math.isfinite(factor) or factor <= 0):
        raise NetscaleError(f"scaling factor must be a positive number, got {factor!r}")
    if not 1e-9 <= factor <= 1e12:
        raise NetscaleError(f"scaling factor {factor:g} is out of range: netscale scales by "
                            "factors from 1e-9 to 1e12")
    if rounding not in ROUNDING_MODES:
        raise NetscaleError(
            f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {rounding!r}"
        )
    if not 0 < tolerance < 1:
        raise NetscaleError(f"tolerance must be in (0, 1), got {tolerance!r}")
    if width_multiple < 1 or resolution_multiple < 1:
        raise NetscaleError("width and resolution multiples must be positive integers")
    return float(factor)


def scale_report(
    spec: NetSpec,
    factor: float,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    *,
    rounding: str = "exact",
    tolerance: float = 0.02,
    width_multiple: int = 8,
    resolution_multiple: int = 4,
    name: str | None = None,
) -> ScaleResult:
    """Scales ``spec`` by flops ``factor`` and reports realized vs predicted growth."""
    factor = _check_scale_args(factor, rounding, tolerance, width_multiple, resolution_multiple)
    strat = parse_strategy(strategy)
    base = spec.validate()
    base_counts = complexity_totals(base)
    ctx = _Context(
        base=base, strategy=strat, target=base_counts.flops * factor, tolerance=tolerance,
        wq=width_multiple, rq=resolution_multiple,
        scale_stem_head=base.scales_stem_and_head, base_flops=base_counts.flops,
        base_groups=_base_groups(base),
        dense=[rounding == "exact" and st.block in GROUPED_BLOCKS and st.groups == 1
               for st in base.stages],
    )
    if rounding == "exact":  # purity: a dimension whose exponent is 0 never moves
        ctx.move_d = strat.e_d > _EXP_TOL
        ctx.move_w = strat.e_w > _EXP_TOL
        ctx.move_g = strat.e_g > _EXP_TOL
        ctx.move_r = strat.e_r > _EXP_TOL
    note = ""
    if rounding == "reference":
        cand = _reference(ctx, factor)
        scaled, counts = _to_spec(ctx, cand), Complexity(*cand.counts)
    elif factor == 1.0:
        scaled, counts = base, base_counts
    else:
        cand, note = _exact(ctx, factor)
        scaled, counts = _to_spec(ctx, cand), Complexity(*cand.counts)
    label = name or f"{base.name}_x{factor:g}_{strat.name}"
    meta = {"base": base.name, "factor": factor, "strategy": strat.name,
            "rounding": rounding}
    scaled = dataclasses.replace(scaled, name=label, meta=meta)
    return ScaleResult(
        base=base, spec=scaled, strategy=strat, factor=float(factor), rounding=rounding,
        base_counts=base_counts, counts=counts, tolerance=tolerance,
        within_tolerance=abs(counts.flops / base_counts.flops / factor - 1) <= tolerance + 1e-12,
        note=note,
    )


def scale(spec: NetSpec, factor: float, strategy: str | Strategy = DEFAULT_STRATEGY, *,
          rounding: str = "exact", tolerance: float = 0.02, width_multiple: int = 8,
          resolution_multiple: int = 4, name: str | None = None) -> NetSpec:
    """The scaled spec (see :func:`scale_report` for the growth report)."""
    return scale_report(spec, factor, strategy, rounding=rounding, tolerance=tolerance,
                        width_multiple=width_multiple, resolution_multiple=resolution_multiple,
                        name=name).spec

