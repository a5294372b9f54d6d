"""Malformed user input, one test per class of defect (ranges, memory, devices, output paths,
non-finite results, study configs, checkpoints, recommend targets).

Each refusal is exit code 2 and exactly one line on stderr, with nothing written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netscale.util import jsonio

SRC = Path(__file__).resolve().parents[1] / "src"


def _one_line(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err


def _strict(text: str) -> object:
    def no(c: str) -> None:
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=no)


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


# ----------------------------------------------------------------------------- defect 3


def test_strict_json_helper() -> None:
    text = jsonio.dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": (-float("inf"),)})
    assert _strict(text) == {"a": None, "b": [None, 1.5], "c": [None]}


def test_no_raw_json_dumps_in_src() -> None:
    """Every JSON netscale writes goes through jsonio.dumps (strict: allow_nan=False)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "jsonio.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bjson\.dumps?\(", line):
                offenders.append(f"{path.relative_to(SRC)}:{i}")
    assert offenders == []


def test_nan_validation_loss_marks_run_diverged(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "t"
    code, _, err = run_cli("train", "ResNet-20-CIFAR", "--data", "digits", "--epochs", "2",
                           "--lr", "1e6", "--subset", "128", "--warmup-epochs", "0", "--out",
                           out, "-q")
    _one_line(code, err)
    assert "diverged" in err and "non-finite" in err
    result = _strict((out / "result.json").read_text())
    assert result["status"] == "diverged"
    for line in (out / "log.jsonl").read_text().splitlines():
        _strict(line)
    # nothing non-finite was checkpointed: either no checkpoint, or only finite epochs
    if (out / "checkpoint.pt").exists():
        from netscale.train import load_checkpoint

        ck = load_checkpoint(out)
        assert all(h["loss"] is not None for h in ck["history"])


# ----------------------------------------------------------------------------- defect 4


@pytest.mark.parametrize("cmd", [["bench", "ResNet-20-CIFAR"],
                                 ["train", "ResNet-20-CIFAR", "--data", "digits"],
                                 ["eval", "nowhere"]])
def test_threads_capped(run_cli, cmd: list[str]) -> None:
    code, _, err = run_cli(*cmd, "--threads", "100000")
    _one_line(code, err)
    assert "too many" in err


def test_fit_n_boot_bounded(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("fit", tmp_path, "--n-boot", "100000000")
    _one_line(code, err)
    assert "--n-boot" in err


def _study(tmp_path: Path, **over: str) -> Path:
    keys = {"name": "s", "out": "st", "bases": "[ResNet-20-CIFAR]", "strategies": "[d]",
            "factors": "[1]", "train": "false", "bench": "{enabled: false}"}
    keys.update(over)
    p = tmp_path / "s.yaml"
    p.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    return p


def test_study_factor_1e9_refused_before_building(run_cli, tmp_path: Path) -> None:
    cfg = _study(tmp_path, factors="[1000000000]", bench="{enabled: true}")
    before = _files(tmp_path)
    code, _, err = run_cli("study", cfg)
    _one_line(code, err)
    assert "memory" in err and "x1e+09" in err
    assert _files(tmp_path) == before


def test_memory_lower_bound_is_below_real_use() -> None:
    """The estimate only refuses what cannot fit: it is below the real parameter memory plus
    one batch of the stem's output."""
    from netscale.complexity.limits import memory_lower_bound
    from netscale.specs import resolve_spec

    spec = resolve_spec("ResNet-20-CIFAR")
    params = 272_474  # counted params of ResNet-20-CIFAR (10 classes, 3 channels)
    assert memory_lower_bound(spec, 1) == 4 * (params + 3 * 32 * 32 + 16 * 32 * 32)
    assert memory_lower_bound(spec, 2, train=True) > memory_lower_bound(spec, 2)


def test_bench_huge_batch_ends_promptly_and_writes_nothing(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    code, _, err = run_cli("bench", "ResNet-20-CIFAR", "--batch-size", "1000000",
                           "--retry-oom", "--budget", "0.5", "--out", out)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("netscale bench: error:")
    assert "batch size" in err and not out.exists()


# ----------------------------------------------------------------------------- defect 5


def _read_only_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make permission bits apply")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def _run_ro(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([*_read_only_prefix(), sys.executable, "-m", "netscale", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def ro_dir(tmp_path: Path):
    d = tmp_path / "ro"
    d.mkdir()
    (d / "s.yaml").write_text(_study(tmp_path).read_text().replace("out: st", "out: new"))
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


@pytest.mark.parametrize("args", [
    ["study", "{ro}/s.yaml"],
    ["quickstart", "--out", "{ro}/q"],
    ["train", "ResNet-20-CIFAR", "--data", "digits", "--out", "{ro}/t"],
    ["scale", "ResNet-20-CIFAR", "--factor", "2", "--out", "{ro}/s2.yaml"],
    ["bench", "ResNet-20-CIFAR", "--out", "{ro}/b.json"],
    ["report", "{study}", "--out", "{ro}/r"],
])
def test_read_only_destinations(ro_dir: Path, tmp_path: Path, args: list[str]) -> None:
    from netscale_fixtures.synthetic import synthetic_study

    study = tmp_path / "study"
    if "{study}" in " ".join(args):
        synthetic_study(study)
    argv = [a.format(ro=ro_dir, study=study) for a in args]
    before = _files(ro_dir)
    r = _run_ro(argv, tmp_path)
    _one_line(r.returncode, r.stderr)
    assert "cannot write" in r.stderr
    assert _files(ro_dir) == before


def test_bench_checks_out_before_measuring(run_cli, tmp_path: Path) -> None:
    """An unwritable --out is refused before any measurement (nothing measured is lost)."""
    (tmp_path / "f").write_text("x")
    code, out, err = run_cli("bench", "ResNet-20-CIFAR", "--out", tmp_path / "f" / "b.json")
    _one_line(code, err)
    assert out == ""  # the device header is printed before measuring: not reached


# ----------------------------------------------------------------------------- defect 6


@pytest.mark.parametrize("args,kind", [
    (["scale", "ResNet-20-CIFAR", "--factors", "2,4", "--out", "{file}"], "is a file"),
    (["recommend", "ResNet-20-CIFAR", "--target-flops", "2x", "--no-measure", "--out", "{dir}"],
     "is a directory"),
    (["study", "{study}", "--export", "csv", "-o", "{dir}"], "is a directory"),
    (["train", "ResNet-20-CIFAR", "--data", "digits", "--out", "{file}"], "is a file"),
    (["report", "{study}", "--out", "{file}"], "is a file"),
    (["quickstart", "--out", "{file}"], "is a file"),
    (["bench", "ResNet-20-CIFAR", "--out", "{dir}"], "is a directory"),
])
def test_output_is_a_directory_or_a_file(run_cli, tmp_path: Path, args: list[str],
                                         kind: str) -> None:
    from netscale_fixtures.synthetic import synthetic_study

    study = tmp_path / "study"
    synthetic_study(study)
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "dir").mkdir()
    before = _files(tmp_path)
    code, _, err = run_cli(*[a.format(file=tmp_path / "file", dir=tmp_path / "dir",
                                      study=study) for a in args])
    _one_line(code, err)
    assert kind in err
    assert _files(tmp_path) == before and (tmp_path / "file").read_text() == "keep me"


# ----------------------------------------------------------------------------- defect 8


def test_data_path_relative_to_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data.path is resolved against the config file's folder, like bases and out."""
    import numpy as np
    from PIL import Image

    from netscale.study.config import load_study_config
    from netscale.study.planning import data_info

    for cls in ("a", "b"):
        (tmp_path / "cfg" / "mydata" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(
                tmp_path / "cfg" / "mydata" / cls / f"{i}.png")
    p = _study(tmp_path / "cfg", train="true", data="{path: mydata, val_fraction: 0.5}")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_study_config(p)
    assert cfg.data.path == str((tmp_path / "cfg" / "mydata").resolve())
    assert data_info(cfg)["num_classes"] == 2
    from netscale.study.config import _resolve_data_paths

    assert _resolve_data_paths({"name": "digits"}, tmp_path, "s") == {"name": "digits"}


def test_study_dir_is_movable(run_cli, tmp_path: Path) -> None:
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    from netscale.specs import resolve_spec

    resolve_spec("ResNet-20-CIFAR").replace(name="mybase").save(spec_dir / "mybase.yaml")
    cfg = tmp_path / "s.yaml"
    cfg.write_text("name: s\nout: st\nbases: [specs/mybase.yaml]\nstrategies: [d]\n"
                   "factors: [1, 2]\ntrain: false\n"
                   "bench: {batch_size: 1, budget: 0.1, retries: 0}\n")
    code, _, err = run_cli("study", cfg)
    assert code == 0, err
    import yaml

    stored = yaml.safe_load((tmp_path / "st" / "study.yaml").read_text())
    assert stored["out"] == "." and stored["bases"] == ["bases/mybase.yaml"]
    copy = tmp_path / "moved" / "copy"
    shutil.copytree(tmp_path / "st", copy)
    shutil.rmtree(spec_dir)  # the copy needs nothing outside itself
    original = (tmp_path / "st" / "results.sqlite").stat().st_mtime_ns
    from netscale.study.config import load_study_config

    assert load_study_config(copy).out_dir == copy.resolve()
    code, out, err = run_cli("study", copy)
    assert code == 0, err
    assert str(copy.resolve()) in out
    assert (tmp_path / "st" / "results.sqlite").stat().st_mtime_ns == original


# ----------------------------------------------------------------------------- defect 9


@pytest.mark.parametrize("over,key", [
    ({"tolerance": "abc"}, "tolerance"),
    ({"resources": "{cpus: abc}"}, "resources.cpus"),
    ({"train": '"false"'}, "train"),
    ({"bench": '{enabled: "no"}'}, "bench.enabled"),
    ({"factors": "[true]"}, "factors"),
    ({"bases": "[{a: 1}]"}, "bases"),
    ({"retries": "true"}, "retries"),
    ({"name": "[a]"}, "name"),
])
def test_config_types_name_the_key(run_cli, tmp_path: Path, over: dict, key: str) -> None:
    code, _, err = run_cli("study", _study(tmp_path, **over), "--dry-run")
    _one_line(code, err)
    assert f"{key} must be" in err


@pytest.mark.parametrize("args,text", [
    (["scale", "ResNet-20-CIFAR", "--factors", ""], "--factors"),
    (["scale", "ResNet-20-CIFAR", "--factor", "2", "--strategy", ""], "--strategy is empty"),
    (["scale", "ResNet-20-CIFAR", "--factor", "2", "--strategies", ""], "--strategies"),
    (["scale", "ResNet-20-CIFAR", "--factors", "2,,4"], "--factors"),
    (["eval", "nowhere", "--split", "train", "--val-subset", "5"], "--val-subset"),
    (["fit", ".", "--samples"], "--samples"),
])
def test_empty_or_ignored_flags_refused(run_cli, args: list[str], text: str) -> None:
    code, _, err = run_cli(*args)
    _one_line(code, err)
    assert text in err


# ----------------------------------------------------------------------------- defect 10


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A minimal valid checkpoint payload (no training needed for loader checks)."""
    from netscale.models import build_model
    from netscale.specs import resolve_spec

    spec = resolve_spec("ResNet-20-CIFAR")
    return {"format": "netscale-checkpoint", "format_version": 1, "epoch": 1,
            "model": build_model(spec).state_dict(), "spec": json.dumps(spec.to_dict()),
            "recipe": "{}", "data": json.dumps({"name": "digits"}), "history": "[]"}


@pytest.mark.parametrize("change,text", [
    ({"spec": "{not json"}, "field 'spec' is not valid JSON"),
    ({"format_version": "one"}, "format_version 'one' is not"),
    ({"format_version": 1.5}, "format_version 1.5 is not"),
    ({"history": "{}"}, "field 'history' is a dict"),
    ({"epoch": "3"}, "epoch '3' is not"),
    ({"model": "weights"}, "'model' is not a mapping"),
])
def test_corrupt_checkpoint_fields(run_cli, tmp_path: Path, good_checkpoint: dict,
                                   change: dict, text: str) -> None:
    p = tmp_path / "c.pt"
    torch.save({**good_checkpoint, **change}, p)
    code, _, err = run_cli("eval", p)
    _one_line(code, err)
    assert text in err


class _Evil:
    def __reduce__(self):  # pragma: no cover - never called by a safe loader
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_message_shows_reason_not_advice(run_cli, tmp_path: Path) -> None:
    p = tmp_path / "evil.pt"
    torch.save({"format": "netscale-checkpoint", "x": _Evil()}, p)
    code, out, err = run_cli("eval", p)
    _one_line(code, err)
    assert "weights_only" not in err and "pwned" not in out
    assert "system" in err and "refused" in err


# ----------------------------------------------------------------------------- defect 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("args", [
    ["train", "ResNet-20-CIFAR", "--data", "digits", "--device", "cuda", "--out", "{t}/o"],
    ["bench", "ResNet-20-CIFAR", "--device", "cuda"],
    ["study", "{cfg}", "--device", "cuda"],
    ["eval", "nowhere", "--device", "cuda"],
])
def test_cuda_without_cuda_stops_up_front(run_cli, tmp_path: Path, args: list[str]) -> None:
    cfg = _study(tmp_path)
    before = _files(tmp_path)
    code, _, err = run_cli(*[a.format(t=tmp_path, cfg=cfg) for a in args])
    _one_line(code, err)
    assert "CUDA is not available" in err
    assert _files(tmp_path) == before


def test_recommend_unreachable_small_target_refused(run_cli, tmp_path: Path) -> None:
    from netscale_fixtures.synthetic import synthetic_study

    study = synthetic_study(tmp_path / "study")
    code, _, err = run_cli("recommend", study, "--target-flops", "0.001x", "--no-measure")
    _one_line(code, err)
    assert "cannot be reached" in err and "shrink" in err


# ----------------------------------------------------------------------------- training OOM


def test_training_out_of_memory_is_one_line(run_cli, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import netscale.train.trainer as trainer

    def oom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "123456789 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(trainer, "_train", oom)
    code, _, err = run_cli("train", "ResNet-20-CIFAR", "--data", "digits", "--out",
                           tmp_path / "o", "-q")
    _one_line(code, err)
    assert "out of memory training ResNet-20-CIFAR" in err and "--batch-size" in err


def test_training_memory_estimated_before_building(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("train", "ResNet-20-CIFAR", "--data", "digits", "--resolution",
                           "100000", "--out", tmp_path / "o", "-q")
    _one_line(code, err)
    assert "needs at least" in err and "memory" in err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()



def test_a_study_that_neither_trains_nor_times_is_refused(run_cli, tmp_path: Path) -> None:
    p = _study(tmp_path)  # train: false, bench: {enabled: false}
    code, _, err = run_cli("study", str(p))
    assert code == 2 and "nothing to run" in err and err.count("\n") == 1
    assert not (tmp_path / "st").exists()  # nothing written
    code, out, _ = run_cli("study", str(p), "--dry-run")  # planning it still works
    assert code == 0 and "ResNet-20-CIFAR" in out
