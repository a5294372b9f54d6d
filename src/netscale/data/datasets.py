"""Datasets behind one interface: a name or folder -> train/val splits, classes, image size.

Small sets (digits, MNIST-like IDX folders, CIFAR) live in memory as ``uint8`` tensors
(N, C, H, W); ImageFolder trees are lists of files decoded lazily with Pillow.
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netscale.data import formats
from netscale.data.config import DataConfig
from netscale.errors import DataNotFound, NetscaleError
from netscale.util import serial

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (format, folder names to look for under each data root, how to get it)
_KNOWN: dict[str, tuple[str, tuple[str, ...], str]] = {
    "fashion-mnist": (
        "idx", ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the "
        "four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in $NETSCALE_DATA/fashion-mnist, "
        "or pass --data PATH",
    ),
    "mnist": (
        "idx", ("mnist", "MNIST/raw", "MNIST"),
        "put the four MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in $NETSCALE_DATA/mnist, or "
        "pass --data PATH",
    ),
    "cifar10": (
        "cifar", ("cifar-10-batches-py", "cifar10", "cifar-10"),
        "extract cifar-10-python.tar.gz so that $NETSCALE_DATA/cifar-10-batches-py holds "
        "data_batch_1..5 and test_batch, or pass --data PATH",
    ),
    "cifar100": (
        "cifar", ("cifar-100-python", "cifar100", "cifar-100"),
        "extract cifar-100-python.tar.gz so that $NETSCALE_DATA/cifar-100-python holds "
        "train, test and meta, or pass --data PATH",
    ),
    "digits": ("digits", (), "it ships with scikit-learn (pip install scikit-learn)"),
}
_ALIASES = {
    "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "mnist": "mnist",
    "cifar10": "cifar10", "cifar-10": "cifar10", "cifar_10": "cifar10",
    "cifar100": "cifar100", "cifar-100": "cifar100", "cifar_100": "cifar100",
    "digits": "digits", "sklearn-digits": "digits",
}
# Sets whose classes change under a horizontal flip (digits): no flip by default.
_NO_FLIP = ("digits", "mnist", "idx")


def data_roots() -> list[Path]:
    """Folders searched for named datasets: $NETSCALE_DATA (colon-separated),
    ~/.cache/netscale/data, ./data, /usr/share/datasets (Debian's dataset-* packages)."""
    roots = [Path(p).expanduser() for p in os.environ.get("NETSCALE_DATA", "").split(os.pathsep)
             if p]
    roots += [Path("~/.cache/netscale/data").expanduser(), Path("data"),
              Path("/usr/share/datasets")]
    return roots


def known_datasets() -> list[str]:
    return list(_KNOWN)


# ----------------------------------------------------------------------------- splits


@dataclass
class TensorSplit:
    """An in-memory split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, idx: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.images[idx], self.labels[idx])


@dataclass
class FileSplit:
    """A lazily decoded split: image ``files`` and their ``labels`` (int64)."""

    files: list[str]
    labels: torch.Tensor
    mode: str = "RGB"  # Pillow mode the images are converted to ("L" or "RGB")

    def __len__(self) -> int:
        return len(self.files)

    def select(self, idx: torch.Tensor) -> FileSplit:
        return FileSplit([self.files[i] for i in idx.tolist()], self.labels[idx], self.mode)


Split = TensorSplit | FileSplit


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: format, classes, channels, sizes, normalization statistics."""

    name: str
    format: str  # idx | cifar | imagefolder | digits
    path: str | None
    num_classes: int
    in_channels: int
    image_size: tuple[int, int] | None  # (H, W) of in-memory sets; None: varies (ImageFolder)
    train_size: int
    val_size: int
    val_split: str  # "official" or how the held-out split was made
    classes: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    flip: bool = True  # default for horizontal-flip augmentation

    @property
    def in_memory(self) -> bool:
        return self.format != "imagefolder"

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass
class Dataset:
    """Train and val splits plus their :class:`DatasetInfo`."""

    info: DatasetInfo
    train: Split
    val: Split
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- resolution


def _canonical(name: str) -> str | None:
    return _ALIASES.get(name.strip().lower())


def _locate(cfg: DataConfig) -> tuple[str, Path | None, str]:
    """(format, folder or None, display name)."""
    if cfg.path:
        folder = Path(cfg.path).expanduser()
        if not folder.exists():
            raise DataNotFound(f"data path {str(folder)!r} does not exist; give a dataset "
                                f"folder or one of: {', '.join(_KNOWN)}")
        return _detect(folder), folder, cfg.name or folder.name
    assert cfg.name
    name = cfg.name
    canon = _canonical(name)
    if canon is None:
        p = Path(name).expanduser()
        if p.exists():
            return _detect(p), p, p.name
        close = difflib.get_close_matches(name.lower(), list(_ALIASES), n=1)
        hint = f" (did you mean {_ALIASES[close[0]]!r}?)" if close else ""
        looks_path = "/" in name or name.startswith(".")
        what = "data path" if looks_path else "unknown dataset"
        raise (DataNotFound if looks_path else NetscaleError)(
            f"{what} {name!r}{' does not exist' if looks_path else ''}{hint}; known datasets: "
            f"{', '.join(_KNOWN)}, or give a folder (IDX files, CIFAR python batches, or an "
            "ImageFolder tree train/<class>/*.png)")
    fmt, subdirs, how = _KNOWN[canon]
    if fmt == "digits":
        return "digits", None, "digits"
    looked = []
    for root in data_roots():
        for sub in subdirs:
            folder = root / sub
            looked.append(str(folder))
            if fmt == "idx" and formats.find_idx_files(folder):
                return "idx", folder, canon
            if fmt == "cifar" and formats.cifar_layout(folder):
                return "cifar", folder, canon
    roots = ", ".join(str(r) for r in data_roots())
    raise DataNotFound(f"dataset {canon!r} not found (looked under {roots}); {how}")


def _detect(folder: Path) -> str:
    if folder.is_file():
        raise NetscaleError(f"data path {str(folder)!r} is a file; give the dataset folder")
    if formats.find_idx_files(folder):
        return "idx"
    if formats.cifar_layout(folder):
        return "cifar"
    if formats.imagefolder_layout(folder):
        return "imagefolder"
    raise NetscaleError(
        f"cannot tell the format of {str(folder)!r}: expected IDX files "
        "(train-images-idx3-ubyte[.gz] ...), CIFAR python batches (data_batch_1 ..., or "
        "train/test/meta), or an ImageFolder tree (train/<class>/*.png|jpg)")


# ----------------------------------------------------------------------------- loading

_CACHE: dict[tuple[Any, ...], tuple[dict[str, Split], dict[str, Any]]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 3


def _cache_key(fmt: str, folder: Path | None) -> tuple[Any, ...]:
    if folder is None:
        return (fmt,)
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                         for p in folder.iterdir() if p.is_file()))
    return fmt, str(folder.resolve()), stamp


def _load_raw(fmt: str, folder: Path | None) -> tuple[dict[str, Split], dict[str, Any]]:
    """Splits as stored ('train', maybe 'val') and extras (classes, ...), cached per process."""
    key = _cache_key(fmt, folder) if fmt != "imagefolder" else None
    if key is not None:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    extra: dict[str, Any] = {}
    splits: dict[str, Split] = {}
    if fmt == "digits":
        x, y = formats.load_digits_arrays()
        splits["train"] = TensorSplit(torch.from_numpy(x), torch.from_numpy(y))
        extra["classes"] = [str(i) for i in range(10)]
    elif fmt == "idx":
        assert folder is not None
        for split, (x, y) in formats.load_idx_folder(folder).items():
            splits[split] = TensorSplit(torch.from_numpy(np.ascontiguousarray(x)),
                                        torch.from_numpy(y))
    elif fmt == "cifar":
        assert folder is not None
        arrays, names = formats.load_cifar_folder(folder)
        for split, (x, y) in arrays.items():
            splits[split] = TensorSplit(torch.from_numpy(np.ascontiguousarray(x)),
                                        torch.from_numpy(y))
        extra["classes"] = names
    elif fmt == "imagefolder":
        assert folder is not None
        layout = formats.imagefolder_layout(folder)
        assert layout is not None
        train_root, val_root = layout
        files, labels, classes = formats.scan_imagefolder(train_root)
        mode = _image_mode(files[0])
        splits["train"] = FileSplit(files, torch.tensor(labels, dtype=torch.int64), mode)
        if val_root is not None:
            vf, vl, _ = formats.scan_imagefolder(val_root, classes)
            splits["val"] = FileSplit(vf, torch.tensor(vl, dtype=torch.int64), mode)
        extra["classes"] = classes
    else:  # pragma: no cover - _detect only returns the above
        raise NetscaleError(f"unsupported data format {fmt!r}")
    for name, s in splits.items():
        if len(s) == 0:
            raise NetscaleError(f"the {name} split of {folder or fmt} is empty")
    if key is not None:
        with _CACHE_LOCK:
            while len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = (splits, extra)
    return splits, extra


def _image_mode(path: str) -> str:
    """'L' if the first image is greyscale, else 'RGB' (the whole tree is converted to it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise NetscaleError(f"cannot decode image {path!r} ({exc}); remove or replace the "
                            "file") from None


def _seeded_perm(n: int, seed: int, salt: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)
    return torch.randperm(n, generator=g)


def _subset(split: Split, n: int | None, seed: int, salt: int) -> Split:
    if n is None or n >= len(split):
        return split
    idx = _seeded_perm(len(split), seed, salt)[:n].sort().values
    return split.select(idx)


def _stats(split: Split, fmt: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if isinstance(split, FileSplit):
        if channels == 1:
            return (0.449,), (0.226,)
        return IMAGENET_MEAN, IMAGENET_STD
    x = split.images
    if len(x) > 20000:  # a fixed, evenly spaced sample is plenty for mean/std
        x = x[torch.linspace(0, len(x) - 1, 20000).long()]
    xf = x.to(torch.float64).div_(255.0)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def load_dataset(cfg: DataConfig | str) -> Dataset:
    """Loads a dataset: train and val splits (seeded split / subsets applied) and its info."""
    if isinstance(cfg, str):
        cfg = DataConfig(name=cfg)
    fmt, folder, display = _locate(cfg)
    splits, extra = _load_raw(fmt, folder)
    train = splits["train"]
    if "val" in splits:
        val = splits["val"]
        how = "official"
    else:
        n = len(train)
        n_val = max(1, int(round(n * cfg.val_fraction)))
        if n - n_val < 1:
            raise NetscaleError(f"{display}: too few images ({n}) to hold out a validation "
                                "split; add images or give a val/ folder")
        perm = _seeded_perm(n, cfg.split_seed, 17)
        val = train.select(perm[:n_val].sort().values)
        train = train.select(perm[n_val:].sort().values)
        how = f"seeded {cfg.val_fraction:.0%} of train (split_seed {cfg.split_seed})"
    train_full = train
    train = _subset(train, cfg.subset, cfg.split_seed, 1)
    val = _subset(val, cfg.val_subset, cfg.split_seed, 2)
    labels = torch.cat([train_full.labels, val.labels])
    classes = list(extra.get("classes") or [])
    if not classes:
        if display == "fashion-mnist":
            classes = list(FASHION_CLASSES)
        else:
            classes = [str(i) for i in range(int(labels.max()) + 1)]
    if int(labels.min()) < 0 or int(labels.max()) >= len(classes):
        raise NetscaleError(f"{display}: labels must be in 0..{len(classes) - 1}, found "
                            f"{int(labels.min())}..{int(labels.max())}")
    if isinstance(train, TensorSplit):
        channels = int(train.images.shape[1])
        size: tuple[int, int] | None = (int(train.images.shape[2]), int(train.images.shape[3]))
    else:
        channels = 1 if train.mode == "L" else 3
        size = None
    mean, std = _stats(train_full, fmt, channels)
    flip = not (display in _NO_FLIP or (fmt in _NO_FLIP and display != "fashion-mnist"))
    info = DatasetInfo(
        name=display, format=fmt, path=str(folder) if folder else None,
        num_classes=len(classes), in_channels=channels, image_size=size,
        train_size=len(train), val_size=len(val), val_split=how, classes=tuple(classes),
        mean=mean, std=std, flip=flip,
    )
    return Dataset(info=info, train=train, val=val)


def describe(cfg: DataConfig | str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a dataset (classes, channels, sizes) without training."""
    return load_dataset(cfg).info
