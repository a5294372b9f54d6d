"""The training recipe (:class:`Recipe`), learning-rate scaling and the LR schedule."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from netscale.bench.setting import PRECISIONS, check_memory_format
from netscale.errors import NetscaleError
from netscale.train.lr_rules import scaled_lr
from netscale.util import serial

OPTIMIZERS = ("sgd", "adamw")

# The default recipe adapts to the data: the batch size is the largest power of two up to
# AUTO_BATCH_MAX (the reference batch 128) that still gives MIN_STEPS_PER_EPOCH optimizer
# steps an epoch (never below AUTO_BATCH_MIN); the warm-up is one epoch but at most
# AUTO_WARMUP_SHARE of the run. An explicit batch size or warm-up always wins.
MIN_STEPS_PER_EPOCH = 50
AUTO_BATCH_MAX = 128
AUTO_BATCH_MIN = 8
AUTO_WARMUP_SHARE = 0.1


def auto_batch_size(n_train: int, world: int = 1) -> int:
    """The default global batch for ``n_train`` training images (see MIN_STEPS_PER_EPOCH).

    1,617 digits images -> 32 (50 steps); 8,000 -> 128 (62 steps); 50,000 -> 128.
    Under ``world`` processes the batch is rounded up to a multiple of ``world``.
    """
    b = AUTO_BATCH_MAX
    while b > AUTO_BATCH_MIN and n_train // b < MIN_STEPS_PER_EPOCH:
        b //= 2
    return -(-b // world) * world


SMALL_MACHINE_CPUS = 2


def default_train_threads() -> int:
    """torch threads when ``recipe.threads`` is 0: 1 on a small machine (<= 2 logical CPUs),
    else 0 (torch's default). On a 2-CPU VM that also runs anything else, a 2-thread OpenMP
    step waits at every barrier for its descheduled thread (measured: 8x slower than 1
    thread, docs/bench.md "Default threads")."""
    return 1 if (os.cpu_count() or 1) <= SMALL_MACHINE_CPUS else 0


def auto_warmup_epochs(epochs: int) -> float:
    """The default warm-up: one epoch, but at most AUTO_WARMUP_SHARE of a short run."""
    return min(1.0, AUTO_WARMUP_SHARE * epochs)


@dataclass(frozen=True)
class Recipe:
    """How to train. Defaults are the documented default recipe (docs/training.md).

    ``lr`` is the learning rate at the reference batch ``ref_batch``; the rate used is
    ``netscale.train.lr_rules.scaled_lr(lr, batch_size, ref_batch, optimizer)`` (linear scaling for
    SGD, square-root scaling for AdamW) unless ``scale_lr`` is false. ``optimizer`` is
    ``sgd`` (Nesterov momentum ``momentum``) or ``adamw`` (betas (``momentum``, 0.999)).
    ``batch_size`` is the global batch (split across processes); 0 (the default) picks it
    from the dataset size and ``warmup_epochs`` None (the default) from the run length:
    :meth:`for_dataset` resolves both (the trainer does, before training).
    """

    epochs: int = 10
    batch_size: int = 0  # 0: chosen from the dataset size (auto_batch_size)
    lr: float = 0.1
    ref_batch: int = 128
    scale_lr: bool = True
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    warmup_epochs: float | None = None  # None: auto_warmup_epochs(epochs)
    warmup_factor: float = 0.1
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    ema: bool = False
    ema_decay: float = 0.999
    grad_clip: float = 0.0
    zero_init_last_bn: bool = False
    drop_path: float = 0.0
    eval_batch_size: int = 0
    seed: int = 0
    threads: int = 0
    memory_format: str = "auto"  # auto | channels_last | contiguous (netscale.bench.setting)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (CUDA)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> Recipe:
        for key in ("epochs", "ref_batch"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise NetscaleError(f"recipe.{key} must be a positive integer, got {v!r}")
        for key in ("batch_size", "eval_batch_size", "threads", "seed"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise NetscaleError(f"recipe.{key} must be a non-negative integer, got {v!r}")
        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "min_lr",
                    "label_smoothing", "grad_clip", "drop_path", "warmup_factor", "ema_decay"):
            v = getattr(self, key)
            if v is None and key == "warmup_epochs":
                continue
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
        check_memory_format(self.memory_format, "recipe.memory_format")
        if self.precision not in PRECISIONS:
            raise NetscaleError(f"recipe.precision {self.precision!r}: use one of "
                                f"{', '.join(PRECISIONS)}")
        if self.drop_path >= 1:
            raise NetscaleError(f"recipe.drop_path must be in [0, 1), got {self.drop_path}")
        if self.warmup_epochs is not None and self.warmup_epochs > self.epochs:
            raise NetscaleError(f"recipe.warmup_epochs ({self.warmup_epochs:g}) exceeds epochs "
                                f"({self.epochs}); lower --warmup-epochs")
        return self

    @property
    def is_resolved(self) -> bool:
        """True once batch size and warm-up are concrete (no automatic choice left)."""
        return self.batch_size > 0 and self.warmup_epochs is not None

    def for_dataset(self, n_train: int, world: int = 1) -> tuple[Recipe, list[str]]:
        """This recipe with the automatic choices made for ``n_train`` training images under
        ``world`` processes; returns (recipe, notes saying what was chosen and why)."""
        changes: dict[str, Any] = {}
        notes: list[str] = []
        if self.batch_size == 0:
            b = changes["batch_size"] = auto_batch_size(n_train, world)
            notes.append(f"batch size {b} chosen for {n_train:,} training images "
                         f"({max(1, n_train // b)} steps an epoch; the largest power of two "
                         f"<= {AUTO_BATCH_MAX} giving >= {MIN_STEPS_PER_EPOCH}); "
                         "--batch-size overrides")
        if self.warmup_epochs is None:
            w = changes["warmup_epochs"] = auto_warmup_epochs(self.epochs)
            notes.append(f"warm-up {w:g} epoch(s) (one epoch, at most "
                         f"{AUTO_WARMUP_SHARE:.0%} of the run); --warmup-epochs overrides")
        return (self.replace(**changes) if changes else self), notes

    @property
    def effective_lr(self) -> float:
        """The peak learning rate used for ``batch_size``."""
        if self.batch_size == 0:
            raise NetscaleError("recipe.batch_size is automatic (0) until the dataset is "
                                "known; use recipe.for_dataset(n_train)")
        if not self.scale_lr:
            return float(self.lr)
        return scaled_lr(self.lr, self.batch_size, self.ref_batch, self.optimizer)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        return serial.from_dict(cls, data, "recipe")

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
