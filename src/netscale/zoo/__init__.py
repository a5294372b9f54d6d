"""timm and torchvision models by name, counted and scaled through per-family adapters.

``timm:NAME`` / ``torchvision:NAME`` (constructor arguments inline:
``timm:vit_small_patch16_224:img_size=160,drop_path_rate=0``) are parsed by
:func:`parse_zoo_name`; :func:`scale_zoo` scales one by a flops factor with a strategy and
returns the zoo's own call that builds the result. Add a family with
:func:`register_adapter` (see docs/zoo.md). timm and torchvision are optional
(``pip install 'netscale[zoo]'``); they are imported only when a zoo model is used.
"""

from netscale.zoo.adapters import Adapter, find_adapter, register_adapter, registered_adapters
from netscale.zoo.code import Code, call
from netscale.zoo.names import ZooModel, is_zoo_name, parse_zoo_name
from netscale.zoo.scale import ZooFactory, ZooScaleResult, scale_zoo

__all__ = ["Adapter", "Code", "ZooFactory", "ZooModel", "ZooScaleResult", "call",
           "find_adapter", "is_zoo_name", "parse_zoo_name", "register_adapter",
           "registered_adapters", "scale_zoo"]
