"""Typed, JSON-serializable results: :class:`EpochMetrics`, :class:`TrainResult`,
:class:`EvalResult`. Errors are fractions in [0, 1] (``top1_err`` 0.05 = 5 %)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netscale.util import serial


@dataclass(frozen=True)
class EpochMetrics:
    """One finished epoch: training loss/error, validation loss/top-1/top-5 error, speed.

    With EMA on, ``loss``/``top1_err``/``top5_err`` are the EMA weights' and the ``raw_*``
    fields the raw weights'. ``images_per_sec`` is training throughput (all processes).
    """

    epoch: int
    epochs: int
    step: int
    lr: float
    train_loss: float
    train_top1_err: float
    loss: float
    top1_err: float
    top5_err: float
    images: int
    train_time: float
    eval_time: float
    images_per_sec: float
    wall_time: float
    raw_loss: float | None = None
    raw_top1_err: float | None = None
    raw_top5_err: float | None = None
    #: per-image top-1 correctness of the evaluated weights, in validation-set order
    #: (netscale.laws.replicates.encode_correct: "<N>:<base64 bits>")
    val_correct: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> EpochMetrics:
        return serial.from_dict(cls, data, "epoch metrics")


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`netscale.train.train`.

    ``status``: ``completed`` (all epochs), ``stopped`` (``max_epochs`` reached first; resume
    later) or ``diverged`` (non-finite loss; the last good checkpoint is kept).
    """

    status: str
    epochs_done: int
    epochs: int
    top1_err: float | None
    top5_err: float | None
    loss: float | None
    train_loss: float | None
    best_top1_err: float | None
    best_epoch: int | None
    wall_time: float
    images_per_sec: float | None
    lr: float
    batch_size: int
    world_size: int
    device: str
    params: int
    out_dir: str
    checkpoint: str | None
    spec: dict[str, Any]
    recipe: dict[str, Any]
    data: dict[str, Any]
    dataset: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    #: the execution setting trained and evaluated in (netscale.bench.setting.ExecSetting)
    setting: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainResult:
        return serial.from_dict(cls, data)


@dataclass(frozen=True)
class EvalResult:
    """Evaluation of a model on one split: loss (cross-entropy, no smoothing), errors."""

    top1_err: float
    top5_err: float
    loss: float
    images: int
    split: str
    resolution: int
    images_per_sec: float
    weights: str  # "ema" or "raw"
    spec_name: str
    dataset: str
    checkpoint: str | None = None
    epoch: int | None = None
    setting: str = "contiguous+fp32"  # memory format + precision evaluated in
    #: per-image top-1 correctness in split order ("<N>:<base64 bits>", see EpochMetrics)
    correct: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> EvalResult:
        return serial.from_dict(cls, data)
