"""`BASE:key=value` overrides (README: `netscale info RegNetY-400MF:resolution=160`)."""

from __future__ import annotations

import pytest

from netscale.complexity import complexity
from netscale.errors import NetscaleError
from netscale.specs import get_spec, resolve_spec
from netscale.specs.resolve import OVERRIDE_KEYS


def test_resolution_override_counts_like_the_resolution_argument() -> None:
    spec = resolve_spec("RegNetY-400MF:resolution=160")
    assert spec.resolution == 160
    base = get_spec("RegNetY-400MF")
    assert complexity(spec).to_dict(parts=False) | {"model": ""} == \
        complexity(base, 160).to_dict(parts=False) | {"model": ""}


def test_every_key_can_be_overridden() -> None:
    base = get_spec("RegNetY-400MF")
    cases = {
        "name=mine": lambda s: s.name == "mine",
        "num_classes=10": lambda s: s.num_classes == 10,
        "in_channels=1": lambda s: s.in_channels == 1,
        "activation=silu": lambda s: s.activation == "silu",
        "dropout=0.2": lambda s: s.dropout == 0.2,
        "head_width=1024": lambda s: s.head_width == 1024,
        "family=custom": lambda s: s.family == "custom",
        "stem_type=cifar": lambda s: s.stem.type == "cifar",
        "stem_width=16": lambda s: s.stem.width == 16,
        "depths=[1,2,3,4]": lambda s: s.depths == [1, 2, 3, 4],
        "depth=2": lambda s: s.depths == [2, 2, 2, 2],
        "widths=[48,104,208,448]": lambda s: s.widths == [48, 104, 208, 448],
        "strides=[1,2,2,2]": lambda s: [st.stride for st in s.stages] == [1, 2, 2, 2],
        "group_width=8": lambda s: all(st.group_width == 8 for st in s.stages),
        "bottleneck=1.0": lambda s: all(st.bottleneck == 1.0 for st in s.stages),
        "se_ratio=0": lambda s: all(st.se_ratio == 0 for st in s.stages),
        "se_ratios=[0.25,0.25,0,0]": lambda s: [st.se_ratio for st in s.stages] == [0.25, 0.25,
                                                                                      0, 0],
        "kernel=3": lambda s: all(st.kernel == 3 for st in s.stages),
        "block=bottleneck": lambda s: {st.block for st in s.stages} == {"bottleneck"},
    }
    for override, check in cases.items():
        spec = resolve_spec(f"RegNetY-400MF:{override}")
        assert check(spec), override
        assert spec != base or override in ("kernel=3", "bottleneck=1.0", "block=bottleneck")
    eff = resolve_spec("EfficientNet-B0:expansions=[1,4,4,4,4,4,4],kernels=[3,3,3,3,3,3,3]")
    assert [st.expansion for st in eff.stages] == [1, 4, 4, 4, 4, 4, 4]
    covered = {k.split("=")[0] for k in cases} | {"expansions", "kernels"}
    singular = {k.rstrip("s") for k in covered} | covered
    assert all(k in singular or k.rstrip("s") in singular or k == "resolution"
               for k in OVERRIDE_KEYS)


def test_several_overrides_and_a_file_base(tmp_path) -> None:
    spec = resolve_spec("ResNet-56-CIFAR:resolution=64:num_classes=100")
    assert (spec.resolution, spec.num_classes) == (64, 100)
    path = tmp_path / "s.yaml"
    get_spec("ResNet-20-CIFAR").save(path)
    assert resolve_spec(f"{path}:depths=[1,1,1]").depths == [1, 1, 1]


@pytest.mark.parametrize("text, needle", [
    ("RegNetY-400MF:foo=1", "unknown key 'foo'; keys: name, resolution"),
    ("RegNetY-400MF:resolution=-3", "resolution must be a positive integer"),
    ("RegNetY-400MF:depths=[1,2]", "depths has 2 values for 4 stages"),
    ("RegNetY-400MF:resolution", "unknown model"),
    ("NoSuchNet:resolution=64", "unknown model 'NoSuchNet'"),
    ("RegNetY-400MF:group_width=7", "group_width 7 does not divide"),
])
def test_bad_overrides_are_one_line_errors(text: str, needle: str) -> None:
    with pytest.raises(NetscaleError, match=None) as info:
        resolve_spec(text)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_cli_info_with_override(run_cli) -> None:
    code, out, _ = run_cli("info", "RegNetY-400MF:resolution=160")
    assert code == 0 and "at 160x160 px" in out and "(205,568,224)" in out
    code, _, err = run_cli("info", "RegNetY-400MF:colour=red")
    assert code == 2 and "unknown key 'colour'" in err and len(err.strip().splitlines()) == 1
