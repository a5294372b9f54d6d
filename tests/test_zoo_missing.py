"""Without timm/torchvision, a zoo model name is one line naming the extra to install."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.parametrize("argv", [
    ("info", "timm:resnet18"),
    ("info", "torchvision:resnet50", "--per-module"),
    ("scale", "timm:efficientnet_b0", "--factor", "4"),
])
def test_a_missing_zoo_is_one_line_and_exit_2(run_cli, monkeypatch: pytest.MonkeyPatch,
                                              argv: tuple[str, ...]) -> None:
    zoo = argv[1].partition(":")[0]
    monkeypatch.setitem(sys.modules, zoo, None)  # import fails as if not installed
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'netscale[zoo]'" in lines[0], err
    assert zoo in lines[0]


def test_commands_taking_specs_name_the_zoo_commands(run_cli) -> None:
    code, _, err = run_cli("scale", "timm:resnet18", "--factor", "2", "--rounding", "reference")
    assert code == 2 and "apply to specs" in err
    code, _, err = run_cli("bench", "--base", "timm:resnet18", "--fit")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "zoo model" in err and "docs/zoo.md" in err


def test_zoo_names_parse_inline_arguments() -> None:
    from netscale.errors import NetscaleError
    from netscale.zoo import parse_zoo_name

    m = parse_zoo_name("timm:vit_small_patch16_224:img_size=160,drop_path_rate=0")
    assert (m.zoo, m.name, dict(m.kwargs)) == ("timm", "vit_small_patch16_224",
                                               {"img_size": 160, "drop_path_rate": 0})
    m = parse_zoo_name("timm:convnext_atto:depths=[1,1,2,1],dims=[8,16,32,64]")
    assert dict(m.kwargs) == {"depths": (1, 1, 2, 1), "dims": (8, 16, 32, 64)}
    assert m.call() == ("timm.create_model('convnext_atto', pretrained=False, "
                        "depths=(1, 1, 2, 1), dims=(8, 16, 32, 64))")
    with pytest.raises(NetscaleError, match="never loads weights"):
        parse_zoo_name("torchvision:resnet50:weights=DEFAULT")
    with pytest.raises(NetscaleError, match="key=value"):
        parse_zoo_name("timm:resnet18:oops")
