"""Interop with the reference library's (pycls) YAML configs.

Reads ``MODEL.TYPE`` regnet / anynet / effnet / resnet configs (``REGNET.*``, ``ANYNET.*``,
``EN.*``, ``RESNET.*``, ``MODEL.NUM_CLASSES``, ``MODEL.ACTIVATION_FUN``, ``TRAIN.IM_SIZE``)
as a :class:`NetSpec`, with pycls's defaults for keys a file leaves out, and writes a spec back
as an ``anynet`` (or ``effnet``) config that pycls can train. RegNets are written as AnyNets,
as the reference scaler does, since a scaled RegNet is no longer on the RegNet grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netscale.errors import NetscaleError
from netscale.specs.compat import adjust_compatibility
from netscale.specs.families.regnet import generate_regnet
from netscale.specs.families.resnet import RESNET_DEPTHS, resnet
from netscale.specs.spec import NetSpec, StageSpec, StemSpec

STEMS = {"simple_stem_in": "simple", "res_stem_in": "res", "res_stem_cifar": "cifar"}
BLOCKS = {
    "res_bottleneck_block": "bottleneck",
    "res_bottleneck_linear_block": "linear_bottleneck",
    "res_basic_block": "basic",
    "vanilla_block": "vanilla",
}
_SIMPLE_BLOCKS = ("basic", "vanilla")
_STEMS_BACK = {v: k for k, v in STEMS.items()}
_BLOCKS_BACK = {v: k for k, v in BLOCKS.items()}

# pycls defaults (pycls/core/config.py) for the keys netscale reads.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "MODEL": {"NUM_CLASSES": 10, "ACTIVATION_FUN": "relu"},
    "TRAIN": {"IM_SIZE": 224, "DATASET": ""},
    "REGNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
               "STRIDE": 2, "SE_ON": False, "SE_R": 0.25, "DEPTH": 10, "W0": 32, "WA": 5.0,
               "WM": 2.5, "GROUP_W": 16, "BOT_MUL": 1.0, "HEAD_W": 0},
    "ANYNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
               "DEPTHS": [], "WIDTHS": [], "STRIDES": [], "BOT_MULS": [], "GROUP_WS": [],
               "HEAD_W": 0, "SE_ON": False, "SE_R": 0.25},
    "EN": {"STEM_W": 32, "DEPTHS": [], "WIDTHS": [], "EXP_RATIOS": [], "SE_R": 0.25,
           "STRIDES": [], "KERNELS": [], "HEAD_W": 1280, "DROPOUT_RATIO": 0.0},
    "RESNET": {"TRANS_FUN": "bottleneck_transform", "NUM_GROUPS": 1, "WIDTH_PER_GROUP": 64},
}


def _section(cfg: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    given = cfg.get(name) or {}
    if not isinstance(given, Mapping):
        raise NetscaleError(f"{source}: {name} must be a mapping of keys")
    merged = dict(_DEFAULTS.get(name, {}))
    merged.update(given)
    return merged


def spec_from_pycls(cfg: Mapping[str, Any], *, source: str = "pycls config",
                    name: str | None = None) -> NetSpec:
    """A spec from a parsed pycls config (dict from its YAML)."""
    model = _section(cfg, "MODEL", source)
    mtype = str(model.get("TYPE", "")).lower()
    train = _section(cfg, "TRAIN", source)
    act = str(model["ACTIVATION_FUN"]).lower()
    act = "silu" if act == "swish" else act
    try:
        common = {
            "name": name or source,
            "num_classes": int(model["NUM_CLASSES"]),
            "resolution": int(train["IM_SIZE"]),
            "activation": act,
        }
        if mtype == "regnet":
            depth = int(_section(cfg, "REGNET", source)["DEPTH"])
            if not 1 <= depth <= 10_000:
                raise NetscaleError(f"REGNET.DEPTH must be from 1 to 10,000 blocks, got {depth}")
            spec = _from_regnet(_section(cfg, "REGNET", source), common)
        elif mtype == "anynet":
            spec = _from_anynet(_section(cfg, "ANYNET", source), common, source)
        elif mtype == "effnet":
            spec = _from_effnet(_section(cfg, "EN", source), common)
        elif mtype == "resnet":
            spec = _from_resnet(model, _section(cfg, "RESNET", source), common, source,
                                str(train.get("DATASET", "")))
        else:
            raise NetscaleError(
                f"MODEL.TYPE is {model.get('TYPE')!r}; netscale reads pycls configs of type "
                "regnet, anynet, effnet or resnet"
            )
    except (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError) as exc:
        raise NetscaleError(f"{source}: malformed pycls config ({exc})") from None
    except NetscaleError as exc:
        raise NetscaleError(f"{source}: {exc}") from None
    try:
        return spec.validate()
    except NetscaleError as exc:
        raise NetscaleError(f"{source}: {exc}") from None


def _stem(kind: str, width: Any) -> StemSpec:
    if kind not in STEMS:
        raise NetscaleError(f"stem type {kind!r} is not supported; use one of {', '.join(STEMS)}")
    return StemSpec(STEMS[kind], int(width))


def _block(kind: str) -> str:
    if kind not in BLOCKS:
        raise NetscaleError(
            f"block type {kind!r} is not supported; use one of {', '.join(BLOCKS)}"
        )
    return BLOCKS[kind]


def _from_regnet(r: dict[str, Any], common: dict[str, Any]) -> NetSpec:
    widths, depths = generate_regnet(int(r["DEPTH"]), float(r["W0"]), float(r["WA"]),
                                     float(r["WM"]))
    n = len(widths)
    b = float(r["BOT_MUL"])
    widths, bots, gws = adjust_compatibility(widths, [b] * n, [int(r["GROUP_W"])] * n)
    se = float(r["SE_R"]) if r["SE_ON"] else 0.0
    block = _block(r["BLOCK_TYPE"])
    stages = tuple(
        StageSpec(block=block, depth=d, width=w, stride=int(r["STRIDE"]),
                  **_block_fields(block, bm, g, se))
        for d, w, bm, g in zip(depths, widths, bots, gws)
    )
    return NetSpec(stem=_stem(r["STEM_TYPE"], r["STEM_W"]), stages=stages,
                   head_width=int(r["HEAD_W"]), family="regnet", **common)


def _block_fields(block: str, bm: float, g: int, se: float) -> dict[str, Any]:
    if block in _SIMPLE_BLOCKS:
        return {}
    return {"bottleneck": float(bm), "group_width": int(g), "se_ratio": se}


def _from_anynet(a: dict[str, Any], common: dict[str, Any], source: str) -> NetSpec:
    depths, widths, strides = list(a["DEPTHS"]), list(a["WIDTHS"]), list(a["STRIDES"])
    n = len(depths)
    if not n or len(widths) != n or len(strides) != n:
        raise NetscaleError(
            "ANYNET.DEPTHS, WIDTHS and STRIDES must be non-empty lists of the same length"
        )
    block = _block(a["BLOCK_TYPE"])
    bots = list(a["BOT_MULS"]) or [1.0] * n
    gws = list(a["GROUP_WS"])
    if block not in _SIMPLE_BLOCKS and len(gws) != n:
        raise NetscaleError(f"ANYNET.GROUP_WS needs {n} entries for {a['BLOCK_TYPE']}")
    if len(bots) != n:
        raise NetscaleError(f"ANYNET.BOT_MULS needs {n} entries")
    gws = gws or [0] * n
    se = float(a["SE_R"]) if a["SE_ON"] else 0.0
    stages = tuple(
        StageSpec(block=block, depth=int(d), width=int(w), stride=int(s),
                  **_block_fields(block, bm, g, se))
        for d, w, s, bm, g in zip(depths, widths, strides, bots, gws)
    )
    return NetSpec(stem=_stem(a["STEM_TYPE"], a["STEM_W"]), stages=stages,
                   head_width=int(a["HEAD_W"]), family="anynet", **common)


def _from_effnet(e: dict[str, Any], common: dict[str, Any]) -> NetSpec:
    keys = ("DEPTHS", "WIDTHS", "EXP_RATIOS", "STRIDES", "KERNELS")
    lists = [list(e[k]) for k in keys]
    n = len(lists[0])
    if not n or any(len(x) != n for x in lists):
        raise NetscaleError(f"EN.{', EN.'.join(keys)} must be non-empty lists of one length")
    se = float(e["SE_R"])
    stages = tuple(
        StageSpec(block="mbconv", depth=int(d), width=int(w), stride=int(s), kernel=int(k),
                  expansion=float(x), se_ratio=se)
        for d, w, x, s, k in zip(*lists)
    )
    return NetSpec(stem=StemSpec("simple", int(e["STEM_W"])), stages=stages,
                   head_width=int(e["HEAD_W"]), dropout=float(e["DROPOUT_RATIO"]),
                   family="effnet", **common)


def _cifar_resnet(depth: int, r: dict[str, Any], common: dict[str, Any]) -> NetSpec:
    if depth < 8 or (depth - 2) % 6:
        raise NetscaleError(
            f"MODEL.DEPTH {depth}: pycls's CIFAR ResNets have depth 6n+2 (20, 32, 56, 110...)"
        )
    trans = str(r["TRANS_FUN"])
    if trans != "basic_transform":
        raise NetscaleError(
            f"RESNET.TRANS_FUN {trans!r} on CIFAR is not supported; use basic_transform"
        )
    n = (depth - 2) // 6
    stages = tuple(StageSpec(block="basic", depth=n, width=w, stride=s)
                   for w, s in zip((16, 32, 64), (1, 2, 2)))
    return NetSpec(stem=StemSpec("cifar", 16), stages=stages, family="cifar", **common)


def _from_resnet(model: dict[str, Any], r: dict[str, Any], common: dict[str, Any],
                 source: str, dataset: str = "") -> NetSpec:
    depth = int(model.get("DEPTH", 0))
    if "cifar" in str(dataset).lower():
        # pycls's ResNet on CIFAR: depth 6n+2, cifar stem 16, basic (or bottleneck) blocks
        return _cifar_resnet(depth, r, common)
    if depth not in RESNET_DEPTHS:
        raise NetscaleError(f"MODEL.DEPTH {depth} is not supported for resnet; use 50, 101, 152")
    groups, wpg = int(r["NUM_GROUPS"]), int(r["WIDTH_PER_GROUP"])
    w_b = groups * wpg
    spec = resnet(common["name"], RESNET_DEPTHS[depth], bottleneck=w_b / 256,
                  group_widths=[wpg * 2**i for i in range(4)],
                  num_classes=common["num_classes"], resolution=common["resolution"])
    return spec.replace(activation=common["activation"])


# ------------------------------------------------------------------------------ writing


def spec_to_pycls(spec: NetSpec) -> dict[str, Any]:
    """A pycls config dict (anynet or effnet) describing ``spec`` exactly."""
    if spec.in_channels != 3:
        raise NetscaleError(
            f"pycls configs assume 3 input channels; {spec.name} has {spec.in_channels}"
        )
    blocks = {s.block for s in spec.stages}
    if len(blocks) != 1:
        raise NetscaleError("pycls configs need one block type for all stages")
    block = blocks.pop()
    ses = {s.se_ratio for s in spec.stages}
    if len(ses) != 1:
        raise NetscaleError("pycls configs need one SE ratio for all stages")
    se = ses.pop()
    test_size = int(round(spec.resolution / 0.875))
    cfg: dict[str, Any] = {
        "MODEL": {"TYPE": "", "NUM_CLASSES": spec.num_classes,
                  "ACTIVATION_FUN": spec.activation},
    }
    if block == "mbconv":
        if spec.stem.type != "simple":
            raise NetscaleError("pycls effnet configs need the simple stem")
        cfg["MODEL"]["TYPE"] = "effnet"
        cfg["EN"] = {
            "STEM_W": spec.stem.width,
            "DEPTHS": spec.depths,
            "WIDTHS": spec.widths,
            "EXP_RATIOS": [_num(s.expansion) for s in spec.stages],
            "SE_R": se,
            "STRIDES": [s.stride for s in spec.stages],
            "KERNELS": [s.kernel for s in spec.stages],
            "HEAD_W": spec.head_width,
            "DROPOUT_RATIO": spec.dropout,
        }
    else:
        if any(s.kernel != 3 for s in spec.stages):
            raise NetscaleError("pycls anynet blocks use 3x3 kernels only")
        cfg["MODEL"]["TYPE"] = "anynet"
        an: dict[str, Any] = {
            "STEM_TYPE": _STEMS_BACK[spec.stem.type],
            "STEM_W": spec.stem.width,
            "BLOCK_TYPE": _BLOCKS_BACK[block],
            "DEPTHS": spec.depths,
            "WIDTHS": spec.widths,
            "STRIDES": [s.stride for s in spec.stages],
        }
        if block not in _SIMPLE_BLOCKS:
            an["BOT_MULS"] = [_num(s.bottleneck) for s in spec.stages]
            an["GROUP_WS"] = [s.effective_group_width for s in spec.stages]
            an["SE_ON"] = bool(se)
            if se:
                an["SE_R"] = se
        an["HEAD_W"] = spec.head_width
        cfg["ANYNET"] = an
    cfg["TRAIN"] = {"IM_SIZE": spec.resolution}
    cfg["TEST"] = {"IM_SIZE": test_size}
    return cfg


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def pycls_yaml(spec: NetSpec) -> str:
    import yaml

    header = (f"# {spec.name}: written by netscale (pycls config; flops are multiply-adds)\n")
    return header + yaml.safe_dump(spec_to_pycls(spec), sort_keys=False,
                                   default_flow_style=None)
