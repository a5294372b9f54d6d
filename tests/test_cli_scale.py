"""`netscale scale` and pycls interop."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from netscale.complexity import complexity
from netscale.scaling import scale
from netscale.specs import get_spec, list_models, resolve_spec
from netscale.specs.pycls import spec_from_pycls, spec_to_pycls


def test_scale_json_schema(run_cli, tmp_path) -> None:
    out = tmp_path / "scaled.yaml"
    code, stdout, _ = run_cli("scale", "RegNetY-4.0GF", "--factor", "4", "--strategy",
                              "d1_w8_g8_r1", "--rounding", "reference", "--out", str(out),
                              "--json")
    assert code == 0
    data = json.loads(stdout)
    for side in ("base", "scaled"):
        for key in ("flops", "params", "acts", "resolution"):
            assert isinstance(data[side][key], int)
        for key in ("depths", "widths", "group_widths"):
            assert isinstance(data[side][key], list)
    assert data["scaled"]["flops"] == 15_608_249_240
    assert data["scaled"]["depths"] == [2, 7, 14, 2]
    written = resolve_spec(str(out))
    assert complexity(written).flops == 15_608_249_240


def test_scale_human_output(run_cli) -> None:
    code, out, _ = run_cli("scale", "ResNet-50", "--factor", "4")
    assert code == 0
    assert "ResNet-50 ×4 by dWr" in out and "realized ×" in out and "predicted ×" in out
    assert "within ±2%" in out and "multiply-adds" in out


def test_growth_table_csv(run_cli) -> None:
    code, out, _ = run_cli("scale", "RegNetY-400MF", "--factors", "2,4,8,16", "--strategies",
                           "d,w,r,dw,dr,wr,dwr,dWr", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 32
    assert {r["strategy"] for r in rows} == {"d", "w", "r", "dw", "dr", "wr", "dwr", "dWr"}
    assert all(r["within_tolerance"] == "True" for r in rows)
    code, out, _ = run_cli("scale", "RegNetY-400MF", "--factors", "2,4", "--strategies", "d,w")
    assert code == 0 and "pred" in out and out.count("\n") >= 6


def test_target_flops(run_cli) -> None:
    code, out, _ = run_cli("scale", "ResNet-50", "--target-flops", "16G", "--json")
    data = json.loads(out)
    assert code == 0 and abs(data["scaled"]["flops"] / 16e9 - 1) <= 0.02
    code, out, _ = run_cli("scale", "ResNet-50", "--target-flops", "2x", "--json")
    assert json.loads(out)["factor"] == 2.0


def test_alpha(run_cli) -> None:
    code, out, _ = run_cli("scale", "RegNetY-400MF", "--factor", "4", "--alpha", "0.5", "--json")
    data = json.loads(out)
    assert code == 0 and data["strategy"]["e_w"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scale", "ResNet-50", "--factor", "4", "--strategy", "xyz"), "unknown strategy 'xyz'"),
        (("scale", "ResNet-50", "--factor", "-1"), "positive"),
        (("scale", "ResNet-50", "--target-flops", "lots"), "is not a count"),
        (("scale", "ResNet-50", "--factor", "2", "--alpha", "2"), "alpha in [0, 1]"),
        (("scale", "ResNt-50", "--factor", "2"), "closest: ResNet-50"),
    ],
)
def test_scale_bad_input(run_cli, args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli(*args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_out_directory_for_growth_table(run_cli, tmp_path) -> None:
    code, _, _ = run_cli("scale", "ResNet-56-CIFAR", "--factors", "2,4", "--strategies", "d,w",
                         "--out", str(tmp_path / "specs"))
    files = sorted(p.name for p in (tmp_path / "specs").iterdir())
    assert code == 0 and len(files) == 4 and files[0].endswith(".yaml")


# ------------------------------------------------------------------------------ pycls


REGNET_Y_4GF_PYCLS = """
MODEL:
  TYPE: regnet
  NUM_CLASSES: 1000
REGNET:
  SE_ON: True
  DEPTH: 22
  W0: 96
  WA: 31.41
  WM: 2.24
  GROUP_W: 64
OPTIM:
  BASE_LR: 0.1
TRAIN:
  IM_SIZE: 224
"""


def test_read_pycls_regnet(tmp_path) -> None:
    p = tmp_path / "RegNetY-4.0GF_dds_8gpu.yaml"
    p.write_text(REGNET_Y_4GF_PYCLS)
    spec = resolve_spec(str(p))
    assert (complexity(spec).flops, complexity(spec).params) == (3_973_301_344, 20_646_656)
    assert spec.name == "RegNetY-4.0GF_dds_8gpu"


def test_read_pycls_anynet_and_effnet() -> None:
    anynet = yaml.safe_load("""
MODEL: {TYPE: anynet, NUM_CLASSES: 1000}
ANYNET:
  STEM_TYPE: res_stem_in
  STEM_W: 64
  BLOCK_TYPE: res_bottleneck_block
  STRIDES: [1, 2, 2, 2]
  DEPTHS: [3, 4, 6, 3]
  WIDTHS: [256, 512, 1024, 2048]
  BOT_MULS: [0.25, 0.25, 0.25, 0.25]
  GROUP_WS: [64, 128, 256, 512]
""")
    assert complexity(spec_from_pycls(anynet)).flops == 4_089_185_256
    effnet = yaml.safe_load("""
MODEL: {TYPE: effnet, NUM_CLASSES: 1000, ACTIVATION_FUN: silu}
EN:
  STEM_W: 32
  STRIDES: [1, 2, 2, 2, 1, 2, 1]
  DEPTHS: [1, 2, 2, 3, 3, 4, 1]
  WIDTHS: [16, 24, 40, 80, 112, 192, 320]
  EXP_RATIOS: [1, 6, 6, 6, 6, 6, 6]
  KERNELS: [3, 3, 5, 3, 5, 5, 3]
  HEAD_W: 1280
TRAIN: {IM_SIZE: 224}
""")
    c = complexity(spec_from_pycls(effnet))
    assert (c.flops, c.params, c.acts) == (385_825_092, 5_288_548, 6_748_036)


@pytest.mark.parametrize("name", list_models())
def test_pycls_round_trip(name: str) -> None:
    spec = get_spec(name)
    back = spec_from_pycls(spec_to_pycls(spec), name=spec.name)
    assert complexity(back).to_dict() == complexity(spec).to_dict()
    assert back.depths == spec.depths and back.widths == spec.widths


def test_scaled_spec_written_in_pycls_format(run_cli, tmp_path) -> None:
    out = tmp_path / "scaled_pycls.yaml"
    code, _, _ = run_cli("scale", "EfficientNet-B0", "--factor", "2", "--out", str(out),
                         "--out-format", "pycls")
    cfg = yaml.safe_load(out.read_text())
    assert code == 0 and cfg["MODEL"]["TYPE"] == "effnet"
    expected = scale(get_spec("EfficientNet-B0"), 2)
    assert complexity(resolve_spec(str(out))).flops == complexity(expected).flops


def test_bad_pycls_config(run_cli, tmp_path) -> None:
    p = tmp_path / "vgg.yaml"
    p.write_text("MODEL: {TYPE: vgg}\n")
    code, _, err = run_cli("info", str(p))
    assert code == 2 and "MODEL.TYPE is 'vgg'" in err
