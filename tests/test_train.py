"""The trainer: recipe pieces, exact resume, checkpoints, divergence, evaluation, DDP, and a
small RegNet reaching >= 95 % accuracy on digits within a minute."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from netscale.data import DataConfig
from netscale.errors import NetscaleError
from netscale.laws.replicates import decode_correct
from netscale.train import (
    EpochMetrics,
    Recipe,
    TrainResult,
    WarmupCosine,
    evaluate,
    load_checkpoint,
    param_groups,
    scaled_lr,
    train,
)
from netscale.train import trainer as trainer_mod
from netscale_fixtures.small_specs import small_regnet

TIMING = ("train_time", "eval_time", "images_per_sec", "wall_time")


def tiny_spec(**kw):
    return small_regnet(**{"resolution": 16, "widths": (16, 32), "depths": (1, 1), **kw})


def tiny_data(**kw) -> DataConfig:
    return DataConfig(name="digits", subset=256, val_subset=128, **kw)


def tiny_recipe(**kw) -> Recipe:
    base = {"epochs": 3, "batch_size": 64, "lr": 0.2, "warmup_epochs": 0.5}
    return Recipe(**{**base, **kw})


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


# ----------------------------------------------------------------------------- recipe pieces


def test_recipe_defaults_round_trip_and_errors() -> None:
    r = Recipe()
    assert (r.optimizer, r.nesterov, r.momentum, r.label_smoothing) == ("sgd", True, 0.9, 0.1)
    assert Recipe.from_dict(r.to_dict()) == r
    assert Recipe.from_dict({"epochs": 3, "batch_size": 256, "lr": 0.2}).effective_lr == \
        pytest.approx(0.4)
    assert Recipe(batch_size=256, lr=0.2, scale_lr=False).effective_lr == 0.2
    with pytest.raises(NetscaleError, match=r"unknown field 'epoch'.*did you mean 'epochs'"):
        Recipe.from_dict({"epoch": 3})
    with pytest.raises(NetscaleError, match=r"recipe.lr must be a number"):
        Recipe.from_dict({"lr": "fast"})
    with pytest.raises(NetscaleError, match=r"warmup_epochs"):
        Recipe(epochs=2, warmup_epochs=3)


def test_scaled_lr_is_linear() -> None:
    assert scaled_lr(0.1, 128, 128) == pytest.approx(0.1)
    assert scaled_lr(0.1, 1024, 128) == pytest.approx(0.8)
    assert scaled_lr(0.1, 32, 128) == pytest.approx(0.025)


def test_adamw_recipe_uses_square_root_rule_and_builds_adamw() -> None:
    from netscale.models import build_model
    from netscale.train.optim import make_optimizer

    r = Recipe(optimizer="adamw", lr=0.001, batch_size=512, ref_batch=128)
    assert r.effective_lr == pytest.approx(0.002)  # sqrt(512 / 128) = 2, not 4
    assert Recipe(lr=0.1, batch_size=512, ref_batch=128).effective_lr == pytest.approx(0.4)
    opt = make_optimizer(build_model(tiny_spec()), r, r.effective_lr)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == pytest.approx(0.002)
    with pytest.raises(NetscaleError, match=r"recipe\.optimizer is 'lamb'"):
        Recipe(optimizer="lamb")


def test_warmup_then_cosine() -> None:
    s = WarmupCosine(1.0, total_steps=100, warmup_steps=10, warmup_factor=0.1, min_lr=0.0)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(5) == pytest.approx(0.55)
    assert s.lr_at(10) == pytest.approx(1.0)
    assert s.lr_at(55) == pytest.approx(0.5)
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    lrs = [s.lr_at(i) for i in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


def test_no_weight_decay_on_bn_and_biases() -> None:
    from netscale.models import build_model

    model = build_model(tiny_spec())
    decay, no_decay = param_groups(model, 5e-5)
    assert decay["weight_decay"] == 5e-5 and no_decay["weight_decay"] == 0.0
    bn_and_bias = {id(p) for m in model.modules() for name, p in m.named_parameters(
        recurse=False) if isinstance(m, nn.BatchNorm2d) or name == "bias"}
    assert {id(p) for p in no_decay["params"]} == bn_and_bias
    assert all(p.ndim == 4 or p.ndim == 2 for p in decay["params"])


# ----------------------------------------------------------------------------- training


def test_exact_resume_equals_uninterrupted(tmp_path: Path) -> None:
    spec = tiny_spec().replace(dropout=0.2)  # dropout exercises the saved RNG state
    # fp32 + contiguous pinned: the bit-reproducible reference setting
    recipe = tiny_recipe(ema=True, ema_decay=0.9, memory_format="contiguous", precision="fp32")
    full = train(spec, tiny_data(), recipe, tmp_path / "full", quiet=True)
    assert full.status == "completed" and full.epochs_done == 3

    part = train(spec, tiny_data(), recipe, tmp_path / "part", quiet=True, max_epochs=1)
    assert part.status == "stopped" and part.epochs_done == 1

    class Crash(Exception):
        pass

    def crash_after_2(m: EpochMetrics) -> None:
        if m.epoch == 2:
            raise Crash  # the process dies right after epoch 2's checkpoint

    with pytest.raises(Crash):
        train(spec, tiny_data(), recipe, tmp_path / "part", quiet=True, on_epoch=crash_after_2)
    resumed = train(spec, tiny_data(), recipe, tmp_path / "part", quiet=True)
    assert resumed.status == "completed"
    a = load_checkpoint(tmp_path / "full")
    b = load_checkpoint(tmp_path / "part")
    for key in ("model",):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), k
    for k in a["ema"]["model"]:
        assert torch.equal(a["ema"]["model"][k], b["ema"]["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) for i in sa)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert untimed(full.history) == untimed(resumed.history)
    lines = (tmp_path / "part" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    # A finished run resumes to the same result without training again.
    again = train(spec, tiny_data(), recipe, tmp_path / "part", quiet=True)
    assert again.status == "completed" and untimed(again.history) == untimed(full.history)


def test_checkpoint_is_plain_data_and_on_epoch_sees_it(tmp_path: Path) -> None:
    seen = []

    def on_epoch(m: EpochMetrics) -> None:
        ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
        seen.append((m.epoch, ck["epoch"]))

    r = train(tiny_spec(), tiny_data(), tiny_recipe(epochs=2), tmp_path / "run", quiet=True,
              on_epoch=on_epoch)
    assert seen == [(1, 1), (2, 2)]
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert isinstance(ck["spec"], str) and json.loads(ck["spec"])["name"] == "SmallRegNetY"
    assert isinstance(ck["rng"]["torch"], torch.Tensor)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    assert res["status"] == "completed" and TrainResult.from_dict(res) == r
    from netscale.models import build_model

    assert r.checkpoint and r.params == sum(p.numel() for p in
                                            build_model(tiny_spec()).parameters())


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    train(tiny_spec(), tiny_data(), tiny_recipe(epochs=1), tmp_path / "run", quiet=True)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = ckpt.read_bytes()
    with pytest.raises(NetscaleError, match=r"already holds a training run \(epoch 1 of 1\)"):
        train(tiny_spec(), tiny_data(), tiny_recipe(epochs=1), tmp_path / "run", resume=False)
    with pytest.raises(NetscaleError, match=r"different network"):
        train(tiny_spec(widths=(16, 48)), tiny_data(), tiny_recipe(epochs=1), tmp_path / "run")
    with pytest.raises(NetscaleError, match=r"different recipe \(lr: 0.2 .* vs 0.3"):
        train(tiny_spec(), tiny_data(), tiny_recipe(epochs=1, lr=0.3), tmp_path / "run")
    with pytest.raises(NetscaleError, match=r"different data config"):
        train(tiny_spec(), tiny_data(flip=True), tiny_recipe(epochs=1), tmp_path / "run")
    assert ckpt.read_bytes() == before


def test_spec_must_match_dataset_classes(tmp_path: Path) -> None:
    with pytest.raises(NetscaleError, match=r"num_classes 7 but digits has 10 classes"):
        train(tiny_spec(num_classes=7), tiny_data(), tiny_recipe(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 256 // 64

    class NaNLater(nn.CrossEntropyLoss):  # fault injection: the loss goes NaN in epoch 2
        calls = 0

        def forward(self, x, y):
            NaNLater.calls += 1
            loss = super().forward(x, y)
            return loss * math.nan if NaNLater.calls > steps + 1 else loss

    monkeypatch.setattr(trainer_mod.nn, "CrossEntropyLoss", NaNLater)
    r = train(tiny_spec(), tiny_data(), tiny_recipe(), tmp_path / "run", quiet=True)
    assert r.status == "diverged" and r.epochs_done == 1
    assert "non-finite loss at epoch 2, step 2" in r.message
    assert "checkpoint of epoch 1 is kept" in r.message
    ck = load_checkpoint(tmp_path / "run")
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    last = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "diverged"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "diverged"


def test_real_divergence_with_huge_lr(tmp_path: Path) -> None:
    r = train(tiny_spec(), tiny_data(), tiny_recipe(lr=1e20, warmup_epochs=0),
              tmp_path / "run", quiet=True)
    assert r.status == "diverged" and r.epochs_done == 0
    assert "no epoch had finished" in r.message
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_evaluate_checkpoint_matches_last_epoch(tmp_path: Path) -> None:
    r = train(tiny_spec(), tiny_data(), tiny_recipe(epochs=2, ema=True), tmp_path / "run",
              quiet=True)
    ev = evaluate(tmp_path / "run")  # EMA weights, the run's data config
    last = r.history[-1]
    assert ev.weights == "ema" and ev.images == 128 and ev.epoch == 2
    assert ev.top1_err == pytest.approx(last["top1_err"])
    assert ev.loss == pytest.approx(last["loss"], rel=1e-5)
    # the epoch stores which validation images the evaluated (EMA) weights got right
    bits = decode_correct(last["val_correct"])
    assert bits.size == 128 and 1.0 - bits.mean() == pytest.approx(last["top1_err"])
    assert last["val_correct"] == ev.correct
    raw = evaluate(tmp_path / "run" / "checkpoint.pt", weights="raw")
    assert raw.top1_err == pytest.approx(last["raw_top1_err"])
    on_train = evaluate(tmp_path / "run", split="train")
    assert on_train.images == 256
    with pytest.raises(NetscaleError, match=r"different network"):
        evaluate(tmp_path / "run", spec=tiny_spec(widths=(16, 24)))


def test_evaluate_rejects_non_checkpoints(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(NetscaleError, match=r"cannot read checkpoint .*bad.pt"):
        evaluate(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(NetscaleError, match=r"not a netscale checkpoint"):
        evaluate(tmp_path / "other.pt")
    with pytest.raises(NetscaleError, match=r"has no checkpoint.pt"):
        evaluate(tmp_path)


def test_trains_on_imagefolder_tree(tmp_path: Path) -> None:
    from test_data import make_imagefolder

    make_imagefolder(tmp_path / "tree", per_class=6)
    spec = tiny_spec(num_classes=3, in_channels=3)
    r = train(spec, DataConfig(path=str(tmp_path / "tree"), workers=0),
              tiny_recipe(epochs=1, batch_size=6), tmp_path / "run", quiet=True)
    assert r.status == "completed" and r.dataset["format"] == "imagefolder"
    assert r.history[0]["images"] == 18


def test_small_regnet_reaches_95_percent_on_digits(tmp_path: Path) -> None:
    spec = small_regnet(resolution=16)
    data = DataConfig(name="digits", val_fraction=0.2)
    recipe = Recipe(epochs=15, batch_size=64, lr=0.2, weight_decay=5e-4)
    r = train(spec, data, recipe, tmp_path / "digits", quiet=True)
    assert r.dataset["val_size"] == 359
    assert r.top1_err <= 0.05, r.top1_err


# ----------------------------------------------------------------------------- DDP


def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    spec_file = tmp_path / "tiny.yaml"
    tiny_spec().save(spec_file)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", "-m", "netscale", "train", str(spec_file), "--data",
           "digits", "--subset", "256", "--val-subset", "101", "--epochs", "2",
           "--batch-size", "64", "--out", str(out), "--json", "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout)  # printed once, by rank 0
    assert res["world_size"] == 2 and res["status"] == "completed"
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2  # only rank 0 writes
    hist = [json.loads(x) for x in lines]
    assert [h["images"] for h in hist] == [256, 256]  # train counts reduced over ranks
    # validation metrics reduced over both ranks' shards equal a one-process evaluation
    ev = evaluate(out)
    assert ev.images == 101
    assert hist[-1]["top1_err"] == pytest.approx(ev.top1_err)
    assert hist[-1]["loss"] == pytest.approx(ev.loss, rel=1e-4)
    # the per-image results of both ranks' strided shards (51 + 50 images), gathered in
    # validation-set order, equal the one-process evaluation image by image
    assert hist[-1]["val_correct"] == ev.correct and ev.correct.startswith("101:")


def test_two_processes_never_train_into_one_directory(tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as f:  # another trainer holds the run directory
        f.write("4242")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(NetscaleError, match=r"another process \(pid 4242\)"):
            train(tiny_spec(), tiny_data(), tiny_recipe(epochs=1), out, quiet=True)
    r = train(tiny_spec(), tiny_data(), tiny_recipe(epochs=1), out, quiet=True)
    assert r.status == "completed" and not (out / ".lock").exists()


def test_too_few_training_images(tmp_path: Path) -> None:
    with pytest.raises(NetscaleError, match=r"1 training image.*at least 2 per batch"):
        train(tiny_spec(), DataConfig(name="digits", subset=1), tiny_recipe(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
