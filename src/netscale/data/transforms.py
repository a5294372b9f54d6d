"""Image transforms written in torch (no torchvision).

Batched transforms work on ``uint8`` batches (N, C, H, W) of in-memory sets, on whatever
device the batch is on:

* train ``crop``: resize to the target resolution, then shift by a random whole number of
  pixels in [-pad, pad] (pad = 1/8 of the side) with zero padding (pad-and-crop) and flip,
  as a single gather on uint8 data (no resampling);
* train ``rrc``: random-resized-crop, area share in [min_scale, 1], aspect ratio in [3/4, 4/3],
  and flip, as one ``grid_sample`` call;
* ``flip``: random horizontal flip with probability 1/2;
* eval: centre crop of ``crop_pct`` of the shorter side, resized to the target resolution.

Resizing is bilinear, anti-aliased when shrinking (small resolutions do not alias); in-memory
loaders resize a whole set once per resolution (:func:`resize_all`).

Per-sample transforms (:func:`sample_train`, :func:`sample_eval`) do the same on one
decoded image (ImageFolder trees). :class:`Normalize` converts to float, adapts the channels
(greyscale repeated to 3; colour to luminance for 1) and normalizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Augment:
    """Training augmentation: ``mode`` crop | rrc | none, flips, rrc minimum area share."""

    mode: str = "crop"
    flip: bool = True
    min_scale: float = 0.35
    pad_frac: float = 0.125


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (anti-aliased when shrinking); uint8 in, uint8 out."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    if x.dtype == torch.uint8 and x.device.type != "cpu":
        y = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False,
                          antialias=down)
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=down)


def resize_all(images: torch.Tensor, resolution: int, chunk: int = 4096) -> torch.Tensor:
    """A whole uint8 set resized to ``resolution`` (done once per set and resolution)."""
    size = (resolution, resolution)
    if tuple(images.shape[-2:]) == size:
        return images
    return torch.cat([_resize(images[i:i + chunk], size)
                      for i in range(0, len(images), chunk)])


def shift_flip(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, flip: torch.Tensor,
               pad: int) -> torch.Tensor:
    """Pad-and-crop plus flip of a batch (N, C, H, W) by whole pixels, as one gather:
    ``out[n, :, i, j] = s[n, :, i + dy[n], j + dx[n]]`` (zero outside, |dx|, |dy| <= pad),
    where ``s`` is ``x`` mirrored horizontally when ``flip[n]``."""
    n, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = ar_h[None, :] + (pad + dy.to(dev))[:, None]
    cols = ar_w[None, :] + dx.to(dev)[:, None]
    cols = torch.where(flip.to(dev)[:, None], (w - 1) - cols, cols) + pad
    return xp[torch.arange(n, device=dev)[:, None, None, None],
              torch.arange(c, device=dev)[None, :, None, None],
              rows[:, None, :, None], cols[:, None, None, :]]


def _rrc_boxes(n: int, gen: torch.Generator, min_scale: float,
               ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[torch.Tensor, ...]:
    """Half-extents (sx, sy) and centres (cx, cy) in normalized [-1, 1] coordinates."""
    area = torch.empty(n).uniform_(min_scale, 1.0, generator=gen)
    logr = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(logr)
    sx = torch.sqrt(area * r).clamp(max=1.0)
    sy = torch.sqrt(area / r).clamp(max=1.0)
    u = torch.rand(2, n, generator=gen)
    cx = (2 * u[0] - 1) * (1 - sx)
    cy = (2 * u[1] - 1) * (1 - sy)
    return sx, sy, cx, cy


def train_batch(x: torch.Tensor, resolution: int, gen: torch.Generator,
                aug: Augment) -> torch.Tensor:
    """Augments a uint8 batch (N, C, H, W) to (N, C, R, R) in 0..255.

    ``crop`` and ``none`` return uint8 (a gather, no resampling once the batch is at the
    target resolution); ``rrc`` returns float (one ``grid_sample``). Random parameters come
    from ``gen`` (a CPU generator), so results do not depend on the device of the batch.
    """
    n, _c, h, w = x.shape
    res = (resolution, resolution)
    flips = (torch.rand(n, generator=gen) < 0.5) if aug.flip else torch.zeros(n, dtype=torch.bool)
    if aug.mode in ("crop", "none"):
        x = _resize(x, res)
        if aug.mode == "crop":
            pad = max(1, int(round(aug.pad_frac * resolution)))
            shift = torch.randint(-pad, pad + 1, (2, n), generator=gen)
        else:
            pad, shift = 0, torch.zeros(2, n, dtype=torch.int64)
        if pad == 0 and not aug.flip:
            return x
        return shift_flip(x, shift[0], shift[1], flips, pad)
    if aug.mode != "rrc":
        raise ValueError(f"unknown augment mode {aug.mode!r}")
    sx, sy, cx, cy = _rrc_boxes(n, gen, aug.min_scale)
    # Pre-shrink (anti-aliased) so the average crop maps about 1:1 to the output.
    mean_scale = math.sqrt((1.0 + aug.min_scale) / 2.0)
    target = max(resolution, int(math.ceil(resolution / mean_scale)))
    if target < min(h, w):
        x = _resize(x, (target, target))
    sign = 1.0 - 2.0 * flips.float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    xf = x.float()
    grid = F.affine_grid(theta.to(xf.device), [n, xf.shape[1], *res], align_corners=False)
    return F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def center_box(h: int, w: int, crop_pct: float) -> tuple[int, int, int]:
    """(top, left, side) of the centre square covering ``crop_pct`` of the shorter side."""
    side = max(1, int(round(min(h, w) * crop_pct)))
    return (h - side) // 2, (w - side) // 2, side


def eval_batch(x: torch.Tensor, resolution: int, crop_pct: float = 1.0) -> torch.Tensor:
    """Test-time transform of a uint8 batch: centre crop + resize (uint8 out)."""
    h, w = x.shape[-2:]
    if crop_pct < 1.0 or h != w:
        top, left, side = center_box(h, w, crop_pct)
        x = x[..., top:top + side, left:left + side]
    return _resize(x, (resolution, resolution))


# ----------------------------------------------------------------------------- per sample


def sample_train(img: torch.Tensor, resolution: int, gen: torch.Generator,
                 aug: Augment) -> torch.Tensor:
    """One decoded uint8 image (C, H, W) -> augmented uint8 (C, R, R)."""
    _c, h, w = img.shape
    res = (resolution, resolution)
    if aug.mode == "rrc":
        sx, sy, cx, cy = (float(v) for v in _rrc_boxes(1, gen, aug.min_scale))
        cw, ch = max(1, round(sx * w)), max(1, round(sy * h))
        left = min(max(int(round((cx + 1) / 2 * w - cw / 2)), 0), w - cw)
        top = min(max(int(round((cy + 1) / 2 * h - ch / 2)), 0), h - ch)
        out = _resize(img[None, :, top:top + ch, left:left + cw], res)[0]
    elif aug.mode == "crop":
        out = _resize(img[None], res)[0]
        pad = max(1, int(round(aug.pad_frac * resolution)))
        dx, dy = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=gen))
        out = F.pad(out, (pad, pad, pad, pad))
        out = out[:, pad + dy:pad + dy + resolution, pad + dx:pad + dx + resolution]
    else:
        out = _resize(img[None], res)[0]
    if aug.flip and bool(torch.rand(1, generator=gen) < 0.5):
        out = out.flip(-1)
    return out


def sample_eval(img: torch.Tensor, resolution: int, crop_pct: float) -> torch.Tensor:
    """One decoded uint8 image (C, H, W) -> centre-cropped, resized uint8 (C, R, R)."""
    h, w = img.shape[-2:]
    top, left, side = center_box(h, w, crop_pct)
    return _resize(img[None, :, top:top + side, left:left + side], (resolution, resolution))[0]


# ----------------------------------------------------------------------------- normalize


class Normalize:
    """0..255 float/uint8 batch -> normalized float batch with ``channels`` channels."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], channels: int,
                 enabled: bool = True) -> None:
        src = len(mean)
        self.src = src
        self.channels = channels
        if src == 3 and channels == 1:  # colour -> luminance; statistics follow
            mean = (sum(m * k for m, k in zip(mean, LUMA)),)
            std = (sum(s * k for s, k in zip(std, LUMA)),)
        if not enabled:
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
        self.shift = torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, -1, 1, 1)
        self._dev: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.src == 3 and self.channels == 1:
            k = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
            x = (x * k).sum(1, keepdim=True)
        dev = x.device
        if dev not in self._dev:
            self._dev[dev] = (self.scale.to(dev), self.shift.to(dev))
        scale, shift = self._dev[dev]
        x = torch.addcmul(shift, x, scale) if x.shape[1] == scale.shape[1] else x * scale + shift
        if self.src == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        return x
