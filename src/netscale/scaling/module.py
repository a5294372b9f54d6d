"""Scale any PyTorch model given as a factory with depth and width multipliers.

The factory is called as ``factory(depth_mult=d, width_mult=w, **kwargs)`` (the keyword names
are configurable) and does its own rounding, as EfficientNet/MobileNet/timm-style
constructors do; the resolution comes from the input shape ``(C, H, W)`` (every dimension
after the channels is scaled). A strategy (any spelling :func:`parse_strategy` accepts) gives
exponents (e_d, e_w, e_r): for a flops factor s the ideal multipliers are d = s^e_d,
w = s^e_w and resolution r = r0·s^e_r.

Because the factory rounds, flops are a step function of the multipliers. The search:

1. **along the strategy's ray**: for a ray parameter t, d = t^e_d, w = t^e_w,
   r = round(r0·t^e_r / m)·m (m = ``resolution_multiple``); flops grow with t, so t is
   bracketed around s and bisected (in log t) until the realized flops land within
   ``tolerance`` of the target or the bracket is exhausted;
2. **one dimension at a time**: if no ray point is within the tolerance, each dimension the
   strategy scales (e > 0) is moved alone from the best ray point, the others kept on the ray,
   by the same bracket-and-bisect (resolution in steps of m); the dimension with the finest
   steps wins, since the closest candidate over all of them is kept.

Every candidate is counted by measurement on the meta device
(:func:`netscale.complexity.measured.count_measured`; the model is built under
``torch.device("meta")``, so nothing is allocated); multipliers that the factory rounds to the
same network (same module ``repr`` and parameter shapes) are counted once. If no candidate is
within the tolerance the closest is returned with ``within_tolerance`` False and a note with
the achieved factor.
Group widths are the factory's business (it sees only the width multiplier), so a strategy's
e_g is not used here.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netscale.complexity.record import FLOPS_UNIT, Complexity
from netscale.errors import NetscaleError
from netscale.scaling.strategy import (
    DEFAULT_STRATEGY,
    PredictedFactors,
    Strategy,
    parse_strategy,
)

DEFAULT_DEPTH_ARG = "depth_mult"
DEFAULT_WIDTH_ARG = "width_mult"
DEFAULT_RESOLUTION_MULTIPLE = 1
_RAY_ITERS = 40
_DIM_ITERS = 30


@dataclass(frozen=True)
class ModuleScaleResult(PredictedFactors):
    """A scaled factory model: the chosen multipliers and input shape, and how counts grew.

    Counts are ``(flops, params, acts)``: flops are multiply-adds at batch size 1, acts the
    output elements of conv/linear/matmul layers (plus max-pool outputs), both measured.
    """

    module: str
    strategy: Strategy
    factor: float
    depth_arg: str
    width_arg: str
    depth_mult: float
    width_mult: float
    base_input_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    base_counts: Complexity
    counts: Complexity
    tolerance: float
    within_tolerance: bool
    resolution_multiple: int = DEFAULT_RESOLUTION_MULTIPLE
    evaluations: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    note: str = ""
    resolution_arg: str | None = None

    @property
    def resolution(self) -> int:
        """The scaled input side (the first spatial dimension; 0 without one)."""
        return self.input_shape[1] if len(self.input_shape) > 1 else 0

    @property
    def base_resolution(self) -> int:
        return self.base_input_shape[1] if len(self.base_input_shape) > 1 else 0

    @property
    def flops_factor(self) -> float:
        return self.counts.flops / self.base_counts.flops

    @property
    def params_factor(self) -> float:
        return self.counts.params / self.base_counts.params if self.base_counts.params else math.nan

    @property
    def acts_factor(self) -> float:
        return self.counts.acts / self.base_counts.acts if self.base_counts.acts else math.nan

    @property
    def flops_error(self) -> float:
        """Relative error of the realized flops factor vs the target factor."""
        return self.flops_factor / self.factor - 1.0

    def factory_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that build the scaled model."""
        out = {**self.kwargs, self.depth_arg: self.depth_mult, self.width_arg: self.width_mult}
        if self.resolution_arg:
            out[self.resolution_arg] = self.resolution
        return out

    def to_dict(self) -> dict[str, Any]:
        def side(counts: Complexity, shape: tuple[int, ...]) -> dict[str, Any]:
            return {"flops": counts.flops, "params": counts.params, "acts": counts.acts,
                    "input_shape": list(shape),
                    "resolution": shape[1] if len(shape) > 1 else None}

        return {
            "module": self.module,
            "strategy": self.strategy.to_dict(),
            "factor": self.factor,
            self.depth_arg: self.depth_mult,
            self.width_arg: self.width_mult,
            "depth_arg": self.depth_arg,
            "width_arg": self.width_arg,
            "depth_mult": self.depth_mult,
            "width_mult": self.width_mult,
            "resolution": self.resolution,
            "input_shape": list(self.input_shape),
            "factory_kwargs": self.factory_kwargs(),
            "base": side(self.base_counts, self.base_input_shape),
            "scaled": side(self.counts, self.input_shape),
            "flops_factor": self.flops_factor,
            "params_factor": self.params_factor,
            "acts_factor": self.acts_factor,
            "predicted_params_factor": self.predicted_params_factor,
            "predicted_acts_factor": self.predicted_acts_factor,
            "flops_error": self.flops_error,
            "tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance,
            "resolution_multiple": self.resolution_multiple,
            "candidates_measured": self.evaluations,
            "uncounted_ops": dict(self.uncounted),
            "method": "measured (meta device)",
            "units": {"flops": FLOPS_UNIT, "params": "count", "acts": "output elements"},
            "note": self.note,
        }


class _Evaluator:
    """Builds and measures candidates, with a cache (the factory rounds, so many repeat)."""

    def __init__(self, factory: Callable[..., Any], name: str, opts: ScaleOptions,
                 channels_and_rest: tuple[int, ...], uses_depth: bool,
                 uses_width: bool) -> None:
        self.count_bias = opts.count_bias
        self.last_error = ""
        self.factory = factory
        self.name = name
        self.depth_arg = opts.depth_arg
        self.width_arg = opts.width_arg
        self.kwargs = dict(opts.kwargs or {})
        self.resolution_arg = opts.resolution_arg
        self.shape0 = channels_and_rest
        self.uses_depth = uses_depth
        self.uses_width = uses_width
        self.cache: dict[tuple[float, float, tuple[int, ...]], Any] = {}
        self.by_arch: dict[Any, Any] = {}
        # (d, w) -> (meta model, what identifies it): the ray, the one-dimension moves and
        # the snapping revisit the same multipliers (e.g. at another resolution); counting
        # never changes a model, so each is built once
        self.built: dict[tuple[float, float, int], tuple[Any, Any]] = {}
        self.evaluations = 0
        self.failures = 0  # candidates the factory could not build or run

    def shape(self, res_scale: float, multiple: int) -> tuple[int, ...]:
        c, *spatial = self.shape0
        return (c, *(max(multiple, int(round(s * res_scale / multiple)) * multiple)
                     for s in spatial))

    def build(self, d: float, w: float, side: int = 0) -> Any:
        import torch

        kw = dict(self.kwargs)
        if self.resolution_arg:
            kw[self.resolution_arg] = side
        if self.uses_depth:
            kw[self.depth_arg] = d
        if self.uses_width:
            kw[self.width_arg] = w
        try:
            with torch.device("meta"):
                return self.factory(**kw)
        except NotImplementedError:
            # a factory that needs real tensors while building (e.g. .item()): build on CPU
            return self.factory(**kw)

    def model_and_arch(self, d: float, w: float,
                       shape: tuple[int, ...] = ()) -> tuple[Any, Any]:
        """The meta model the factory builds at (d, w) (and at the input side of ``shape``
        when the factory takes the resolution) and what identifies it (cached)."""
        side = shape[1] if self.resolution_arg and len(shape) > 1 else 0
        key = (round(d, 9), round(w, 9), side)
        hit = self.built.get(key)
        if hit is None:
            model = self.build(d, w, side)
            arch = (repr(model),
                    tuple((n, tuple(p.shape)) for n, p in model.named_parameters()))
            hit = self.built[key] = (model, arch)
        return hit

    def arch(self, d: float, w: float, shape: tuple[int, ...]) -> Any:
        """What identifies the network the factory builds at (d, w) (None if it fails)."""
        try:
            return (*self.model_and_arch(d, w, shape)[1], shape)
        except Exception:
            return None

    def __call__(self, d: float, w: float, shape: tuple[int, ...]) -> Any:
        """The measured record of the model at (d, w, shape), or None if it fails."""
        from netscale.complexity.measured import count_measured

        key = (round(d, 9), round(w, 9), shape)
        if key in self.cache:
            return self.cache[key]
        rec = None
        doing = "building it"
        try:
            model, arch0 = self.model_and_arch(d, w, shape)
            doing = f"running its forward on input {list(shape)}"
            # the factory rounds: many multipliers give the same network, counted once
            arch = (*arch0, shape)
            rec = self.by_arch.get(arch)
            if rec is None:
                self.evaluations += 1
                rec = count_measured(model, shape, per_module=False, name=self.name,
                              count_bias=self.count_bias)
                self.by_arch[arch] = rec
        except Exception as exc:  # a multiplier the factory cannot build: skip the candidate
            rec = None
            msg = str(exc).splitlines()[0][:200] if str(exc) else ""
            self.failures += 1
            self.last_error = (f"{doing} at {self.depth_arg}={d:.4g}, {self.width_arg}={w:.4g}"
                               f" raised {type(exc).__name__}: {msg}")
        self.cache[key] = rec
        return rec


@dataclass
class _Cand:
    d: float
    w: float
    shape: tuple[int, ...]
    rec: Any

    @property
    def flops(self) -> int:
        return int(self.rec.flops)


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return True
    params = sig.parameters.values()
    return name in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in params)


@dataclass(frozen=True)
class ScaleOptions:
    """How :func:`scale_module` calls the factory and how close it must land.

    ``depth_arg``/``width_arg`` name the factory's multiplier keywords, ``kwargs`` are passed
    to every call, ``name`` labels the model in messages, ``tolerance`` is the relative flops
    error accepted, ``resolution_multiple`` the step of the input side, and
    ``count_bias=False`` leaves bias adds out of the flops; ``resolution_arg`` names a keyword
    by which the factory takes the input side (for models whose parameters depend on it, such
    as position embeddings).
    """

    depth_arg: str = DEFAULT_DEPTH_ARG
    width_arg: str = DEFAULT_WIDTH_ARG
    tolerance: float = 0.02
    resolution_multiple: int = DEFAULT_RESOLUTION_MULTIPLE
    kwargs: Mapping[str, Any] | None = None
    name: str | None = None
    count_bias: bool = True
    resolution_arg: str | None = None


def scale_module(
    factory: Callable[..., Any] | str,
    input_shape: Sequence[int],
    factor: float,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    *,
    depth_arg: str = DEFAULT_DEPTH_ARG,
    width_arg: str = DEFAULT_WIDTH_ARG,
    tolerance: float = 0.02,
    resolution_multiple: int = DEFAULT_RESOLUTION_MULTIPLE,
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    count_bias: bool = True,
    resolution_arg: str | None = None,
) -> ModuleScaleResult:
    """Scales the model ``factory(depth_arg=d, width_arg=w, **kwargs)`` by flops ``factor``.

    ``factory`` is a callable or ``"pkg.mod:fn"`` / ``"path/file.py:fn"``; ``input_shape``
    excludes the batch dimension (``(3, 224, 224)``). Returns the multipliers and input shape
    whose measured flops land within ``tolerance`` of ``factor`` x the base (or the closest
    reachable, flagged). See the module docstring for the search. ``depth_arg``/``width_arg``
    name the factory's multiplier keywords, ``kwargs`` are passed to every call, ``name``
    labels the model in messages, ``resolution_multiple`` is the step of the input side;
    ``count_bias=False`` leaves bias adds out of the flops (as ``torch.utils.flop_counter``);
    ``resolution_arg`` names a keyword by which the factory takes the input side.
    """
    opts = ScaleOptions(depth_arg, width_arg, tolerance, resolution_multiple, kwargs, name,
                        count_bias, resolution_arg)
    fn, label = _load(factory, opts)
    strat = parse_strategy(strategy)
    shape0 = _check_numbers(factor, input_shape, opts)
    uses_depth, uses_width = _check_args(fn, label, strat, shape0, opts)
    ev = _Evaluator(fn, label, opts, shape0, uses_depth, uses_width)
    base = ev(1.0, 1.0, shape0)
    if base is None:
        raise NetscaleError(
            f"{label}: building or running the base model on input shape {list(shape0)} "
            f"failed: {ev.last_error}"
        )
    if base.flops <= 0:
        raise NetscaleError(f"{label}: the base model counts 0 flops; nothing to scale")
    search = _Search(ev, strat, float(factor), factor * base.flops, opts.tolerance,
                     int(opts.resolution_multiple))
    c = search.run()
    within = search.ok(c)
    note = ""
    if not within and ev.failures:  # the factory failed: blame it, not the rounding
        note = (f"no multipliers within ±{opts.tolerance:.0%} of ×{factor:g} were found: "
                f"{ev.failures} candidate(s) failed in the factory (last: {ev.last_error}); "
                f"closest that worked ×{c.flops / base.flops:.3f} "
                f"({c.flops / search.target - 1:+.1%}); fix the factory for these "
                "multipliers or try a different strategy")
    elif not within:
        note = (f"no multipliers within ±{opts.tolerance:.0%} of ×{factor:g} were found "
                f"(the factory's rounding is too coarse here): closest ×{c.flops / base.flops:.3f}"
                f" ({c.flops / search.target - 1:+.1%}); try a finer --resolution-multiple or a "
                "different strategy")
    d, w = c.d, c.w  # already the shortest values that rebuild the counted network (_snap)
    return ModuleScaleResult(
        module=label, strategy=strat, factor=float(factor), depth_arg=opts.depth_arg,
        width_arg=opts.width_arg, depth_mult=d, width_mult=w,
        base_input_shape=shape0, input_shape=c.shape,
        base_counts=Complexity(base.flops, base.params, base.acts),
        counts=Complexity(c.rec.flops, c.rec.params, c.rec.acts), tolerance=opts.tolerance,
        within_tolerance=within, resolution_multiple=int(opts.resolution_multiple),
        evaluations=ev.evaluations, kwargs=dict(opts.kwargs or {}),
        uncounted=dict(c.rec.uncounted), note=note, resolution_arg=opts.resolution_arg,
    )


def _load(factory: Callable[..., Any] | str,
          opts: ScaleOptions) -> tuple[Callable[..., Any], str]:
    """The factory (loaded from ``"pkg.mod:fn"`` / ``"file.py:fn"``) and its label."""
    if isinstance(factory, str):
        from netscale.complexity.user_module import load_factory

        label = opts.name or factory
        factory = load_factory(factory)
    else:
        label = opts.name or str(getattr(factory, "__name__", type(factory).__name__))
    if not callable(factory) or isinstance(factory, type(None)):
        raise NetscaleError(f"{label}: the factory must be callable")
    from torch import nn

    if isinstance(factory, nn.Module):
        raise NetscaleError(
            f"{label} is a model instance; scaling needs a factory taking {opts.depth_arg} and "
            f"{opts.width_arg} keyword arguments"
        )
    return factory, label


def _check_numbers(factor: float, input_shape: Sequence[int],
                   opts: ScaleOptions) -> tuple[int, ...]:
    """Checks the factor, tolerance and resolution multiple; the input shape as a tuple."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
        raise NetscaleError(f"the flops factor must be a positive number, got {factor!r}")
    if not 0 < opts.tolerance < 1:
        raise NetscaleError(f"tolerance must be in (0, 1), got {opts.tolerance!r}")
    if int(opts.resolution_multiple) < 1:
        raise NetscaleError("resolution multiple must be a positive integer")
    shape0 = tuple(int(s) for s in input_shape)
    if not shape0 or any(s < 1 for s in shape0):
        raise NetscaleError(f"input shape must be positive integers, got {list(input_shape)}")
    return shape0


def _check_args(factory: Callable[..., Any], label: str, strat: Strategy,
                shape0: tuple[int, ...], opts: ScaleOptions) -> tuple[bool, bool]:
    """Whether the factory is given the depth and width multipliers (checked against the
    strategy: a dimension it scales must be a keyword of the factory)."""
    uses_depth = strat.e_d > 0 or _accepts(factory, opts.depth_arg)
    uses_width = strat.e_w > 0 or _accepts(factory, opts.width_arg)
    for arg, e in ((opts.depth_arg, strat.e_d), (opts.width_arg, strat.e_w)):
        if e > 0 and not _accepts(factory, arg):
            raise NetscaleError(
                f"{label} takes no keyword argument {arg!r}, which strategy {strat.name} "
                f"scales; name the factory's multiplier with --depth-arg/--width-arg"
            )
    if strat.e_r > 0 and len(shape0) < 2:
        raise NetscaleError(
            f"strategy {strat.name} scales resolution, but input shape {list(shape0)} has no "
            "spatial dimension after the channels"
        )
    return uses_depth, uses_width


class _Search:
    """The candidate search for one (strategy, factor): every measured candidate is kept."""

    def __init__(self, ev: _Evaluator, strat: Strategy, factor: float, target: float,
                 tolerance: float, multiple: int) -> None:
        self.ev = ev
        self.strat = strat
        self.factor = factor
        self.target = target
        self.tolerance = tolerance
        self.m = multiple
        self.shape0 = ev.shape0
        log_s = math.log(factor)
        self.ideal = (strat.e_d * log_s, strat.e_w * log_s, strat.e_r * log_s)
        self.cands: list[_Cand] = []

    def err(self, c: _Cand) -> float:
        return abs(math.log(c.flops / self.target))

    def deviation(self, c: _Cand) -> float:
        """Squared log-distance of the multipliers from the strategy's ideal ones."""
        shape0, ideal = self.shape0, self.ideal
        r = math.log(c.shape[1] / shape0[1]) if len(shape0) > 1 else 0.0
        return ((math.log(c.d) - ideal[0]) ** 2 + (math.log(c.w) - ideal[1]) ** 2
                + (r - ideal[2]) ** 2)

    def consider(self, d: float, w: float, shape: tuple[int, ...]) -> _Cand | None:
        rec = self.ev(d, w, shape)
        if rec is None or rec.flops <= 0:
            return None
        c = _Cand(d, w, shape, rec)
        self.cands.append(c)
        return c

    def ok(self, c: _Cand) -> bool:
        return bool(abs(c.flops / self.target - 1) <= self.tolerance)

    def found_since(self, n0: int) -> Callable[[], bool]:
        return lambda: any(self.ok(c) for c in self.cands[n0:])

    def dim_moves(self, d0: float, w0: float,
                  r0: float) -> list[Callable[[float], _Cand | None]]:
        strat, shape, m = self.strat, self.ev.shape, self.m
        moves: list[Callable[[float], _Cand | None]] = []
        if strat.e_d > 0:
            moves.append(lambda x: self.consider(d0 * x, w0, shape(r0, m)))
        if strat.e_w > 0:
            moves.append(lambda x: self.consider(d0, w0 * x, shape(r0, m)))
        if strat.e_r > 0:
            moves.append(lambda x: self.consider(d0, w0, shape(r0 * x, m)))
        return moves

    def ray(self, t: float) -> _Cand | None:
        strat = self.strat
        return self.consider(t ** strat.e_d, t ** strat.e_w, self.ev.shape(t ** strat.e_r, self.m))

    def run(self) -> _Cand:
        """The chosen candidate (snapped towards the ideal multipliers)."""
        strat, factor, target, cands = self.strat, self.factor, self.target, self.cands
        # 1. along the ray
        _bisect(self.ray, factor, target, self.found_since(0))
        # 2. from the strategy's ideal point, one dimension at a time (the others kept there):
        #    the candidate within the tolerance closest to the ideal multipliers wins
        if not any(self.ok(c) and self.deviation(c) < 1e-4 for c in cands):
            s_d, s_w, s_r = (factor ** strat.e_d, factor ** strat.e_w, factor ** strat.e_r)
            for move in self.dim_moves(s_d, s_w, s_r):
                _bisect(move, 1.0, target, self.found_since(len(cands)), iters=_DIM_ITERS)
        # 3. still nothing within the tolerance: move one dimension from the closest candidate
        if cands and not any(self.ok(c) for c in cands):
            start = min(cands, key=self.err)
            shape0 = self.shape0
            t_res = start.shape[1] / shape0[1] if len(shape0) > 1 else 1.0
            for move in self.dim_moves(start.d, start.w, t_res):
                if any(self.ok(c) for c in cands):
                    break
                _bisect(move, 1.0, target, self.found_since(len(cands)), iters=_DIM_ITERS)
        if not cands:
            raise NetscaleError(
                f"{self.ev.name}: no scaled candidate could be built ({self.ev.last_error})")
        oks = [c for c in cands if self.ok(c)]
        c = min(oks, key=self.deviation) if oks else min(cands, key=self.err)
        return _snap(self.ev, c, factor ** strat.e_d, factor ** strat.e_w)


def _snap(ev: _Evaluator, c: _Cand, ideal_d: float, ideal_w: float) -> _Cand:
    """Reported multipliers that rebuild exactly the counted network, safely inside the
    factory's rounding interval: for each multiplier, the interval of values that build the
    same network (the other kept) is found, its outer tenths (in log scale) are left out,
    the ideal value is clamped into what remains and written with the fewest significant
    digits that stay there. So the printed values (rounded to 3 or 4 digits) build the
    counted network, never the neighbour across a rounding boundary."""
    key = ev.arch(c.d, c.w, c.shape)
    if key is None:
        return c
    d, w = c.d, c.w
    for which, ideal in (("d", ideal_d), ("w", ideal_w)):
        def same(v: float, which: str = which, d: float = d, w: float = w) -> bool:
            return bool(ev.arch(*((v, w) if which == "d" else (d, v)), c.shape) == key)

        x = d if which == "d" else w
        lo, hi = _edge(same, x, 0.5), _edge(same, x, 2.0)
        span = math.log(hi / lo)
        safe_lo, safe_hi = lo * math.exp(0.1 * span), hi * math.exp(-0.1 * span)
        goal = min(max(ideal, safe_lo), safe_hi) if safe_lo <= safe_hi else x
        v = _short_inside(goal, safe_lo, safe_hi)
        if not same(v):
            v = x
        if which == "d":
            d = v
        else:
            w = v
    return _Cand(d, w, c.shape, c.rec)


def _short_inside(goal: float, lo: float, hi: float) -> float:
    """The number with the fewest significant digits (up to 7) in [lo, hi], nearest to
    ``goal`` (itself in [lo, hi]); ``goal`` when there is none."""
    if not lo <= goal <= hi:
        return goal
    for n in range(1, 8):
        q = 10.0 ** (math.floor(math.log10(goal)) - n + 1)
        first, last = math.ceil(lo / q), math.floor(hi / q)
        if first > last:
            continue
        v = float(f"{min(max(round(goal / q), first), last) * q:.{n}g}")
        if lo <= v <= hi:
            return v
    return goal


def _edge(same: Callable[[float], bool], x: float, factor: float) -> float:
    """The last value from ``x`` towards ``x * factor**4`` for which ``same`` holds (to a
    relative precision of about 1e-3 of the step)."""
    inside, outside = x, None
    for k in range(1, 5):
        y = x * factor ** k
        if not same(y):
            outside = y
            break
        inside = y
    if outside is None:
        return inside
    for _ in range(10):
        mid = math.sqrt(inside * outside)
        if same(mid):
            inside = mid
        else:
            outside = mid
    return inside


def _bisect(f: Callable[[float], _Cand | None], start: float, target: float,
            done: Callable[[], bool], iters: int = _RAY_ITERS) -> None:
    """Brackets x around ``start`` so that f(lo) <= target <= f(hi), then bisects in log x.

    Flops are non-decreasing in x (a step function); ``f`` records every candidate it
    measures, and the search stops once ``done()``.
    """
    x, c, stop = _measure(f, start, done)
    if stop:
        return
    lo: float | None = None
    hi: float | None = None
    if c is None or c.flops > target:
        hi = x
    else:
        lo = x
    step = 1.5
    for _ in range(24):
        if lo is not None and hi is not None:
            break
        if lo is None:
            assert hi is not None  # one end is always set before this loop
            x = hi / step
        else:
            x = lo * step
        x, c, stop = _measure(f, x, done)
        if stop:
            return
        if c is None:
            if lo is None:
                break  # cannot go lower
            hi = x
            continue
        if c.flops > target:
            hi = x
        else:
            lo = x
        step *= 1.5
    if lo is None or hi is None:
        return
    for _ in range(iters):
        if hi / lo < 1 + 1e-6:
            break
        x = math.sqrt(lo * hi)
        c = f(x)
        if done():
            return
        if c is None:  # not buildable here (not "too large"): a buildable neighbour decides
            for q in (0.25, 0.75, 0.125, 0.875, 0.375, 0.625):
                x = lo * (hi / lo) ** q
                c = f(x)
                if done():
                    return
                if c is not None:
                    break
        if c is None or c.flops > target:
            hi = x
        else:
            lo = x


def _measure(f: Callable[[float], _Cand | None], x: float, done: Callable[[], bool]
             ) -> tuple[float, _Cand | None, bool]:
    """``f(x)``, or a buildable point beside ``x`` when the factory cannot build ``x``; and
    whether the search is done."""
    c = f(x)
    if not done() and c is None:
        x, c = _buildable_near(f, x, done)
    return x, c, done()


def _buildable_near(f: Callable[[float], _Cand | None], x: float,
                    done: Callable[[], bool]) -> tuple[float, _Cand | None]:
    """A point next to ``x`` (within ±10%) that the factory can build, when it cannot build
    ``x`` itself: a failure is no evidence of size, so the search looks beside it."""
    for step in (1.01, 1.03, 1.1):
        for y in (x * step, x / step):
            c = f(y)
            if c is not None or done():
                return y, c
    return x, None

