"""`netscale study CONFIG --set KEY=VALUE`: overrides without editing the YAML, parsed as YAML,
validated like the file, recorded with the study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from netscale.errors import NetscaleError
from netscale.study.config import apply_config_sets, load_study_config
from netscale.study.store import Store

RAW = {"out": "out", "bases": ["ResNet-20-CIFAR"], "base_overrides": {"resolution": 16},
       "strategies": ["w", "d"], "factors": [1, 2, 4], "train": False,
       "recipe": {"epochs": 3, "batch_size": 64},
       "bench": {"enabled": True, "batch_size": 2, "budget": 0.1}}


def _config(tmp_path: Path) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(RAW))
    return p


def test_apply_config_sets_parses_yaml_values_and_nests() -> None:
    out = apply_config_sets(RAW, ["recipe.epochs=1", "factors=[1,2]", "train=false",
                                "data.name=digits", "bench.budget=0.5", "rounding=reference"])
    assert out["recipe"] == {"epochs": 1, "batch_size": 64}
    assert out["factors"] == [1, 2] and out["train"] is False and out["rounding"] == "reference"
    assert out["data"] == {"name": "digits"} and out["bench"]["budget"] == 0.5
    assert out["bench"]["batch_size"] == 2  # siblings kept
    assert out["overrides"] == ["recipe.epochs=1", "factors=[1,2]", "train=false",
                                "data.name=digits", "bench.budget=0.5", "rounding=reference"]
    assert RAW["recipe"]["epochs"] == 3  # the input is not modified
    for bad, said in (("recipe.epochs", "give KEY=VALUE"), ("=3", "give KEY=VALUE"),
                      ("nosuch=1", "unknown key 'nosuch'"), ("factors=[1,", "not valid YAML"),
                      ("train.x=1", "train is not a mapping")):
        with pytest.raises(NetscaleError, match=said):
            apply_config_sets(RAW, [bad])


def test_dry_run_uses_the_overrides(tmp_path: Path, run_cli) -> None:
    cfg = _config(tmp_path)
    code, stdout, err = run_cli("study", cfg, "--dry-run", "--json")
    assert code == 0, err
    assert len(json.loads(stdout)) == 5  # base + 2 strategies x (2, 4)
    code, stdout, err = run_cli("study", cfg, "--dry-run", "--json", "--set", "factors=[1,2]",
                                "--set", "strategies=[w]")
    assert code == 0, err
    rows = json.loads(stdout)
    assert len(rows) == 2 and {r["strategy"] for r in rows} == {"base", "w"}
    assert yaml.safe_load(cfg.read_text()) == RAW  # the file is not edited


def test_overrides_are_validated_like_the_file(tmp_path: Path, run_cli) -> None:
    cfg = _config(tmp_path)
    for flags, said in ((["--set", "recipe.epochs=abc"], "epochs"),
                        (["--set", "factors=[1,-2]"], "factors must be positive"),
                        (["--set", "strategies=[zz]"], "zz"),
                        (["--set", "recipe.nosuch=1"], "nosuch"),
                        (["--set", "rounding=odd"], "rounding must be one of")):
        code, stdout, err = run_cli("study", cfg, "--dry-run", *flags)
        lines = err.strip().splitlines()
        assert code == 2 and stdout == "" and len(lines) == 1, (flags, err)
        assert said in lines[0] and "--set" in lines[0] and "Traceback" not in err, lines[0]


def test_overrides_are_recorded_with_the_study(tmp_path: Path, run_cli) -> None:
    cfg = _config(tmp_path)
    sets = ["--set", "factors=[1,2]", "--set", "recipe.epochs=1"]
    code, _, err = run_cli("study", cfg, *sets)
    assert code == 0, err
    out = tmp_path / "out"
    with Store(out / "results.sqlite") as store:
        stored = json.loads(store.get_meta("config") or "{}")
        assert len(store.trials()) == 3
    assert stored["overrides"] == ["factors=[1,2]", "recipe.epochs=1"]
    assert stored["factors"] == [1, 2] and stored["recipe"]["epochs"] == 1
    assert stored["name"] == "study"  # still named after the file
    saved = load_study_config(out)  # the study directory's study.yaml records them too
    assert saved.overrides == ("factors=[1,2]", "recipe.epochs=1") and saved.factors == (1, 2)
    # the same command resumes the same study; without the overrides it is another config
    code, _, err = run_cli("study", cfg, *sets)
    assert code == 0, err
    code, _, err = run_cli("study", cfg)
    assert code == 2 and "different config" in err
