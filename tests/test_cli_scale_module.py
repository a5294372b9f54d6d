"""`netscale scale --module` and `netscale info --module` on the tiny test factories."""

from __future__ import annotations

import json
from pathlib import Path

import factories

FACT = Path(factories.__file__)


def test_scale_module_single_factor_json_and_out(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "scaled.json"
    code, stdout, err = run_cli("scale", "--module", f"{FACT}:vit", "--input-shape", "3,36,36",
                                "--factor", "4", "--strategy", "dWr", "--json", "--out", out)
    assert code == 0, err
    data = json.loads(stdout)
    assert data == json.loads(out.read_text())
    assert data["within_tolerance"] is True
    assert abs(data["scaled"]["flops"] / data["base"]["flops"] / 4 - 1) <= 0.02
    assert data["depth_mult"] > 1 and data["width_mult"] > 1
    assert data["resolution"] == data["input_shape"][1] >= 36
    assert data["units"]["flops"].startswith("multiply-adds")
    # the printed multipliers rebuild a model with exactly the reported params
    model = factories.vit(**data["factory_kwargs"])
    assert sum(p.numel() for p in model.parameters()) == data["scaled"]["params"]


def test_scale_module_text_and_growth_table(run_cli) -> None:
    code, out, err = run_cli("scale", "--module", f"{FACT}:vit", "--input-shape", "3,36,36",
                             "--factor", "2", "--strategy", "w", "--width-arg", "width_mult")
    assert code == 0, err
    assert "flops (multiply-adds)" in out and "within ±2%" in out and "width_mult" in out
    assert "build it: vit(depth_mult=1.0, width_mult=" in out
    code, out, err = run_cli("scale", "--module", f"{FACT}:vit", "--input-shape", "3,36,36",
                             "--factors", "2,4", "--strategies", "d,w", "--kwarg",
                             "num_classes=7")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line[:2] in ("d ", "w ")]
    assert [(r[0], r[1]) for r in rows] == [("d", "2"), ("d", "4"), ("w", "2"), ("w", "4")]
    assert all(r[-1] == "yes" for r in rows)


def test_scale_module_errors_are_one_line(run_cli, tmp_path: Path) -> None:
    cases = [
        (["--module", f"{FACT}:vit", "--factor", "2"], "--input-shape"),
        (["--module", f"{tmp_path}/nope.py:f", "--input-shape", "3,8,8", "--factor", "2"],
         "does not exist"),
        (["--module", f"{FACT}:vit", "--input-shape", "3,36,36", "--factor", "2",
          "--depth-arg", "layers", "--strategy", "d"], "takes no keyword argument 'layers'"),
        (["--module", f"{FACT}:vit", "--input-shape", "3,36,36", "--factor", "2",
          "--rounding", "reference"], "own rounding"),
        (["RegNetY-200MF", "--module", f"{FACT}:vit", "--input-shape", "3,36,36",
          "--factor", "2"], "not both"),
    ]
    for args, needle in cases:
        code, _out, err = run_cli("scale", *args)
        assert code == 2, (args, err)
        assert needle in err and len(err.strip().splitlines()) == 1, err


def test_info_module_lists_uncounted_ops(run_cli) -> None:
    code, out, err = run_cli("info", "--module", f"{FACT}:vit", "--input-shape", "3,36,36",
                             "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["uncounted_ops"]["aten._softmax"] == 4  # one per block, 4 blocks
    code, out, err = run_cli("info", "--module", f"{FACT}:vit", "--input-shape", "3,36,36")
    assert "not counted (no flop formula):" in out and "aten._softmax x4" in out
