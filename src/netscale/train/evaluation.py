"""Evaluation: top-1/top-5 error and loss of a model or a checkpoint (:func:`evaluate`), and
the per-epoch validation pass the trainer runs (:func:`eval_sums`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netscale.bench.setting import ExecSetting, apply_to_input, apply_to_model, autocast
from netscale.data import DataConfig, Dataset, load_dataset
from netscale.data.loaders import Loader, make_loader, make_pipeline
from netscale.errors import NetscaleError
from netscale.laws.replicates import encode_correct
from netscale.models import FactorySpec, ModelSpec, build_model
from netscale.specs import NetSpec, resolve_spec
from netscale.train.checkpoint import check_checkpoint_spec, checkpoint_weights, load_checkpoint
from netscale.train.results import EvalResult
from netscale.train.resume_check import check_finite_weights
from netscale.util.device import resolve_device


def as_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None -> cuda if available else cpu; a device this machine lacks is a one-line
    error (:func:`netscale.util.device.resolve_device`)."""
    return torch.device(resolve_device(None if device is None else str(device)))


def as_spec(spec: ModelSpec | Mapping[str, Any] | str) -> ModelSpec:
    if isinstance(spec, NetSpec):
        return spec.validate()
    if isinstance(spec, FactorySpec):  # a study's module-factory model
        return spec
    if isinstance(spec, Mapping):
        return NetSpec.from_dict(spec)
    return resolve_spec(str(spec))


def as_data(data: DataConfig | Mapping[str, Any] | str) -> DataConfig:
    if isinstance(data, DataConfig):
        return data
    return DataConfig.from_dict(data)


def check_compatible(spec: ModelSpec, num_classes: int, dataset: str) -> None:
    if spec.num_classes != num_classes:
        raise NetscaleError(
            f"spec {spec.name!r} has num_classes {spec.num_classes} but {dataset} has "
            f"{num_classes} classes; use spec.replace(num_classes={num_classes}) (netscale "
            "train adapts it for you)")


@torch.no_grad()
def eval_sums(model: nn.Module, loader: Loader, device: torch.device, setting: ExecSetting,
              correct: list[torch.Tensor] | None = None) -> torch.Tensor:
    """[loss sum, top-1 correct, top-5 correct, count] over this rank's shard, run in
    ``setting`` (the setting the model trains in); ``correct`` (if given) receives each
    batch's per-image top-1 correctness, on the CPU, in the shard's order."""
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
        if correct is not None:
            correct.append(hit[:, 0].cpu())
        sums += torch.stack([loss.double(), hit[:, 0].sum().double(),
                             hit.any(1).sum().double(), torch.tensor(float(len(y)),
                                                                     dtype=torch.float64,
                                                                     device=device)])
    return sums


def errors(sums: torch.Tensor) -> tuple[float, float, float]:
    loss_sum, c1, c5, n = (float(v) for v in sums.tolist())
    n = max(n, 1.0)
    return loss_sum / n, 1.0 - c1 / n, 1.0 - c5 / n


def evaluate(model_or_checkpoint: nn.Module | str | Path,
             data: DataConfig | Mapping[str, Any] | str | None = None, *,
             spec: ModelSpec | Mapping[str, Any] | str | None = None, split: str = "val",
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
    dev = as_device(device)
    if isinstance(model_or_checkpoint, nn.Module):
        model = model_or_checkpoint
        the_spec = as_spec(spec) if spec is not None else getattr(model, "spec", None)
        if the_spec is None:
            raise NetscaleError("evaluate(model): give spec= (the model has no .spec)")
        if data is None and dataset is None:
            raise NetscaleError("evaluate(model): give the data to evaluate on")
        loaded = _EvalModel(model, the_spec, "raw")
    else:
        loaded = _load_for_eval(model_or_checkpoint, spec, weights, dev)
    model, the_spec, setting = loaded.model, loaded.spec, loaded.setting
    if data is None and dataset is None:
        if not loaded.data:
            raise NetscaleError("give the data to evaluate on (--data)")
        data = DataConfig.from_dict(loaded.data)
    if data is not None:
        cfg = as_data(data)
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
    hits: list[torch.Tensor] = []
    sums = eval_sums(model, loader, dev, setting, hits)
    dt = time.perf_counter() - t0
    model.train(was_training)
    loss, e1, e5 = errors(sums)
    n = int(sums[3])
    return EvalResult(top1_err=e1, top5_err=e5, loss=loss, images=n, split=split,
                      resolution=res, images_per_sec=n / dt if dt > 0 else 0.0,
                      weights=loaded.weights, spec_name=the_spec.name, dataset=ds.info.name,
                      checkpoint=loaded.path, epoch=loaded.epoch, setting=setting.label,
                      correct=encode_correct(torch.cat(hits).numpy()) if hits else None)


@dataclass(frozen=True)
class _EvalModel:
    """A model to evaluate, with what is known about it."""

    model: nn.Module
    spec: ModelSpec
    weights: str  # "ema" or "raw"
    setting: ExecSetting = field(default_factory=ExecSetting)
    data: Mapping[str, Any] | None = None
    path: str | None = None
    epoch: int | None = None


def _load_for_eval(path: str | Path, spec: ModelSpec | Mapping[str, Any] | str | None,
                   weights: str, dev: torch.device) -> _EvalModel:
    """A checkpoint's model (EMA or raw weights) and the setting it was trained in (fp16,
    a CUDA-only precision, runs as fp32 elsewhere)."""
    ck = load_checkpoint(path, map_location="cpu")
    ckpt_path = ck["path"]
    the_spec = NetSpec.from_dict(ck["spec"], source=f"checkpoint {ckpt_path}")
    if spec is not None:
        check_checkpoint_spec(ck["spec"], as_spec(spec), repr(ckpt_path))
    model = build_model(the_spec)
    state, used = checkpoint_weights(ck, weights, f"checkpoint {ckpt_path!r}")
    check_finite_weights(state, f"checkpoint {ckpt_path!r} ({used} weights)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NetscaleError(f"checkpoint {ckpt_path!r} does not match its spec "
                            f"({' '.join(str(exc).split())[:120]})") from None
    setting = ExecSetting.from_dict(ck["setting"]) if ck.get("setting") else ExecSetting()
    if setting.precision == "fp16" and dev.type != "cuda":
        setting = replace(setting, precision="fp32")
    return _EvalModel(model, the_spec, used, setting, ck.get("data"), ckpt_path, int(ck["epoch"]))

