"""pycls configs of the CIFAR ResNets (MODEL.TYPE resnet) and AnyNet's vanilla_block.

The YAMLs in tests/data/pycls hold the model keys of pycls's configs (archive/cifar/...);
the expected numbers are pycls's published dev/model_complexity.json entries (flops are
multiply-adds, acts as pycls counts them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from netscale.complexity import complexity, count_measured
from netscale.errors import NetscaleError
from netscale.models import build_model
from netscale.specs import resolve_spec
from netscale.specs.pycls import spec_from_pycls, spec_to_pycls

DATA = Path(__file__).parent / "data" / "pycls"

PUBLISHED = {  # pycls dev/model_complexity.json: (flops, params, acts)
    "V-56_nds_1gpu.yaml": (125_485_706, 853_018, 532_490),
    "R-56_resnet_nds_1gpu.yaml": (125_747_850, 855_770, 544_778),
    "R-110_resnet_nds_1gpu.yaml": (253_149_834, 1_730_714, 1_060_874),
    "R-56_anynet_nds_1gpu.yaml": (125_747_850, 855_770, 544_778),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_pycls_exactly(name: str) -> None:
    spec = resolve_spec(DATA / name)
    c = complexity(spec)
    assert (c.flops, c.params, c.acts) == PUBLISHED[name]
    m = count_measured(build_model(spec, device="meta"), (3, 32, 32))
    assert (m.flops, m.params, m.acts) == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_round_trip_through_pycls_format(name: str) -> None:
    spec = resolve_spec(DATA / name)
    cfg = spec_to_pycls(spec)
    back = spec_from_pycls(cfg, name=spec.name)
    # written back as an anynet config (as the reference scaler writes); same network
    assert cfg["MODEL"]["TYPE"] == "anynet"
    assert back.replace(family=spec.family) == spec
    assert complexity(back).to_dict() == complexity(spec).to_dict()


def test_vanilla_block_has_no_shortcut_and_trains_forward() -> None:
    spec = resolve_spec(DATA / "V-56_nds_1gpu.yaml")
    assert {s.block for s in spec.stages} == {"vanilla"}
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == 853_018
    out = model(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_bad_cifar_resnet_depth_is_one_line_error() -> None:
    cfg = {"MODEL": {"TYPE": "resnet", "DEPTH": 51, "NUM_CLASSES": 10},
           "RESNET": {"TRANS_FUN": "basic_transform"},
           "TRAIN": {"DATASET": "cifar10", "IM_SIZE": 32}}
    with pytest.raises(NetscaleError, match="6n\\+2"):
        spec_from_pycls(cfg)
