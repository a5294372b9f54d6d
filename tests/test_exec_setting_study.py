"""Execution settings in studies: each trial's setting is resolved once, stored, reused on
resume and used for its timings; the runtime model is fitted per setting; old configs keep
their fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netscale.advise.study_fits import bench_rows, study_runtime
from netscale.bench import setting as st
from netscale.bench.setting import ExecSetting
from netscale.errors import NetscaleError
from netscale.study import worker
from netscale.study.config import load_study_config
from netscale.study.runner import run_study, trial_dir
from netscale.study.store import Store, TrialRow
from study_helpers import timing_only, write_config


def _config(tmp_path: Path, **over: object) -> Path:
    raw = {
        "name": "tiny", "out": "out", "bases": ["ResNet-20-CIFAR"],
        "base_overrides": {"resolution": 16}, "strategies": ["d", "w"], "factors": [1, 2],
        **timing_only(batch_size=2, budget=0.1, retries=0),
    }
    return write_config(tmp_path, raw, over)


def _stored(cfg) -> dict[str, tuple[str, list[str]]]:
    """Per trial: the label in setting.json and the labels of its stored bench rows."""
    with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
        trials = store.canonical_trials(epochs=False)
    out = {}
    for t in trials:
        saved = json.loads((trial_dir(cfg, t.id) / worker.SETTING_FILE).read_text())
        out[t.id] = (ExecSetting.from_dict(saved).label,
                     [ExecSetting.from_dict(b["setting"]).label for b in t.bench])
    return out


def test_fingerprint_of_a_config_without_setting_keys_is_unchanged(tmp_path: Path) -> None:
    # the value netscale computed for this config before execution settings existed
    assert load_study_config(_config(tmp_path)).fingerprint() == "8fbb52fd84f2cbf0"


def test_explicit_setting_is_used_by_every_trial(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path, recipe={"memory_format": "channels_last",
                                                      "precision": "fp32"}))
    counts = run_study(cfg, stream=None)
    assert counts["done"] == 3
    stored = _stored(cfg)
    assert stored and all(v == ("channels_last+fp32", ["channels_last+fp32"])
                          for v in stored.values())


def test_auto_resolves_each_trial_once_and_times_in_it(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path))  # no keys: auto
    run_study(cfg, stream=None)
    valid = {f"{f}+{p}" for f, p in st.candidates("auto", "auto")}
    stored = _stored(cfg)
    assert len(stored) == 3
    for label, rows in stored.values():
        assert label in valid and rows == [label]


def test_resume_reuses_the_stored_setting(tmp_path: Path, monkeypatch) -> None:
    cfg = load_study_config(_config(tmp_path))
    # an earlier, interrupted attempt resolved the base trial's setting and died before timing
    from netscale.study.planning import plan_trials

    first = plan_trials(cfg)[0]
    path = trial_dir(cfg, first.id) / worker.SETTING_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ExecSetting("channels_last", "fp32", requested="auto+auto",
                                           reason="probed earlier").to_dict()))
    run_study(cfg, stream=None)
    stored = _stored(cfg)
    assert stored[first.id] == ("channels_last+fp32", ["channels_last+fp32"])

    def no_probe(*a, **k):
        raise AssertionError("probed again")

    monkeypatch.setattr("netscale.bench.harness.resolve_setting", no_probe)
    payload = {"trial_dir": str(trial_dir(cfg, first.id)), "recipe": {}, "seed": 0}
    again = worker.trial_setting(payload, None)
    assert again.label == "channels_last+fp32" and again.reason == "probed earlier"


def test_a_trial_started_before_settings_keeps_contiguous_fp32(tmp_path: Path) -> None:
    tdir = tmp_path / "t"
    tdir.mkdir()
    (tdir / "bench.json").write_text("[]")
    s = worker.trial_setting({"trial_dir": str(tdir), "recipe": {}, "seed": 0}, None)
    assert s.label == "contiguous+fp32" and "before" in s.reason
    assert json.loads((tdir / worker.SETTING_FILE).read_text())["precision"] == "fp32"


def test_bad_recipe_setting_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NetscaleError, match=r"recipe\.precision must be one of .*fp64"):
        load_study_config(_config(tmp_path, recipe={"precision": "fp64"}))
    with pytest.raises(NetscaleError, match=r"recipe\.memory_format"):
        load_study_config(_config(tmp_path, recipe={"memory_format": "nhwc"}))


def _trial(i: int, setting: dict | None, flops: float) -> TrialRow:
    row = {"mode": "infer", "status": "ok", "time_ms": 1.0 + flops / 1e6, "batch_size": 8,
           "device": "cpu", "flops": flops, "params": flops / 10, "acts": flops / 5}
    if setting is not None:
        row["setting"] = setting
    return TrialRow(id=f"t{i}", base="b", strategy="w", factor=1.0, seed=0, status="done",
                    attempts=1, failures=0, spec={}, flops=int(flops), params=int(flops / 10),
                    acts=int(flops / 5), resolution=8, bench=[row])


def test_runtime_model_is_fitted_per_setting() -> None:
    bf = ExecSetting("channels_last", "bf16").to_dict()
    trials = ([_trial(i, None, 1e6 * (i + 1)) for i in range(3)]  # old rows: contiguous+fp32
              + [_trial(10 + i, bf, 2e6 * (i + 1)) for i in range(4)])
    assert sorted({r["setting"] for r in bench_rows(trials)}) == ["channels_last+bf16",
                                                                  "contiguous+fp32"]
    rt = study_runtime(trials)
    assert rt is not None and rt.setting == "channels_last+bf16" and rt.n == 4
    assert "channels_last+bf16" in rt.summary() and rt.to_dict()["setting"] == rt.setting
    assert rt.other_settings == ("batch 8 on cpu in contiguous+fp32 (3 rows)",)
    old = study_runtime(trials, setting="contiguous+fp32")
    assert old is not None and old.n == 3 and old.setting == "contiguous+fp32"
    with pytest.raises(NetscaleError, match="not at setting channels_last\\+fp32"):
        study_runtime(trials, setting="channels_last+fp32")


def test_short_run_rule_is_exact_at_its_threshold() -> None:
    n = len(st.candidates("auto", "auto"))  # 2 or 4, depending on this CPU's bf16
    assert n >= 2
    cost = n * (2 + 3 * 3)  # warm-up + rounds x steps of the default ProbePlan, per candidate
    need = -(-cost * 10 // 1)  # the probe may cost at most 10 % of the run
    assert st.short_run_reason("auto", "auto", need) is None
    reason = st.short_run_reason("auto", "auto", need - 1)
    assert reason is not None and f"{cost}-step probe" in reason and f">= {need:,}" in reason
    assert st.short_run_reason("contiguous", "fp32", 1) is None  # nothing to probe


def test_a_short_training_trial_is_not_probed_and_says_why() -> None:
    n = len(st.candidates("auto", "auto"))
    short = {"train": True, "train_size": 1000, "device": "cpu",
             "recipe": {"epochs": 2, "batch_size": 100}}  # 20 steps
    s = worker._short_run(short)
    assert s is not None and s.label == "contiguous+fp32" and s.probe == ()
    assert "the run is 20 steps, too short" in s.reason
    long = {**short, "train_size": 100 * 110 * n}  # 2 epochs x 110n steps: the probe pays off
    assert worker._short_run(long) is None
    assert worker._short_run({**short, "train_size": None}) is None  # unknown size: probe
    assert worker._short_run({**short, "train": False}) is None  # timing only: probe
