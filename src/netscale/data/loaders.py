"""Batch loaders: deterministic given (seed, epoch, rank), sharded for multi-process training.

* :class:`TensorLoader` (in-memory sets): indexes the uint8 tensor and runs the batched torch
  transforms on the target device; no worker processes, no per-sample Python work.
* :class:`FileLoader` (ImageFolder trees): a ``torch.utils.data.DataLoader`` whose workers
  decode with Pillow and crop/resize each image in torch; each sample's random crop comes from
  a generator seeded by (seed, epoch, index), so results do not depend on the worker count.

Both shard the training set with ``DistributedSampler`` (``rank``/``world``) and the
validation set as ``range(rank, n, world)`` (no padding, so reduced metrics are exact).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from netscale.data.config import DataConfig
from netscale.data.datasets import Dataset, DatasetInfo, FileSplit, Split, TensorSplit
from netscale.data.transforms import (
    Augment,
    Normalize,
    eval_batch,
    resize_all,
    sample_eval,
    sample_train,
    train_batch,
)
from netscale.errors import NetscaleError

Batch = tuple[torch.Tensor, torch.Tensor]
# In-memory sets are resized once per resolution when the result is at most this large.
PRECOMPUTE_BYTES = int(os.environ.get("NETSCALE_PRECOMPUTE_BYTES", 2 * 1024**3))
_RESIZED: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}


def mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from integers (SplitMix64 steps)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Pipeline:
    """Resolved input pipeline: resolution, channels, augmentation, test crop, statistics."""

    resolution: int
    channels: int
    augment: Augment
    crop_pct: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalize: bool = True

    def normalizer(self) -> Normalize:
        return Normalize(self.mean, self.std, self.channels, self.normalize)

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "channels": self.channels,
                "augment": self.augment.mode, "flip": self.augment.flip,
                "min_scale": self.augment.min_scale, "crop_pct": self.crop_pct,
                "mean": list(self.mean), "std": list(self.std), "normalize": self.normalize}


def make_pipeline(info: DatasetInfo, cfg: DataConfig, *, resolution: int,
                  channels: int) -> Pipeline:
    """Fills the ``auto``/None fields of ``cfg`` from the dataset; ``resolution`` and
    ``channels`` are the model's (``cfg.resolution`` overrides the resolution)."""
    if cfg.channels is not None and cfg.channels != channels:
        raise NetscaleError(f"data.channels is {cfg.channels} but the model takes {channels} "
                            f"input channels; set the spec's in_channels to {cfg.channels}")
    res = cfg.resolution or resolution
    mode = cfg.augment
    if mode == "auto":
        mode = "crop" if info.in_memory else "rrc"
    min_scale = cfg.min_scale if cfg.min_scale is not None else (
        0.35 if info.in_memory else 0.08)
    flip = info.flip if cfg.flip is None else cfg.flip
    crop_pct = cfg.crop_pct if cfg.crop_pct is not None else (1.0 if info.in_memory else 0.875)
    return Pipeline(resolution=res, channels=channels,
                    augment=Augment(mode=mode, flip=flip, min_scale=min_scale),
                    crop_pct=crop_pct, mean=info.mean, std=info.std, normalize=cfg.normalize)


def _batches(idx: torch.Tensor, batch_size: int, drop_last: bool) -> list[torch.Tensor]:
    n = len(idx)
    stop = n - n % batch_size if drop_last else n
    return [idx[i:i + batch_size] for i in range(0, stop, batch_size)]


class _Shards:
    """Per-epoch indices of this rank: shuffled (train) or strided (eval)."""

    def __init__(self, n: int, *, train: bool, seed: int, rank: int, world: int) -> None:
        self.n, self.train, self.seed, self.rank, self.world = n, train, seed, rank, world
        # a range serves as the (index-only) dataset; cast: DistributedSampler only takes len()
        indices = cast("torch.utils.data.Dataset[int]", range(n))
        self._sampler: DistributedSampler[int] | None = (
            DistributedSampler(indices, num_replicas=world, rank=rank, shuffle=True, seed=seed)
            if train else None)

    def indices(self, epoch: int) -> torch.Tensor:
        if self._sampler is None:
            return torch.arange(self.rank, self.n, self.world)
        self._sampler.set_epoch(epoch)
        return torch.tensor(list(iter(self._sampler)), dtype=torch.int64)

    @property
    def per_rank(self) -> int:
        if self._sampler is not None:
            return self._sampler.num_samples
        return len(range(self.rank, self.n, self.world))


@dataclass(frozen=True)
class LoaderOptions:
    """How a loader batches a split: ``batch_size`` per rank, shuffled per epoch from
    ``seed`` when ``train``, this ``rank`` of ``world`` shards, batches moved to ``device``;
    ``workers`` decoding processes (file splits; None: :func:`default_workers`);
    ``drop_last`` None drops a short last batch only in training."""

    batch_size: int
    train: bool
    seed: int = 0
    rank: int = 0
    world: int = 1
    device: str | torch.device = "cpu"
    workers: int | None = None
    drop_last: bool | None = None

    @staticmethod
    def of(options: LoaderOptions | None, fields: dict[str, Any]) -> LoaderOptions:
        """``options`` with the keyword ``fields`` applied (or built from them alone)."""
        return replace(options, **fields) if options is not None else LoaderOptions(**fields)

    def shards(self, n: int) -> _Shards:
        return _Shards(n, train=self.train, seed=self.seed, rank=self.rank, world=self.world)

    def last_dropped(self, shards: _Shards) -> bool:
        if self.drop_last is None:
            return self.train and shards.per_rank >= self.batch_size
        return self.drop_last


class TensorLoader:
    """Batches of an in-memory split, transformed in torch on ``device``."""

    def __init__(self, split: TensorSplit, pipe: Pipeline, options: LoaderOptions | None = None,
                 **fields: Any) -> None:
        """``options`` (or the :class:`LoaderOptions` fields as keywords; ``workers`` is
        not used: the split is in memory)."""
        o = LoaderOptions.of(options, fields)
        self.split, self.pipe, self.batch_size, self.train = split, pipe, o.batch_size, o.train
        self.seed, self.rank, self.device = o.seed, o.rank, torch.device(o.device)
        self.shards = o.shards(len(split))
        self.drop_last = o.last_dropped(self.shards)
        self.norm = pipe.normalizer()
        self.epoch = 0
        self.images = self._prepared()

    def _prepared(self) -> torch.Tensor:
        """The split resized once to the target resolution when that is all the per-batch
        transform would do first (crop/none augmentation, plain eval) and it fits in memory."""
        images = self.split.images
        res = self.pipe.resolution
        if self.train and self.pipe.augment.mode == "rrc":
            return images
        if not self.train and (self.pipe.crop_pct < 1.0 or images.shape[2] != images.shape[3]):
            return images
        if images.shape[1] * res * res * len(images) > PRECOMPUTE_BYTES:
            return images
        key = (id(images), res)
        hit = _RESIZED.get(key)
        if hit is not None and hit[0] is images:
            return hit[1]
        out = resize_all(images, res)
        while len(_RESIZED) >= 4:
            _RESIZED.pop(next(iter(_RESIZED)))
        _RESIZED[key] = (images, out)
        return out

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_samples(self) -> int:
        """Images this rank sees per epoch."""
        n = self.shards.per_rank
        return n - n % self.batch_size if self.drop_last else n

    def __len__(self) -> int:
        n = self.shards.per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, self.rank, 7))
        images, labels = self.images, self.split.labels
        dev = self.device
        for b in _batches(self.shards.indices(self.epoch), self.batch_size, self.drop_last):
            x = images[b]
            y = labels[b]
            if dev.type != "cpu":
                x = x.to(dev, non_blocking=True)
                y = y.to(dev, non_blocking=True)
            if self.train:
                x = train_batch(x, self.pipe.resolution, gen, self.pipe.augment)
            else:
                x = eval_batch(x, self.pipe.resolution, self.pipe.crop_pct)
            yield self.norm(x), y


class _FileDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Decodes one image with Pillow; the sampler passes (index, epoch)."""

    def __init__(self, split: FileSplit, pipe: Pipeline, train: bool, seed: int) -> None:
        self.files, self.labels, self.mode = split.files, split.labels, split.mode
        self.pipe, self.train, self.seed = pipe, train, seed
        res = pipe.resolution
        if train and pipe.augment.mode == "rrc":
            self.hint = int(res / max(pipe.augment.min_scale, 1e-3) ** 0.5) + 1
        else:
            self.hint = int(res / pipe.crop_pct) + 1 if not train else res

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = key
        img = decode_image(self.files[index], self.mode, self.hint)
        if self.train:
            gen = torch.Generator().manual_seed(mix_seed(self.seed, epoch, index, 11))
            x = sample_train(img, self.pipe.resolution, gen, self.pipe.augment)
        else:
            x = sample_eval(img, self.pipe.resolution, self.pipe.crop_pct)
        return x, self.labels[index]


def decode_image(path: str, mode: str, size_hint: int = 0) -> torch.Tensor:
    """Pillow decode -> uint8 (C, H, W); a file Pillow cannot read is a NetscaleError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if size_hint and im.format == "JPEG":
                im.draft(mode, (size_hint, size_hint))
            arr = np.asarray(im.convert(mode))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        raise NetscaleError(
            f"cannot decode image {path!r} ({exc}); remove or replace the file") from None
    t = torch.from_numpy(arr.copy())
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


class _EpochSampler(torch.utils.data.Sampler[tuple[int, int]]):
    def __init__(self, shards: _Shards) -> None:
        self.shards = shards
        self.epoch = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self.shards.indices(self.epoch).tolist():
            yield (i, self.epoch)

    def __len__(self) -> int:
        return self.shards.per_rank


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class FileLoader:
    """Batches of an ImageFolder split, decoded by ``workers`` processes."""

    def __init__(self, split: FileSplit, pipe: Pipeline, options: LoaderOptions | None = None,
                 **fields: Any) -> None:
        """``options`` (or the :class:`LoaderOptions` fields as keywords)."""
        o = LoaderOptions.of(options, fields)
        self.pipe, self.train, self.batch_size = pipe, o.train, o.batch_size
        self.device = torch.device(o.device)
        self.shards = o.shards(len(split))
        self.drop_last = drop_last = o.last_dropped(self.shards)
        self.sampler = _EpochSampler(self.shards)
        workers = default_workers() if o.workers is None else o.workers
        seed = o.seed
        self.loader = torch.utils.data.DataLoader(
            _FileDataset(split, pipe, o.train, seed), batch_size=o.batch_size,
            sampler=self.sampler, num_workers=workers, drop_last=drop_last,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            generator=torch.Generator().manual_seed(seed))  # leaves the global RNG alone
        self.norm = pipe.normalizer()

    def set_epoch(self, epoch: int) -> None:
        self.sampler.epoch = epoch

    @property
    def num_samples(self) -> int:
        n = self.shards.per_rank
        return n - n % self.batch_size if self.drop_last else n

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        it = iter(self.loader)
        while True:
            try:
                x, y = next(it)
            except StopIteration:
                return
            except NetscaleError as exc:  # re-raised from a worker with its traceback text
                raise NetscaleError(_worker_message(str(exc))) from None
            if self.device.type != "cpu":
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
            yield self.norm(x), y


def _worker_message(text: str) -> str:
    marker = "NetscaleError: "
    return text.rsplit(marker, 1)[-1].strip() if marker in text else text


Loader = TensorLoader | FileLoader


def make_loader(split: Split, pipe: Pipeline, options: LoaderOptions | None = None,
                **fields: Any) -> Loader:
    """The right loader for ``split`` (in-memory or files); ``options`` or the
    :class:`LoaderOptions` fields as keywords (``batch_size=``, ``train=``, ...)."""
    o = LoaderOptions.of(options, fields)
    if isinstance(split, TensorSplit):
        return TensorLoader(split, pipe, o)
    return FileLoader(split, pipe, o)


def make_loaders(ds: Dataset, cfg: DataConfig, *, resolution: int, channels: int,
                 batch_size: int, eval_batch_size: int | None = None,
                 **shard: Any) -> tuple[Loader, Loader, Pipeline]:
    """(train loader, val loader, pipeline) for one rank; ``batch_size`` is per rank.
    ``shard`` are the other :class:`LoaderOptions` fields (``seed``, ``rank``, ``world``,
    ``device``); the workers come from ``cfg``."""
    pipe = make_pipeline(ds.info, cfg, resolution=resolution, channels=channels)
    train_opts = LoaderOptions(batch_size=batch_size, train=True, workers=cfg.workers, **shard)
    train = make_loader(ds.train, pipe, train_opts)
    val = make_loader(ds.val, pipe, replace(train_opts, train=False,
                                            batch_size=eval_batch_size or batch_size))
    return train, val, pipe
