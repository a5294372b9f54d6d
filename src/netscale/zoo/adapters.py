"""Adapters: how a zoo family is scaled, as the zoo's own constructor call.

An adapter maps a depth multiplier d, a width multiplier w and an input side to a Python call
expression that builds the scaled network with the zoo's own constructor arguments
(EfficientNet's ``channel_multiplier``/``depth_multiplier``, ResNet's ``layers``/``channels``,
RegNet's ``depth``/``w0``/``wa``, ViT's ``depth``/``embed_dim``/``img_size``...). The
expression is what netscale builds and counts, and what it prints, so the printed call
rebuilds exactly the counted network.

Register your own with :func:`register_adapter`; adapters registered later are tried first::

    from netscale.zoo import ZooModel, call, register_adapter

    def scaled(model: ZooModel, base, d: float, w: float, side: int) -> str:
        depth = max(1, round(len(base.blocks) * d))
        return call("timm.create_model", model.name, pretrained=False, **model.kwargs,
                    depth=depth)

    register_adapter("mynet", "timm", scaled, match="mynet_*", scales="d")
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import inspect
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from netscale.errors import NetscaleError
from netscale.zoo.code import Code, call, lit
from netscale.zoo.names import ZooModel, require

#: ``scaled(model, base, d, w, side) -> expression``: ``base`` is the unscaled model (built
#: on the meta device, for reading its structure), ``side`` the scaled input side in pixels.
ScaledCall = Callable[[ZooModel, Any, float, float, int], str]
Match = Callable[[ZooModel, Any], bool]


@dataclass(frozen=True)
class Adapter:
    """How one zoo family is scaled (see the module docstring).

    ``scales`` names the dimensions the adapter can scale (``"dwr"``; r is the input side,
    always available), or is a function of the base model giving them. ``uses_resolution``:
    the constructor takes the input side (position embeddings), so it is passed to
    ``scaled``; ``resolution_multiple`` is the step of the input side in pixels (the patch
    size of a ViT), or a function of the base model giving it.
    """

    family: str
    zoo: str
    scaled: ScaledCall
    match: Match
    scales: str | Callable[[Any], str] = "dwr"
    uses_resolution: bool = False
    resolution_multiple: int | Callable[[Any], int] = 1

    def dims(self, base: Any) -> str:
        return self.scales(base) if callable(self.scales) else self.scales

    def multiple(self, base: Any) -> int:
        m = self.resolution_multiple
        return int(m(base) if callable(m) else m)


_ADAPTERS: list[Adapter] = []


def register_adapter(
    family: str,
    zoo: str,
    scaled: ScaledCall,
    *,
    match: str | Sequence[str] | Match,
    scales: str | Callable[[Any], str] = "dwr",
    uses_resolution: bool = False,
    resolution_multiple: int | Callable[[Any], int] = 1,
) -> Adapter:
    """Registers an adapter for the models of ``zoo`` (``"timm"`` or ``"torchvision"``) that
    ``match`` (shell patterns on the model name, e.g. ``"resnet*"``, or a function
    ``(model, base_module) -> bool``). Returns it; later registrations are tried first."""
    if zoo not in ("timm", "torchvision"):
        raise NetscaleError(f"adapter {family!r}: zoo must be timm or torchvision, got {zoo!r}")
    if not set(scales if isinstance(scales, str) else "") <= set("dwr"):
        raise NetscaleError(f"adapter {family!r}: scales must use the letters d, w, r")
    if isinstance(match, str) or (isinstance(match, Sequence) and not callable(match)):
        patterns = [match] if isinstance(match, str) else list(match)

        def by_name(model: ZooModel, base: Any) -> bool:
            name = model.name.partition(".")[0]
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        matcher: Match = by_name
    else:
        matcher = match
    adapter = Adapter(family, zoo, scaled, matcher, scales, uses_resolution,
                      resolution_multiple)
    _ADAPTERS.insert(0, adapter)
    return adapter


def registered_adapters() -> list[Adapter]:
    """Every registered adapter, in the order they are tried."""
    return list(_ADAPTERS)


def find_adapter(model: ZooModel, base: Any) -> Adapter:
    """The first adapter for ``model`` (one line naming the families if there is none)."""
    for a in _ADAPTERS:
        if a.zoo == model.zoo:
            try:
                if a.match(model, base):
                    return a
            except Exception:
                continue
    families = sorted({a.family for a in _ADAPTERS if a.zoo == model.zoo})
    raise NetscaleError(
        f"no scaling adapter for {model.label} ({type(base).__name__}); {model.zoo} families: "
        f"{', '.join(families)}; register one (netscale.zoo.register_adapter, docs/zoo.md) "
        "or scale your own factory with --module FILE:FN")


# ----------------------------------------------------------------------------- helpers


def divisible(x: float, m: int = 8) -> int:
    """``x`` rounded to a multiple of ``m`` (at least ``m``, never below 90 % of ``x``)."""
    v = max(m, int(x + m / 2) // m * m)
    return v + m if v < 0.9 * x else v


def scale_count(n: int, d: float) -> int:
    """A block count scaled by d (rounded, at least 1)."""
    return max(1, int(round(n * d)))


def _user(model: ZooModel, *drop: str) -> dict[str, Any]:
    return {k: v for k, v in model.kwargs.items() if k not in drop}


def _isinstance(path: str) -> Match:
    """Matches models whose base is an instance of the class at ``zoo_module.Class``."""
    def match(model: ZooModel, base: Any) -> bool:
        mod_name, _, cls_name = path.rpartition(".")
        import importlib

        cls = getattr(importlib.import_module(mod_name), cls_name, None)
        return cls is not None and isinstance(base, cls)

    return match


def _body(fn: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(fn))))


def _calls(fn: Any, name: str) -> list[ast.Call]:
    """The calls in ``fn``'s source whose callee's last name is ``name``."""
    out = []
    for node in ast.walk(_body(fn)):
        if isinstance(node, ast.Call):
            f = node.func
            callee = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if callee == name:
                out.append(node)
    return out


def _pops(fn: Any) -> dict[str, Any]:
    """``kwargs.pop("k", default)`` / ``kwargs.setdefault("k", v)`` defaults in ``fn``."""
    out: dict[str, Any] = {}
    g = inspect.unwrap(fn).__globals__
    for node in ast.walk(_body(fn)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("pop", "setdefault")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "kwargs"
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)):
            out[str(node.args[0].value)] = eval(compile(ast.Expression(node.args[1]), "<zoo>",
                                                        "eval"), g)
    return out


def _plain(value: Any) -> bool:
    try:
        return bool(eval(lit(value)) == value)
    except Exception:
        return False


# ------------------------------------------------------------------ timm: EfficientNet/MobileNet


@functools.lru_cache(maxsize=64)
def _timm_generator(name: str) -> tuple[str, str, dict[str, Any], tuple[str, ...]] | None:
    """(generator path, variant, base keyword arguments, its parameter names) of a timm
    entrypoint that calls a ``_gen_*`` generator with channel/depth multipliers."""
    timm = require("timm")
    fn = timm.models.model_entrypoint(name.partition(".")[0])
    g = inspect.unwrap(fn).__globals__
    gens = [c for c in _calls_prefixed(fn, "_gen_")]
    if len(gens) != 1:
        return None
    node = gens[0]
    gen = g.get(getattr(node.func, "id", ""))
    if gen is None:
        return None
    params = inspect.signature(gen).parameters
    if "channel_multiplier" not in params:
        return None
    kw: dict[str, Any] = {}
    names = list(params)
    for i, a in enumerate(node.args[1:], start=1):
        kw[names[i]] = eval(compile(ast.Expression(a), "<zoo>", "eval"), g)
    for k in node.keywords:
        if k.arg is None or k.arg == "pretrained":
            continue
        kw[k.arg] = eval(compile(ast.Expression(k.value), "<zoo>", "eval"), g)
    kw.update(_pops(fn))
    for p in ("channel_multiplier", "depth_multiplier"):
        if p in params and p not in kw:
            kw[p] = params[p].default
    if not all(_plain(v) for v in kw.values()):
        return None
    variant = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) \
        else name
    return f"{gen.__module__}.{gen.__name__}", str(variant), kw, tuple(names)


def _calls_prefixed(fn: Any, prefix: str) -> list[ast.Call]:
    return [n for n in ast.walk(_body(fn)) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id.startswith(prefix)]


def _timm_effnet_match(model: ZooModel, base: Any) -> bool:
    return _timm_generator(model.name) is not None


def _timm_effnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    found = _timm_generator(model.name)
    assert found is not None
    path, variant, kw, params = found
    kw = dict(kw)
    kw["channel_multiplier"] = round(float(kw["channel_multiplier"]) * w, 4)
    if "depth_multiplier" in params:
        kw["depth_multiplier"] = round(float(kw["depth_multiplier"]) * d, 4)
    elif abs(d - 1) > 1e-9:
        raise NetscaleError(f"{model.label}: its generator has no depth multiplier")
    kw.update(_user(model, "channel_multiplier", "depth_multiplier"))
    return call(path, variant, pretrained=False, **kw)


# ------------------------------------------------------------------------------ timm: others


def _timm_resnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    layers, channels = [], []
    for i in range(1, 5):
        stage = getattr(base, f"layer{i}")
        layers.append(scale_count(len(stage), d))
        blk = stage[-1]
        out = [m for m in blk.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        channels.append(divisible(out // int(getattr(blk, "expansion", 1)) * w))
    return call("timm.create_model", model.name, pretrained=False,
                **_user(model, "layers", "channels"), layers=layers, channels=channels)


def _timm_regnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    timm = require("timm")
    cfg = timm.models.regnet.model_cfgs[model.name.partition(".")[0]]
    depth = int(model.kwargs.get("depth", cfg.depth))
    w0 = int(model.kwargs.get("w0", cfg.w0))
    wa = float(model.kwargs.get("wa", cfg.wa))
    wm = float(model.kwargs.get("wm", cfg.wm))
    gs = int(model.kwargs.get("group_size", cfg.group_size))
    depth2, w02 = scale_count(depth, d), divisible(w0 * w)
    # timm's RegNet has four stages: the widest block width stays the base's (relative to
    # w0) as depth grows, and wa follows w exactly, or follows w0's multiple of 8 if the
    # stage count would change
    span = (depth - 1) / max(1, depth2 - 1)
    gen = timm.models.regnet.generate_regnet
    stages = gen(wa, w0, wm, depth, gs)[1]
    wa2 = round(wa * w * span, 3)
    if gen(wa2, w02, wm, depth2, gs)[1] != stages:
        wa2 = round(wa * w02 / w0 * span, 3)
    return call("timm.create_model", model.name, pretrained=False,
                **_user(model, "depth", "w0", "wa"), depth=depth2, w0=w02, wa=wa2)


def _timm_convnext(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    depths = tuple(scale_count(len(s.blocks), d) for s in base.stages)
    dims = tuple(divisible(s.blocks[0].conv_dw.out_channels * w) for s in base.stages)
    return call("timm.create_model", model.name, pretrained=False,
                **_user(model, "depths", "dims"), depths=depths, dims=dims)


def _vit_embed(embed: int, heads: int, w: float) -> int:
    """A ViT width scaled by w that the head count divides."""
    return max(heads, int(round(embed * w / heads)) * heads)


def _timm_vit(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    heads = int(base.blocks[0].attn.num_heads)
    return call("timm.create_model", model.name, pretrained=False,
                **_user(model, "depth", "embed_dim", "num_heads", "img_size"),
                depth=scale_count(len(base.blocks), d),
                embed_dim=_vit_embed(int(base.embed_dim), heads, w), num_heads=heads,
                img_size=side)


def _timm_patch(base: Any) -> int:
    return int(base.patch_embed.patch_size[0])


# ----------------------------------------------------------------------------- torchvision


def _tv_builder(name: str) -> Any:
    return require("torchvision").models.get_model_builder(name)


def _tv_resnet_scales(base: Any) -> str:
    tv = require("torchvision")
    return "dwr" if isinstance(base.layer1[0], tv.models.resnet.Bottleneck) else "dr"


def _tv_resnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    tv = require("torchvision")
    bottleneck = isinstance(base.layer1[0], tv.models.resnet.Bottleneck)
    layers = [scale_count(len(getattr(base, f"layer{i}")), d) for i in range(1, 5)]
    block = Code("torchvision.models.resnet." + ("Bottleneck" if bottleneck else "BasicBlock"))
    groups, wpg = int(base.groups), int(base.base_width)
    if bottleneck:
        # the inner (bottleneck) width is groups x width_per_group: ResNeXt gets more groups
        # of the same width, ResNet wider groups
        if groups > 1:
            groups = max(1, int(round(groups * w)))
        else:
            wpg = max(1, int(round(wpg * w)))
    elif abs(w - 1) > 1e-9:
        raise NetscaleError(f"{model.label}: torchvision's BasicBlock ResNet has no width "
                            "argument; scale timm's (timm:resnet18) for width")
    return call("torchvision.models.resnet.ResNet", block, layers,
                **_user(model, "groups", "width_per_group"), groups=groups,
                width_per_group=wpg)


@functools.lru_cache(maxsize=32)
def _tv_regnet_params(name: str) -> dict[str, Any]:
    node = _calls(_tv_builder(name), "from_init_params")[0]
    return {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}


def _tv_regnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    p = dict(_tv_regnet_params(model.name))
    p["depth"] = scale_count(int(p["depth"]), d)
    p["w_0"] = divisible(int(p["w_0"]) * w)
    p["w_a"] = round(float(p["w_a"]) * w, 3)
    params = call("torchvision.models.regnet.BlockParams.from_init_params", **p)
    return call("torchvision.models.regnet.RegNet", Code(params), **_user(model))


def _tv_norm(name: str) -> dict[str, Any]:
    """``norm_layer=partial(nn.BatchNorm2d, ...)`` of a torchvision builder, as source."""
    for node in _calls(_tv_builder(name), "_efficientnet"):
        for k in node.keywords:
            if k.arg == "norm_layer":
                src = ast.unparse(k.value).replace("partial(", "functools.partial(", 1)
                return {"norm_layer": Code(src.replace("nn.", "torch.nn.", 1))}
    return {}


def _tv_effnet(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    tv = require("torchvision")
    fn = _tv_builder(model.name)
    dropout = _pops(fn).get("dropout", 0.2)
    user = _user(model, "dropout", "last_channel")
    norm = _tv_norm(model.name)
    conf = _calls(fn, "_efficientnet_conf")[0]
    mults = {k.arg: ast.literal_eval(k.value) for k in conf.keywords if k.arg}
    if mults:  # v1: the constructor's own width and depth multipliers
        setting = call("torchvision.models.efficientnet._efficientnet_conf", model.name,
                       width_mult=round(float(mults.get("width_mult", 1.0)) * w, 4),
                       depth_mult=round(float(mults.get("depth_mult", 1.0)) * d, 4))
        return call("torchvision.models.efficientnet.EfficientNet", Code(f"{setting}[0]"),
                    dropout=user.pop("dropout", dropout), **norm, **user)
    # v2: the stage table itself, channels and repeats scaled
    ef = tv.models.efficientnet
    stages, last = ef._efficientnet_conf(model.name)
    rows = []
    for s in stages:
        cls = "FusedMBConvConfig" if isinstance(s, ef.FusedMBConvConfig) else "MBConvConfig"
        rows.append(Code(call(f"torchvision.models.efficientnet.{cls}", s.expand_ratio,
                              s.kernel, s.stride, divisible(s.input_channels * w),
                              divisible(s.out_channels * w), scale_count(s.num_layers, d))))
    return call("torchvision.models.efficientnet.EfficientNet", rows, dropout=dropout,
                last_channel=divisible(int(last) * w), **norm, **user)


_MOBILENET_V2 = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                 [6, 160, 3, 2], [6, 320, 1, 1]]


def _tv_mobilenet_v2(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    w0 = float(model.kwargs.get("width_mult", 1.0))
    setting = [[t, c, max(1, math.ceil(n * d)), s] for t, c, n, s in _MOBILENET_V2]
    return call("torchvision.models.mobilenetv2.MobileNetV2",
                **_user(model, "width_mult", "inverted_residual_setting"),
                width_mult=round(w0 * w, 4), inverted_residual_setting=setting)


def _tv_mobilenet_v3(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    w0 = float(model.kwargs.get("width_mult", 1.0))
    conf_kw = {k: v for k, v in model.kwargs.items() if k in ("reduced_tail", "dilated")}
    conf = call("torchvision.models.mobilenetv3._mobilenet_v3_conf", model.name,
                width_mult=round(w0 * w, 4), **conf_kw)
    return call("torchvision.models.mobilenetv3.MobileNetV3", Code(f"*{conf}"),
                **_user(model, "width_mult", "reduced_tail", "dilated"))


def _tv_convnext(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    fn = _tv_builder(model.name)
    sd = _pops(fn).get("stochastic_depth_prob", 0.1)
    rows = []
    for stage in base.features[1::2]:
        rows.append(len(stage))
    dims = [base.features[0][0].out_channels]
    for down in base.features[2::2]:
        dims.append(down[1].out_channels)
    out = []
    for i, n in enumerate(rows):
        nxt = divisible(dims[i + 1] * w) if i + 1 < len(dims) else None
        out.append(Code(call("torchvision.models.convnext.CNBlockConfig",
                             divisible(dims[i] * w), nxt, scale_count(n, d))))
    user = _user(model, "stochastic_depth_prob")
    return call("torchvision.models.convnext.ConvNeXt", out,
                stochastic_depth_prob=user.pop("stochastic_depth_prob", sd), **user)


def _tv_vit(model: ZooModel, base: Any, d: float, w: float, side: int) -> str:
    heads = int(base.encoder.layers[0].self_attention.num_heads)
    hidden = _vit_embed(int(base.hidden_dim), heads, w)
    mlp = int(round(base.mlp_dim * hidden / base.hidden_dim))
    return call("torchvision.models.vision_transformer.VisionTransformer",
                image_size=side, patch_size=int(base.patch_size),
                num_layers=scale_count(len(base.encoder.layers), d), num_heads=heads,
                hidden_dim=hidden, mlp_dim=mlp,
                **_user(model, "image_size", "patch_size", "num_layers", "num_heads",
                        "hidden_dim", "mlp_dim"))


def _tv_patch(base: Any) -> int:
    return int(base.patch_size)


def _register_builtins() -> None:
    """The built-in adapters (registered in reverse priority: the last is tried first)."""
    reg = register_adapter
    tvm = "torchvision.models."
    reg("vit", "torchvision", _tv_vit, match=_isinstance(tvm + "vision_transformer."
                                                          "VisionTransformer"),
        uses_resolution=True, resolution_multiple=_tv_patch)
    reg("convnext", "torchvision", _tv_convnext, match=_isinstance(tvm + "convnext.ConvNeXt"))
    reg("mobilenet_v3", "torchvision", _tv_mobilenet_v3,
        match=_isinstance(tvm + "mobilenetv3.MobileNetV3"), scales="wr")
    reg("mobilenet_v2", "torchvision", _tv_mobilenet_v2,
        match=_isinstance(tvm + "mobilenetv2.MobileNetV2"))
    reg("efficientnet", "torchvision", _tv_effnet,
        match=_isinstance(tvm + "efficientnet.EfficientNet"))
    reg("regnet", "torchvision", _tv_regnet, match=_isinstance(tvm + "regnet.RegNet"))
    reg("resnet", "torchvision", _tv_resnet, match=_isinstance(tvm + "resnet.ResNet"),
        scales=_tv_resnet_scales)
    reg("vit", "timm", _timm_vit,
        match=_isinstance("timm.models.vision_transformer.VisionTransformer"),
        uses_resolution=True, resolution_multiple=_timm_patch)
    reg("convnext", "timm", _timm_convnext, match=_isinstance("timm.models.convnext.ConvNeXt"))
    reg("regnet", "timm", _timm_regnet, match=_isinstance("timm.models.regnet.RegNet"))
    reg("resnet", "timm", _timm_resnet, match=_isinstance("timm.models.resnet.ResNet"))
    reg("efficientnet/mobilenet", "timm", _timm_effnet, match=_timm_effnet_match)


_register_builtins()
