"""Tiny model factories with depth and width multipliers, for the module-scaling tests.

Each factory does its own rounding, as timm/EfficientNet-style constructors do:

* :func:`vit`: a small ViT (patch-4 conv embedding, pre-norm blocks, explicit attention
  matmuls); depth = round(4·d) blocks; embedding width round(64·w) with as many heads as
  fit (about 16 channels per head, a divisor of the width); MLP ratio 2.
* :func:`mobilenet`: a MobileNetV2-style net (inverted residuals, depthwise 3x3, ReLU6);
  seven stages as in MobileNetV2 (narrower); stage depths round(n·d),
  channels rounded to multiples of 2.
"""

from __future__ import annotations

import torch
from torch import nn


def _make_divisible(v: float, divisor: int) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # do not round down by more than 10% (MobileNet's rule)
        new_v += divisor
    return new_v


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        out = att.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, depth: int, dim: int, heads: int, in_chans: int = 3,
                 num_classes: int = 10, patch: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_chans, dim, patch, stride=patch)
        # position from the tokens themselves (a depthwise conv), so any resolution works
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.blocks = nn.Sequential(*[_Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.pos(x)
        x = self.blocks(x.flatten(2).transpose(1, 2))
        return self.head(self.norm(x).mean(dim=1))


def vit(depth_mult: float = 1.0, width_mult: float = 1.0, num_classes: int = 10,
        in_chans: int = 3) -> TinyViT:
    depth = max(1, round(4 * depth_mult))
    dim = max(8, round(64 * width_mult))
    want = max(1, round(dim / 16))
    heads = max(h for h in range(1, want + 1) if dim % h == 0)
    return TinyViT(depth, dim, heads, in_chans=in_chans, num_classes=num_classes)


class _InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.skip else y


# (expansion, channels, blocks, stride)
_MB_STAGES = [(1, 8, 1, 1), (4, 12, 2, 2), (4, 16, 3, 2), (4, 24, 4, 2), (4, 32, 3, 1),
              (4, 48, 3, 1), (4, 64, 1, 1)]


def mobilenet(depth_mult: float = 1.0, width_mult: float = 1.0, num_classes: int = 10,
              in_chans: int = 3) -> nn.Module:
    stem = _make_divisible(8 * width_mult, 2)
    layers: list[nn.Module] = [nn.Conv2d(in_chans, stem, 3, 2, 1, bias=False),
                               nn.BatchNorm2d(stem), nn.ReLU6()]
    c_in = stem
    for t, c, n, s in _MB_STAGES:
        c_out = _make_divisible(c * width_mult, 2)
        for i in range(max(1, round(n * depth_mult))):
            layers.append(_InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
            c_in = c_out
    head = _make_divisible(128 * max(1.0, width_mult), 4)
    layers += [nn.Conv2d(c_in, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head, num_classes)]
    return nn.Sequential(*layers)
