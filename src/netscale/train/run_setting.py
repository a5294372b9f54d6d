"""The execution setting of a training run (memory format x precision,
:mod:`netscale.bench.setting`): the recorded one when resuming, a fixed request as is, ``auto``
by a short probe of one-step training closures on private copies of the model."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
from netscale.errors import NetscaleError
from netscale.train.distributed import DistEnv, broadcast_text
from netscale.train.optim import make_optimizer
from netscale.train.recipe import Recipe
from netscale.util import jsonio

PROBE_WARMUP, PROBE_STEPS, PROBE_ROUNDS = 2, 3, 3


@dataclass(frozen=True)
class SettingProbe:
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
    """The precision asked for: ``recipe.precision``, where ``auto`` on CUDA is fp16 AMP
    (with a GradScaler) and elsewhere a probe of fp32 against native bf16."""
    if recipe.precision == "auto" and dev.type == "cuda":
        return "fp16"
    return recipe.precision


def resolve_run_setting(recipe: Recipe, dev: torch.device, env: DistEnv,
                        ckpt: Mapping[str, Any] | None, probe: SettingProbe,
                        steps_per_epoch: int) -> ExecSetting:
    """The recorded setting of a resumed run (no probe), else the requested one, resolved
    (rank 0's choice on every rank)."""
    check_memory_format(recipe.memory_format, "recipe.memory_format")
    precision = check_precision(precision_request(recipe, dev), str(dev), "recipe.precision")
    if ckpt is not None:
        return recorded_setting(ckpt, recipe)
    setting = fixed_setting(recipe.memory_format, precision, str(dev))
    if setting is None:
        plan = ProbePlan(warmup=PROBE_WARMUP, steps=PROBE_STEPS, rounds=PROBE_ROUNDS)
        short = short_run_reason(recipe.memory_format, precision,
                                 recipe.epochs * steps_per_epoch, device=str(dev), plan=plan)
        if env.main and short is None:
            setting = choose_setting(recipe.memory_format, precision, probe,
                                     batch_size=probe.shape[0], device=str(dev), plan=plan)
        elif env.main:
            setting = ExecSetting(requested=f"{recipe.memory_format}+{precision}",
                                  reason=str(short))
        else:
            setting = ExecSetting()  # replaced by rank 0's choice below
    if not env.active:
        return setting
    return ExecSetting.from_dict(json.loads(broadcast_text(jsonio.dumps(setting.to_dict()), env)))


def recorded_setting(ckpt: Mapping[str, Any], recipe: Recipe) -> ExecSetting:
    """The setting a checkpoint was trained in; an explicit request that contradicts it is an
    error (resuming in another setting would not continue the same run bit for bit)."""
    setting = ExecSetting.from_dict(ckpt["setting"])
    asked = {"memory_format": recipe.memory_format, "precision": recipe.precision}
    for key, value in asked.items():
        if value != "auto" and value != getattr(setting, key):
            flag = "--" + key.replace("_", "-")
            raise NetscaleError(
                f"{flag} {value} contradicts the run in {ckpt['path']} (trained in "
                f"{setting.label}); drop {flag} to resume in the recorded setting, or train "
                "into a new --out")
    return setting
