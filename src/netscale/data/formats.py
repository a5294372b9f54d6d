"""Readers for the supported on-disk formats (no torchvision): IDX, CIFAR pickles, digits,
ImageFolder trees. Each returns raw arrays or file lists; :mod:`netscale.data.datasets` turns
them into splits."""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from netscale.errors import NetscaleError
from netscale.util.io import read_input_bytes
from netscale.util.safeload import short_text

#: Largest data file read (bytes, after decompression).
MAX_DATA_BYTES = 4 << 30
#: Labels must be class indices below this.
MAX_CLASSES = 100_000

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif",
                  ".tiff")

# ----------------------------------------------------------------------------- IDX

_IDX_DTYPES: dict[int, type[np.generic] | np.dtype[Any]] = {
    0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Reads one IDX file (optionally gzipped) into an array of its declared shape."""
    path = Path(path)
    raw = read_input_bytes(path, "IDX file", MAX_DATA_BYTES)
    if path.suffix == ".gz":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as f:
                raw = f.read(MAX_DATA_BYTES + 1)  # a gzip bomb stops at the cap
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise NetscaleError(f"cannot read IDX file {str(path)!r}: {exc}") from None
        if len(raw) > MAX_DATA_BYTES:
            raise NetscaleError(f"IDX file {str(path)!r} decompresses to more than "
                                f"{MAX_DATA_BYTES:,} bytes")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise NetscaleError(f"{str(path)!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise NetscaleError(f"IDX file {str(path)!r} has a truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype: np.dtype[Any] = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise NetscaleError(
            f"IDX file {str(path)!r} is truncated or corrupt: header says {shape} "
            f"({expected} bytes) but it holds {len(raw) - header} bytes"
        )
    out: np.ndarray = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()
    return out


def find_idx_files(folder: Path) -> dict[str, dict[str, Path]] | None:
    """{'train': {'images': p, 'labels': p}, 'val': {...}} for the IDX files in ``folder``
    (names as in MNIST: ``train-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte``...)."""
    if not folder.is_dir():
        return None
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        if not p.is_file() or "idx" not in name:
            continue
        kind = "images" if "idx3" in name else "labels" if "idx1" in name else None
        if kind is None:
            continue
        split = "train" if "train" in name else (
            "val" if any(t in name for t in ("t10k", "test", "val")) else None)
        if split is None:
            continue
        slot = found.setdefault(split, {})
        # Prefer the uncompressed file when both exist (faster to read).
        if kind not in slot or slot[kind].suffix == ".gz":
            slot[kind] = p
    if "train" not in found:
        return None
    return found


def load_idx_folder(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    files = find_idx_files(folder)
    if not files:
        raise NetscaleError(f"no IDX training files (train-images-idx3-ubyte...) in {folder}")
    out = {}
    for split, pair in files.items():
        if "images" not in pair or "labels" not in pair:
            missing = "labels (…-labels-idx1-ubyte)" if "labels" not in pair else \
                "images (…-images-idx3-ubyte)"
            raise NetscaleError(f"IDX folder {str(folder)!r}: the {split} split has no {missing}")
        x = read_idx(pair["images"])
        y = read_idx(pair["labels"])
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise NetscaleError(
                f"IDX folder {str(folder)!r}: {split} images {x.shape} and labels {y.shape} do "
                "not match (expected N x H x W images and N labels)"
            )
        if x.dtype != np.uint8:
            raise NetscaleError(f"IDX images {pair['images']} are {x.dtype}; expected uint8")
        out[split] = (x[:, None, :, :], check_labels(y, f"IDX labels {str(pair['labels'])!r}"))
    return out


def check_labels(raw: Any, where: str) -> np.ndarray:
    """Class labels as int64: a list or 1-D integer array of values in [0, MAX_CLASSES);
    fractions (0.5), booleans, huge values and other types are refused in one line."""
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1 or raw.dtype.kind not in "iu":
            raise NetscaleError(f"{where} must be a list of integer class labels, got a "
                                f"{raw.dtype} array of shape {raw.shape}")
        y = raw
    elif isinstance(raw, (list, tuple)):
        if not all(type(v) is int for v in raw):
            bad = next(v for v in raw if type(v) is not int)
            raise NetscaleError(f"{where} must be integer class labels, got "
                                f"{short_text(repr(bad), 40)}")
        if raw and max(abs(v) for v in raw) >= 1 << 62:
            raise NetscaleError(f"{where}: a label is beyond {MAX_CLASSES:,} classes")
        y = np.asarray(raw, dtype=np.int64)
    else:
        raise NetscaleError(f"{where} must be a list of integer class labels, got "
                            f"{type(raw).__name__}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= MAX_CLASSES):
        raise NetscaleError(f"{where}: labels must be class indices from 0 to "
                            f"{MAX_CLASSES - 1:,}, got {int(y.min())}..{int(y.max())}")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------- CIFAR


class _SafeUnpickler(pickle.Unpickler):
    """Only what CIFAR's pickles need (numpy arrays, builtins): a data file is not code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path) -> dict[str, Any]:
    raw = read_input_bytes(path, "CIFAR batch", MAX_DATA_BYTES)
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError, OverflowError,
            RecursionError) as exc:
        raise NetscaleError(f"cannot read CIFAR batch {str(path)!r}: "
                            f"{short_text(str(exc), 120)}") from None
    if not isinstance(obj, dict):
        raise NetscaleError(f"CIFAR batch {str(path)!r} is not a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def cifar_layout(folder: Path) -> str | None:
    """'cifar10', 'cifar100' or None."""
    if (folder / "data_batch_1").is_file() and (folder / "test_batch").is_file():
        return "cifar10"
    if (folder / "train").is_file() and (folder / "test").is_file() and \
            (folder / "meta").is_file():
        return "cifar100"
    return None


def load_cifar_folder(folder: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]],
                                             list[str]]:
    kind = cifar_layout(folder)
    if kind == "cifar10":
        train_files = sorted(folder.glob("data_batch_*"), key=lambda p: p.name)
        val_files, meta_file = [folder / "test_batch"], folder / "batches.meta"
        label_key, names_key = "labels", "label_names"
    elif kind == "cifar100":
        train_files, val_files, meta_file = [folder / "train"], [folder / "test"], folder / "meta"
        label_key, names_key = "fine_labels", "fine_label_names"
    else:
        raise NetscaleError(f"{str(folder)!r} is not a CIFAR python folder")

    def read(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for p in files:
            d = _unpickle(p)
            if "data" not in d or label_key not in d:
                raise NetscaleError(
                    f"CIFAR batch {str(p)!r} lacks 'data' or '{label_key}'")
            x = d["data"]
            if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2
                    and x.shape[1] == 3 * 32 * 32):
                got = (f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray)
                       else type(x).__name__)
                raise NetscaleError(f"CIFAR batch {str(p)!r}: 'data' must be an N x 3072 "
                                    f"uint8 array, got {got}")
            y = check_labels(d[label_key], f"CIFAR batch {str(p)!r}: '{label_key}'")
            if len(x) != len(y):
                raise NetscaleError(f"CIFAR batch {str(p)!r}: {len(x):,} images but "
                                    f"{len(y):,} labels")
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    splits = {"train": read(train_files), "val": read(val_files)}
    n = int(max(splits["train"][1].max(), splits["val"][1].max())) + 1
    names = [str(i) for i in range(n)]
    if meta_file.is_file():
        meta = _unpickle(meta_file)
        raw = meta.get(names_key)
        if isinstance(raw, list) and len(raw) >= n:
            names = [v.decode() if isinstance(v, bytes) else str(v) for v in raw]
    return splits, names


# ----------------------------------------------------------------------------- digits


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits as uint8 (0..255) N x 1 x 8 x 8 and labels."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # no stubs

    d = load_digits()
    x = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return x[:, None, :, :], d.target.astype(np.int64)


# ----------------------------------------------------------------------------- ImageFolder

_VAL_DIRS = ("val", "validation", "test")


def imagefolder_layout(folder: Path) -> tuple[Path, Path | None] | None:
    """(train root, val root or None) if ``folder`` looks like an ImageFolder tree."""
    if not folder.is_dir():
        return None
    train = folder / "train"
    if train.is_dir():
        val = next((folder / v for v in _VAL_DIRS if (folder / v).is_dir()), None)
        return train, val
    if _class_dirs(folder):
        return folder, None
    return None


def _class_dirs(root: Path) -> list[Path]:
    try:
        return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    except OSError:
        return []


def _images_in(d: Path) -> list[str]:
    out = []
    for dirpath, _dirs, files in sorted_walk(d):
        for f in files:
            if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith("."):
                out.append(str(Path(dirpath) / f))
    return out


def sorted_walk(d: Path) -> list[tuple[str, list[str], list[str]]]:
    import os

    out = []
    for dirpath, dirs, files in os.walk(d, followlinks=True):
        dirs.sort()
        out.append((dirpath, dirs, sorted(files)))
    return out


def scan_imagefolder(root: Path, classes: list[str] | None = None
                     ) -> tuple[list[str], list[int], list[str]]:
    """(files, labels, class names) of one ImageFolder split; every class needs images."""
    dirs = _class_dirs(root)
    if not dirs:
        raise NetscaleError(
            f"{str(root)!r} has no class folders; expected {root}/<class>/<image>.png|jpg")
    names = [d.name for d in dirs]
    if classes is not None:
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise NetscaleError(
                f"{str(root)!r} has class folder(s) {', '.join(unknown[:5])} that the train "
                "split does not have; val classes must be train classes")
        index = {c: i for i, c in enumerate(classes)}
    else:
        index = {c: i for i, c in enumerate(names)}
    files: list[str] = []
    labels: list[int] = []
    for d in dirs:
        imgs = _images_in(d)
        if not imgs:
            raise NetscaleError(
                f"class folder {str(d)!r} is empty (no .jpg/.png/... images); add images "
                "or remove the folder")
        files.extend(imgs)
        labels.extend([index[d.name]] * len(imgs))
    return files, labels, classes if classes is not None else names
