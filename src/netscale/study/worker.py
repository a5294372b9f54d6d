"""What one trial does, wherever it runs (in-process, a local worker process, a Ray task).

``run_trial(payload, emit)``: benchmark the scaled spec on this machine, then train and
evaluate it (resuming from the trial directory's last checkpoint), reporting progress through
``emit(kind, data)`` as it goes. Everything in ``payload`` is plain JSON data so that it
crosses process and node boundaries.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np

from netscale.bench.harness import (
    DEFAULT_THREADS,
    BenchConfig,
    bench_spec,
    resolve_device,
    resolve_setting,
    torch_threads,
)
from netscale.bench.setting import ExecSetting, short_run_reason
from netscale.bench.timing import TimingPolicy
from netscale.errors import NetscaleError
from netscale.study.module_base import ModuleSpec, bench_module_spec, spec_from_payload
from netscale.study.store import stand_in
from netscale.study.store_check import read_bench_file
from netscale.util import jsonio
from netscale.util.io import atomic_write_json

Emit = Callable[[str, dict[str, Any]], None]


SETTING_FILE = "setting.json"


def trial_setting(payload: Mapping[str, Any], spec: Any) -> Any:
    """The trial's execution setting (memory format x precision), resolved once: read from the
    trial directory's ``setting.json`` when an earlier phase or attempt resolved it, else from
    the recipe's ``memory_format``/``precision`` (default ``auto``: a short probe of training
    steps at the recipe's batch size on this device; in a study that does not train, of the
    benchmark's own steps at its batch size) and written there. A trial that ran before
    settings were recorded (a runtime or checkpoint but no ``setting.json``) keeps
    contiguous+fp32, the setting it was started in."""

    trial_dir = Path(payload["trial_dir"])
    path = trial_dir / SETTING_FILE
    if path.is_file():
        try:
            return ExecSetting.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable (a torn write cannot happen: atomic): resolve again
    if (trial_dir / "bench.json").is_file() or (trial_dir / "train").is_dir():
        setting = ExecSetting(reason="started before execution settings were recorded")
    elif (short := _short_run(payload)) is not None:
        setting = short
    else:
        setting = _probe_setting(payload, spec)
    atomic_write_json(path, setting.to_dict())
    return setting


def _short_run(payload: Mapping[str, Any]) -> Any:
    """The plain setting, with the reason, for a training trial too short to probe (the same
    rule as ``netscale train``: bench.setting.short_run_reason); None otherwise."""

    steps = _train_steps(payload)
    if steps is None:
        return None
    fmt, prec = _requested(payload)
    reason = short_run_reason(fmt, prec, steps, device=resolve_device(payload.get("device")))
    return None if reason is None else ExecSetting(requested=f"{fmt}+{prec}", reason=reason)


def _train_steps(payload: Mapping[str, Any]) -> int | None:
    """Optimizer steps of the trial's training run (None: not training, or unknown)."""
    from netscale.train.recipe import Recipe, auto_batch_size

    n_train = payload.get("train_size")
    if not payload.get("train", True) or not n_train:
        return None
    recipe = Recipe.from_dict(dict(payload.get("recipe") or {}))
    batch = recipe.batch_size or auto_batch_size(int(n_train))
    return recipe.epochs * max(1, int(n_train) // batch)


def _requested(payload: Mapping[str, Any]) -> tuple[str, str]:
    from netscale.train.recipe import Recipe

    recipe = Recipe.from_dict(dict(payload.get("recipe") or {}))
    return recipe.memory_format, recipe.precision


def study_probe(payload: Mapping[str, Any], runs: int) -> Any:
    """The setting of ``runs`` training runs like this trial's when each is too short to
    probe (:func:`_short_run`) but their steps together pay for one probe (the same rule,
    bench.setting.short_run_reason, over the total): probed on this trial's network, its
    reason saying so. None when each run is long enough to probe itself, or when even the
    total is too short (the runs then train in the plain setting, each saying why)."""
    import dataclasses

    steps = _train_steps(payload)
    if steps is None or _short_run(payload) is None:
        return None
    total = steps * max(1, runs)
    fmt, prec = _requested(payload)
    if short_run_reason(fmt, prec, total, device=resolve_device(payload.get("device"))):
        return None
    with phase_state():
        setting = _probe_setting(payload, spec_from_payload(payload["spec"]))
    return dataclasses.replace(setting, reason=(
        f"{setting.reason}; one probe on {payload['id']} for the {runs} runs of its base "
        f"({total:,} steps together; each run alone is too short to probe)"))


def _probe_setting(payload: Mapping[str, Any], spec: Any) -> Any:
    """The setting the trial's recipe asks for, probed (``auto``) on this device with the
    batch size and threads the trial trains (or, timing only, benchmarks) with."""
    from netscale.train import Recipe

    recipe = dict(payload.get("recipe") or {})
    fmt = str(recipe.pop("memory_format", "auto"))
    prec = str(recipe.pop("precision", "auto"))
    batch = int(recipe.get("batch_size") or Recipe().batch_size)
    mode = "train"
    if not payload.get("train", True):  # a timing-only study: probe what it times
        bench = payload.get("bench") or {}
        mode = "infer" if bench.get("mode", "infer") == "infer" else "train"
        batch = int(bench.get("batch_size") or batch)
    device = resolve_device(payload.get("device"))
    cfg = BenchConfig(mode=mode, batch_size=batch, device=device,
                      memory_format=fmt, precision=prec, seed=int(payload["seed"]))

    def factory() -> Any:
        if isinstance(spec, ModuleSpec):
            return spec.build_module()
        from netscale.models import build_model

        return build_model(spec)

    # probe in the threads the trial trains with (the recipe's, else the phase's), or in a
    # timing-only study those its benchmark runs with
    threads = (recipe.get("threads") or payload.get("threads")) if payload.get(
        "train", True) else (payload.get("threads") or DEFAULT_THREADS)
    with torch_threads(threads):
        return resolve_setting(factory, cfg, device=device, batch=batch,
                               in_channels=spec.in_channels,
                               resolution=spec.resolution, num_classes=spec.num_classes)


def recipe_with_setting(recipe: Mapping[str, Any], setting: Any) -> dict[str, Any]:
    """The trial's recipe with its resolved setting (so training does not probe again); a
    Recipe without the setting fields (an older trainer) gets neither key."""
    import dataclasses

    from netscale.train import Recipe

    out = dict(recipe)
    names = {f.name for f in dataclasses.fields(Recipe)}
    for key in ("memory_format", "precision"):
        if key in names:
            out[key] = getattr(setting, key)
        else:
            out.pop(key, None)
    return out


def _bench(payload: Mapping[str, Any], spec: Any, emit: Emit) -> None:
    settings = payload["bench"]
    trial_dir = Path(payload["trial_dir"])
    cached = trial_dir / "bench.json"

    rows = read_bench_file(cached)  # measured by an earlier attempt: do not measure twice
    if rows is None:
        modes = ["infer", "train"] if settings["mode"] == "both" else [settings["mode"]]
        rows = []
        for mode in modes:
            cfg = BenchConfig(
                mode=mode, batch_size=int(settings["batch_size"]),
                device=payload.get("device"), threads=payload.get("threads"),
                retries=int(settings.get("retries", 1)),
                policy=TimingPolicy(budget_s=float(settings["budget"])),
                setting=trial_setting(payload, spec),  # timed in the setting it trains with
            )

            bench = bench_module_spec if isinstance(spec, ModuleSpec) else bench_spec
            result = bench(spec, cfg, base=payload["base"], strategy=payload["strategy"],
                           factor=payload["factor"])
            rows.append(result.to_dict())

        atomic_write_json(cached, rows)
    infer = stand_in(rows)
    emit("bench", {"rows": rows, "time_ms": infer.get("time_ms") if infer else None})


@contextmanager
def phase_state(threads: int | None = None) -> Iterator[None]:
    """The process-wide state a phase may change, set for the phase and restored after it.

    Saved and restored: torch's intra-op thread count (set to ``threads`` when given), the
    torch, CUDA, numpy and Python RNG states, deterministic-algorithm mode, cuDNN flags, the
    default dtype and grad mode. Every phase of a trial runs inside one, so what one phase
    (e.g. a runtime measurement with 4 threads) does never leaks into the next: a trial's
    result does not depend on whether the study was interrupted, or on what ran before it
    in the same process.
    """
    import random

    import torch

    saved_threads = torch.get_num_threads()
    py_rng, np_rng, torch_rng = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_rng = (torch.cuda.get_rng_state_all()
                if torch.cuda.is_available() and cast(Any, torch.cuda).is_initialized()
                else None)  # is_initialized is untyped in torch
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cudnn.enabled)
    dtype = torch.get_default_dtype()
    grad = torch.is_grad_enabled()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != saved_threads:
            torch.set_num_threads(saved_threads)
        random.setstate(py_rng)
        np.random.set_state(np_rng)
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        torch.use_deterministic_algorithms(det, warn_only=det_warn)
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
         torch.backends.cudnn.enabled) = cudnn
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)


def run_trial(payload: Mapping[str, Any], emit: Emit) -> dict[str, Any]:
    """Runs one trial; returns its final result. Raises on failure (the caller retries).

    Each phase (``bench``, ``train``) runs inside :func:`phase_state`, with the payload's
    ``threads`` (None: the process's own default)."""

    t0 = time.time()
    trial_dir = Path(payload["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    spec = spec_from_payload(payload["spec"])  # a NetSpec, or a ModuleSpec (factory base)
    threads = payload.get("threads")
    phases = payload.get("phases", ["bench", "train"])
    if "bench" in phases:
        with phase_state(threads):
            _bench(payload, spec, emit)
    result: dict[str, Any] = {}
    if "train" in phases:
        with phase_state(threads):
            result["env"] = _env()
            result.update(_train(payload, spec, trial_dir, emit))
            result["env"]["setting"] = result["setting"]  # stored with the trial (env column)
    else:
        with phase_state(threads):
            result["env"] = _env()
    result["wall_time"] = time.time() - t0
    return result


def _train(payload: Mapping[str, Any], spec: Any, trial_dir: Path,
           emit: Emit) -> dict[str, Any]:
    from netscale.data import DataConfig
    from netscale.train import EpochMetrics, Recipe, train

    setting = trial_setting(payload, spec)
    recipe = Recipe.from_dict({**recipe_with_setting(payload["recipe"], setting),
                               "seed": int(payload["seed"])})
    data = DataConfig.from_dict(payload["data"])

    def on_epoch(metrics: EpochMetrics) -> None:
        emit("epoch", {"epoch": metrics.epoch, "metrics": metrics.to_dict()})

    result = train(spec, data, recipe, trial_dir / "train", resume=True,
                   device=payload.get("device") or "auto", on_epoch=on_epoch, quiet=True,
                   dataset=cached_dataset(data))
    if result.status == "diverged":
        raise NetscaleError(f"training diverged (non-finite loss) at epoch "
                            f"{result.epochs_done}")
    return {"top1_err": result.top1_err, "top5_err": result.top5_err, "loss": result.loss,
            "train": result.to_dict(),
            "setting": setting.to_dict()}


#: Datasets loaded by this process, by data config: a worker process that runs many trials
#: loads its data once (training reads a dataset, never changes it).
_DATASETS: dict[str, Any] = {}


def cached_dataset(data: Any) -> Any:
    """The dataset of ``data`` (a DataConfig), loaded once per process."""
    from netscale.data import load_dataset

    key = jsonio.dumps(data.identity())
    if key not in _DATASETS:
        _DATASETS.clear()  # one study's data at a time
        _DATASETS[key] = load_dataset(data)
    return _DATASETS[key]


def _env() -> dict[str, Any]:
    import platform

    import torch

    return {"torch": torch.__version__, "python": platform.python_version(),
            "host": platform.node(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "pid": os.getpid()}


def format_exception(exc: BaseException) -> str:
    """One line for the store: the error and where it came from."""
    if isinstance(exc, NetscaleError):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {msg}{where}"
