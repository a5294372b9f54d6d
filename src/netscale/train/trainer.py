"""The training loop: :func:`train` (resumable, optionally data-parallel).

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

One call is a frozen :class:`_TrainRun` (what is trained, how) and a mutable :class:`_State`
(weights, optimizer, schedule, history), driven by the steps ``_open_checkpoint`` /
``_prepare`` / ``_restore`` / ``_train_epoch`` / ``_evaluate_epoch`` / ``_save_epoch``. The
pieces live beside it: :mod:`~netscale.train.distributed` (process group),
:mod:`~netscale.train.optim` (optimizer, EMA), :mod:`~netscale.train.runlock`,
:mod:`~netscale.train.run_setting` (the execution setting and its probe) and
:mod:`~netscale.train.evaluation`.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from netscale.bench.harness import is_oom
from netscale.bench.setting import (
    ExecSetting,
    apply_to_input,
    apply_to_model,
    autocast,
    describe_setting,
)
from netscale.complexity.limits import check_fits_memory
from netscale.data import DataConfig, Dataset, DatasetInfo, load_dataset, make_loaders
from netscale.data.loaders import Loader, Pipeline
from netscale.errors import NetscaleError
from netscale.laws.replicates import encode_correct
from netscale.models import ModelSpec, build_model
from netscale.train.checkpoint import (
    CHECKPOINT_NAME,
    check_checkpoint_spec,
    check_same_config,
    describe_epochs,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from netscale.train.distributed import (
    DistEnv,
    all_reduce,
    barrier,
    gather_strided,
    setup_dist,
    sync_buffers,
    teardown_dist,
)
from netscale.train.evaluation import (
    as_data,
    as_device,
    as_spec,
    check_compatible,
    errors,
    eval_sums,
)
from netscale.train.optim import EMA, make_optimizer
from netscale.train.progress import TrainProgress
from netscale.train.recipe import Recipe, WarmupCosine, default_train_threads
from netscale.train.results import EpochMetrics, TrainResult
from netscale.train.run_setting import SettingProbe, resolve_run_setting
from netscale.train.runlock import RunLock
from netscale.util import jsonio
from netscale.util.fmt import duration
from netscale.util.io import atomic_write_json, atomic_write_text
from netscale.util.validate import check_threads

LOG_NAME = "log.jsonl"
RESULT_NAME = "result.json"
SPEC_NAME = "spec.yaml"

OnEpoch = Callable[[EpochMetrics], Any]


def _as_recipe(recipe: Recipe | Mapping[str, Any] | None) -> Recipe:
    if recipe is None:
        return Recipe()
    if isinstance(recipe, Recipe):
        return recipe
    return Recipe.from_dict(recipe)


def train(spec: ModelSpec | Mapping[str, Any] | str, data: DataConfig | Mapping[str, Any] | str,
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
    * ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. Under ``torchrun``
      (WORLD_SIZE > 1) training is data-parallel (DDP, gloo on CPU / NCCL on GPU);
      ``recipe.batch_size`` is the global batch.
    * Non-finite loss stops training with status ``diverged``; the checkpoint of the last
      good epoch is kept.
    """
    spec = as_spec(spec)
    data = as_data(data)
    recipe = _as_recipe(recipe)
    if max_epochs is not None and max_epochs < 1:
        raise NetscaleError(f"max_epochs must be positive, got {max_epochs}")
    dev = as_device(device)
    check_threads(recipe.threads or None, "threads")
    threads = recipe.threads or default_train_threads()
    if threads:
        torch.set_num_threads(threads)
    env, dev = setup_dist(dev, distributed)
    try:
        if not recipe.is_resolved:  # default recipe: batch size and warm-up fit the data
            dataset = dataset if dataset is not None else load_dataset(data)
            recipe, _ = recipe.for_dataset(dataset.info.train_size, env.world)
        return _train(_Request(spec, data, recipe, Path(out_dir), resume=resume, dev=dev,
                               env=env, on_epoch=on_epoch, max_epochs=max_epochs,
                               quiet=quiet, dataset=dataset))
    except (RuntimeError, MemoryError) as exc:  # out of memory: one line, not a traceback
        if not is_oom(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise NetscaleError(
            f"out of memory training {spec.name} at batch size {recipe.batch_size} on {dev} "
            f"({first}); lower --batch-size or --resolution, or train a smaller model; the "
            "last checkpoint (if any) is kept") from None
    finally:
        teardown_dist(env)


@dataclass(frozen=True)
class _Request:
    """One call of :func:`train`, its inputs validated."""

    spec: ModelSpec
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
class _TrainRun:
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
    with RunLock(req.out, req.env.main):
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
    prog = TrainProgress(run.recipe.epochs, run.steps_per_epoch, enabled=run.show)
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
        barrier(run.env)
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
        prev = describe_epochs(ckpt_file)
        raise NetscaleError(
            f"{str(req.out)!r} already holds a training run{prev}; pass --resume "
            "(resume=True) to continue it, or choose another output directory")
    ckpt = load_checkpoint(ckpt_file)
    check_checkpoint_spec(ckpt["spec"], req.spec, str(ckpt_file))
    # more epochs than before extend the run (the cosine schedule is stretched to the
    # new length from the current step); fewer are a different recipe
    longer = ("epochs",) if req.recipe.epochs >= int(ckpt["recipe"].get("epochs", 0)) else ()
    # the execution setting is checked against the resolved one the checkpoint records
    check_same_config(ckpt["recipe"], req.recipe.identity(), "recipe", ckpt_file,
                drop=("threads", "eval_batch_size", "memory_format", "precision", *longer))
    check_same_config(ckpt["data"], req.data.identity(), "data config", ckpt_file,
                drop=("workers",))
    return ckpt


def _prepare(req: _Request, ckpt: dict[str, Any] | None) -> tuple[_TrainRun, nn.Module]:
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
    probe = SettingProbe(model, recipe, peak, req.dev, (per_rank, spec.in_channels, resolution),
                   spec.num_classes)
    setting = resolve_run_setting(recipe, req.dev, env, ckpt, probe, steps)
    apply_to_model(model, setting)
    run = _TrainRun(req, info, train_loader, val_loader, pipe, steps,
               sum(p.numel() for p in model.parameters()), peak, setting)
    return run, model


def _new_state(run: _TrainRun, model: nn.Module) -> _State:
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
        ddp_model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return _State(model, ddp_model, opt, sched, ema, scaler, [])


def _restore(run: _TrainRun, st: _State, ckpt: dict[str, Any]) -> None:
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


def _announce(run: _TrainRun, prog: TrainProgress, start_epoch: int, resumed: bool) -> None:
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


def _train_epoch(run: _TrainRun, st: _State, criterion: nn.Module, prog: TrainProgress, epoch: int
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
    return not float(all_reduce(flag, env)) > 0


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


def _evaluate_epoch(run: _TrainRun, st: _State, sums: torch.Tensor, epoch: int, e_start: float
                    ) -> EpochMetrics | str:
    """Reduces the training sums, evaluates (EMA and raw weights) in the run's setting and
    returns the epoch's metrics, or what was not finite (``"non-finite validation loss"``)."""
    env = run.env
    train_time = time.perf_counter() - e_start
    all_reduce(sums, env)
    train_loss = float(sums[0] / sums[2])
    t_eval = time.perf_counter()
    sync_buffers(st.model, env)
    if st.ema is not None:
        sync_buffers(st.ema.module, env)
    eval_model = st.ema.module if st.ema is not None else st.model
    hits: list[torch.Tensor] = []
    v_loss, v1, v5 = errors(all_reduce(
        eval_sums(eval_model, run.val_loader, run.dev, run.setting, hits), env))
    flags = gather_strided(torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool), env)
    raw = None
    if st.ema is not None:
        raw = errors(all_reduce(eval_sums(st.model, run.val_loader, run.dev, run.setting),
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
        raw_top1_err=raw[1] if raw else None, raw_top5_err=raw[2] if raw else None,
        val_correct=encode_correct(flags.numpy()))


def _save_epoch(run: _TrainRun, st: _State, metrics: EpochMetrics) -> None:
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


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


def _summary(m: EpochMetrics, epochs: int, prog: TrainProgress, done: int) -> str:
    avg = sum(prog.epoch_seconds) / max(1, len(prog.epoch_seconds))
    eta = avg * (epochs - done)
    return (f"epoch {m.epoch}/{epochs}  train loss {m.train_loss:.4f} err "
            f"{m.train_top1_err:.2%}  |  val loss {m.loss:.4f} top-1 err {m.top1_err:.2%} "
            f"top-5 err {m.top5_err:.2%}  |  {m.images_per_sec:,.0f} img/s  "
            f"{m.train_time + m.eval_time:.1f} s" + (f"  ETA {duration(eta)}" if eta else ""))


def _write_log(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / LOG_NAME, "".join(jsonio.dumps(h) + "\n" for h in history))


def _append_log(out: Path, record: dict[str, Any]) -> None:
    with open(out / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(jsonio.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _result(run: _TrainRun, status: str, st: _State, message: str = "") -> TrainResult:
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


def _diverged(run: _TrainRun, st: _State, epoch: int, step: int | None,
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
