"""Execution settings (memory format × precision): parse, apply, and pick the fastest by probing.

A setting is what a model runs in: ``contiguous`` (NCHW) or ``channels_last`` (NHWC) memory,
and ``fp32``, ``bf16`` (autocast to bfloat16, fp32 master weights) or ``fp16`` (CUDA only,
autocast with a GradScaler). ``auto`` in either place means "probe the candidates for a few
steps on the actual model, batch and device and take the fastest". bf16 is a candidate only
where the device runs it natively (CPU: AVX-512 bf16 / AMX; CUDA: compute capability >= 8);
on CUDA fp16 is a candidate too.

The probe never touches the caller's model, optimizer or RNG: the caller's ``make_step``
builds a private copy for each candidate. The chosen :class:`ExecSetting` records the request,
the probe's images/s per candidate and a one-line reason, so results can say what ran and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_SETTING_LABEL = "contiguous+fp32"
#: a faster candidate must beat the plain (contiguous, fp32) setting by this fraction to be
#: picked; within it the plain setting stays (it is bit-reproducible and the reference)
MIN_GAIN = 0.03
#: The measured accuracy parity of bf16 against fp32 (written by
#: ``benchmarks/bench_bf16_parity.py --record``; docs/precision.md). ``auto`` considers bf16
#: only when this file records ``"verdict": "parity"`` (no loss beyond noise); without the file,
#: or with a measured loss, auto stays in fp32. An explicit ``bf16`` request is honoured.
PARITY_FILE = Path(__file__).with_name("bf16_parity.json")


def check_memory_format(value: str, flag: str = "--memory-format") -> str:
    if value not in MEMORY_FORMATS:
        raise NetscaleError(f"{flag} {value!r}: use one of {', '.join(MEMORY_FORMATS)}")
    return value


def check_precision(value: str, device: str = "cpu", flag: str = "--precision") -> str:
    if value not in PRECISIONS:
        raise NetscaleError(f"{flag} {value!r}: use one of {', '.join(PRECISIONS)}")
    if value == "fp16" and not device.startswith("cuda"):
        raise NetscaleError(f"{flag} fp16 needs a CUDA device; on CPU use bf16, fp32 or auto")
    if value == "bf16" and not native_bf16(device):
        raise NetscaleError(f"{flag} bf16: this {device_name(device)} has no native bfloat16 "
                            "support (it would be emulated, slowly); use fp32 or auto")
    return value


def device_name(device: str) -> str:
    return "GPU" if device.startswith("cuda") else "CPU"


def native_bf16(device: str = "cpu") -> bool:
    """True where bfloat16 matmuls/convolutions run natively (no slow emulation)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_parity(path: Path | None = None) -> dict[str, Any] | None:
    """The recorded bf16-vs-fp32 accuracy parity result, or None when none is recorded."""
    try:
        data = json.loads((path or PARITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("verdict") in ("parity", "loss") \
        else None


def bf16_auto_allowed(path: Path | None = None) -> tuple[bool, str]:
    """Whether ``auto`` may pick bf16 (the parity benchmark showed no loss beyond noise), and
    why (a short phrase for the setting's reason)."""
    rec = bf16_parity(path)
    if rec is None:
        return False, ("bf16 not tried: no accuracy-parity measurement is recorded "
                       "(benchmarks/bench_bf16_parity.py --record)")
    if rec["verdict"] != "parity":
        return False, ("bf16 not tried: the parity benchmark measured "
                       f"{rec.get('summary', 'a loss')}")
    return True, ""


@dataclass(frozen=True)
class ProbeTiming:
    """One candidate's probe result: images per second (median over rounds)."""

    memory_format: str
    precision: str
    images_per_s: float

    @property
    def label(self) -> str:
        return f"{self.memory_format}+{self.precision}"


@dataclass(frozen=True)
class ExecSetting:
    """A resolved execution setting; ``requested`` keeps what the user asked for."""

    memory_format: str = "contiguous"
    precision: str = "fp32"
    requested: str = DEFAULT_SETTING_LABEL
    reason: str = "requested"
    probe: tuple[ProbeTiming, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.memory_format}+{self.precision}"

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"

    def to_dict(self) -> dict[str, Any]:
        return {"memory_format": self.memory_format, "precision": self.precision,
                "requested": self.requested, "reason": self.reason,
                "probe": [{"memory_format": p.memory_format, "precision": p.precision,
                           "images_per_s": p.images_per_s} for p in self.probe]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExecSetting:
        probe = tuple(ProbeTiming(str(p["memory_format"]), str(p["precision"]),
                                  float(p["images_per_s"])) for p in d.get("probe") or ())
        return cls(memory_format=str(d.get("memory_format", "contiguous")),
                   precision=str(d.get("precision", "fp32")),
                   requested=str(d.get("requested", DEFAULT_SETTING_LABEL)),
                   reason=str(d.get("reason", "requested")), probe=probe)


def candidates(memory_format: str, precision: str, device: str = "cpu"
               ) -> list[tuple[str, str]]:
    """The (memory format, precision) pairs a request allows, plain setting first."""
    check_memory_format(memory_format)
    check_precision(precision, device)
    fmts = ["contiguous", "channels_last"] if memory_format == "auto" else [memory_format]
    if precision == "auto":
        precs = ["fp32"] + (["bf16"] if native_bf16(device) and bf16_auto_allowed()[0] else [])
        if device.startswith("cuda"):
            precs.append("fp16")  # autocast float16 with a GradScaler
    else:
        precs = [precision]
    return [(f, p) for p in precs for f in fmts]


def fixed_setting(memory_format: str, precision: str, device: str = "cpu") -> ExecSetting | None:
    """The setting when the request leaves nothing to probe, else None."""
    cands = candidates(memory_format, precision, device)
    if len(cands) != 1:
        return None
    f, p = cands[0]
    reason = "requested" if memory_format != "auto" and precision != "auto" else \
        _with_bf16_note("the only candidate on this device", precision, device)
    return ExecSetting(f, p, requested=f"{memory_format}+{precision}", reason=reason)


def autocast(setting: ExecSetting, device: str = "cpu") -> contextlib.AbstractContextManager[Any]:
    """The autocast context for a setting (a null context for fp32)."""
    import torch

    if setting.precision == "fp32":
        return contextlib.nullcontext()
    kind = "cuda" if device.startswith("cuda") else "cpu"
    dtype = torch.bfloat16 if setting.precision == "bf16" else torch.float16
    return torch.autocast(kind, dtype=dtype)


def torch_memory_format(setting: ExecSetting) -> Any:
    import torch

    return torch.channels_last if setting.channels_last else torch.contiguous_format


def apply_to_model(model: Any, setting: ExecSetting) -> Any:
    """Moves the model's 4-d weights to the setting's memory format (in place; returns it)."""
    if setting.channels_last:
        model.to(memory_format=torch_memory_format(setting))
    return model


def apply_to_input(x: Any, setting: ExecSetting) -> Any:
    if setting.channels_last and getattr(x, "dim", lambda: 0)() == 4:
        return x.contiguous(memory_format=torch_memory_format(setting))
    return x


#: make_step(setting) -> a zero-argument callable running one step (forward, or forward +
#: backward + optimizer step) on a private copy of the model in that setting
StepFactory = Callable[[ExecSetting], Callable[[], Any]]


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    import torch

    state = torch.random.get_rng_state()
    cuda = (torch.cuda.is_available()
            and torch.cuda.is_initialized())  # type: ignore[no-untyped-call]  # torch: untyped
    cuda_state = torch.cuda.get_rng_state_all() if cuda else None
    try:
        yield
    finally:
        torch.random.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)


@dataclass(frozen=True)
class ProbePlan:
    """How :func:`choose_setting` times the candidates: ``warmup`` untimed steps each, then
    ``rounds`` interleaved rounds of ``steps`` timed steps, read with ``clock`` (seconds)."""

    warmup: int = 2
    steps: int = 3
    rounds: int = 3
    clock: Callable[[], float] = time.perf_counter


#: ``auto`` probes a training run only when the probe costs at most this share of the run's
#: steps; a shorter run trains in the plain setting (probing would cost more than it saves)
PROBE_MAX_SHARE = 0.1


def short_run_reason(memory_format: str, precision: str, total_steps: int, *,
                     device: str = "cpu", plan: ProbePlan | None = None) -> str | None:
    """Why a training run of ``total_steps`` steps is too short to probe, or None when the
    probe pays off (or there is nothing to probe). The one rule of ``netscale train`` and of
    a study's trials."""
    n = len(candidates(memory_format, precision, device))
    if n <= 1:
        return None
    plan = plan or ProbePlan()
    cost = n * (plan.warmup + plan.steps * plan.rounds)
    if cost <= PROBE_MAX_SHARE * total_steps:
        return None
    return (f"the run is {total_steps:,} steps, too short for a {cost}-step probe to pay off "
            f"(auto probes runs of >= {math.ceil(cost / PROBE_MAX_SHARE):,} steps)")


def choose_setting(memory_format: str, precision: str, make_step: StepFactory, *,
                   batch_size: int, device: str = "cpu", exclude: Sequence[str] = (),
                   plan: ProbePlan | None = None, **plan_fields: Any) -> ExecSetting:
    """Resolves ``auto`` by timing each candidate; fixed requests return without probing.

    Candidates are timed in interleaved rounds (so a burst of contention hits all of them)
    and ranked by the median images/s; a candidate other than the plain setting must be
    :data:`MIN_GAIN` faster to win. ``exclude`` drops labels such as ``"channels_last+bf16"``.
    The probe follows ``plan``; its fields (``warmup``, ``steps``, ``rounds``, ``clock``) may
    also be given as keywords, which override it.
    """
    plan = dataclasses.replace(plan or ProbePlan(), **plan_fields)
    warmup, steps, rounds, clock = plan.warmup, plan.steps, plan.rounds, plan.clock
    fixed = fixed_setting(memory_format, precision, device)
    requested = f"{memory_format}+{precision}"
    if fixed is not None:
        return fixed
    cands = [c for c in candidates(memory_format, precision, device)
             if f"{c[0]}+{c[1]}" not in set(exclude)]
    if len(cands) == 1:
        return ExecSetting(*cands[0], requested=requested,
                           reason=_with_bf16_note("the only candidate left", precision, device))
    with _preserved_rng():
        runners = []
        for f, p in cands:
            run = make_step(ExecSetting(f, p, requested=requested))
            for _ in range(warmup):
                run()
            runners.append(run)
        rates: list[list[float]] = [[] for _ in cands]
        for _ in range(rounds):
            for i, run in enumerate(runners):
                t0 = clock()
                for _ in range(steps):
                    run()
                dt = max(clock() - t0, 1e-9)
                rates[i].append(batch_size * steps / dt)
    probe = tuple(ProbeTiming(f, p, statistics.median(r)) for (f, p), r in zip(cands, rates))
    plain = probe[0]
    best = max(probe, key=lambda t: t.images_per_s)
    if best is plain or best.images_per_s < plain.images_per_s * (1 + MIN_GAIN):
        chosen = plain
        why = (f"{plain.label} is fastest or within {MIN_GAIN:.0%} of the fastest "
               f"({best.label} {best.images_per_s:,.0f} vs {plain.images_per_s:,.0f} images/s)")
    else:
        chosen = best
        why = (f"{best.label} ran {best.images_per_s / plain.images_per_s:.2f}x the "
               f"images/s of {plain.label} ({best.images_per_s:,.0f} vs "
               f"{plain.images_per_s:,.0f}) in a {rounds}x{steps}-step probe")
    return ExecSetting(chosen.memory_format, chosen.precision, requested=requested,
                       reason=_with_bf16_note(why, precision, device), probe=probe)


def _with_bf16_note(reason: str, precision: str, device: str) -> str:
    """Adds why bf16 was not a candidate of an ``auto`` precision on a bf16-capable device."""
    if precision != "auto" or not native_bf16(device):
        return reason
    allowed, why = bf16_auto_allowed()
    return reason if allowed else f"{reason}; {why}"


def describe_setting(setting: ExecSetting) -> str:
    """One line for logs: what runs and why."""
    return f"setting: {setting.label} (asked {setting.requested}; {setting.reason})"
