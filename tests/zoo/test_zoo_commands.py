"""Zoo models by name in the commands: info, scale, export, bench and study bases; and the
adapter registry."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from netscale.complexity.measured import count_measured
from netscale.errors import NetscaleError
from study_helpers import run_zoo_study

NS = {"timm": timm, "torchvision": torchvision, "torch": torch, "functools": functools}


def test_info_counts_the_zoo_model_at_its_own_input(run_cli) -> None:
    code, out, err = run_cli("info", "timm:convnext_atto", "--json")
    assert code == 0, err
    data = json.loads(out)
    with torch.device("meta"):
        model = timm.create_model("convnext_atto", pretrained=False)
    rec = count_measured(model, (3, 224, 224), per_module=False)
    assert (data["flops"], data["params"], data["acts"]) == (rec.flops, rec.params, rec.acts)


def test_info_takes_inline_arguments_and_a_per_module_table(run_cli) -> None:
    code, out, err = run_cli("info", "timm:vit_tiny_patch16_224:img_size=160,depth=2",
                             "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["input_shape"] == [1, 3, 160, 160]
    with torch.device("meta"):
        model = timm.create_model("vit_tiny_patch16_224", img_size=160, depth=2)
    assert data["params"] == sum(p.numel() for p in model.parameters())
    code, out, err = run_cli("info", "torchvision:resnet18", "--per-module")
    assert code == 0, err
    assert "layer4.1" in out and "BasicBlock" in out and "3x224x224" in out


def test_torchvision_default_inputs_are_the_models_own(run_cli) -> None:
    from netscale.zoo import parse_zoo_name

    assert parse_zoo_name("torchvision:inception_v3").input_shape() == (3, 299, 299)
    assert parse_zoo_name("torchvision:resnet50").input_shape() == (3, 224, 224)
    assert parse_zoo_name("timm:efficientnet_b3").input_shape() == (
        timm.models.get_pretrained_cfg("efficientnet_b3").input_size)


def test_unknown_zoo_names_are_one_line_with_close_matches(run_cli) -> None:
    code, _, err = run_cli("info", "timm:resnet5O")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "resnet50" in err


def test_scale_prints_a_call_that_builds_the_counted_network(run_cli) -> None:
    code, out, err = run_cli("scale", "timm:efficientnet_b0", "--factor", "2",
                             "--strategy", "dWr", "--input-shape", "3,96,96", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["call"].startswith("timm.models.efficientnet._gen_efficientnet(")
    with torch.device("meta"):
        model = eval(data["call"], dict(NS))
    rec = count_measured(model, data["input_shape"], per_module=False)
    assert (rec.flops, rec.params, rec.acts) == (data["scaled"]["flops"],
                                                 data["scaled"]["params"],
                                                 data["scaled"]["acts"])
    code, out, err = run_cli("scale", "torchvision:resnet50", "--factors", "2,4",
                             "--strategies", "d", "--input-shape", "3,64,64")
    assert code == 0, err
    assert out.count("torchvision.models.resnet.ResNet(") == 2


def test_scale_refuses_a_dimension_the_adapter_does_not_scale(run_cli) -> None:
    code, _, err = run_cli("scale", "torchvision:mobilenet_v3_small", "--factor", "2",
                           "--strategy", "d")
    assert code == 2 and "does not scale depth" in err


def test_export_writes_and_verifies_a_zoo_model(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    code, text, err = run_cli("export", "torchvision:mobilenet_v3_small", "--format",
                              "torchscript", "--out", str(out), "--resolution", "64")
    assert code == 0, err
    assert out.exists() and "random 1x3x64x64 input" in text


def test_bench_times_a_zoo_model(run_cli) -> None:
    code, out, err = run_cli("bench", "timm:resnet18", "--resolution", "32", "--budget",
                             "0.2", "--batch-size", "2", "--memory-format", "contiguous",
                             "--precision", "fp32", "--retries", "0", "--json")
    assert code in (0, 1), err  # 1: a noisy timing on a busy machine, still measured
    rows = json.loads(out)["results"] if "results" in json.loads(out) else json.loads(out)
    row = rows[0]
    with torch.device("meta"):
        model = timm.create_model("resnet18", pretrained=False)
    assert row["flops"] == count_measured(model, (3, 32, 32), per_module=False).flops


def test_a_zoo_model_is_a_study_base_with_classes_and_channels_from_the_data(
        run_cli, tmp_path: Path) -> None:
    cfg = run_zoo_study(run_cli, tmp_path, "timm:resnet18", ["w"], [1, 2])
    from netscale.study.config import load_study_config
    from netscale.study.store import Store

    with Store(load_study_config(cfg).out_dir / "results.sqlite") as store:
        trials = {t.strategy: t for t in store.trials()}
    wide = trials["w"]
    assert wide.status == "done", wide.error
    kw = wide.spec["kwargs"]
    assert kw["num_classes"] == 10 and kw["in_chans"] == 1
    assert abs(wide.flops / trials["base"].flops / 2 - 1) <= 0.02
    from netscale.zoo import ZooFactory

    model = ZooFactory("timm:resnet18")(**kw)
    assert sum(p.numel() for p in model.parameters()) == wide.params


def test_register_adapter_adds_a_family(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from netscale.zoo import ZooModel, call, register_adapter, registered_adapters, scale_zoo

    registry = importlib.import_module("netscale.zoo.adapters")
    monkeypatch.setattr(registry, "_ADAPTERS", registered_adapters())
    with pytest.raises(NetscaleError, match="no scaling adapter for torchvision:densenet121"):
        scale_zoo("torchvision:densenet121", 2, "d", input_shape=(3, 64, 64))

    def densenet(model: ZooModel, base: object, d: float, w: float, side: int) -> str:
        f = base.features  # type: ignore[attr-defined]
        blocks = [len(b) for b in (f.denseblock1, f.denseblock2, f.denseblock3,
                                   f.denseblock4)]
        return call("torchvision.models.densenet.DenseNet",
                    growth_rate=max(1, round(32 * w)),
                    block_config=tuple(max(1, round(n * d)) for n in blocks),
                    num_init_features=64, **model.kwargs)

    register_adapter("densenet", "torchvision", densenet, match="densenet*")
    r = scale_zoo("torchvision:densenet121", 2, "w", input_shape=(3, 64, 64))
    assert r.call.startswith("torchvision.models.densenet.DenseNet(growth_rate=")
    with torch.device("meta"):
        model = eval(r.call, dict(NS))
    assert count_measured(model, r.input_shape, per_module=False).flops == r.counts.flops
    assert r.within_tolerance or "closest" in r.note
