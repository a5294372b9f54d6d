"""Datasets, torch transforms and loaders (no torchvision).

One interface for every source: :func:`load_dataset` takes a :class:`DataConfig` (or a name:
``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``, ``digits``, or a folder holding IDX
files, CIFAR python batches or an ImageFolder tree) and returns a :class:`Dataset` with train
and val splits and a :class:`DatasetInfo`; :func:`describe` returns the info alone;
:func:`make_loaders` builds deterministic, shardable batch loaders for a resolution.
"""

from netscale.data.config import AUGMENT_MODES, DataConfig
from netscale.data.datasets import (
    Dataset,
    DatasetInfo,
    FileSplit,
    TensorSplit,
    data_roots,
    describe,
    known_datasets,
    load_dataset,
)
from netscale.data.loaders import (
    FileLoader,
    LoaderOptions,
    Pipeline,
    TensorLoader,
    decode_image,
    make_loader,
    make_loaders,
    make_pipeline,
)
from netscale.data.transforms import Augment, Normalize, eval_batch, train_batch

__all__ = [
    "AUGMENT_MODES",
    "Augment",
    "DataConfig",
    "Dataset",
    "DatasetInfo",
    "FileLoader",
    "FileSplit",
    "LoaderOptions",
    "Normalize",
    "Pipeline",
    "TensorLoader",
    "TensorSplit",
    "data_roots",
    "decode_image",
    "describe",
    "eval_batch",
    "known_datasets",
    "load_dataset",
    "make_loader",
    "make_loaders",
    "make_pipeline",
    "train_batch",
]
