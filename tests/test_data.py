"""Datasets (IDX, CIFAR pickles, ImageFolder PNG trees, digits), transforms and loaders, on
small fixture data generated here."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from netscale.data import (
    Augment,
    DataConfig,
    Normalize,
    describe,
    eval_batch,
    load_dataset,
    make_loader,
    make_loaders,
    make_pipeline,
    train_batch,
)
from netscale.data import datasets as ds_mod
from netscale.data.transforms import center_box, shift_flip
from netscale.errors import NetscaleError

# ----------------------------------------------------------------------------- fixture data


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_idx_folder(root: Path, n_train: int = 60, n_val: int = 20, side: int = 12,
                    classes: int = 4, gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_val)):
        x = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        y = (np.arange(n) % classes).astype(np.uint8)
        write_idx(root / f"{split}-images-idx3-ubyte", x, gz)
        write_idx(root / f"{split}-labels-idx1-ubyte", y, gz)
        out[split] = x
        out[split + "_labels"] = y
    return out


def make_cifar10_folder(root: Path, per_batch: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    first = None
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        labels[0] = 9
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f, protocol=2)
        first = data if first is None else first
    names = [f"class{i}".encode() for i in range(10)]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return first


def make_cifar100_folder(root: Path, n: int = 12, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        fine[0] = 99
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": fine,
                         b"coarse_labels": [0] * n}, f, protocol=2)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f)


def make_imagefolder(root: Path, classes=("cat", "dog", "owl"), per_class: int = 4,
                     val: bool = True, mode: str = "RGB", seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "val") if val else ("train",):
        for ci, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = int(rng.integers(10, 30)), int(rng.integers(10, 30))
                shape = (h, w, 3) if mode == "RGB" else (h, w)
                arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
                arr[...] = np.clip(arr.astype(int) // 4 + 60 * ci, 0, 255)
                Image.fromarray(arr, mode=mode).save(d / f"{i}.png")
    return root


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_loads_official_split(tmp_path: Path, gz: bool) -> None:
    arrays = make_idx_folder(tmp_path / "idx", gz=gz)
    ds = load_dataset(DataConfig(path=str(tmp_path / "idx")))
    info = ds.info
    assert (info.format, info.num_classes, info.in_channels) == ("idx", 4, 1)
    assert info.image_size == (12, 12)
    assert (info.train_size, info.val_size, info.val_split) == (60, 20, "official")
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(arrays["train"]))
    assert torch.equal(ds.val.labels, torch.from_numpy(arrays["t10k_labels"]).long())
    assert info.flip is False  # digit-like IDX sets are not flipped by default


def test_idx_truncated_file_is_named(tmp_path: Path) -> None:
    make_idx_folder(tmp_path / "idx", gz=False)
    p = tmp_path / "idx" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(NetscaleError, match=r"train-images-idx3-ubyte.*truncated"):
        load_dataset(str(tmp_path / "idx"))


def test_idx_labels_missing(tmp_path: Path) -> None:
    make_idx_folder(tmp_path / "idx")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(NetscaleError, match=r"val split has no labels"):
        load_dataset(str(tmp_path / "idx"))


def test_named_dataset_found_under_data_roots(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_folder(tmp_path / "root" / "fashion-mnist", classes=10)
    monkeypatch.setattr(ds_mod, "data_roots", lambda: [tmp_path / "nothing", tmp_path / "root"])
    info = describe("Fashion-MNIST")
    assert info.name == "fashion-mnist"
    assert info.classes[0] == "T-shirt/top" and info.flip is True
    assert info.path == str(tmp_path / "root" / "fashion-mnist")


def test_missing_named_dataset_says_how_to_get_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds_mod, "data_roots", lambda: [tmp_path])
    with pytest.raises(NetscaleError, match=r"apt-get install dataset-fashion-mnist") as e:
        describe("fashion-mnist")
    assert "--data PATH" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(NetscaleError, match=r"not found.*NETSCALE_DATA/mnist"):
        describe("mnist")
    with pytest.raises(NetscaleError, match=r"cifar-10-batches-py"):
        describe("cifar10")


def test_unknown_name_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NetscaleError, match=r"unknown dataset 'fashion-mnsit'.*fashion-mnist"):
        describe("fashion-mnsit")
    with pytest.raises(NetscaleError, match=r"does not exist"):
        describe(DataConfig(path=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NetscaleError, match=r"cannot tell the format"):
        describe(str(tmp_path / "empty"))


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_found_automatically() -> None:
    info = describe("fashion-mnist")
    assert (info.train_size, info.val_size, info.num_classes) == (60000, 10000, 10)
    assert info.image_size == (28, 28) and info.in_channels == 1


# ----------------------------------------------------------------------------- CIFAR


def test_cifar10_pickle_folder(tmp_path: Path) -> None:
    first = make_cifar10_folder(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(str(tmp_path / "cifar-10-batches-py"))
    info = ds.info
    assert (info.format, info.num_classes, info.in_channels, info.image_size) == \
        ("cifar", 10, 3, (32, 32))
    assert (info.train_size, info.val_size) == (20, 10)
    assert info.classes[3] == "class3"
    assert torch.equal(ds.train.images[:10].reshape(10, -1), torch.from_numpy(first))


def test_cifar100_pickle_folder(tmp_path: Path) -> None:
    make_cifar100_folder(tmp_path / "c100")
    info = describe(str(tmp_path / "c100"))
    assert (info.num_classes, info.train_size, info.val_size) == (100, 12, 12)
    assert info.classes[99] == "f99"


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    root = tmp_path / "evil"
    make_cifar10_folder(root)

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(root / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Boom(), b"labels": [0]}, f)
    with pytest.raises(NetscaleError, match=r"data_batch_1.*refusing to load builtins.print"):
        load_dataset(str(root))


# ----------------------------------------------------------------------------- ImageFolder


def test_imagefolder_tree_lazy_rgb(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "tree")
    ds = load_dataset(str(tmp_path / "tree"))
    info = ds.info
    assert (info.format, info.num_classes, info.in_channels) == ("imagefolder", 3, 3)
    assert info.classes == ("cat", "dog", "owl") and info.image_size is None
    assert (info.train_size, info.val_size, info.val_split) == (12, 12, "official")
    assert all(f.endswith(".png") for f in ds.train.files)  # not decoded yet
    train, val, pipe = make_loaders(ds, DataConfig(path=str(tmp_path / "tree"), workers=0),
                                    resolution=16, channels=3, batch_size=5)
    assert pipe.augment.mode == "rrc" and pipe.crop_pct == 0.875
    xs = list(train)
    assert [tuple(x.shape) for x, _ in xs] == [(5, 3, 16, 16)] * 2  # drop_last
    vx = torch.cat([x for x, _ in val])
    vy = torch.cat([y for _, y in val])
    assert vx.shape == (12, 3, 16, 16) and vx.dtype == torch.float32
    assert sorted(vy.tolist()) == sorted(ds.val.labels.tolist())


def test_imagefolder_greyscale_and_channel_repeat(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "g", mode="L", val=False, per_class=10)
    cfg = DataConfig(path=str(tmp_path / "g"), workers=0, val_fraction=0.2)
    ds = load_dataset(cfg)
    assert ds.info.in_channels == 1 and ds.info.val_size == 6
    assert ds.info.val_split.startswith("seeded 20%")
    _, val3, _ = make_loaders(ds, cfg, resolution=8, channels=3, batch_size=4)
    x, _ = next(iter(val3))
    assert x.shape[1] == 3 and torch.equal(x[:, 0], x[:, 2])
    _, val1, _ = make_loaders(ds, cfg, resolution=8, channels=1, batch_size=4)
    x1, _ = next(iter(val1))
    assert torch.allclose(x1[:, 0], x[:, 0])


def test_imagefolder_empty_class_folder(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "t")
    (tmp_path / "t" / "train" / "zebra").mkdir()
    with pytest.raises(NetscaleError, match=r"class folder '.*train/zebra' is empty"):
        load_dataset(str(tmp_path / "t"))


def test_imagefolder_val_class_unknown(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "t")
    (tmp_path / "t" / "val" / "cat").rename(tmp_path / "t" / "val" / "lion")
    with pytest.raises(NetscaleError, match=r"lion.*train split does not have"):
        load_dataset(str(tmp_path / "t"))


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_image_is_named(tmp_path: Path, workers: int) -> None:
    make_imagefolder(tmp_path / "t", per_class=2)
    bad = tmp_path / "t" / "train" / "dog" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cfg = DataConfig(path=str(tmp_path / "t"), workers=workers)
    ds = load_dataset(cfg)
    train, _, _ = make_loaders(ds, cfg, resolution=8, channels=3, batch_size=2)
    with pytest.raises(NetscaleError) as e:
        for _ in train:
            pass
    msg = str(e.value)
    assert msg.startswith("cannot decode image") and str(bad) in msg
    assert "Traceback" not in msg


def test_imagefolder_batches_do_not_depend_on_workers(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "t", per_class=3)
    out = []
    for workers in (0, 1):
        cfg = DataConfig(path=str(tmp_path / "t"), workers=workers)
        ds = load_dataset(cfg)
        train, _, _ = make_loaders(ds, cfg, resolution=8, channels=3, batch_size=3, seed=5)
        train.set_epoch(2)
        out.append(torch.cat([x for x, _ in train]))
    assert torch.equal(out[0], out[1])


# ----------------------------------------------------------------------------- digits/splits


def test_digits_seeded_split_and_subsets() -> None:
    a = load_dataset(DataConfig(name="digits"))
    b = load_dataset(DataConfig(name="digits"))
    c = load_dataset(DataConfig(name="digits", split_seed=1))
    assert (a.info.num_classes, a.info.in_channels, a.info.image_size) == (10, 1, (8, 8))
    assert a.info.train_size + a.info.val_size == 1797 and a.info.val_size == 180
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    assert int(a.train.images.max()) == 255  # 0..16 rescaled to 0..255
    # disjoint: no val image (with its label) appears in train
    tr = {(bytes(x.numpy().tobytes()), int(y)) for x, y in zip(a.train.images, a.train.labels)}
    assert not any((bytes(x.numpy().tobytes()), int(y)) in tr
                   for x, y in zip(a.val.images, a.val.labels))
    s1 = load_dataset(DataConfig(name="digits", subset=100, val_subset=50))
    s2 = load_dataset(DataConfig(name="digits", subset=100, val_subset=50))
    assert (s1.info.train_size, s1.info.val_size) == (100, 50)
    assert torch.equal(s1.train.labels, s2.train.labels)
    assert len(set(s1.train.labels.tolist())) == 10


def test_data_config_round_trip_and_errors() -> None:
    cfg = DataConfig(name="digits", subset=10, flip=False)
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    assert DataConfig.from_dict("digits") == DataConfig(name="digits")
    with pytest.raises(NetscaleError, match=r"unknown field 'subsett'.*did you mean 'subset'"):
        DataConfig.from_dict({"name": "digits", "subsett": 3})
    with pytest.raises(NetscaleError, match=r"data.augment"):
        DataConfig(name="digits", augment="mixup")
    with pytest.raises(NetscaleError, match=r"give a dataset name"):
        DataConfig()


# ----------------------------------------------------------------------------- transforms


def test_shift_flip_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 2, 6, 6), dtype=torch.uint8, generator=g)
    dx = torch.tensor([0, 1, -2, 2])
    dy = torch.tensor([0, -1, 2, 0])
    flip = torch.tensor([False, True, False, True])
    out = shift_flip(x, dx, dy, flip, pad=2)
    for n in range(4):
        ref = torch.zeros(2, 6, 6, dtype=torch.uint8)
        src = x[n].flip(-1) if flip[n] else x[n]
        for i in range(6):
            for j in range(6):
                si, sj = i + int(dy[n]), j + int(dx[n])
                if 0 <= si < 6 and 0 <= sj < 6:
                    ref[:, i, j] = src[:, si, sj]
        assert torch.equal(out[n], ref), n


def test_train_batch_modes_are_seeded() -> None:
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    for mode in ("crop", "rrc", "none"):
        aug = Augment(mode=mode, flip=True)
        a = train_batch(x, 32, torch.Generator().manual_seed(3), aug)
        b = train_batch(x, 32, torch.Generator().manual_seed(3), aug)
        c = train_batch(x, 32, torch.Generator().manual_seed(4), aug)
        assert a.shape == (8, 1, 32, 32) and torch.equal(a, b)
        assert not torch.equal(a, c)
        assert float(a.min()) >= 0 and float(a.max()) <= 255
    plain = train_batch(x, 28, torch.Generator(), Augment(mode="none", flip=False))
    assert torch.equal(plain, x)


def test_eval_batch_centre_crop_and_resize() -> None:
    x = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16).to(torch.uint8)
    assert center_box(16, 16, 0.5) == (4, 4, 8)
    same = eval_batch(x, 8, 0.5)
    assert torch.equal(same, x[..., 4:12, 4:12])
    assert eval_batch(x, 4, 1.0).shape == (1, 1, 4, 4)


def test_normalize_statistics_and_channels() -> None:
    ds = load_dataset("digits")
    norm = Normalize(ds.info.mean, ds.info.std, channels=1)
    z = norm(ds.train.images)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    z3 = Normalize(ds.info.mean, ds.info.std, channels=3)(ds.train.images[:4])
    assert z3.shape[1] == 3 and torch.equal(z3[:, 1], z[:4, 0])
    rgb = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    g = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), channels=1)(rgb)
    lum = (rgb.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(g[:, 0], (lum / 255 - 0.5) / 0.25, atol=1e-5)


# ----------------------------------------------------------------------------- loaders


def test_tensor_loader_shards_and_epochs() -> None:
    ds = load_dataset(DataConfig(name="digits", subset=200))
    pipe = make_pipeline(ds.info, DataConfig(name="digits", augment="none"), resolution=8,
                         channels=1)
    ids = ds.train.labels * 0 + torch.arange(200)  # identify samples by label slot
    from netscale.data import TensorSplit

    split = TensorSplit(ds.train.images, ids)
    seen = []
    for rank in (0, 1):
        ld = make_loader(split, pipe, batch_size=10, train=True, seed=1, rank=rank, world=2)
        ld.set_epoch(0)
        seen.append(torch.cat([y for _, y in ld]))
        ld.set_epoch(1)
        assert not torch.equal(torch.cat([y for _, y in ld]), seen[-1])
    assert sorted(torch.cat(seen).tolist()) == list(range(200))
    ev = [torch.cat([y for _, y in make_loader(split, pipe, batch_size=7, train=False,
                                                rank=r, world=2)]) for r in (0, 1)]
    assert sorted(torch.cat(ev).tolist()) == list(range(200))
    full = make_loader(split, pipe, batch_size=64, train=True, seed=1)
    assert len(full) == 3 and full.num_samples == 192  # drop_last on the train split


def test_loader_resizes_to_target_resolution() -> None:
    ds = load_dataset(DataConfig(name="digits", subset=64))
    cfg = DataConfig(name="digits", resolution=20)
    train, _val, pipe = make_loaders(ds, cfg, resolution=99, channels=1, batch_size=16)
    assert pipe.resolution == 20  # data.resolution wins over the spec's
    x, y = next(iter(train))
    assert x.shape == (16, 1, 20, 20) and y.dtype == torch.int64
