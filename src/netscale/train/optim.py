"""The optimizer of a recipe (weight decay on conv/linear weights only) and the EMA of the
weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from netscale.train.recipe import Recipe


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


def make_optimizer(model: nn.Module, recipe: Recipe, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimizer; weight decay only on conv/linear weights (not BN, biases)."""
    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(recipe.momentum, 0.999))
    return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


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
