"""Specs: validation, serialization round trips, families, registry."""

from __future__ import annotations

import json

import pytest

from netscale.errors import NetscaleError
from netscale.specs import (
    NetSpec,
    StageSpec,
    StemSpec,
    adjust_compatibility,
    get_spec,
    list_models,
    resolve_spec,
)
from netscale.specs.families.regnet import generate_regnet

EXPECTED_NAMES = (
    [f"RegNetX-{s}" for s in ("200MF", "400MF", "600MF", "800MF", "1.6GF", "3.2GF", "4.0GF",
                              "6.4GF", "8.0GF", "12GF", "16GF", "32GF")]
    + [f"RegNetY-{s}" for s in ("200MF", "400MF", "600MF", "800MF", "1.6GF", "3.2GF", "4.0GF",
                                "6.4GF", "8.0GF", "12GF", "16GF", "32GF")]
    + ["RegNetZ-500MF", "RegNetZ-4GF", "ResNet-50", "ResNet-101", "ResNet-152", "ResNeXt-50",
       "ResNeXt-101", "ResNeXt-152"]
    + [f"EfficientNet-B{i}" for i in range(6)]
    + ["ResNet-20-CIFAR", "ResNet-56-CIFAR", "ResNet-110-CIFAR"]
)


def test_all_named_models_exist_and_validate() -> None:
    names = set(list_models())
    for name in EXPECTED_NAMES:
        assert name in names
        get_spec(name).validate()


@pytest.mark.parametrize(
    ("typed", "name"),
    [("regnety-400mf", "RegNetY-400MF"), ("REGNETY_400MF", "RegNetY-400MF"),
     ("RegNetY-4GF", "RegNetY-4.0GF"), ("resnext-50", "ResNeXt-50"),
     ("resnet-56-cifar", "ResNet-56-CIFAR")],
)
def test_names_are_case_insensitive(typed: str, name: str) -> None:
    assert get_spec(typed).name == name


def test_unknown_name_lists_closest() -> None:
    with pytest.raises(NetscaleError, match=r"closest: .*RegNetY-400MF"):
        get_spec("RegNetY-401MF")


def test_regnet_generator_matches_published_shapes() -> None:
    # RegNetX-200MF: depths [1, 1, 4, 7], widths [24, 56, 152, 368] (RegNet paper / pycls)
    assert generate_regnet(13, 24, 36.44, 2.49) == ([24, 56, 152, 368], [1, 1, 4, 7])
    spec = get_spec("RegNetY-4.0GF")
    assert spec.depths == [2, 6, 12, 2]
    assert spec.widths == [128, 192, 512, 1088]
    assert spec.group_widths == [64, 64, 64, 64]


def test_compatibility_step() -> None:
    # g larger than the bottleneck width is clamped; widths snap to multiples of g
    assert adjust_compatibility([80, 240], [1.0, 1.0], [120, 120]) == ([80, 240], [1.0, 1.0],
                                                                        [80, 120])
    # inverted bottleneck: lcm(g, b)
    ws, _, gs = adjust_compatibility([40], [4.0], [8])
    assert ws == [40] and gs == [8] and (ws[0] * 4) % 8 == 0


def test_families_parameters() -> None:
    r50 = get_spec("ResNet-50")
    assert r50.stem == StemSpec("res", 64)
    assert r50.depths == [3, 4, 6, 3] and r50.widths == [256, 512, 1024, 2048]
    assert [s.groups for s in r50.stages] == [1, 1, 1, 1]
    rx = get_spec("ResNeXt-101")
    assert rx.depths == [3, 4, 23, 3]
    assert [s.groups for s in rx.stages] == [32, 32, 32, 32]
    b3 = get_spec("EfficientNet-B3")
    assert b3.resolution == 300 and b3.stem.width == 40 and b3.head_width == 1536
    assert [s.kernel for s in b3.stages] == [3, 3, 5, 3, 5, 5, 3]
    c56 = get_spec("ResNet-56-CIFAR")
    assert c56.depths == [9, 9, 9] and c56.num_classes == 10 and c56.resolution == 32
    z = get_spec("RegNetZ-4GF")
    assert z.resolution == 256 and z.head_width == 1536 and z.activation == "silu"
    assert all(s.block == "linear_bottleneck" and s.bottleneck == 4.0 for s in z.stages)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_yaml_and_json_round_trip(name: str) -> None:
    spec = get_spec(name)
    assert NetSpec.from_yaml(spec.to_yaml()) == spec
    assert NetSpec.from_json(spec.to_json()) == spec
    assert NetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def _tiny(**stage_kw: object) -> NetSpec:
    st = {"block": "bottleneck", "depth": 1, "width": 16, "stride": 2, "group_width": 8}
    st.update(stage_kw)
    return NetSpec("tiny", StemSpec("simple", 8), (StageSpec(**st),), resolution=32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"depth": 0}, "depth must be a positive integer"),
        ({"width": -8}, "width must be a positive integer"),
        ({"group_width": 6}, "group_width 6 does not divide the bottleneck width 16"),
        ({"block": "transformer"}, "block is 'transformer'; expected one of"),
        ({"kernel": 4}, "kernel must be odd"),
        ({"bottleneck": 0.0}, "bottleneck must be a positive number"),
        ({"se_ratio": 1.5}, "se_ratio must be in"),
    ],
)
def test_validation_messages(kw: dict[str, object], message: str) -> None:
    with pytest.raises(NetscaleError, match=message):
        _tiny(**kw).validate()


def test_top_level_validation() -> None:
    with pytest.raises(NetscaleError, match="resolution must be a positive integer"):
        _tiny().replace(resolution=0).validate()
    with pytest.raises(NetscaleError, match="activation is 'gelu'"):
        _tiny().replace(activation="gelu").validate()
    with pytest.raises(NetscaleError, match=r"stem\.type is 'vit'"):
        _tiny().replace(stem=StemSpec("vit", 8)).validate()
    with pytest.raises(NetscaleError, match="no stages"):
        _tiny().replace(stages=()).validate()


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    d = get_spec("ResNet-50").to_dict()
    d["widht"] = 3
    with pytest.raises(NetscaleError, match="unknown spec field"):
        NetSpec.from_dict(d)
    d = get_spec("ResNet-50").to_dict()
    del d["stages"][0]["width"]
    with pytest.raises(NetscaleError, match=r"stages\[0\] is missing 'width'"):
        NetSpec.from_dict(d)


def test_spec_is_immutable_and_hashable() -> None:
    spec = get_spec("RegNetX-200MF")
    with pytest.raises(AttributeError):
        spec.resolution = 10  # type: ignore[misc]
    assert hash(spec) == hash(get_spec("RegNetX-200MF"))


def test_resolve_spec_files(tmp_path) -> None:
    spec = get_spec("RegNetY-400MF")
    p = spec.save(tmp_path / "ry.yaml")
    assert resolve_spec(str(p)) == spec
    p = spec.save(tmp_path / "ry.json")
    assert resolve_spec(str(p)) == spec
    derived = tmp_path / "small.yaml"
    derived.write_text("base: RegNetY-400MF\nresolution: 64\nnum_classes: 10\nin_channels: 1\n")
    small = resolve_spec(str(derived))
    assert (small.resolution, small.num_classes, small.in_channels) == (64, 10, 1)
    assert small.stages == spec.stages and small.name == "small"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("name: x\nstem: {type: simple, width: 8}\nstages: []\n", "no stages"),
        ("base: RegNetY-400MF\nstages: []\n", "cannot override stages"),
        ("base: NoSuchNet\n", "unknown model 'NoSuchNet'"),
    ],
)
def test_bad_spec_files(tmp_path, text: str, message: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(NetscaleError, match=message):
        resolve_spec(str(p))


def test_missing_spec_file() -> None:
    with pytest.raises(NetscaleError, match="does not exist"):
        resolve_spec("no/such/spec.yaml")


@pytest.mark.parametrize("name, blocks", [("ResNet-20-CIFAR", 9), ("ResNet-50", 16),
                                          ("EfficientNet-B0", 16)])
def test_zero_init_last_bn_zeroes_exactly_each_blocks_last_bn(name: str, blocks: int) -> None:
    import torch

    from netscale.models import build_model
    from netscale.specs import resolve_spec

    torch.manual_seed(0)
    model = build_model(resolve_spec(name), zero_init_last_bn=True)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    zero = [m for m in bns if bool((m.weight == 0).all())]
    assert len(zero) == blocks  # one per residual block / MBConv, no other BN
    assert all(getattr(m, "final_bn", False) for m in zero)
    plain = build_model(resolve_spec(name))
    assert not any(bool((m.weight == 0).all()) for m in plain.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("w0, wa, wm", [(float("inf"), 36.0, 2.5), (24.0, float("nan"), 2.5),
                                        (24.0, 36.0, float("inf"))])
def test_regnet_generator_refuses_non_finite_parameters(w0: float, wa: float, wm: float) -> None:
    import warnings

    from netscale.specs.families.regnet import generate_regnet

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "invalid value" warning on the way
        with pytest.raises(ValueError, match="finite w0"):
            generate_regnet(13, w0, wa, wm)
        with pytest.raises(ValueError, match="widths overflow"):
            generate_regnet(13, 24.0, 1e300, 2.5)
