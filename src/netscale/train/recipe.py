"""The training recipe (:class:`Recipe`), learning-rate scaling and the LR schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netscale.data import _dc
from netscale.errors import NetscaleError
from netscale.laws.lr_rules import scaled_lr

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Recipe:
    """How to train. Defaults are the documented default recipe (docs/training.md).

    ``lr`` is the learning rate at the reference batch ``ref_batch``; the rate used is
    ``netscale.laws.scaled_lr(lr, batch_size, ref_batch, optimizer)`` (linear scaling for
    SGD, square-root scaling for AdamW) unless ``scale_lr`` is false. ``optimizer`` is
    ``sgd`` (Nesterov momentum ``momentum``) or ``adamw`` (betas (``momentum``, 0.999)).
    ``batch_size`` is the global batch (split across processes).
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    ref_batch: int = 128
    scale_lr: bool = True
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    warmup_epochs: float = 1.0
    warmup_factor: float = 0.1
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    ema: bool = False
    ema_decay: float = 0.999
    amp: bool = True
    grad_clip: float = 0.0
    zero_init_last_bn: bool = False
    drop_path: float = 0.0
    eval_batch_size: int = 0
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> Recipe:
        for key in ("epochs", "batch_size", "ref_batch"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise NetscaleError(f"recipe.{key} must be a positive integer, got {v!r}")
        for key in ("eval_batch_size", "threads", "seed"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise NetscaleError(f"recipe.{key} must be a non-negative integer, got {v!r}")
        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "min_lr",
                    "label_smoothing", "grad_clip", "drop_path", "warmup_factor", "ema_decay"):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) \
                    or v < 0:
                raise NetscaleError(f"recipe.{key} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise NetscaleError(f"recipe.lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise NetscaleError(f"recipe.optimizer is {self.optimizer!r}; supported: "
                                f"{', '.join(OPTIMIZERS)}")
        if not self.momentum < 1:
            raise NetscaleError(f"recipe.momentum must be in [0, 1), got {self.momentum}")
        if not self.label_smoothing < 1:
            raise NetscaleError(
                f"recipe.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < self.ema_decay < 1:
            raise NetscaleError(f"recipe.ema_decay must be in (0, 1), got {self.ema_decay}")
        if not 0 < self.warmup_factor <= 1:
            raise NetscaleError(
                f"recipe.warmup_factor must be in (0, 1], got {self.warmup_factor}")
        if self.drop_path >= 1:
            raise NetscaleError(f"recipe.drop_path must be in [0, 1), got {self.drop_path}")
        if self.warmup_epochs > self.epochs:
            raise NetscaleError(f"recipe.warmup_epochs ({self.warmup_epochs:g}) exceeds epochs "
                                f"({self.epochs}); lower --warmup-epochs")
        return self

    @property
    def effective_lr(self) -> float:
        """The peak learning rate used for ``batch_size``."""
        if not self.scale_lr:
            return float(self.lr)
        return scaled_lr(self.lr, self.batch_size, self.ref_batch, self.optimizer)

    def replace(self, **changes: Any) -> Recipe:
        import dataclasses

        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return _dc.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        return _dc.from_dict(cls, data, "recipe")

    def identity(self) -> dict[str, Any]:
        """Fields that change the trained weights (a resumed run must keep them)."""
        d = self.to_dict()
        d.pop("threads")
        d.pop("eval_batch_size")
        return d


class WarmupCosine:
    """Per-step LR: linear warm-up from ``warmup_factor * peak`` to ``peak`` over
    ``warmup_steps``, then cosine decay to ``min_lr`` at ``total_steps``."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int,
                 warmup_factor: float = 0.1, min_lr: float = 0.0) -> None:
        self.peak, self.total = float(peak), max(1, int(total_steps))
        self.warmup = min(int(warmup_steps), self.total)
        self.warmup_factor, self.min_lr = float(warmup_factor), float(min_lr)
        self.step_count = 0

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            a = step / self.warmup
            return self.peak * (self.warmup_factor + (1 - self.warmup_factor) * a)
        span = max(1, self.total - self.warmup)
        t = min(1.0, (step - self.warmup) / span)
        return self.min_lr + (self.peak - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))

    @property
    def lr(self) -> float:
        return self.lr_at(self.step_count)

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "peak": self.peak, "total": self.total,
                "warmup": self.warmup, "warmup_factor": self.warmup_factor,
                "min_lr": self.min_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
