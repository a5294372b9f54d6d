"""`netscale models` / `netscale info`, including bad input (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def test_models_lists_every_family(run_cli) -> None:
    code, out, _ = run_cli("models")
    assert code == 0
    for name in ("RegNetX-200MF", "RegNetY-32GF", "RegNetZ-4GF", "ResNeXt-152",
                 "EfficientNet-B5", "ResNet-110-CIFAR"):
        assert name in out
    assert "multiply-adds" in out


def test_models_json(run_cli) -> None:
    code, out, _ = run_cli("models", "--family", "resnet", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["name"] for r in rows} >= {"ResNet-50", "ResNeXt-50"}
    r50 = next(r for r in rows if r["name"] == "ResNet-50")
    assert (r50["flops"], r50["params"], r50["acts"]) == (4089185256, 25557032, 11315688)


@pytest.mark.parametrize("method", ["analytic", "measured"])
def test_info_json(run_cli, method: str) -> None:
    code, out, _ = run_cli("info", "RegNetX-200MF", "--method", method, "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["flops"], data["params"], data["acts"], data["resolution"]) == (
        199040872, 2684792, 2164056, 224)
    assert all(isinstance(data[k], int) for k in ("flops", "params", "acts", "resolution"))
    assert data["model"] == "RegNetX-200MF" and "multiply-adds" in data["units"]["flops"]


def test_info_human_output_has_units_and_name(run_cli) -> None:
    code, out, _ = run_cli("info", "resnet-50", "--resolution", "160", "--per-module")
    assert code == 0
    assert "ResNet-50 at 160x160 px" in out and "multiply-adds" in out
    assert "s4" in out and "stem" in out


def test_info_measured_per_module(run_cli) -> None:
    code, out, _ = run_cli("info", "RegNetY-200MF", "--method", "measured", "--per-module",
                           "--depth", "2", "--json")
    assert code == 0
    data = json.loads(out)
    names = [m["name"] for m in data["modules"]]
    assert "s1.b1" in names and data["uncounted_ops"] == {}


USER_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x = torch.nn.functional.relu(self.conv(x)).mean((2, 3))
            return torch.softmax(self.fc(x), -1)

    def make():
        return Tiny()

    def broken():
        raise RuntimeError("no weights here")

    NOT_A_MODEL = 3

    def returns_int():
        return 3
    """
)


@pytest.fixture
def user_file(tmp_path):
    p = tmp_path / "mymodels.py"
    p.write_text(USER_MODULE)
    return p


def test_info_user_module(run_cli, user_file) -> None:
    code, out, _ = run_cli("info", "--module", f"{user_file}:make", "--input-shape", "3,8,8",
                           "--json")
    data = json.loads(out)
    assert code == 0
    assert data["flops"] == 9 * 3 * 4 * 64 + 4 * 2 + 2
    assert data["params"] == 108 + 10
    assert data["acts"] == 4 * 64 + 2
    assert data["uncounted_ops"] == {"aten._softmax": 1}
    assert data["input_shape"] == [1, 3, 8, 8]


def test_info_user_module_human(run_cli, user_file) -> None:
    code, out, _ = run_cli("info", "--module", f"{user_file}:make", "--input-shape", "3,8,8",
                           "--per-module")
    assert code == 0 and "not counted" in out and "aten._softmax x1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("info", "RegNetQ-400MF"), "unknown model 'RegNetQ-400MF'; closest:"),
        (("info", "missing.yaml"), "does not exist"),
        (("info", "--module", "{f}:nope", "--input-shape", "3,8,8"), "has no attribute 'nope'"),
        (("info", "--module", "{f}:broken", "--input-shape", "3,8,8"),
         "factory 'broken' raised RuntimeError: no weights here"),
        (("info", "--module", "{f}:returns_int", "--input-shape", "3,8,8"), "not a torch.nn"),
        (("info", "--module", "{f}:make"), "needs --input-shape"),
        (("info", "--module", "no_such_pkg.models:make", "--input-shape", "3,8,8"),
         "cannot import module"),
        (("info", "--module", "{f}:make", "--input-shape", "3,x"), "comma-separated integers"),
        (("info", "--module", "{f}:make", "--input-shape", "5,8,8"), "failed"),
        (("info",), "give a model name or spec file"),
    ],
)
def test_info_bad_input(run_cli, user_file, args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli(*(a.replace("{f}", str(user_file)) for a in args))
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_spec_file_is_one_line(run_cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstem: {type: simple, width: 8}\nstages:\n  - {block: bottleneck, "
                   "depth: 1, width: 16, group_width: 6}\n")
    code, _, err = run_cli("info", str(bad))
    assert code == 2 and "group_width 6 does not divide the bottleneck width 16" in err
    assert err.count("\n") == 1


def test_console_script_exit_code_and_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "netscale", "info", "NoSuchNet"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("netscale info: error: unknown model 'NoSuchNet'")
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "netscale", "info", "ResNet-50", "--json"],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["flops"] == 4089185256


def test_usage_error_is_one_line(run_cli) -> None:
    code, _, err = run_cli("info", "ResNet-50", "--method", "guess")
    assert code == 2 and err.count("\n") == 1 and "invalid choice" in err
