"""The building blocks of every family, as plain ``torch.nn`` modules.

Each block's layers mirror :mod:`netscale.complexity.analytic` one to one, so that measured
and analytic counts agree exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from netscale.specs.compat import bottleneck_width, conv_groups


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def conv2d(w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1,
           bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=(k - 1) // 2, groups=groups,
                     bias=bias)


def norm2d(w: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(w, eps=1e-5, momentum=0.1)


class ConvBnAct(nn.Sequential):
    """conv -> BN [-> act]."""

    def __init__(self, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1,
                 act: str | None = "relu") -> None:
        layers: list[nn.Module] = [conv2d(w_in, w_out, k, stride, groups), norm2d(w_out)]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> sigmoid gate."""

    def __init__(self, w: int, w_se: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(w, w_se, 1, bias=True)
        self.act = activation(act)
        self.expand = nn.Conv2d(w_se, w, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


class Stem(nn.Sequential):
    def __init__(self, kind: str, w_in: int, w_out: int, act: str) -> None:
        if kind == "simple":
            layers: list[nn.Module] = [ConvBnAct(w_in, w_out, 3, 2, act=act)]
        elif kind == "cifar":
            layers = [ConvBnAct(w_in, w_out, 3, 1, act=act)]
        elif kind == "res":
            layers = [ConvBnAct(w_in, w_out, 7, 2, act=act), nn.MaxPool2d(3, 2, padding=1)]
        else:
            raise ValueError(f"unknown stem type {kind!r}")
        super().__init__(*layers)


def _mark_final_bn(conv_bn: nn.Sequential) -> None:
    """Flags the BN of a ConvBnAct as a block's last (zero-init-last-BN reads the flag)."""
    setattr(conv_bn[1], "final_bn", True)  # noqa: B010  (a plain attribute on a Module)


class BasicBlock(nn.Module):
    """x + [kxk, BN, act, kxk, BN](x), projection shortcut if the shape changes; act."""

    def __init__(self, w_in: int, w_out: int, stride: int, k: int, act: str) -> None:
        super().__init__()
        self.a = ConvBnAct(w_in, w_out, k, stride, act=act)
        self.b = ConvBnAct(w_out, w_out, k, 1, act=None)
        _mark_final_bn(self.b)
        self.proj = (ConvBnAct(w_in, w_out, 1, stride, act=None)
                     if w_in != w_out or stride != 1 else None)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.proj(x) if self.proj is not None else x
        out: torch.Tensor = self.act(skip + self.b(self.a(x)))
        return out


class VanillaBlock(nn.Sequential):
    """[kxk, BN, act, kxk, BN, act](x): no shortcut (pycls's vanilla_block)."""

    def __init__(self, w_in: int, w_out: int, stride: int, k: int, act: str) -> None:
        super().__init__(ConvBnAct(w_in, w_out, k, stride, act=act),
                         ConvBnAct(w_out, w_out, k, 1, act=act))


class Bottleneck(nn.Module):
    """1x1 -> kxk grouped [-> SE] -> 1x1 residual bottleneck.

    ``linear=False`` (X/Y, ResNet): projection shortcut when the shape changes, act after add.
    ``linear=True`` (Z): skip only when the shape is unchanged, no act after the add.
    """

    def __init__(self, w_in: int, w_out: int, stride: int, bottleneck: float,
                 group_width: int, se_ratio: float, k: int, act: str, linear: bool) -> None:
        super().__init__()
        w_b = bottleneck_width(w_out, bottleneck)
        groups = conv_groups(w_b, group_width)
        self.a = ConvBnAct(w_in, w_b, 1, act=act)
        self.b = ConvBnAct(w_b, w_b, k, stride, groups=groups, act=act)
        self.se = SqueezeExcite(w_b, int(round(w_in * se_ratio)), act) if se_ratio else None
        self.c = ConvBnAct(w_b, w_out, 1, act=None)
        _mark_final_bn(self.c)
        self.linear = linear
        same = w_in == w_out and stride == 1
        self.act: nn.Module | None
        if linear:
            self.has_skip, self.proj, self.act = same, None, None
        else:
            self.has_skip = True
            self.proj = None if same else ConvBnAct(w_in, w_out, 1, stride, act=None)
            self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f: torch.Tensor = self.b(self.a(x))
        if self.se is not None:
            f = self.se(f)
        f = self.c(f)
        if self.linear:
            return x + f if self.has_skip else f
        skip = self.proj(x) if self.proj is not None else x
        assert self.act is not None  # set whenever linear is False (see __init__)
        out: torch.Tensor = self.act(skip + f)
        return out


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [1x1 expand] -> kxk depthwise -> SE -> 1x1 linear."""

    def __init__(self, w_in: int, w_out: int, stride: int, expansion: float, k: int,
                 se_ratio: float, act: str, drop_path: float = 0.0) -> None:
        super().__init__()
        w_exp = int(w_in * expansion)
        self.expand = ConvBnAct(w_in, w_exp, 1, act=act) if w_exp != w_in else None
        self.dwise = ConvBnAct(w_exp, w_exp, k, stride, groups=w_exp, act=act)
        self.se = SqueezeExcite(w_exp, int(w_in * se_ratio), act) if se_ratio else None
        self.project = ConvBnAct(w_exp, w_out, 1, act=None)
        _mark_final_bn(self.project)
        self.has_skip = stride == 1 and w_in == w_out
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f: torch.Tensor = self.expand(x) if self.expand is not None else x
        f = self.dwise(f)
        if self.se is not None:
            f = self.se(f)
        f = self.project(f)
        if not self.has_skip:
            return f
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.empty((f.shape[0], 1, 1, 1), dtype=f.dtype, device=f.device)
            f = f * mask.bernoulli_(keep) / keep
        return x + f


class Head(nn.Module):
    """[1x1 conv, BN, act] -> global average pool -> [dropout] -> linear (bias)."""

    def __init__(self, w_in: int, head_width: int, num_classes: int, dropout: float,
                 act: str) -> None:
        super().__init__()
        self.conv = ConvBnAct(w_in, head_width, 1, act=act) if head_width else None
        w = head_width or w_in
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.fc = nn.Linear(w, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = torch.flatten(x.mean((2, 3)), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        out: torch.Tensor = self.fc(x)
        return out
