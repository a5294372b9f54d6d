"""Execution settings (memory format x precision) in `netscale bench`: auto resolves to a valid
setting that every result records; explicit settings are honoured; old files load."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from netscale.bench import BenchConfig, BenchResult, TimingPolicy, bench_module, bench_spec
from netscale.bench import setting as st
from netscale.bench.result import setting_of
from netscale.errors import NetscaleError
from netscale.specs import get_spec

FAST = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_samples=3, max_samples=5, budget_s=0.2,
                    min_block_s=0.002)
CLI_FAST = ("--budget", "0.15", "--warmup", "1", "--batch-size", "2", "--resolution", "16",
            "--threads", "1")


def tiny_spec():
    return get_spec("ResNet-20-CIFAR").replace(resolution=16, name="tiny")


@pytest.fixture
def parity(tmp_path, monkeypatch):
    """Points the bf16 parity record at a temporary file; returns a writer."""
    path = tmp_path / "bf16_parity.json"
    monkeypatch.setattr(st, "PARITY_FILE", path)

    def write(verdict: str | None) -> None:
        if verdict is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps({"verdict": verdict, "summary": f"{verdict} summary"}))

    return write


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_auto_picks_a_valid_setting_and_records_it(mode: str) -> None:
    r = bench_spec(tiny_spec(), BenchConfig(mode=mode, batch_size=2, threads=1, policy=FAST,
                                            memory_format="auto", precision="auto"))
    assert r.ok
    cands = {f"{f}+{p}" for f, p in st.candidates("auto", "auto", "cpu")}
    assert r.setting.label in cands and r.setting.requested == "auto+auto"
    assert {p.label for p in r.setting.probe} == cands  # every candidate was timed
    assert all(p.images_per_s > 0 for p in r.setting.probe)
    assert r.env.channels_last == r.setting.channels_last
    assert r.env.amp == (r.setting.precision != "fp32")
    back = BenchResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.setting == r.setting
    row = r.csv_row()
    assert (row["memory_format"], row["precision"]) == (r.setting.memory_format,
                                                        r.setting.precision)


@pytest.mark.parametrize("fmt", ["channels_last", "contiguous"])
def test_explicit_setting_is_honoured_without_probing(fmt: str) -> None:
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, threads=1, policy=FAST,
                                            memory_format=fmt, precision="fp32"))
    assert r.setting.label == f"{fmt}+fp32" and r.setting.probe == ()
    assert r.setting.reason == "requested" and r.env.channels_last == (fmt == "channels_last")
    assert r.env.amp is False and r.env.amp_dtype is None


def test_explicit_bf16_runs_under_autocast_where_native() -> None:
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.num_classes = 4

        def forward(self, x):
            seen.append(torch.is_autocast_enabled("cpu"))
            return self.conv(x).mean((2, 3))

    prec = "bf16" if st.native_bf16("cpu") else "fp32"
    r = bench_module(Spy(), name="spy", resolution=8,
                     config=BenchConfig(batch_size=2, threads=1, policy=FAST, precision=prec))
    assert r.setting.label == f"contiguous+{prec}"
    assert seen and all(seen) == (prec == "bf16")


def test_auto_leaves_an_external_model_and_the_rng_untouched() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                                torch.nn.LazyLinear(3))
    model(torch.zeros(1, 3, 8, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    r = bench_module(model, name="m", resolution=8, num_classes=3,
                     config=BenchConfig(mode="train", batch_size=2, threads=1, policy=FAST,
                                        memory_format="auto", precision="auto"))
    assert r.ok and r.setting.probe
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(model.parameters()).is_contiguous()


def test_old_rows_without_a_setting_read_as_contiguous_fp32() -> None:
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, threads=1, policy=FAST))
    d = r.to_dict()
    d.pop("setting")
    old = BenchResult.from_dict(d)
    assert old.setting.label == "contiguous+fp32"
    d["env"]["amp"], d["env"]["amp_dtype"], d["env"]["channels_last"] = True, "bfloat16", True
    assert BenchResult.from_dict(d).setting.label == "channels_last+bf16"
    assert setting_of({"memory_format": "channels_last", "precision": "fp32"}).label == \
        "channels_last+fp32"
    assert setting_of({}).label == "contiguous+fp32"


def test_auto_considers_bf16_only_with_a_recorded_parity(parity, monkeypatch) -> None:
    monkeypatch.setattr(st, "native_bf16", lambda device="cpu": True)
    parity(None)
    assert st.candidates("auto", "auto") == [("contiguous", "fp32"), ("channels_last", "fp32")]
    assert "no accuracy-parity measurement" in st.bf16_auto_allowed()[1]
    parity("loss")
    assert [p for _, p in st.candidates("contiguous", "auto")] == ["fp32"]
    assert "loss summary" in st.fixed_setting("contiguous", "auto").reason
    assert st.candidates("contiguous", "bf16") == [("contiguous", "bf16")]  # explicit: honoured
    parity("parity")
    assert st.candidates("contiguous", "auto") == [("contiguous", "fp32"),
                                                   ("contiguous", "bf16")]


def test_shipped_parity_record_is_readable() -> None:
    rec = st.bf16_parity()
    assert rec is not None and rec["verdict"] in ("parity", "loss") and rec["seeds"] >= 2


def test_cli_auto_records_the_setting(run_cli, tmp_path) -> None:
    out = tmp_path / "rows.csv"
    code, stdout, err = run_cli("bench", "ResNet-20-CIFAR", "--out", str(out), *CLI_FAST)
    assert code == 0, err
    assert "setting" in stdout.splitlines()[1] and "chosen by --memory-format/--precision auto"\
        in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["setting_requested"] == "auto+auto"
    assert f"{rows[0]['memory_format']}+{rows[0]['precision']}" in {
        f"{f}+{p}" for f, p in st.candidates("auto", "auto")}


def test_cli_explicit_setting(run_cli) -> None:
    code, out, err = run_cli("bench", "ResNet-20-CIFAR", "--json", "--memory-format",
                             "channels_last", "--precision", "fp32", *CLI_FAST)
    assert code == 0, err
    s = json.loads(out)["results"][0]["setting"]
    assert (s["memory_format"], s["precision"], s["probe"]) == ("channels_last", "fp32", [])


@pytest.mark.parametrize("flags, words", [
    (("--precision", "fp64"), "--precision"),
    (("--memory-format", "nhwc"), "--memory-format"),
    (("--precision", "fp16"), "CUDA"),
])
def test_cli_bad_setting_flags_are_one_line(run_cli, flags, words) -> None:
    code, out, err = run_cli("bench", "ResNet-20-CIFAR", *flags, *CLI_FAST)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_config_rejects_bad_values() -> None:
    with pytest.raises(NetscaleError, match="--memory-format"):
        BenchConfig(memory_format="nhwc").validate()
    with pytest.raises(NetscaleError, match="--precision"):
        BenchConfig(precision="int8").validate()


def test_cli_fit_times_every_model_in_one_setting(run_cli, tmp_path) -> None:
    out = tmp_path / "fit.json"
    code, _, err = run_cli("bench", "--fit", "--base", "ResNet-20-CIFAR", "--strategies", "d",
                           "--factors", "1,2,4", "--precision", "fp32", "--plot",
                           str(tmp_path / "fit.png"), "--out", str(out), *CLI_FAST)
    assert code == 0, err
    rows = json.loads(out.read_text())["results"]
    labels = {(r["setting"]["memory_format"], r["setting"]["precision"]) for r in rows}
    assert len(rows) == 3 and len(labels) == 1 and labels <= set(st.candidates("auto", "fp32"))
    assert "every model runs in ResNet-20-CIFAR's setting" in err
