"""The execution setting of training (memory format x precision): auto probes and records its
choice, explicit settings are honoured (weights channels_last, bf16 activations), bad values
are one-line errors, and a resumed run keeps the recorded setting bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from netscale.bench.setting import candidates, native_bf16
from netscale.data import DataConfig
from netscale.errors import NetscaleError
from netscale.train import Recipe, evaluate, evaluation, load_checkpoint, run_setting, train
from netscale.train import trainer as trainer_mod
from netscale.train.run_setting import precision_request
from netscale_fixtures.small_specs import small_regnet


def tiny_spec():
    return small_regnet(resolution=16, widths=(16, 32), depths=(1, 1))


def tiny_data() -> DataConfig:
    return DataConfig(name="digits", subset=256, val_subset=64)


def long_recipe(**kw) -> Recipe:
    """A run planned long enough (20 epochs x 32 steps = 640 steps) for auto to probe; the
    tests stop it after an epoch or two with max_epochs."""
    return Recipe(**{"epochs": 20, "batch_size": 8, "lr": 0.05, "warmup_epochs": 1, **kw})


def test_recipe_fields_default_to_auto_and_are_validated() -> None:
    r = Recipe()
    assert (r.memory_format, r.precision) == ("auto", "auto")
    assert Recipe.from_dict(r.to_dict()) == r
    with pytest.raises(NetscaleError, match=r"recipe.memory_format 'nhwc': use one of auto"):
        Recipe(memory_format="nhwc")
    with pytest.raises(NetscaleError, match=r"recipe.precision 'fp8': use one of auto"):
        Recipe(precision="fp8")


def test_precision_request_auto_is_fp16_on_cuda_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision_request(Recipe(), cpu) == "auto"
    assert precision_request(Recipe(), cuda) == "fp16"
    assert precision_request(Recipe(precision="fp32"), cuda) == "fp32"
    assert precision_request(Recipe(precision="bf16"), cuda) == "bf16"
    assert precision_request(Recipe(precision="bf16"), cpu) == "bf16"


def test_short_auto_run_trains_plain_and_says_why(tmp_path: Path) -> None:
    r = train(tiny_spec(), tiny_data(), Recipe(epochs=1, batch_size=64, warmup_epochs=0),
              tmp_path / "run", quiet=True)
    assert (r.setting["memory_format"], r.setting["precision"]) == ("contiguous", "fp32")
    assert r.setting["requested"] == "auto+auto" and r.setting["probe"] == []
    assert "too short for a" in r.setting["reason"]


def test_auto_probes_records_and_resume_reuses_the_setting_bit_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tiny_spec().replace(dropout=0.2)  # dropout: the probe must not move the RNG
    first = train(spec, tiny_data(), long_recipe(), tmp_path / "auto", quiet=True,
                  max_epochs=1)
    s = first.setting
    allowed = candidates("auto", "auto")
    assert s["requested"] == "auto+auto"
    assert (s["memory_format"], s["precision"]) in allowed
    assert sorted((p["memory_format"], p["precision"]) for p in s["probe"]) == sorted(allowed)
    assert all(p["images_per_s"] > 0 for p in s["probe"]) and s["reason"]
    assert load_checkpoint(tmp_path / "auto")["setting"] == s
    assert json.loads((tmp_path / "auto" / "result.json").read_text())["setting"] == s

    def no_probe(*a, **k):
        raise AssertionError("a resumed run must not probe again")

    monkeypatch.setattr(run_setting, "choose_setting", no_probe)
    resumed = train(spec, tiny_data(), long_recipe(), tmp_path / "auto", quiet=True,
                    max_epochs=2)
    assert resumed.epochs_done == 2 and resumed.setting == s
    # the same run in the chosen setting, never interrupted and never probed: same bits
    pinned = long_recipe(memory_format=s["memory_format"], precision=s["precision"])
    straight = train(spec, tiny_data(), pinned, tmp_path / "pinned", quiet=True, max_epochs=2)
    a, b = load_checkpoint(tmp_path / "auto"), load_checkpoint(tmp_path / "pinned")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert straight.history[-1]["top1_err"] == resumed.history[-1]["top1_err"]
    # an explicit request that contradicts the recorded setting is refused
    other = "contiguous" if s["memory_format"] == "channels_last" else "channels_last"
    with pytest.raises(NetscaleError, match=rf"--memory-format {other} contradicts the run"):
        train(spec, tiny_data(), long_recipe(memory_format=other), tmp_path / "auto",
              quiet=True)


def _spy_first_conv(monkeypatch: pytest.MonkeyPatch) -> list[tuple[torch.dtype, bool, bool]]:
    """Records (output dtype, input channels_last, weight channels_last) of the first 3x3
    conv with several input channels (where the two layouts differ) of every model the
    trainer builds."""
    seen: list[tuple[torch.dtype, bool, bool]] = []
    build = trainer_mod.build_model

    def spying_build(*a, **k):
        model = build(*a, **k)
        conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d)
                    and m.in_channels > 1 and m.kernel_size == (3, 3))

        def hook(mod, inputs, output):
            cl = torch.channels_last
            seen.append((output.dtype, inputs[0].is_contiguous(memory_format=cl),
                         mod.weight.is_contiguous(memory_format=cl)))

        conv.register_forward_hook(hook)
        return model

    monkeypatch.setattr(trainer_mod, "build_model", spying_build)
    monkeypatch.setattr(evaluation, "build_model", spying_build)
    return seen


def test_explicit_channels_last_bf16_is_honoured_in_training_and_evaluation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = Recipe(epochs=1, batch_size=64, warmup_epochs=0, memory_format="channels_last",
                    precision="bf16")
    if not native_bf16("cpu"):  # this CPU cannot: a one-line refusal, nothing trained
        with pytest.raises(NetscaleError, match=r"no native bfloat16"):
            train(tiny_spec(), tiny_data(), recipe, tmp_path / "run", quiet=True)
        assert not (tmp_path / "run").exists()
        return
    seen = _spy_first_conv(monkeypatch)
    r = train(tiny_spec(), tiny_data(), recipe, tmp_path / "run", quiet=True)
    assert (r.setting["memory_format"], r.setting["precision"]) == ("channels_last", "bf16")
    assert r.setting["reason"] == "requested" and r.setting["probe"] == []
    # 4 training steps then 1 validation batch (64 images), all in the setting
    assert seen == [(torch.bfloat16, True, True)] * 5
    ck = load_checkpoint(tmp_path / "run")
    assert all(v.dtype == torch.float32 for v in ck["model"].values()
               if v.is_floating_point())  # fp32 master weights
    ev = evaluate(tmp_path / "run")
    assert ev.setting == "channels_last+bf16"
    assert ev.top1_err == pytest.approx(r.top1_err)


def test_explicit_contiguous_fp32_is_plain(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_first_conv(monkeypatch)
    recipe = Recipe(epochs=1, batch_size=64, warmup_epochs=0, memory_format="contiguous",
                    precision="fp32")
    r = train(tiny_spec(), tiny_data(), recipe, tmp_path / "run", quiet=True)
    assert r.setting["requested"] == "contiguous+fp32"
    assert seen == [(torch.float32, False, False)] * 5


def test_cli_bad_setting_values_are_one_line_exit_2(run_cli, tmp_path: Path) -> None:
    base = ("train", "ResNet-20-CIFAR", "--data", "digits", "--out", str(tmp_path / "r"))
    code, _, err = run_cli(*base, "--precision", "fp8")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--precision" in err
    code, _, err = run_cli(*base, "--memory-format", "nhwc")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--memory-format" in err
    code, _, err = run_cli(*base, "--precision", "fp16", "--device", "cpu")
    assert code == 2 and err.strip().splitlines() == [
        "netscale train: error: --precision fp16 needs a CUDA device; on CPU use bf16, fp32 "
        "or auto"]
    assert not (tmp_path / "r").exists()


def test_cli_prints_the_setting_and_resume_refuses_another(run_cli, tmp_path: Path) -> None:
    spec_file = tmp_path / "tiny.yaml"
    tiny_spec().save(spec_file)
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", spec_file, "--data", "digits", "--subset", "128",
                                "--val-subset", "64", "--epochs", "2", "--batch-size", "64",
                                "--memory-format", "contiguous", "--precision", "fp32",
                                "--max-epochs", "1", "--out", out)
    assert code == 0, err
    assert "setting: contiguous+fp32 (asked contiguous+fp32; requested)" in err
    assert "img/s train in contiguous+fp32" in stdout
    code, _, err = run_cli("train", "--resume", "--out", out, "--memory-format",
                           "channels_last")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--memory-format channels_last contradicts the run" in err
    assert "trained with --memory-format contiguous" in err
    code, _, err = run_cli("train", "--resume", "--out", out)
    assert code == 0, err
    assert "recorded in the checkpoint" in err
    assert load_checkpoint(out)["epoch"] == 2
