"""A study whose base is your own nn.Module factory: scale → count → bench → train → evaluate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

import factories
from netscale.errors import NetscaleError
from netscale.study.config import load_study_config
from netscale.study.store import Store


def _config(tmp_path: Path, **base_over: object) -> Path:
    shutil.copy(factories.__file__, tmp_path / "mynets.py")
    base = {"module": "mynets.py:mobilenet", "input_shape": [1, 16, 16], "name": "mbnet",
            "kwargs": {"in_chans": 1}, **base_over}
    raw = {
        "name": "module-tiny", "out": "out", "bases": [base],
        "strategies": ["w"], "factors": [1, 2],
        "data": {"name": "digits", "subset": 300, "val_subset": 100},
        "recipe": {"epochs": 1, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0,
                   "threads": 1},
        "bench": {"enabled": True, "batch_size": 4, "budget": 0.1},
        "retries": 0,
    }
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_study_on_a_module_factory_base_end_to_end(run_cli, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path)
    code, out, err = run_cli("study", str(cfg_path), "--dry-run")
    assert code == 0 and "mbnet" in out, err
    code, _out, err = run_cli("study", str(cfg_path))
    assert code == 0, err
    cfg = load_study_config(cfg_path)
    with Store(cfg.out_dir / "results.sqlite") as store:
        trials = {t.strategy: t for t in store.trials()}
    assert set(trials) == {"base", "w"}
    base, wide = trials["base"], trials["w"]
    for t in (base, wide):
        assert t.status == "done", t.error
        assert t.spec["kind"] == "module" and t.spec["num_classes"] == 10
        assert t.spec["kwargs"]["in_chans"] == 1 and t.spec["kwargs"]["num_classes"] == 10
        assert [e["epoch"] for e in t.epochs] == [1]
        assert 0.0 <= t.top5_err <= t.top1_err <= 1.0
        assert t.time_ms > 0 and t.bench
    assert base.spec["kwargs"]["width_mult"] == 1.0
    assert wide.spec["kwargs"]["width_mult"] > 1.0
    assert abs(wide.flops / base.flops / 2 - 1) <= 0.02
    # the stored counts are the model's: rebuild it and count its parameters
    model = factories.mobilenet(**wide.spec["kwargs"])
    assert sum(p.numel() for p in model.parameters()) == wide.params
    code, _, err = run_cli("report", str(cfg.out_dir))
    assert code == 0, err
    assert "mbnet" in (cfg.out_dir / "report" / "index.html").read_text()
    code, _, err = run_cli("recommend", str(cfg.out_dir), "--target-flops", "4x")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_bad_module_bases_are_one_line_errors(tmp_path: Path) -> None:
    for over, needle in [({"input_shape": [1, 16]}, "input_shape must be [C, H, W]"),
                         ({"module": "nope.py:f"}, "does not exist"),
                         ({"colour": 1}, "unknown key(s) colour"),
                         ({"input_shape": [3, 16, 16]}, "data has 1 channel")]:
        path = _config(tmp_path, **over)
        with pytest.raises(NetscaleError) as info:
            cfg = load_study_config(path)
            from netscale.study.planning import data_info, plan_trials

            plan_trials(cfg, data_info(cfg))
        assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_module_spec_is_a_factory_spec_that_build_model_builds() -> None:
    from netscale.models import FactorySpec, build_model
    from netscale.study.module_base import ModuleSpec
    from netscale.train.evaluation import as_spec

    spec = ModuleSpec(name="mb", module=f"{factories.__file__}:mobilenet",
                      kwargs={"width_mult": 0.5, "num_classes": 7}, input_shape=(3, 32, 32),
                      num_classes=7)
    assert isinstance(spec, FactorySpec) and as_spec(spec) is spec
    assert (spec.in_channels, spec.resolution) == (3, 32)
    model = build_model(spec, device="meta")
    assert next(model.parameters()).device.type == "meta"
    assert model(torch.zeros(2, 3, 32, 32, device="meta")).shape == (2, 7)
    assert not isinstance(spec.to_dict(), FactorySpec)  # a mapping is not built by a factory
