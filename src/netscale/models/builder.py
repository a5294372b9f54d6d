"""Spec -> ``torch.nn.Module``.

The module tree is ``stem``, ``s1`` .. ``sN`` (each with blocks ``b1`` .. ``bD``), ``head``:
the names used by per-module tables and by the analytic per-stage breakdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from netscale.models.blocks import BasicBlock, Bottleneck, Head, MBConv, Stem, VanillaBlock
from netscale.specs.spec import NetSpec, StageSpec


@runtime_checkable
class FactorySpec(Protocol):
    """A model built by a factory function rather than from a :class:`NetSpec` (a study's
    module base, :class:`netscale.study.module_base.ModuleSpec`): what :func:`build_model`,
    the trainer and the bench harness use of it."""

    @property
    def name(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def in_channels(self) -> int: ...
    @property
    def resolution(self) -> int: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...

    def build_module(self, device: str | torch.device | None = None) -> nn.Module: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_yaml(self) -> str: ...


# What can be built and trained: a spec, or a factory-built model.
ModelSpec = NetSpec | FactorySpec


class Net(nn.Module):
    """A network built from a :class:`NetSpec` (kept as ``.spec``)."""

    def __init__(self, spec: NetSpec, *, zero_init_last_bn: bool = False,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        spec.validate()
        self.spec = spec
        act = spec.activation
        self.stem = Stem(spec.stem.type, spec.in_channels, spec.stem.width, act)
        w_in = spec.stem.width
        n_blocks = max(1, spec.num_blocks)
        idx = 0
        for i, stage in enumerate(spec.stages, 1):
            blocks = nn.Sequential()
            for j in range(stage.depth):
                stride = stage.stride if j == 0 else 1
                dp = drop_path * idx / n_blocks
                blocks.add_module(f"b{j + 1}", _block(stage, w_in, stride, act, dp))
                w_in = stage.width
                idx += 1
            self.add_module(f"s{i}", blocks)
        self.head = Head(w_in, spec.head_width, spec.num_classes, spec.dropout, act)
        if self.head.fc.weight.device.type != "meta":  # nothing to initialise on meta
            self.reset_parameters(zero_init_last_bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x

    @torch.no_grad()
    def reset_parameters(self, zero_init_last_bn: bool = False) -> None:
        """ResNet-style init: conv N(0, sqrt(2/fan_out)), BN (1, 0), linear N(0, 0.01)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                last = zero_init_last_bn and getattr(m, "final_bn", False)
                m.weight.fill_(0.0 if last else 1.0)
                m.bias.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.01)
                m.bias.zero_()


def _block(stage: StageSpec, w_in: int, stride: int, act: str, drop_path: float) -> nn.Module:
    if stage.block == "basic":
        return BasicBlock(w_in, stage.width, stride, stage.kernel, act)
    if stage.block == "vanilla":
        return VanillaBlock(w_in, stage.width, stride, stage.kernel, act)
    if stage.block in ("bottleneck", "linear_bottleneck"):
        return Bottleneck(w_in, stage.width, stride, stage.bottleneck, stage.group_width,
                          stage.se_ratio, stage.kernel, act,
                          linear=stage.block == "linear_bottleneck")
    if stage.block == "mbconv":
        return MBConv(w_in, stage.width, stride, stage.expansion, stage.kernel,
                      stage.se_ratio, act, drop_path)
    raise ValueError(f"unknown block type {stage.block!r}")


def build_model(spec: ModelSpec, *, device: str | torch.device | None = None,
                zero_init_last_bn: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Builds ``spec`` (a :class:`Net` for a :class:`NetSpec`; a factory-built model calls
    its factory, the recipe's initialisation options do not apply). ``device="meta"``
    allocates nothing (for counting)."""
    if not isinstance(spec, NetSpec):
        return spec.build_module(device=device)
    ctx = torch.device(device) if device is not None else nullcontext()
    with ctx:
        return Net(spec, zero_init_last_bn=zero_init_last_bn, drop_path=drop_path)
