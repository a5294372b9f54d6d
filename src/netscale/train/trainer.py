"""The trainer: :func:`train` (resumable, optionally multi-process) and :func:`evaluate`.

Run directory layout (``out_dir``)::

    checkpoint.pt   last finished epoch (model, optimizer, schedule, EMA, AMP scaler, RNG
                    states, spec, recipe, data config, execution setting, history), written
                    atomically
    log.jsonl       one JSON line per finished epoch (EpochMetrics); a final line with
                    "status": "diverged" if training diverged
    result.json     the latest TrainResult (status running / stopped / completed / diverged)
    spec.yaml       the spec being trained

Everything random derives from ``recipe.seed`` (model init, data order and augmentation per
(epoch, rank)), and the global RNG states are checkpointed, so an interrupted run resumed from
its checkpoint ends with bit-identical weights and metrics on CPU.

The execution setting (memory format x precision, :mod:`netscale.bench.setting`) is resolved
once per run -- ``auto`` probes the candidates on private copies of the model -- and recorded;
a resumed run reuses it. One call is a frozen :class:`_Run` (what is trained, how) and a
mutable :class:`_State` (weights, optimizer, schedule, history), driven by the steps
``_open_checkpoint`` / ``_prepare`` / ``_restore`` / ``_train_epoch`` / ``_evaluate_epoch`` /
``_save_epoch``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from netscale.bench.setting import (
    ExecSetting,
    ProbePlan,
    apply_to_input,
    apply_to_model,
    autocast,
    check_memory_format,
    check_precision,
    choose_setting,
    fixed_setting,
    short_run_reason,
)
from netscale.bench.setting import describe as describe_setting
from netscale.complexity.limits import check_fits_memory
from netscale.data import DataConfig, Dataset, DatasetInfo, load_dataset, make_loaders
from netscale.data.loaders import Loader, Pipeline, make_loader, make_pipeline
from netscale.errors import NetscaleError
from netscale.models import build_model
from netscale.specs import NetSpec, resolve_spec
from netscale.train.checkpoint import (
    CHECKPOINT_NAME,
    checkpoint_weights,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    sweep_checkpoint_temps,
)
from netscale.train.progress import Progress, fmt_time
from netscale.train.recipe import Recipe, WarmupCosine, default_train_threads
from netscale.train.results import EpochMetrics, EvalResult, TrainResult
from netscale.util import jsonio
from netscale.util.io import atomic_write_json, atomic_write_text
from netscale.util.validate import check_threads

LOG_NAME = "log.jsonl"
RESULT_NAME = "result.json"
SPEC_NAME = "spec.yaml"


# ----------------------------------------------------------------------------- inputs


def _as_spec(spec: NetSpec | Mapping[str, Any] | str) -> NetSpec:
    if isinstance(spec, NetSpec):
        return spec.validate()
    if hasattr(spec, "build_module"):  # a study's module-factory model (ModuleSpec)
        # ModuleSpec is duck-typed (train may not import study): it quacks like a NetSpec here
        return spec  # type: ignore[return-value]
    if isinstance(spec, Mapping):
        return NetSpec.from_dict(spec)
    return resolve_spec(str(spec))


def _as_data(data: DataConfig | Mapping[str, Any] | str) -> DataConfig:
    if isinstance(data, DataConfig):
        return data
    return DataConfig.from_dict(data)


def _as_recipe(recipe: Recipe | Mapping[str, Any] | None) -> Recipe:
    if recipe is None:
        return Recipe()
    if isinstance(recipe, Recipe):
        return recipe
    return Recipe.from_dict(recipe)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` -> cuda if available else cpu; a CUDA request without CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise NetscaleError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NetscaleError("device cuda requested but CUDA is not available here; "
                            "use --device cpu")
    return dev


def check_compatible(spec: NetSpec, num_classes: int, dataset: str) -> None:
    if spec.num_classes != num_classes:
        raise NetscaleError(
            f"spec {spec.name!r} has num_classes {spec.num_classes} but {dataset} has "
            f"{num_classes} classes; use spec.replace(num_classes={num_classes}) (netscale "
            "train adapts it for you)")


# ----------------------------------------------------------------------------- distributed


@dataclass
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this module created the process group (and destroys it)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_dist(device: torch.device, distributed: bool | None) -> tuple[DistEnv, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if distributed is False or (distributed is None and world <= 1):
        return DistEnv(), device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owned = False
    if not dist.is_initialized():
        if world <= 1:
            return DistEnv(), device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owned = True
    return DistEnv(dist.get_rank(), dist.get_world_size(), local, owned), device


def _all_reduce(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.active:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def _sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Rank 0's buffers (BN statistics) everywhere, so all ranks evaluate the saved model."""
    if env.active:
        import torch.distributed as dist

        for b in model.buffers():
            dist.broadcast(b, 0)


def _barrier(env: DistEnv) -> None:
    if env.active:
        import torch.distributed as dist

        dist.barrier()


# ----------------------------------------------------------------------------- pieces


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: not on BN parameters and biases (1-D)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class EMA:
    """Exponential moving average of weights and float buffers (BN statistics); the decay
    ramps up as min(decay, (1 + n) / (10 + n)) over the first updates."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._cache: tuple[int, tuple[list[torch.Tensor], ...]] | None = None

    def _tensors(self, model: nn.Module) -> tuple[list[torch.Tensor], ...]:
        # Tensors of both state dicts share storage with the modules (loading copies in
        # place), so the lists are built once per source model.
        if self._cache is None or self._cache[0] != id(model):
            ef: list[torch.Tensor] = []
            mf: list[torch.Tensor] = []
            eo: list[torch.Tensor] = []
            mo: list[torch.Tensor] = []
            esd, msd = self.module.state_dict(), model.state_dict()
            for k, v in esd.items():
                (ef if v.dtype.is_floating_point else eo).append(v)
                (mf if v.dtype.is_floating_point else mo).append(msd[k])
            self._cache = (id(model), (ef, mf, eo, mo))
        return self._cache[1]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ef, mf, eo, mo = self._tensors(model)
        torch._foreach_lerp_(ef, mf, 1.0 - d)
        for e, m in zip(eo, mo):
            e.copy_(m)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


def _spec_identity(d: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(d)
    out.pop("meta", None)
    out.pop("name", None)
    return out


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    parts = []
    for k in keys[:3]:
        va, vb = jsonio.dumps(a.get(k)), jsonio.dumps(b.get(k))
        if len(va) > 40 or len(vb) > 40:
            parts.append(f"{k} differ")
        else:
            parts.append(f"{k}: {va} in the checkpoint vs {vb} now")
    return "; ".join(parts) + ("; ..." if len(keys) > 3 else "")


def check_checkpoint_spec(ckpt_spec: Mapping[str, Any], spec: NetSpec, where: str) -> None:
    """A clear error when a checkpoint was written for another network."""
    a, b = _spec_identity(ckpt_spec), _spec_identity(spec.to_dict())
    if a != b:
        raise NetscaleError(
            f"checkpoint {where} was written for a different network "
            f"({ckpt_spec.get('name')!r}; {_diff(a, b)}); use a new output directory or the "
            "matching spec")


@torch.no_grad()
def _eval_sums(model: nn.Module, loader: Loader, device: torch.device, setting: ExecSetting
               ) -> torch.Tensor:
    """[loss sum, top-1 correct, top-5 correct, count] over this rank's shard, run in
    ``setting`` (the setting the model trains in)."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    for x, y in loader:
        with autocast(setting, device.type):
            out = model(apply_to_input(x, setting))
        out = out.float()
        loss = nn.functional.cross_entropy(out, y, reduction="sum")
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        hit = top == y[:, None]
        sums += torch.stack([loss.double(), hit[:, 0].sum().double(),
                             hit.any(1).sum().double(), torch.tensor(float(len(y)),
                                                                     dtype=torch.float64,
                                                                     device=device)])
    return sums


def _errors(sums: torch.Tensor) -> tuple[float, float, float]:
    loss_sum, c1, c5, n = (float(v) for v in sums.tolist())
    n = max(n, 1.0)
    return loss_sum / n, 1.0 - c1 / n, 1.0 - c5 / n


# ----------------------------------------------------------------------------- train


OnEpoch = Callable[[EpochMetrics], Any]


def make_optimizer(model: nn.Module, recipe: Recipe, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimizer; weight decay only on conv/linear weights (not BN, biases)."""
    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(recipe.momentum, 0.999))
    return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


def train(spec: NetSpec | Mapping[str, Any] | str, data: DataConfig | Mapping[str, Any] | str,
          recipe: Recipe | Mapping[str, Any] | None = None,
          out_dir: str | Path = "runs/train", *, resume: bool = True,
          device: str | torch.device = "cpu", on_epoch: OnEpoch | None = None,
          max_epochs: int | None = None, quiet: bool = False,
          distributed: bool | None = None, dataset: Dataset | None = None) -> TrainResult:
    """Trains ``spec`` on ``data`` with ``recipe``, checkpointing to ``out_dir`` every epoch.

    * ``resume``: continue from ``out_dir/checkpoint.pt`` if there is one (a finished run
      returns at once); with ``resume=False`` an existing checkpoint is an error (never
      overwritten).
    * ``max_epochs``: stop once this many epochs are done (status ``stopped``); call again to
      continue. ``on_epoch(metrics)`` runs after each epoch's checkpoint is on disk (rank 0).
    * ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; AMP is used on CUDA if
      ``recipe.amp``. Under ``torchrun`` (WORLD_SIZE > 1) training is data-parallel (DDP,
      gloo on CPU / NCCL on GPU); ``recipe.batch_size`` is the global batch.
    * Non-finite loss stops training with status ``diverged``; the checkpoint of the last
      good epoch is kept.
    """
    spec = _as_spec(spec)
    data = _as_data(data)
    recipe = _as_recipe(recipe)
    if max_epochs is not None and max_epochs < 1:
        raise NetscaleError(f"max_epochs must be positive, got {max_epochs}")
    dev = resolve_device(device)
    check_threads(recipe.threads or None, "threads")
    threads = recipe.threads or default_train_threads()
    if threads:
        torch.set_num_threads(threads)
    env, dev = _setup_dist(dev, distributed)
    try:
        if not recipe.is_resolved:  # default recipe: batch size and warm-up fit the data
            dataset = dataset if dataset is not None else load_dataset(data)
            recipe, _ = recipe.for_dataset(dataset.info.train_size, env.world)
        return _train(_Request(spec, data, recipe, Path(out_dir), resume=resume, dev=dev,
                               env=env, on_epoch=on_epoch, max_epochs=max_epochs,
                               quiet=quiet, dataset=dataset))
    except (RuntimeError, MemoryError) as exc:  # out of memory: one line, not a traceback
        from netscale.bench.harness import is_oom

        if not is_oom(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise NetscaleError(
            f"out of memory training {spec.name} at batch size {recipe.batch_size} on {dev} "
            f"({first}); lower --batch-size or --resolution, or train a smaller model; the "
            "last checkpoint (if any) is kept") from None
    finally:
        if env.owned:
            import torch.distributed as dist

            dist.destroy_process_group()


class _RunLock:
    """An exclusive lock on a run directory (``.lock``, flock), held while training, so two
    processes never train into the same directory; released when the process ends."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> _RunLock:
        if not self.enabled:
            return self
        import fcntl

        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise NetscaleError(
                f"{str(self.out)!r} is being trained into by another process (pid {other}); "
                "wait for it to finish or choose another output directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        sweep_checkpoint_temps(self.out)  # temp files of writes a kill interrupted
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            import fcntl

            sweep_checkpoint_temps(self.out)
            with contextlib.suppress(OSError):
                os.unlink(self.out / ".lock")
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
            if self.created:  # nothing was written (an early error): leave no empty folder
                with contextlib.suppress(OSError):
                    self.out.rmdir()


@dataclass(frozen=True)
class _Request:
    """One call of :func:`train`, its inputs validated."""

    spec: NetSpec
    data: DataConfig
    recipe: Recipe
    out: Path
    resume: bool
    dev: torch.device
    env: DistEnv
    on_epoch: OnEpoch | None = None
    max_epochs: int | None = None
    quiet: bool = False
    dataset: Dataset | None = None


@dataclass(frozen=True)
class _Run:
    """Everything fixed for the epochs this call trains (frozen once the model is built)."""

    req: _Request
    info: DatasetInfo
    train_loader: Loader
    val_loader: Loader
    pipe: Pipeline
    steps_per_epoch: int
    params: int
    peak: float
    setting: ExecSetting

    @property
    def recipe(self) -> Recipe:
        return self.req.recipe

    @property
    def env(self) -> DistEnv:
        return self.req.env

    @property
    def dev(self) -> torch.device:
        return self.req.dev

    @property
    def out(self) -> Path:
        return self.req.out

    @property
    def ckpt_file(self) -> Path:
        return self.req.out / CHECKPOINT_NAME

    @property
    def stop_at(self) -> int:
        r = self.req
        return r.recipe.epochs if r.max_epochs is None else min(r.recipe.epochs, r.max_epochs)

    @property
    def show(self) -> bool:
        return self.env.main and not self.req.quiet


@dataclass
class _State:
    """What training changes: weights, optimizer, schedule, EMA, scaler, history, time."""

    model: nn.Module
    ddp_model: nn.Module
    opt: torch.optim.Optimizer
    sched: WarmupCosine
    ema: EMA | None
    scaler: Any
    history: list[dict[str, Any]]
    start_epoch: int = 0
    wall: float = 0.0


def _train(req: _Request) -> TrainResult:
    with _RunLock(req.out, req.env.main):
        return _train_locked(req)


def _train_locked(req: _Request) -> TrainResult:
    ckpt = _open_checkpoint(req)
    run, model = _prepare(req, ckpt)
    st = _new_state(run, model)
    if ckpt is not None:
        _restore(run, st, ckpt)
    if req.env.main:
        run.out.mkdir(parents=True, exist_ok=True)
        if not (run.out / SPEC_NAME).exists():
            atomic_write_text(run.out / SPEC_NAME, req.spec.to_yaml())
        if ckpt is not None:  # the log holds exactly the checkpointed epochs
            _write_log(run.out, st.history)
    prog = Progress(run.recipe.epochs, run.steps_per_epoch, enabled=run.show)
    if st.start_epoch >= run.stop_at:
        status = "completed" if st.start_epoch >= run.recipe.epochs else "stopped"
        return _result(run, status, st)
    _announce(run, prog, st.start_epoch, ckpt is not None)
    criterion = nn.CrossEntropyLoss(label_smoothing=run.recipe.label_smoothing)
    for epoch in range(st.start_epoch, run.stop_at):
        e_start = time.perf_counter()
        prog.start_epoch(epoch + 1)
        sums, bad_step = _train_epoch(run, st, criterion, prog, epoch)
        if bad_step is not None:
            st.wall += time.perf_counter() - e_start
            return _diverged(run, st, epoch + 1, bad_step)
        metrics = _evaluate_epoch(run, st, sums, epoch, e_start)
        if isinstance(metrics, str):  # nothing of this epoch is checkpointed
            return _diverged(run, st, epoch + 1, None, what=metrics)
        _save_epoch(run, st, metrics)
        _barrier(run.env)
        prog.end_epoch(time.perf_counter() - e_start,
                       _summary(metrics, run.recipe.epochs, prog, metrics.epoch))
        if req.on_epoch is not None and run.env.main:
            req.on_epoch(metrics)
    status = "completed" if run.stop_at >= run.recipe.epochs else "stopped"
    return _result(run, status, st)


def _open_checkpoint(req: _Request) -> dict[str, Any] | None:
    """The run's checkpoint if it has one (checked against this call), else None."""
    ckpt_file = req.out / CHECKPOINT_NAME
    if not ckpt_file.exists():
        return None
    if not req.resume:
        prev = _peek_epochs(ckpt_file)
        raise NetscaleError(
            f"{str(req.out)!r} already holds a training run{prev}; pass --resume "
            "(resume=True) to continue it, or choose another output directory")
    ckpt = load_checkpoint(ckpt_file)
    check_checkpoint_spec(ckpt["spec"], req.spec, str(ckpt_file))
    # more epochs than before extend the run (the cosine schedule is stretched to the
    # new length from the current step); fewer are a different recipe
    longer = ("epochs",) if req.recipe.epochs >= int(ckpt["recipe"].get("epochs", 0)) else ()
    # the execution setting is checked against the resolved one the checkpoint records
    _check_same(ckpt["recipe"], req.recipe.identity(), "recipe", ckpt_file,
                drop=("threads", "eval_batch_size", "memory_format", "precision", *longer))
    _check_same(ckpt["data"], req.data.identity(), "data config", ckpt_file,
                drop=("workers",))
    return ckpt


def _prepare(req: _Request, ckpt: dict[str, Any] | None) -> tuple[_Run, nn.Module]:
    """Loads the data, builds loaders and the model, and resolves the execution setting."""
    spec, data, recipe, env = req.spec, req.data, req.recipe, req.env
    ds = req.dataset if req.dataset is not None else load_dataset(data)
    info = ds.info
    check_compatible(spec, info.num_classes, info.name)
    if recipe.batch_size % env.world:
        raise NetscaleError(f"batch size {recipe.batch_size} is not divisible by the "
                            f"{env.world} processes; pick a multiple of {env.world}")
    per_rank = recipe.batch_size // env.world
    resolution = data.resolution or spec.resolution
    train_loader, val_loader, pipe = make_loaders(
        ds, data, resolution=resolution, channels=spec.in_channels, batch_size=per_rank,
        eval_batch_size=(recipe.eval_batch_size or max(per_rank, 256)), seed=recipe.seed,
        rank=env.rank, world=env.world, device=req.dev)
    steps = len(train_loader)
    if train_loader.num_samples < 2:
        raise NetscaleError(
            f"{info.name}: {info.train_size} training image(s) for {env.world} process(es); "
            "batch normalization needs at least 2 per batch: add images or raise --subset")
    if steps == 0:
        raise NetscaleError(f"{info.name}: no training batches (train split has "
                            f"{info.train_size} images)")
    check_fits_memory(spec, per_rank, train=True, what=f"training {spec.name}",
                      device=str(req.dev), resolution=resolution,
                      hint="lower --batch-size or --resolution, or train a smaller model")
    _seed_everything(recipe.seed)
    model = build_model(spec, zero_init_last_bn=recipe.zero_init_last_bn,
                        drop_path=recipe.drop_path).to(req.dev)
    torch.manual_seed(recipe.seed * 1000 + 1 + env.rank)  # per-rank dropout noise
    peak = recipe.effective_lr
    probe = _Probe(model, recipe, peak, req.dev, (per_rank, spec.in_channels, resolution),
                   spec.num_classes)
    setting = _resolve_setting(req, ckpt, probe, steps)
    apply_to_model(model, setting)
    run = _Run(req, info, train_loader, val_loader, pipe, steps,
               sum(p.numel() for p in model.parameters()), peak, setting)
    return run, model


# ----------------------------------------------------------------------------- setting


PROBE_WARMUP, PROBE_STEPS, PROBE_ROUNDS = 2, 3, 3


@dataclass(frozen=True)
class _Probe:
    """Builds one-step training closures on private copies of ``model`` (for choose_setting)."""

    model: nn.Module
    recipe: Recipe
    lr: float
    dev: torch.device
    shape: tuple[int, int, int]  # (batch, channels, resolution)
    num_classes: int

    def __call__(self, setting: ExecSetting) -> Callable[[], None]:
        model = apply_to_model(copy.deepcopy(self.model).train(), setting)
        opt = make_optimizer(model, self.recipe, self.lr)
        gen = torch.Generator().manual_seed(0)
        b, c, r = self.shape
        x = apply_to_input(torch.randn(b, c, r, r, generator=gen).to(self.dev), setting)
        y = torch.randint(0, self.num_classes, (b,), generator=gen).to(self.dev)
        crit = nn.CrossEntropyLoss(label_smoothing=self.recipe.label_smoothing)
        scaler = torch.amp.GradScaler("cuda") if setting.precision == "fp16" else None
        cuda = self.dev.type == "cuda"

        def step() -> None:
            with autocast(setting, self.dev.type):
                loss = crit(model(x), y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if cuda:
                torch.cuda.synchronize(self.dev)  # the probed device, not the current one

        return step


def precision_request(recipe: Recipe, dev: torch.device) -> str:
    """The precision asked for: ``recipe.precision``, with the older ``recipe.amp`` mapped
    (amp False means fp32; ``auto`` on CUDA means fp16 AMP, as before settings existed)."""
    p = recipe.precision
    if not recipe.amp:
        if p not in ("auto", "fp32"):
            raise NetscaleError(f"recipe.amp false (--no-amp) contradicts precision {p}; "
                                "drop --no-amp, or use --precision fp32")
        return "fp32"
    if p == "auto" and dev.type == "cuda":
        return "fp16"
    return p


def _resolve_setting(req: _Request, ckpt: dict[str, Any] | None, probe: _Probe,
                     steps_per_epoch: int) -> ExecSetting:
    """The recorded setting of a resumed run (no probe), else the requested one, resolved."""
    recipe, dev = req.recipe, req.dev
    check_memory_format(recipe.memory_format, "recipe.memory_format")
    precision = check_precision(precision_request(recipe, dev), str(dev), "recipe.precision")
    if ckpt is not None:
        return _recorded_setting(ckpt, recipe, dev)
    setting = fixed_setting(recipe.memory_format, precision, str(dev))
    if setting is None:
        plan = ProbePlan(warmup=PROBE_WARMUP, steps=PROBE_STEPS, rounds=PROBE_ROUNDS)
        short = short_run_reason(recipe.memory_format, precision,
                                 recipe.epochs * steps_per_epoch, device=str(dev), plan=plan)
        if req.env.main and short is None:
            setting = choose_setting(recipe.memory_format, precision, probe,
                                     batch_size=probe.shape[0], device=str(dev), plan=plan)
        elif req.env.main:
            setting = ExecSetting(requested=f"{recipe.memory_format}+{precision}",
                                  reason=str(short))
        else:
            setting = ExecSetting()  # replaced by rank 0's choice below
    return _broadcast_setting(setting, req.env)


def _broadcast_setting(setting: ExecSetting, env: DistEnv) -> ExecSetting:
    """Rank 0's setting on every rank (ranks must run the same setting)."""
    if not env.active:
        return setting
    import torch.distributed as dist

    box: list[Any] = [jsonio.dumps(setting.to_dict())]
    dist.broadcast_object_list(box, src=0)
    return ExecSetting.from_dict(json.loads(box[0]))


def _recorded_setting(ckpt: dict[str, Any], recipe: Recipe, dev: torch.device) -> ExecSetting:
    """The setting a checkpoint was trained in; an explicit request that contradicts it is an
    error (resuming in another setting would not continue the same run bit for bit)."""
    stored = ckpt.get("setting")
    if stored:
        setting = ExecSetting.from_dict(stored)
    else:  # written before settings were recorded: NCHW, fp16 AMP on CUDA, else fp32
        amp = bool(ckpt["recipe"].get("amp", True)) and dev.type == "cuda"
        setting = ExecSetting(precision="fp16" if amp else "fp32", requested="",
                              reason="checkpoint from before settings were recorded")
    asked = {"memory_format": recipe.memory_format, "precision": recipe.precision}
    for key, value in asked.items():
        if value != "auto" and value != getattr(setting, key):
            flag = "--" + key.replace("_", "-")
            raise NetscaleError(
                f"{flag} {value} contradicts the run in {ckpt['path']} (trained in "
                f"{setting.label}); drop {flag} to resume in the recorded setting, or train "
                "into a new --out")
    return setting


# ----------------------------------------------------------------------------- steps


def _new_state(run: _Run, model: nn.Module) -> _State:
    recipe, dev = run.recipe, run.dev
    opt = make_optimizer(model, recipe, run.peak)
    sched = WarmupCosine(run.peak, recipe.epochs * run.steps_per_epoch,
                         round((recipe.warmup_epochs or 0.0) * run.steps_per_epoch),
                         recipe.warmup_factor, recipe.min_lr)
    ema = EMA(model, recipe.ema_decay) if recipe.ema else None
    scaler = torch.amp.GradScaler("cuda") if run.setting.precision == "fp16" else None
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ddp_model: nn.Module = model
    if run.env.active:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return _State(model, ddp_model, opt, sched, ema, scaler, [])


def _restore(run: _Run, st: _State, ckpt: dict[str, Any]) -> None:
    """Loads weights, optimizer, schedule, EMA, scaler, RNG states and history."""
    try:
        st.model.load_state_dict(ckpt["model"])
        st.opt.load_state_dict(ckpt["optimizer"])
        if st.ema is not None and ckpt.get("ema") is not None:
            st.ema.load_state_dict(ckpt["ema"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise NetscaleError(f"checkpoint {str(run.ckpt_file)!r} does not fit the model "
                            f"({' '.join(str(exc).split())[:120]})") from None
    st.sched.load_state_dict(ckpt["scheduler"])
    if st.scaler is not None and ckpt.get("scaler"):
        st.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    st.history = list(ckpt.get("history") or [])
    st.start_epoch = int(ckpt["epoch"])
    st.wall = float(ckpt.get("wall_time", 0.0))


def _announce(run: _Run, prog: Progress, start_epoch: int, resumed: bool) -> None:
    if not run.show:
        return
    spec, info, recipe, env = run.req.spec, run.info, run.recipe, run.env
    what = f"resuming at epoch {start_epoch + 1}" if resumed else "training"
    prog.note(
        f"{what}: {spec.name} ({run.params:,} params) on {info.name} "
        f"({info.train_size:,} train / {info.val_size:,} val images, {run.pipe.resolution} "
        f"px, {spec.in_channels} ch), {recipe.epochs} epochs, batch {recipe.batch_size}"
        f"{f' over {env.world} processes' if env.active else ''}, lr {run.peak:g} on "
        f"{run.dev}")
    prog.note(describe_setting(run.setting) + ("; recorded in the checkpoint" if resumed
                                               else ""))


def _train_epoch(run: _Run, st: _State, criterion: nn.Module, prog: Progress, epoch: int
                 ) -> tuple[torch.Tensor, int | None]:
    """One pass over the training data: ([loss sum, correct, count], the step at which the
    loss went non-finite or None). Per step: one optimizer step, metric sums kept on the
    device, and a finiteness check (every step on one CPU process, every 25 otherwise)."""
    env, dev, setting, recipe = run.env, run.dev, run.setting, run.recipe
    check_every = 1 if (dev.type == "cpu" and not env.active) else 25
    run.train_loader.set_epoch(epoch)
    st.ddp_model.train()
    sums = torch.zeros(3, dtype=torch.float64, device=dev)
    images = 0
    for i, (x, y) in enumerate(run.train_loader):
        lr = st.sched.lr
        for g in st.opt.param_groups:
            g["lr"] = lr
        with autocast(setting, dev.type):
            logits = st.ddp_model(apply_to_input(x, setting))
            loss = criterion(logits, y)
        _optimizer_step(st, loss, recipe.grad_clip)
        images += accumulate(sums, loss, logits, y)
        if ((i + 1) % check_every == 0 or i + 1 == run.steps_per_epoch) and \
                not sums_finite(sums, env):
            return sums, i + 1
        if prog.enabled:
            prog.step(i + 1, images * env.world,
                      float(loss.detach()) if dev.type == "cpu" else None)
    return sums, None


@torch.no_grad()
def accumulate(sums: torch.Tensor, loss: torch.Tensor, logits: torch.Tensor,
               y: torch.Tensor) -> int:
    """Adds a step's loss sum, correct count and count to ``sums`` on the device (no sync);
    returns the batch size. (The per-step bookkeeping timed by bench_train_overhead.py.)"""
    n = y.shape[0]
    sums[0] += loss.detach().double() * n
    sums[1] += (logits.detach().argmax(1) == y).sum()
    sums[2] += n
    return int(n)


def sums_finite(sums: torch.Tensor, env: DistEnv) -> bool:
    """Whether the loss sum is finite on every rank (one host sync)."""
    flag = torch.tensor([0.0 if math.isfinite(float(sums[0])) else 1.0], device=sums.device)
    return not float(_all_reduce(flag, env)) > 0


def _optimizer_step(st: _State, loss: torch.Tensor, grad_clip: float) -> None:
    st.opt.zero_grad(set_to_none=True)
    if st.scaler is not None:
        st.scaler.scale(loss).backward()
        if grad_clip:
            st.scaler.unscale_(st.opt)
            nn.utils.clip_grad_norm_(st.model.parameters(), grad_clip)
        st.scaler.step(st.opt)
        st.scaler.update()
    else:
        backward = cast(Callable[[], None], loss.backward)  # unannotated in torch
        backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(st.model.parameters(), grad_clip)
        st.opt.step()
    st.sched.step()
    if st.ema is not None:
        st.ema.update(st.model)


def _evaluate_epoch(run: _Run, st: _State, sums: torch.Tensor, epoch: int, e_start: float
                    ) -> EpochMetrics | str:
    """Reduces the training sums, evaluates (EMA and raw weights) in the run's setting and
    returns the epoch's metrics, or what was not finite (``"non-finite validation loss"``)."""
    env = run.env
    train_time = time.perf_counter() - e_start
    _all_reduce(sums, env)
    train_loss = float(sums[0] / sums[2])
    t_eval = time.perf_counter()
    _sync_buffers(st.model, env)
    if st.ema is not None:
        _sync_buffers(st.ema.module, env)
    eval_model = st.ema.module if st.ema is not None else st.model
    v_loss, v1, v5 = _errors(_all_reduce(
        _eval_sums(eval_model, run.val_loader, run.dev, run.setting), env))
    raw = None
    if st.ema is not None:
        raw = _errors(_all_reduce(_eval_sums(st.model, run.val_loader, run.dev, run.setting),
                                  env))
    eval_time = time.perf_counter() - t_eval
    bad = [k for k, v in (("train loss", train_loss), ("validation loss", v_loss),
                          ("validation top-1 error", v1), ("validation top-5 error", v5),
                          *((("raw-weights validation loss", raw[0]),) if raw else ()))
           if not math.isfinite(v)]
    st.wall += time.perf_counter() - e_start
    if bad:
        return f"non-finite {bad[0]}"
    n_images = int(sums[2])
    return EpochMetrics(
        epoch=epoch + 1, epochs=run.recipe.epochs, step=st.sched.step_count, lr=st.sched.lr,
        train_loss=train_loss, train_top1_err=1.0 - float(sums[1] / sums[2]), loss=v_loss,
        top1_err=v1, top5_err=v5, images=n_images, train_time=train_time,
        eval_time=eval_time, images_per_sec=n_images / train_time if train_time > 0 else 0.0,
        wall_time=st.wall, raw_loss=raw[0] if raw else None,
        raw_top1_err=raw[1] if raw else None, raw_top5_err=raw[2] if raw else None)


def _save_epoch(run: _Run, st: _State, metrics: EpochMetrics) -> None:
    """Appends the epoch to the history; rank 0 writes checkpoint, log line and result."""
    st.history.append(metrics.to_dict())
    done, epochs = metrics.epoch, run.recipe.epochs
    if not run.env.main:
        return
    save_checkpoint(run.ckpt_file, {
        "epoch": done, "model": st.model.state_dict(), "optimizer": st.opt.state_dict(),
        "scheduler": st.sched.state_dict(),
        "ema": st.ema.state_dict() if st.ema is not None else None,
        "scaler": st.scaler.state_dict() if st.scaler is not None else None,
        "rng": rng_state(), "spec": run.req.spec.to_dict(), "recipe": run.recipe.to_dict(),
        "data": run.req.data.to_dict(), "history": st.history, "wall_time": st.wall,
        "status": "completed" if done >= epochs else "running",
        "pipeline": jsonio.dumps(run.pipe.to_dict()), "setting": run.setting.to_dict(),
    })
    _append_log(run.out, metrics.to_dict())
    status = "completed" if done >= epochs else ("stopped" if done >= run.stop_at else
                                                 "running")
    atomic_write_json(run.out / RESULT_NAME, _result(run, status, st).to_dict())


def _peek_epochs(path: Path) -> str:
    try:
        ck = load_checkpoint(path)
        return f" (epoch {ck['epoch']} of {ck['recipe'].get('epochs', '?')})"
    except NetscaleError:
        return ""


def _check_same(old: Mapping[str, Any], new: Mapping[str, Any], what: str, where: Path,
                drop: tuple[str, ...]) -> None:
    a = {k: v for k, v in old.items() if k not in drop}
    b = {k: v for k, v in new.items() if k not in drop}
    if a != b:
        raise NetscaleError(
            f"checkpoint {str(where)!r} was trained with a different {what} ({_diff(a, b)}); "
            "resume with the same settings, or use a new output directory")


def _summary(m: EpochMetrics, epochs: int, prog: Progress, done: int) -> str:
    avg = sum(prog.epoch_seconds) / max(1, len(prog.epoch_seconds))
    eta = avg * (epochs - done)
    return (f"epoch {m.epoch}/{epochs}  train loss {m.train_loss:.4f} err "
            f"{m.train_top1_err:.2%}  |  val loss {m.loss:.4f} top-1 err {m.top1_err:.2%} "
            f"top-5 err {m.top5_err:.2%}  |  {m.images_per_sec:,.0f} img/s  "
            f"{m.train_time + m.eval_time:.1f} s" + (f"  ETA {fmt_time(eta)}" if eta else ""))


def _write_log(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / LOG_NAME, "".join(jsonio.dumps(h) + "\n" for h in history))


def _append_log(out: Path, record: dict[str, Any]) -> None:
    with open(out / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(jsonio.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _result(run: _Run, status: str, st: _State, message: str = "") -> TrainResult:
    history = st.history
    last = history[-1] if history else {}
    best = min(history, key=lambda h: h["top1_err"]) if history else None
    rates = [h["images_per_sec"] for h in history]
    recipe = run.recipe
    return TrainResult(
        status=status, epochs_done=int(last.get("epoch", 0)), epochs=recipe.epochs,
        top1_err=last.get("top1_err"), top5_err=last.get("top5_err"), loss=last.get("loss"),
        train_loss=last.get("train_loss"),
        best_top1_err=best["top1_err"] if best else None,
        best_epoch=best["epoch"] if best else None, wall_time=st.wall,
        images_per_sec=sum(rates) / len(rates) if rates else None, lr=run.peak,
        batch_size=recipe.batch_size, world_size=run.env.world, device=str(run.dev),
        params=run.params, out_dir=str(run.out),
        checkpoint=str(run.ckpt_file) if run.ckpt_file.exists() else None,
        spec=run.req.spec.to_dict(), recipe=recipe.to_dict(), data=run.req.data.to_dict(),
        dataset=run.info.to_dict(), history=list(history), message=message,
        setting=run.setting.to_dict())


def _diverged(run: _Run, st: _State, epoch: int, step: int | None,
              what: str = "non-finite loss") -> TrainResult:
    history, ckpt_file = st.history, run.ckpt_file
    kept = (f"the checkpoint of epoch {history[-1]['epoch']} is kept at {ckpt_file}"
            if history else "no epoch had finished, so there is no checkpoint")
    where = f"epoch {epoch}, step {step}" if step is not None else f"the end of epoch {epoch}"
    msg = (f"training diverged: {what} at {where}; {kept}; "
           "lower the learning rate (--lr) or add warm-up (--warmup-epochs)")
    result = _result(run, "diverged", st, message=msg)
    if run.env.main:
        run.out.mkdir(parents=True, exist_ok=True)
        _append_log(run.out, {"status": "diverged", "epoch": epoch, "step": step,
                              "message": msg})
        atomic_write_json(run.out / RESULT_NAME, result.to_dict())
    return result


# ----------------------------------------------------------------------------- evaluate


def evaluate(model_or_checkpoint: nn.Module | str | Path,
             data: DataConfig | Mapping[str, Any] | str | None = None, *,
             spec: NetSpec | Mapping[str, Any] | str | None = None, split: str = "val",
             batch_size: int = 256, device: str | torch.device = "cpu",
             weights: str = "auto", resolution: int | None = None,
             dataset: Dataset | None = None) -> EvalResult:
    """Top-1/top-5 error and loss of a model or checkpoint on a split (``val`` or ``train``,
    test-time transform). A checkpoint's own data config is used when ``data`` is None;
    ``weights``: ``auto`` (EMA if the checkpoint has it), ``ema`` or ``raw``."""
    if split not in ("val", "train"):
        raise NetscaleError(f"split must be val or train, got {split!r}")
    if weights not in ("auto", "ema", "raw"):
        raise NetscaleError(f"weights must be auto, ema or raw, got {weights!r}")
    dev = resolve_device(device)
    if isinstance(model_or_checkpoint, nn.Module):
        model = model_or_checkpoint
        the_spec = _as_spec(spec) if spec is not None else getattr(model, "spec", None)
        if the_spec is None:
            raise NetscaleError("evaluate(model): give spec= (the model has no .spec)")
        if data is None and dataset is None:
            raise NetscaleError("evaluate(model): give the data to evaluate on")
        loaded = _Loaded(model, the_spec, "raw")
    else:
        loaded = _load_for_eval(model_or_checkpoint, spec, weights, dev)
    model, the_spec, setting = loaded.model, loaded.spec, loaded.setting
    if data is None and dataset is None:
        if not loaded.data:
            raise NetscaleError("give the data to evaluate on (--data)")
        data = DataConfig.from_dict(loaded.data)
    if data is not None:
        cfg = _as_data(data)
    else:
        assert dataset is not None  # checked above: data or dataset is given
        cfg = DataConfig(name=dataset.info.name)
    ds = dataset if dataset is not None else load_dataset(cfg)
    check_compatible(the_spec, ds.info.num_classes, ds.info.name)
    res = resolution or cfg.resolution or the_spec.resolution
    pipe = make_pipeline(ds.info, cfg, resolution=res, channels=the_spec.in_channels)
    loader = make_loader(ds.val if split == "val" else ds.train, pipe, batch_size=batch_size,
                         train=False, device=dev, workers=cfg.workers)
    model = apply_to_model(model.to(dev), setting)
    was_training = model.training
    t0 = time.perf_counter()
    sums = _eval_sums(model, loader, dev, setting)
    dt = time.perf_counter() - t0
    model.train(was_training)
    loss, e1, e5 = _errors(sums)
    n = int(sums[3])
    return EvalResult(top1_err=e1, top5_err=e5, loss=loss, images=n, split=split,
                      resolution=res, images_per_sec=n / dt if dt > 0 else 0.0,
                      weights=loaded.weights, spec_name=the_spec.name, dataset=ds.info.name,
                      checkpoint=loaded.path, epoch=loaded.epoch, setting=setting.label)


@dataclass(frozen=True)
class _Loaded:
    """A model to evaluate, with what is known about it."""

    model: nn.Module
    spec: NetSpec
    weights: str  # "ema" or "raw"
    setting: ExecSetting = field(default_factory=ExecSetting)
    data: Mapping[str, Any] | None = None
    path: str | None = None
    epoch: int | None = None


def _load_for_eval(path: str | Path, spec: NetSpec | Mapping[str, Any] | str | None,
                   weights: str, dev: torch.device) -> _Loaded:
    """A checkpoint's model (EMA or raw weights) and the setting it was trained in (fp16,
    a CUDA-only precision, runs as fp32 elsewhere)."""
    ck = load_checkpoint(path, map_location="cpu")
    ckpt_path = ck["path"]
    the_spec = NetSpec.from_dict(ck["spec"], source=f"checkpoint {ckpt_path}")
    if spec is not None:
        check_checkpoint_spec(ck["spec"], _as_spec(spec), repr(ckpt_path))
    model = build_model(the_spec)
    state, used = checkpoint_weights(ck, weights, f"checkpoint {ckpt_path!r}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NetscaleError(f"checkpoint {ckpt_path!r} does not match its spec "
                            f"({' '.join(str(exc).split())[:120]})") from None
    setting = ExecSetting.from_dict(ck["setting"]) if ck.get("setting") else ExecSetting()
    if setting.precision == "fp16" and dev.type != "cuda":
        setting = replace(setting, precision="fp32")
    return _Loaded(model, the_spec, used, setting, ck.get("data"), ckpt_path, int(ck["epoch"]))
