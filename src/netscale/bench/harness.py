"""Timing a model: inference (eval + inference_mode) or a training step (forward + loss +
backward + optimizer step, timed per phase), on CPU or CUDA.

Entry points: :func:`bench_spec` (a :class:`NetSpec`, built here) and :func:`bench_module`
(any ``nn.Module`` taking ``(N, C, H, W)`` images and returning ``(N, classes)`` logits).
Timing policy and statistics live in :mod:`netscale.bench.timing`.

What a training measurement does to the model: the state dict (weights *and* BatchNorm
running statistics) is copied before timing and loaded back afterwards, gradients are cleared
and the train/eval flag is restored, so benchmarking never changes a model. Data loading is not
timed: one random batch (fixed seed) is reused.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from netscale.bench.contention import CONTENDED_THRESHOLD, CpuMonitor, CpuShare
from netscale.bench.env import BenchEnv, collect_env
from netscale.bench.memory import PeakMemory, steady_state_allocator
from netscale.bench.result import MODES, TRAIN_FLOPS_MULTIPLIER, BenchResult
from netscale.bench.setting import (
    PRECISIONS,
    ExecSetting,
    autocast,
    check_memory_format,
    check_precision,
    choose_setting,
    fixed_setting,
    torch_memory_format,
)
from netscale.bench.timing import Clock, Measurement, TimingPolicy, measure_runtime
from netscale.complexity import complexity_totals
from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.util.device import resolve_device as util_resolve_device

DEFAULT_BATCH = {"cpu": 8, "cuda": 32}
# One intra-op thread unless asked: on a small VM shared with anything else, a multi-thread
# OpenMP forward waits at every barrier for a descheduled thread; measured on a 2-CPU VM
# (benchmarks/thread_stability.py, docs/bench.md "Default threads"): 1 thread 103 ms with a
# 6 % spread of repeated medians, 2 threads 1,471 ms with a 506 % spread.
DEFAULT_THREADS = 1
# Re-measure a noisy or contended row up to this many more times, keeping the best attempt.
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class BenchConfig:
    """Options of a measurement (the CLI flags of `netscale bench`)."""

    mode: str = "infer"
    batch_size: int | None = None  # None: 8 on CPU, 32 on CUDA
    resolution: int | None = None  # None: the spec's resolution
    device: str | None = None  # None: cuda if available, else cpu
    # execution setting (netscale.bench.setting): auto probes the candidates on the model
    memory_format: str = "contiguous"  # auto | channels_last | contiguous
    precision: str = "fp32"  # auto | fp32 | bf16 | fp16 (CUDA)
    setting: ExecSetting | None = None  # an already resolved setting: used as is, no probe
    compile: bool = False  # torch.compile
    threads: int | None = None  # torch intra-op threads (None: DEFAULT_THREADS, i.e. 1)
    retry_oom: bool = False  # on out-of-memory, retry at half the batch (down to 1)
    retries: int = DEFAULT_RETRIES  # re-measure up to this many times while noisy/contended
    contended_threshold: float = CONTENDED_THRESHOLD  # others' CPU share that flags a result
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    lr: float = 0.01  # SGD(momentum 0.9, weight decay 5e-5) for the train step
    seed: int = 0

    def validate(self) -> BenchConfig:
        if self.mode not in MODES:
            raise NetscaleError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise NetscaleError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.resolution is not None and self.resolution < 8:
            raise NetscaleError(f"--resolution must be >= 8 pixels, got {self.resolution}")
        if self.threads is not None and self.threads < 1:
            raise NetscaleError(f"--threads must be >= 1, got {self.threads}")
        if self.retries < 0:
            raise NetscaleError(f"--retries must be >= 0, got {self.retries}")
        check_memory_format(self.memory_format)
        if self.precision not in PRECISIONS:
            raise NetscaleError(f"--precision {self.precision!r}: use one of "
                                f"{', '.join(PRECISIONS)}")
        self.policy.validate()
        return self


def resolve_device(device: str | None) -> str:
    """'cpu', 'cuda' or 'cuda:N' (the harness times CPU and CUDA); None picks cuda when
    available. Raises NetscaleError (:func:`netscale.util.device.resolve_device`)."""
    return util_resolve_device(device, kinds=("cpu", "cuda"))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Sets torch's intra-op thread count for the block and restores it after."""
    import torch

    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def is_oom(exc: BaseException) -> bool:
    """True for CUDA and CPU out-of-memory errors."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)):
        msg = str(exc).lower()
        return isinstance(exc, MemoryError) or any(
            s in msg for s in ("out of memory", "can't allocate memory", "not enough memory",
                               "failed to allocate"))
    return False


def bench_spec(spec: NetSpec, config: BenchConfig | None = None, *,
               clock: Clock = time.perf_counter, base: str | None = None,
               strategy: str | None = None, factor: float | None = None) -> BenchResult:
    """Builds ``spec`` and measures it; flops/params/acts are counted at the benched resolution.

    ``base``/``strategy``/``factor`` only label the row (runtime analysis).
    """
    from netscale.models import build_model

    config = (config or BenchConfig()).validate()
    if config.resolution is not None and config.resolution != spec.resolution:
        spec = spec.replace(resolution=config.resolution)
    counts = complexity_totals(spec)

    def factory() -> Any:
        import torch

        torch.manual_seed(config.seed)
        return build_model(spec)

    work = _Workload(factory, False, spec.in_channels, spec.resolution, spec.num_classes)
    return _bench(work, name=spec.name, counts=(counts.flops, counts.params, counts.acts),
                  config=config, clock=clock,
                  labels={"base": base, "strategy": strategy, "factor": factor})


def setting_for_spec(spec: NetSpec, config: BenchConfig) -> ExecSetting:
    """The execution setting ``config`` resolves to for ``spec`` (probing ``auto`` on private
    copies built from the spec), in ``config.mode`` at its batch size and threads."""
    from netscale.models import build_model

    config = config.validate()
    if config.setting is not None:
        return config.setting
    if config.resolution is not None and config.resolution != spec.resolution:
        spec = spec.replace(resolution=config.resolution)
    device = resolve_device(config.device)
    batch = config.batch_size or DEFAULT_BATCH["cuda" if device.startswith("cuda") else "cpu"]

    def factory() -> Any:
        import torch

        torch.manual_seed(config.seed)
        return build_model(spec)

    with torch_threads(config.threads or DEFAULT_THREADS):
        return resolve_setting(factory, config, device=device, batch=batch,
                               in_channels=spec.in_channels, resolution=spec.resolution,
                               num_classes=spec.num_classes)


def bench_module(model: Any, *, name: str, in_channels: int = 3, resolution: int = 224,
                 num_classes: int | None = None, counts: tuple[int, int, int] = (0, 0, 0),
                 config: BenchConfig | None = None,
                 clock: Clock = time.perf_counter) -> BenchResult:
    """Measures an existing ``nn.Module`` (moved to the device; its state is kept).

    ``num_classes`` (for the training loss) defaults to ``model.num_classes`` or 1000.
    """
    config = (config or BenchConfig()).validate()
    if num_classes is None:
        num_classes = int(getattr(model, "num_classes", 1000))
    if config.resolution is not None:
        resolution = config.resolution
    work = _Workload(lambda: model, True, in_channels, resolution, num_classes)
    return _bench(work, name=name, counts=counts, config=config, clock=clock, labels={})


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True)
class _Workload:
    """What is timed: the model factory (``external``: it returns the caller's model) and
    the input and label shapes, ``(batch, in_channels, resolution, resolution)`` images of
    ``num_classes`` classes."""

    factory: Callable[[], Any]
    external: bool
    in_channels: int
    resolution: int
    num_classes: int

    def batch(self, batch: int, seed: int, device: str, memory_format: Any) -> tuple[Any, Any]:
        """One random batch ``(x, y)`` (fixed ``seed``) on ``device``."""
        import torch

        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, self.in_channels, self.resolution, self.resolution, generator=gen)
        x = x.to(device=device, memory_format=memory_format)
        y = torch.randint(0, max(1, self.num_classes), (batch,), generator=gen).to(device)
        return x, y


class _Attempt(NamedTuple):
    """The best measurement of a row, with its peak memory and CPU share."""

    meas: Measurement
    peak: float | None
    method: str
    share: CpuShare
    attempts: int


def _bench(work: _Workload, *, name: str, counts: tuple[int, int, int], config: BenchConfig,
           clock: Clock, labels: Mapping[str, Any]) -> BenchResult:
    device = resolve_device(config.device)
    requested = config.batch_size or DEFAULT_BATCH["cuda" if device.startswith("cuda")
                                                   else "cpu"]
    flops, params, acts = counts
    if device == "cpu":
        steady_state_allocator()
    with torch_threads(config.threads or DEFAULT_THREADS) as threads:
        setting = config.setting or resolve_setting(
            work.factory, config, device=device, batch=requested,
            in_channels=work.in_channels, resolution=work.resolution,
            num_classes=work.num_classes, external=work.external)
        config = replace(config, setting=setting)
        env = collect_env(device, threads=threads, amp=setting.precision != "fp32",
                          amp_dtype=_dtype_name(setting.precision),
                          channels_last=setting.channels_last, compile=config.compile)
        common = dict(model=name, mode=config.mode, device=device,
                      requested_batch_size=requested, resolution=work.resolution, flops=flops,
                      params=params, acts=acts, env=env, setting=setting, **labels)
        bs = requested
        tried: list[int] = []
        while True:
            oom = ""
            try:
                best = _measure_with_retries(work, config=config, device=device, batch=bs,
                                             clock=clock)
                break
            except Exception as exc:
                if not is_oom(exc):
                    raise
                oom = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "OOM"
            # outside the except block, so the traceback's tensors can be freed
            tried.append(bs)
            _free_device_memory(device)
            if config.retry_oom and bs > 1:
                bs //= 2
                continue
            hint = ("even at batch size 1" if config.retry_oom else
                    f"try --batch-size {max(1, bs // 2)} or --retry-oom")
            return BenchResult(
                batch_size=bs, status="oom",
                note=f"out of memory at batch size {bs} on {device} ({oom}); {hint}",
                **common)
    notes = []
    if tried:
        notes.append(f"out of memory at batch size {', '.join(map(str, tried))}; measured at "
                     f"batch size {bs} (--retry-oom)")
    return _result(best, bs, notes, config, common)


def resolve_setting(factory: Callable[[], Any], config: BenchConfig, *, device: str, batch: int,
                    in_channels: int, resolution: int, num_classes: int,
                    external: bool = False) -> ExecSetting:
    """The execution setting ``config`` asks for on this model, batch and device: fixed
    requests as they are, ``auto`` by a short interleaved probe of the candidates (each on a
    private copy of the model: the caller's model, and the RNG, are left untouched)."""
    fmt, prec = config.memory_format, config.precision
    check_precision(prec, device)
    fixed = fixed_setting(fmt, prec, device)
    if fixed is not None:
        return fixed
    work = _Workload(factory, external, in_channels, resolution, num_classes)

    def make_step(s: ExecSetting) -> Callable[[], Any]:
        return _probe_step(work, s, config, device, batch)

    return choose_setting(fmt, prec, make_step, batch_size=batch, device=device)


def _probe_step(work: _Workload, s: ExecSetting, config: BenchConfig, device: str,
                batch: int) -> Callable[[], Any]:
    """One inference call or training step of a private model copy in setting ``s`` (what
    :func:`choose_setting` times for each candidate)."""
    import torch
    import torch.nn.functional as F

    model = copy.deepcopy(work.factory()) if work.external else work.factory()
    model.to(device=device)
    mf = torch_memory_format(s)
    model.to(memory_format=mf)
    x, y = work.batch(batch, config.seed, device, mf)
    if config.mode == "infer":
        model.eval()

        def infer() -> Any:
            with torch.inference_mode(), autocast(s, device):
                out = model(x)
            _sync(device)  # choose_setting times with a host clock: wait for the GPU
            return out

        return infer
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9) if params else None

    def train_step() -> Any:
        with autocast(s, device):
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        if loss.requires_grad:
            loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
        _sync(device)
        return loss

    return train_step


def _sync(device: str) -> None:
    """Waits for the queued GPU work of ``device`` (nothing on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _dtype_name(precision: str) -> str | None:
    return {"bf16": "bfloat16", "fp16": "float16"}.get(precision)


def _measure_with_retries(work: _Workload, *, config: BenchConfig, **kw: Any) -> _Attempt:
    """Measures; while noisy or contended, re-measures up to ``config.retries`` times and
    keeps the best attempt (uncontended first, then not noisy, then smallest spread)."""
    best = None
    best_key: tuple[Any, ...] = ()
    attempts = 0
    while True:
        attempts += 1
        meas, peak, method, share = _measure_once(work, config=config, **kw)
        contended = share.contended(config.contended_threshold)
        key = (contended, meas.noisy, meas.total.rel_iqr)
        if best is None or key < best_key:
            best, best_key = (meas, peak, method, share), key
        if not (contended or meas.noisy) or attempts > config.retries:
            return _Attempt(*best, attempts)


def _result(best: _Attempt, bs: int, notes: list[str], config: BenchConfig,
            common: Mapping[str, Any]) -> BenchResult:
    meas, peak, method, share, attempts = best
    t = meas.total
    mult = TRAIN_FLOPS_MULTIPLIER if config.mode == "train" else 1
    flops_per_batch = int(common["flops"]) * bs * mult
    sec = t.median_ms / 1e3
    contended = share.contended(config.contended_threshold)
    if meas.noisy:
        notes.append(f"noisy: relative IQR {t.rel_iqr:.1%} > {meas.noisy_threshold:.0%} "
                     f"({meas.stop_reason})")
    if contended:
        notes.append(f"contended: other processes used {share.others:.0%} and the hypervisor "
                     f"stole {share.steal or 0:.0%} of the CPUs during the measurement")
    if meas.noisy or contended:
        notes.append(f"still {'contended' if contended else 'noisy'} after {attempts} "
                     "attempt(s): rerun on an idle machine, with a larger --budget or more "
                     "--retries")
    elif attempts > 1:
        notes.append(f"best of {attempts} attempts (--retries)")
    return BenchResult(
        batch_size=bs, status="ok", time_ms=t.median_ms, iqr_ms=t.iqr_ms, q1_ms=t.q1_ms,
        q3_ms=t.q3_ms, min_ms=t.min_ms, rel_iqr=t.rel_iqr,
        samples=t.samples, iters_per_sample=meas.iters_per_sample,
        stop_reason=meas.stop_reason, noisy=meas.noisy, phases=dict(meas.phases),
        images_per_s=bs / sec if sec > 0 else None, flops_per_batch=flops_per_batch,
        gflops_per_s=flops_per_batch / sec / 1e9 if sec > 0 and flops_per_batch else None,
        peak_mem_mib=peak, mem_method=method, cpu_others=share.others,
        cpu_steal=share.steal, contended=contended, attempts=attempts, note="; ".join(notes),
        **common)


def _free_device_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _snapshot(model: Any) -> dict[str, Any]:
    """A deep copy (on the CPU) of the state dict: weights and BatchNorm statistics."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _measure_once(work: _Workload, *, device: str, batch: int, config: BenchConfig,
                  clock: Clock) -> tuple[Measurement, float | None, str, CpuShare]:
    """One measurement. A private model (``external`` False) is built inside the memory
    window, so its weights count, and is discarded afterwards; an external model is
    snapshotted before train timing and restored after (weights, BN statistics, flag)."""
    external = work.external
    model = snapshot = None
    was_training = False
    if external:
        model = work.factory()
        was_training = model.training
        if config.mode == "train":
            snapshot = _snapshot(model)
    assert config.setting is not None  # resolved by _bench
    fmt = torch_memory_format(config.setting)
    own_fmt = _weight_format(model) if external else None
    mem = PeakMemory(device)
    try:
        with mem:
            if model is None:
                model = work.factory()
            model.to(device=device, memory_format=fmt)
            x, y = work.batch(batch, config.seed, device, fmt)
            run = _compiled(model, config)
            if config.mode == "infer":
                model.eval()
                runner = _infer_runner(run, x, device, config, clock)
            else:
                model.train()
                runner = _train_runner(model, run, x, y, device, config, clock)
            if config.compile:
                _first_compiled_call(runner, model)
            with CpuMonitor() as mon:  # other processes' CPU use while timing
                meas = measure_runtime(runner, config.policy, clock)
    finally:
        if external and model is not None:
            if own_fmt is not None and own_fmt != fmt:  # the layout the caller had
                model.to(memory_format=own_fmt)
            if snapshot is not None:
                model.load_state_dict(snapshot)
                model.zero_grad(set_to_none=True)
            model.train(was_training)
    return meas, mem.peak_mb, mem.method, mon.share


def _weight_format(model: Any) -> Any:
    """The memory format of the model's first 4-d weight (None without one)."""
    import torch

    for p in model.parameters():
        if p.dim() == 4:
            cl = p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            return torch.channels_last if cl else torch.contiguous_format
    return None


def _compiled(model: Any, config: BenchConfig) -> Any:
    if not config.compile:
        return model
    import torch

    try:
        return torch.compile(model)
    except Exception as exc:  # torch.compile itself is lazy; this catches unsupported setups
        raise NetscaleError(f"torch.compile failed: {_one_line(exc)}; run without --compile")\
            from None


def _first_compiled_call(runner: Callable[[int], Mapping[str, float]], model: Any) -> None:
    """torch.compile compiles at the first call: run it here to report failures clearly."""
    try:
        runner(1)
    except Exception as exc:
        if is_oom(exc):
            raise
        raise NetscaleError(
            f"torch.compile failed for {type(model).__name__}: {_one_line(exc)}; "
            "run without --compile (compiling needs a working C++ compiler on CPU, Triton on "
            "CUDA)") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}"


def _autocast(device: str, config: BenchConfig) -> Any:
    return autocast(config.setting or ExecSetting(), device)


def _infer_runner(run: Any, x: Any, device: str, config: BenchConfig,
                  clock: Clock) -> Callable[[int], dict[str, float]]:
    import torch

    if device.startswith("cuda"):
        start = torch.cuda.Event(  # type: ignore[no-untyped-call]  # unannotated in torch
            enable_timing=True)
        end = torch.cuda.Event(  # type: ignore[no-untyped-call]  # unannotated in torch
            enable_timing=True)

        def block_cuda(n: int) -> dict[str, float]:
            # events record on the current stream of the current device: make it ``device``
            with torch.cuda.device(device), torch.inference_mode(), _autocast(device, config):
                start.record()
                for _ in range(n):
                    run(x)
                end.record()
            end.synchronize()
            return {"forward": start.elapsed_time(end) / 1e3}

        return block_cuda

    def block_cpu(n: int) -> dict[str, float]:
        with torch.inference_mode(), _autocast(device, config):
            t0 = clock()
            for _ in range(n):
                run(x)
            t1 = clock()
        return {"forward": t1 - t0}

    return block_cpu


def _train_runner(model: Any, run: Any, x: Any, y: Any, device: str, config: BenchConfig,
                  clock: Clock) -> Callable[[int], dict[str, float]]:
    import torch
    import torch.nn.functional as F

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=5e-5) \
        if params else None
    cuda = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if cuda and config.setting is not None and \
        config.setting.precision == "fp16" else None

    def forward() -> Any:
        with _autocast(device, config):
            out = run(x)
        return F.cross_entropy(out.float(), y)

    def backward(loss: Any) -> None:
        if scaler is not None:
            scaler.scale(loss).backward()
        elif loss.requires_grad:
            loss.backward()

    def step() -> None:
        if opt is None:
            return
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)

    if cuda:
        return _cuda_train_block(forward, backward, step, device)
    return _cpu_train_block(forward, backward, step, clock)


def _cuda_train_block(forward: Callable[[], Any], backward: Callable[[Any], None],
                      step: Callable[[], None],
                      device: str = "cuda") -> Callable[[int], dict[str, float]]:
    """Runs n training steps, timed per phase with CUDA events (seconds), recorded on the
    current stream of ``device``."""
    import torch

    def block_cuda(n: int) -> dict[str, float]:
        with torch.cuda.device(device):
            return _timed_steps(n)

    def _timed_steps(n: int) -> dict[str, float]:
        events = [[torch.cuda.Event(  # type: ignore[no-untyped-call]  # unannotated in torch
                       enable_timing=True) for _ in range(4)]
                  for _ in range(n)]
        for ev in events:
            ev[0].record()
            loss = forward()
            ev[1].record()
            backward(loss)
            ev[2].record()
            step()
            ev[3].record()
        events[-1][3].synchronize()
        out = {"forward": 0.0, "backward": 0.0, "step": 0.0}
        for ev in events:
            out["forward"] += ev[0].elapsed_time(ev[1]) / 1e3
            out["backward"] += ev[1].elapsed_time(ev[2]) / 1e3
            out["step"] += ev[2].elapsed_time(ev[3]) / 1e3
        return out

    return block_cuda


def _cpu_train_block(forward: Callable[[], Any], backward: Callable[[Any], None],
                     step: Callable[[], None],
                     clock: Clock) -> Callable[[int], dict[str, float]]:
    """Runs n training steps, timed per phase with ``clock`` (seconds)."""

    def block_cpu(n: int) -> dict[str, float]:
        f = b = s = 0.0
        for _ in range(n):
            t0 = clock()
            loss = forward()
            t1 = clock()
            backward(loss)
            t2 = clock()
            step()
            t3 = clock()
            f += t1 - t0
            b += t2 - t1
            s += t3 - t2
        return {"forward": f, "backward": b, "step": s}

    return block_cpu


def env_for(config: BenchConfig) -> BenchEnv:
    """The environment a run with ``config`` would record (for headers)."""
    device = resolve_device(config.device)
    prec = config.setting.precision if config.setting else config.precision
    fmt = config.setting.memory_format if config.setting else config.memory_format
    with torch_threads(config.threads or DEFAULT_THREADS) as threads:
        return collect_env(device, threads=threads, amp=prec in ("bf16", "fp16"),
                           amp_dtype=_dtype_name(prec), channels_last=fmt == "channels_last",
                           compile=config.compile)


def empty_model(num_classes: int = 10) -> Any:
    """A model that does (almost) nothing: one scalar weight times a slice of the input.

    Timing it through the harness measures the harness' own per-iteration overhead.
    """
    import torch
    from torch import nn

    class EmptyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))
            self.num_classes = num_classes

        def forward(self, x: Any) -> Any:
            return (x[:, :1, 0, 0] * self.w).expand(-1, self.num_classes)

    return EmptyNet()
