"""Wall-time estimates for a study: before it runs (``netscale study CONFIG --dry-run``) and
while it runs (the progress line's ETA).

The cost model of one trial: benchmark ≈ the measurement budget plus warm-up; training ≈
epochs × (train images × seconds per training image + val images × seconds per inference
image) + a fixed start-up. Seconds per image come from, in order of preference: the trial's own
runtime measurement (the benchmark phase runs first), a short throughput probe on this machine
(dry run), or the multiply-adds per second seen on the other trials. While the study runs, the
model is calibrated by the epochs actually finished (observed / predicted seconds), so the ETA
tracks this machine's real speed, contention included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from netscale.complexity.limits import check_fits_memory
from netscale.models import build_model
from netscale.specs.spec import network_key
from netscale.util import serial

if TYPE_CHECKING:
    from netscale.data.config import DataConfig

# Standard split sizes, for estimates when the dataset is not present on this machine.
KNOWN_SIZES: dict[str, tuple[int, int]] = {
    "fashion-mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000),
    "fmnist": (60_000, 10_000), "mnist": (60_000, 10_000), "cifar10": (50_000, 10_000),
    "cifar-10": (50_000, 10_000), "cifar100": (50_000, 10_000), "cifar-100": (50_000, 10_000),
    "digits": (1_617, 180),
}
TRAIN_OVER_INFER = 3.0  # a training step costs ~3 forward passes (forward + 2x backward)
TRIAL_OVERHEAD_S = 3.0  # process start, data set-up, checkpoints, final evaluation
DEFAULT_MACS_PER_S = 2e9  # a prior for an unmeasured model, replaced by measurements
MIN_MACS_PER_S, MAX_MACS_PER_S = 1e9, 50e9  # plausible range of a measured inference speed


def bench_seconds(budget: float) -> float:
    """Wall time of one trial's runtime measurement: budget, warm-up, model build, worker
    start (measured on the 2-vCPU reference VM: 7.3 s per trial at a 0.5 s budget)."""
    return 1.3 * budget + 6.5


def data_sizes(data: DataConfig | None, info: Mapping[str, Any] | None
               ) -> tuple[int | None, int | None]:
    """(train, val) images per epoch: the subsets if set, else the data set's sizes."""
    n_train = info.get("train_size") if info else None
    n_val = info.get("val_size") if info else None
    if data is None:
        return n_train, n_val
    if n_train is None:
        known = KNOWN_SIZES.get(str(data.name or "").lower())
        if known:
            n_train, n_val = known
    if data.subset:
        n_train = data.subset if n_train is None else min(data.subset, n_train)
    if data.val_subset:
        n_val = data.val_subset if n_val is None else min(data.val_subset, n_val)
    return n_train, n_val


def train_seconds(epochs: int, n_train: int, n_val: int, train_img_s: float,
                  infer_img_s: float) -> float:
    """Predicted training wall time of one trial (one process, uncontended)."""
    return epochs * (n_train * train_img_s + n_val * infer_img_s) + TRIAL_OVERHEAD_S


# --------------------------------------------------------------------------------------------
# the dry run: a short throughput probe on this machine
# --------------------------------------------------------------------------------------------


def probe_seconds_per_image(spec: Any, *, batch: int = 16, budget: float = 0.6,
                            threads: int = 1) -> tuple[float, float]:
    """(training, inference) seconds per image of ``spec`` on this CPU: a few SGD steps and
    forward passes on random data, after one warm-up step."""
    check_fits_memory(spec, batch, train=True, what=f"the time estimate's probe of {spec.name}",
                      device="cpu", hint="the study could not train it either: lower its "
                      "largest factor (or the resolution)")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build_model(spec)
        x = torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution)
        y = torch.randint(0, spec.num_classes, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        def infer() -> None:
            with torch.no_grad():
                model(x)

        out = []
        for fn, mode in ((step, True), (infer, False)):
            model.train(mode)
            fn()  # warm-up
            n, t0 = 0, time.perf_counter()
            while n < 2 or (time.perf_counter() - t0 < budget / 2 and n < 50):
                fn()
                n += 1
            out.append((time.perf_counter() - t0) / (n * batch))
        return out[0], out[1]
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class TrialEstimate:
    id: str
    flops: int
    acts: int
    bench_s: float
    train_s: float

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass(frozen=True)
class StudyEstimate:
    """Estimated wall time of every trial and of the study (an estimate, not a promise)."""

    trials: list[TrialEstimate]
    workers: int
    total_s: float
    bench_total_s: float
    train_total_s: float
    n_train: int | None
    n_val: int | None
    epochs: int
    probe: str

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


def _interp(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    if x1 == x0:
        return y0
    return max(min(y0, y1) * 0.5, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


@dataclass(frozen=True)
class StudyWork:
    """What a study's trials do, as the estimates need it: epochs over ``n_train`` training
    and ``n_val`` validation images (None: unknown), runtime measurements (``bench_*``:
    enabled, budget in seconds, batch size, mode), ``workers`` trials training at a time and
    the training batch size."""

    epochs: int
    n_train: int | None
    n_val: int | None
    train: bool = True
    workers: int = 1
    bench_enabled: bool = True
    bench_budget: float = 2.0
    bench_batch: int = 32
    bench_mode: str = "infer"
    batch_size: int = 64

    @classmethod
    def of(cls, cfg: Any, info: Mapping[str, Any] | None, workers: int) -> StudyWork:
        """The work of a :class:`~netscale.study.config.StudyConfig` (``info``: the data
        set's sizes, see ``planning.data_info``)."""
        n_train, n_val = data_sizes(cfg.data, info)
        return cls(epochs=cfg.recipe.epochs, n_train=n_train, n_val=n_val, train=cfg.train,
                   workers=workers, bench_enabled=cfg.bench.enabled,
                   bench_budget=cfg.bench.budget, bench_batch=cfg.bench.batch_size,
                   bench_mode=cfg.bench.mode, batch_size=cfg.recipe.batch_size or 128)


def estimate_study(plan: Sequence[Any], specs: Mapping[str, Any], work: StudyWork, *,
                   probe: Callable[..., tuple[float, float]] = probe_seconds_per_image
                   ) -> StudyEstimate:
    """Estimates from the plan (each trial's flops/acts) and a probe of the smallest and the
    largest model (by activations, which predict CPU runtime best); other trials are
    interpolated linearly in activations between the two."""
    epochs, n_train, n_val, train = work.epochs, work.n_train, work.n_val, work.train
    batch_size, workers = work.batch_size, work.workers
    bench_enabled, bench_budget = work.bench_enabled, work.bench_budget
    probed = ""
    per_img: dict[str, tuple[float, float]] = {}
    if train and n_train and plan:
        lo = min(plan, key=lambda p: p.acts)
        hi = max(plan, key=lambda p: p.acts)
        t0 = time.perf_counter()
        batch = max(2, min(batch_size, 64))
        a = probe(specs[lo.id], batch=batch)
        b = probe(specs[hi.id], batch=batch) if hi.id != lo.id else a
        which = f"{lo.id} {1e3 * a[0]:.3g} ms" + (
            f" and {hi.id} {1e3 * b[0]:.3g} ms" if hi.id != lo.id else "")
        probed = (f"probe: {which} per training image (batch {batch}, 1 thread; "
                  f"{time.perf_counter() - t0:.1f} s)")
        for p in plan:
            per_img[p.id] = (_interp(p.acts, lo.acts, a[0], hi.acts, b[0]),
                             _interp(p.acts, lo.acts, a[1], hi.acts, b[1]))
    out = []
    timed: set[tuple[str, str]] = set()
    for p in plan:
        # a study that trains times each network once (its other seeds share the timing)
        spec = getattr(p, "spec", None)
        key = ((str(getattr(p, "base", "")), network_key(spec)) if train and spec is not None
               else (p.id, ""))
        bs = bench_seconds(bench_budget) if bench_enabled and key not in timed else 0.0
        timed.add(key)
        ts = 0.0
        if train and n_train and p.id in per_img:
            ts = train_seconds(epochs, n_train, n_val or 0, *per_img[p.id])
        out.append(TrialEstimate(id=p.id, flops=int(p.flops), acts=int(p.acts), bench_s=bs,
                                 train_s=ts))
    bench_total = sum(t.bench_s for t in out)  # measurements run one at a time
    train_each = sorted((t.train_s for t in out), reverse=True)
    w = max(1, workers)
    train_total = max(sum(train_each) / w, train_each[0] if train_each else 0.0)
    return StudyEstimate(trials=out, workers=w, total_s=bench_total + train_total,
                         bench_total_s=bench_total, train_total_s=train_total,
                         n_train=n_train, n_val=n_val, epochs=epochs, probe=probed)


# --------------------------------------------------------------------------------------------
# while the study runs: the ETA of the progress line
# --------------------------------------------------------------------------------------------


@dataclass
class _TrialState:
    id: str
    flops: int
    epochs_done: int
    bench_done: bool
    img_s: tuple[float, float] | None = None  # (train, infer) seconds per image, measured
    started: float | None = None  # training start (this run)
    last_epoch_at: float | None = None
    finished: bool = False


class EtaModel:
    """Remaining wall time of a running study, from the cost model above, calibrated by what
    has finished: the benchmark's mean duration per trial and the ratio of observed to
    predicted seconds of every finished epoch."""

    def __init__(self, trials: Sequence[Any], work: StudyWork,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.epochs = work.epochs
        self.n_train, self.n_val = work.n_train or 0, work.n_val or 0
        self.bench_enabled, self.bench_budget = work.bench_enabled, work.bench_budget
        self.bench_batch, self.bench_mode = work.bench_batch, work.bench_mode
        self.train, self.workers = work.train, max(1, work.workers)
        self.states: dict[str, _TrialState] = {}
        for t in trials:
            s = _TrialState(t.id, int(t.flops), int(t.epochs_done or 0),
                            bool(t.bench) or not work.bench_enabled,
                            finished=t.status in ("done", "failed"))
            if t.time_ms:
                s.img_s = self._per_image(float(t.time_ms))
            self.states[t.id] = s
        self.bench_seconds: list[float] = []
        self.bench_started: dict[str, float] = {}
        self.observed = 0.0  # seconds of finished steady epochs (not a trial's first)
        self.predicted = 0.0  # their predicted seconds
        self.first: list[tuple[float, float]] = []  # (observed, predicted) first epochs

    def _per_image(self, time_ms: float) -> tuple[float, float]:
        per = time_ms / 1e3 / self.bench_batch
        if self.bench_mode == "train":
            return per, per / TRAIN_OVER_INFER
        return per * TRAIN_OVER_INFER, per

    def _img_s(self, s: _TrialState) -> tuple[float, float]:
        if s.img_s is not None:
            # a timing made under heavy contention can imply an absurd speed; keep the prior
            # within 1..50 G multiply-adds per second (calibration then sets the scale)
            lo, hi = max(s.flops, 1) / MAX_MACS_PER_S, max(s.flops, 1) / MIN_MACS_PER_S
            infer = min(max(s.img_s[1], lo), hi)
            return infer * s.img_s[0] / s.img_s[1] if s.img_s[1] > 0 else s.img_s[0], infer
        rates = [st.flops / self._img_s(st)[1] for st in self.states.values()
                 if st.img_s is not None and st.img_s[1] > 0]
        macs = sorted(rates)[len(rates) // 2] if rates else DEFAULT_MACS_PER_S
        infer = max(s.flops, 1) / macs
        return infer * TRAIN_OVER_INFER, infer

    def epoch_seconds(self, tid: str) -> float:
        tr, inf = self._img_s(self.states[tid])
        return self.n_train * tr + self.n_val * inf

    # events -----------------------------------------------------------------------------

    def started(self, tid: str, phase: str) -> None:
        s = self.states.get(tid)
        if s is None:
            return
        now = self.clock()
        if phase == "bench":
            self.bench_started[tid] = now
        else:
            s.started = s.last_epoch_at = now

    def bench_done(self, tid: str, time_ms: float | None) -> None:
        s = self.states.get(tid)
        if s is None:
            return
        t0 = self.bench_started.pop(tid, None)
        if t0 is not None:
            self.bench_seconds.append(self.clock() - t0)
        s.bench_done = True
        if time_ms:
            s.img_s = self._per_image(float(time_ms))

    def timing_shared(self, tids: Sequence[str]) -> None:
        """These trials get another trial's timing (the same network): none of their own."""
        for tid in tids:
            s = self.states.get(tid)
            if s is not None:
                s.bench_done = True

    def epoch_done(self, tid: str, epoch: int) -> None:
        s = self.states.get(tid)
        if s is None:
            return
        now = self.clock()
        if s.last_epoch_at is not None:
            n = max(1, epoch - s.epochs_done)
            if s.started == s.last_epoch_at:  # first epoch of this run: includes start-up
                self.first.append((now - s.last_epoch_at, n * self.epoch_seconds(tid)))
            else:  # a steady epoch: calibrates the per-epoch cost
                self.observed += now - s.last_epoch_at
                self.predicted += n * self.epoch_seconds(tid)
        s.epochs_done = max(s.epochs_done, epoch)
        s.last_epoch_at = now

    def finished(self, tid: str) -> None:
        s = self.states.get(tid)
        if s is not None:
            s.finished = True
            s.bench_done = True
            self.bench_started.pop(tid, None)

    # the estimate -----------------------------------------------------------------------

    def calibration(self) -> float:
        """Observed / predicted seconds of the epochs finished so far (1 before any): steady
        epochs when there are some, else first epochs with the start-up prior."""
        if self.predicted > 0 and self.observed > 0:
            return self.observed / self.predicted
        if self.first:
            obs = sum(o for o, _ in self.first)
            pred = sum(p + TRIAL_OVERHEAD_S for _, p in self.first)
            return obs / pred if pred > 0 and obs > 0 else 1.0
        return 1.0

    def startup(self, k: float) -> float:
        """Seconds a trial spends before its epochs (process start, data, first eval): the
        first epochs' excess over the calibrated epoch cost, else the prior."""
        if self.first and self.predicted > 0:
            extra = [o - k * p for o, p in self.first]
            return max(0.0, sum(extra) / len(extra))
        return k * TRIAL_OVERHEAD_S

    def remaining(self) -> float | None:
        """Seconds until the study is finished (None when nothing is known yet)."""
        now = self.clock()
        left = [s for s in self.states.values() if not s.finished]
        if not left:
            return 0.0
        bench_left = [s for s in left if not s.bench_done]
        per_bench = (sum(self.bench_seconds) / len(self.bench_seconds) if self.bench_seconds
                     else bench_seconds(self.bench_budget))
        bench = 0.0
        for s in bench_left:
            t0 = self.bench_started.get(s.id)
            bench += max(0.0, per_bench - (now - t0)) if t0 is not None else per_bench
        train: list[float] = []
        if self.train and self.n_train:
            k = self.calibration()
            start = self.startup(k)
            for s in left:
                epochs_left = max(0, self.epochs - s.epochs_done)
                rem = k * epochs_left * self.epoch_seconds(s.id)
                if s.started is None or s.last_epoch_at == s.started:
                    rem += start  # not started, or still in its first epoch
                if s.last_epoch_at is not None:  # running: part of its epoch is behind it
                    rem = max(0.1 * rem, rem - (now - s.last_epoch_at))
                train.append(rem)
        train_wall = max(sum(train) / self.workers, max(train)) if train else 0.0
        total = bench + train_wall
        return total if math.isfinite(total) else None
